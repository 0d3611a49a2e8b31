//! Brute-force reference for the matcher (tests only): keeps every admitted event, and for each
//! arrival enumerates every assignment of candidate events to steps, then picks the newest by
//! the documented rule. Slow and obviously right; the property tests compare the two.
//! It does not model the cap (tests using it give a cap larger than the stream).

use std::collections::HashSet;

use crate::model::sequence::SequenceTrigger;

use super::SeqEvent;

struct Ev {
    id: String,
    ty: String,
    time: i64,
    seq: u64,
    used: Vec<String>,
}

#[derive(Default)]
pub struct Oracle {
    seqs: Vec<SequenceTrigger>,
    admitted: Vec<Ev>,
    seen: HashSet<String>,
    wm: Option<i64>,
}

/// (sequence id, matched event ids in step order).
pub type Firing = (String, Vec<String>);
/// The best match so far: its keys newest first, and the chosen events per step.
type Best = Option<(Vec<(i64, u64)>, Vec<usize>)>;

impl Oracle {
    pub fn new(all: &[SequenceTrigger]) -> Self {
        let seqs = all.iter().filter(|s| s.active).cloned().collect();
        Oracle {
            seqs,
            ..Oracle::default()
        }
    }

    pub fn observe(&mut self, e: &SeqEvent) -> Vec<Firing> {
        let lists = |s: &SequenceTrigger| s.event_types.contains(&e.event_type);
        if !self.seqs.iter().any(lists) || self.seen.contains(&e.id) {
            return vec![];
        }
        let horizon = self.seqs.iter().map(|s| s.window_ms()).max().unwrap_or(0);
        let wm = self.wm.map_or(e.time_ms, |w| w.max(e.time_ms));
        if e.time_ms < wm - horizon {
            return vec![];
        }
        self.wm = Some(wm);
        self.seen.insert(e.id.clone());
        let new = self.admitted.len();
        self.admitted.push(Ev {
            id: e.id.clone(),
            ty: e.event_type.clone(),
            time: e.time_ms,
            seq: new as u64,
            used: vec![],
        });
        let mut out = vec![];
        for s in self.seqs.iter().filter(|s| lists(s)) {
            let cands: Vec<usize> = (0..self.admitted.len())
                .filter(|&i| {
                    let a = &self.admitted[i];
                    s.event_types.contains(&a.ty)
                        && !a.used.contains(&s.id)
                        && a.time >= wm - s.window_ms()
                })
                .collect();
            let mut best: Best = None;
            let mut chosen = vec![];
            self.enumerate(s, &cands, new, &mut chosen, &mut best);
            if let Some((_, picked)) = best {
                let ids = self.step_order(s, picked);
                for &i in &ids {
                    self.admitted[i].used.push(s.id.clone());
                }
                let ids = ids.iter().map(|&i| self.admitted[i].id.clone()).collect();
                out.push((s.id.clone(), ids));
            }
        }
        out
    }

    fn enumerate(
        &self,
        s: &SequenceTrigger,
        cands: &[usize],
        new: usize,
        chosen: &mut Vec<usize>,
        best: &mut Best,
    ) {
        let step = chosen.len();
        if step == s.event_types.len() {
            if let Some(score) = self.score(s, chosen, new) {
                if best.as_ref().is_none_or(|(b, _)| score > *b) {
                    *best = Some((score, chosen.clone()));
                }
            }
            return;
        }
        for &c in cands {
            if !chosen.contains(&c) && self.admitted[c].ty == s.event_types[step] {
                chosen.push(c);
                self.enumerate(s, cands, new, chosen, best);
                chosen.pop();
            }
        }
    }

    /// The match's keys newest first, if the assignment is a valid match.
    fn score(&self, s: &SequenceTrigger, chosen: &[usize], new: usize) -> Option<Vec<(i64, u64)>> {
        let key = |i: usize| (self.admitted[i].time, self.admitted[i].seq);
        if !chosen.contains(&new) {
            return None;
        }
        if s.ordered && chosen.windows(2).any(|w| key(w[0]) >= key(w[1])) {
            return None;
        }
        let mut keys: Vec<(i64, u64)> = chosen.iter().map(|&i| key(i)).collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        let (newest, oldest) = (keys[0].0, keys[keys.len() - 1].0);
        if newest - oldest > s.window_ms() {
            return None;
        }
        if let Some(g) = s.max_gap_ms() {
            if keys.windows(2).any(|w| w[0].0 - w[1].0 > g) {
                return None;
            }
        }
        Some(keys)
    }

    fn step_order(&self, s: &SequenceTrigger, mut picked: Vec<usize>) -> Vec<usize> {
        if s.ordered {
            return picked;
        }
        picked.sort_by_key(|&i| (self.admitted[i].time, self.admitted[i].seq));
        let mut out = vec![];
        for ty in &s.event_types {
            let pos = picked.iter().position(|&i| &self.admitted[i].ty == ty);
            if let Some(p) = pos {
                out.push(picked.remove(p));
            }
        }
        out
    }
}
