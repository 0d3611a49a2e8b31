//! The search for the newest match that includes the new event, for one sequence.
//!
//! Candidates are the buffered events of the sequence's types, not yet used by it, inside its
//! window around the new event and not older than `watermark - window`, sorted by
//! (time, arrival). We try each possible last event ("top", newest first), then fill the other
//! steps newest first by depth-first search: the first complete fill found is the
//! lexicographically newest match (see the module docs of `sequence`). Failed states
//! (position of the last pick, steps still to fill, new event still needed) are remembered per
//! top, so the search is polynomial for ordered sequences (positions × steps × 2) and for
//! unordered ones without `max_gap_seconds` (the greedy first descent succeeds when the
//! per-type counts allow). Unordered with a gap bound can in theory need more states (one per
//! remaining multiset of types); [`BUDGET`] caps the work per event and sequence.

use std::collections::HashSet;

use crate::model::sequence::SequenceTrigger;

use super::Buffered;

/// Search states expanded per (event, sequence) before giving up (logged; never reached by
/// realistic streams: it needs hundreds of buffered events that almost, but do not, match).
pub(super) const BUDGET: u32 = 200_000;

/// A sequence prepared for matching.
#[derive(Clone, Debug)]
pub(super) struct Compiled {
    pub id: String,
    pub window_ms: i64,
    gap_ms: Option<i64>,
    ordered: bool,
    /// Distinct listed types, in order of first appearance.
    pub distinct: Vec<String>,
    /// Per distinct type, its number in [`super::ActiveSequences`] (filled in there).
    pub type_ids: Vec<u32>,
    /// Per step, the index of its type in `distinct`.
    steps: Vec<usize>,
    /// Per distinct type: how many steps list it, and its mixed-radix weight.
    mult: Vec<u64>,
    weight: Vec<u64>,
}

#[derive(Clone, Copy)]
struct Cand {
    idx: usize,
    ty: usize,
    time: i64,
}

impl Compiled {
    /// `None` for a sequence that can never match (no steps, or too many to encode).
    pub fn new(s: &SequenceTrigger) -> Option<Self> {
        let mut distinct: Vec<String> = Vec::new();
        let mut steps = Vec::with_capacity(s.event_types.len());
        for t in &s.event_types {
            let i = match distinct.iter().position(|d| d == t) {
                Some(i) => i,
                None => {
                    distinct.push(t.clone());
                    distinct.len() - 1
                }
            };
            steps.push(i);
        }
        if steps.is_empty() || s.window_seconds == 0 {
            return None;
        }
        let mut mult = vec![0u64; distinct.len()];
        for &i in &steps {
            mult[i] += 1;
        }
        let mut weight = Vec::with_capacity(mult.len());
        let mut w: u64 = 1;
        for m in &mult {
            weight.push(w);
            w = w.checked_mul(m + 1)?;
        }
        Some(Compiled {
            id: s.id.clone(),
            window_ms: s.window_ms(),
            gap_ms: s.max_gap_ms(),
            ordered: s.ordered,
            type_ids: Vec::with_capacity(distinct.len()),
            distinct,
            steps,
            mult,
            weight,
        })
    }

    fn digit(&self, rem: u64, ty: usize) -> u64 {
        (rem / self.weight[ty]) % (self.mult[ty] + 1)
    }

    /// Buffer indices of the newest match including `events[e_idx]`, in step order.
    /// `tys[i]` is the type number of `events[i]`.
    pub fn find(
        &self,
        events: &[Buffered],
        tys: &[u32],
        e_idx: usize,
        wm: i64,
    ) -> Option<Vec<usize>> {
        let e = events.get(e_idx)?;
        let ty_of = |i: usize| {
            let t = tys.get(i)?;
            self.type_ids.iter().position(|d| d == t)
        };
        let e_ty = ty_of(e_idx)?;
        let lo = wm
            .saturating_sub(self.window_ms)
            .max(e.time_ms.saturating_sub(self.window_ms));
        let hi = e.time_ms.saturating_add(self.window_ms);
        let mut cands = Vec::new();
        let mut counts = vec![0u64; self.distinct.len()];
        let mut e_pos = 0;
        let start = events.partition_point(|b| b.time_ms < lo);
        for (idx, b) in events.iter().enumerate().skip(start) {
            if b.time_ms > hi {
                break;
            }
            let Some(ty) = ty_of(idx) else {
                continue;
            };
            if b.used_by.contains(&self.id) {
                continue;
            }
            if idx == e_idx {
                e_pos = cands.len();
            }
            counts[ty] += 1;
            cands.push(Cand {
                idx,
                ty,
                time: b.time_ms,
            });
        }
        if cands.get(e_pos).is_none_or(|c| c.idx != e_idx) {
            return None; // the new event is used or outside its own window: cannot happen
        }
        if counts.iter().zip(&self.mult).any(|(c, m)| c < m) {
            return None;
        }
        let mut s = Search {
            c: self,
            cands: &cands,
            e_pos,
            e_ty,
            lb: 0,
            memo: HashSet::new(),
            budget: BUDGET,
            path: Vec::with_capacity(self.steps.len()),
        };
        let k = self.steps.len();
        let full: u64 = self.weight.iter().zip(&self.mult).map(|(w, m)| w * m).sum();
        for top in (e_pos..cands.len()).rev() {
            let t = cands[top];
            let rem = if self.ordered {
                if t.ty != self.steps[k - 1] {
                    continue;
                }
                (k - 1) as u64
            } else {
                full - self.weight[t.ty]
            };
            s.lb = t.time.saturating_sub(self.window_ms);
            s.memo.clear();
            s.path.clear();
            s.path.push(top);
            if s.dfs(top, rem, top != e_pos) {
                return Some(self.step_order(&cands, &s.path));
            }
            if s.budget == 0 {
                tracing::warn!(sequence = %self.id, "sequence search budget exhausted");
                return None;
            }
        }
        None
    }

    /// Map picks (newest first) to steps: ordered → by time; unordered → each type's picks, in
    /// time order, fill that type's steps in listed order.
    fn step_order(&self, cands: &[Cand], path: &[usize]) -> Vec<usize> {
        let mut asc: Vec<Option<Cand>> =
            path.iter().rev().map(|&p| cands.get(p).copied()).collect();
        if self.ordered {
            return asc.into_iter().flatten().map(|c| c.idx).collect();
        }
        let mut out = Vec::with_capacity(self.steps.len());
        for &ty in &self.steps {
            if let Some(slot) = asc.iter_mut().find(|c| c.is_some_and(|c| c.ty == ty)) {
                if let Some(c) = slot.take() {
                    out.push(c.idx);
                }
            }
        }
        out
    }
}

struct Search<'a> {
    c: &'a Compiled,
    cands: &'a [Cand],
    e_pos: usize,
    e_ty: usize,
    lb: i64,
    memo: HashSet<(usize, u64, bool)>,
    budget: u32,
    path: Vec<usize>,
}

impl Search<'_> {
    /// Fill the steps encoded by `rem` (ordered: how many of the first steps are left;
    /// unordered: per-type counts, mixed radix) below `pos`, newest first.
    fn dfs(&mut self, pos: usize, rem: u64, need_e: bool) -> bool {
        if rem == 0 {
            return !need_e;
        }
        if self.budget == 0 || self.memo.contains(&(pos, rem, need_e)) {
            return false;
        }
        self.budget -= 1;
        let c = self.c;
        if need_e && !self.still_fits(rem) {
            self.memo.insert((pos, rem, need_e));
            return false;
        }
        let last = self.cands[pos].time;
        for j in (0..pos).rev() {
            let cand = self.cands[j];
            if cand.time < self.lb
                || c.gap_ms.is_some_and(|g| last.saturating_sub(cand.time) > g)
                || (need_e && j < self.e_pos)
            {
                break;
            }
            let next = if c.ordered {
                if c.steps.get(rem as usize - 1) != Some(&cand.ty) {
                    continue;
                }
                rem - 1
            } else {
                let d = c.digit(rem, cand.ty);
                // Taking the last slot of the new event's type with another event would
                // leave no room for the new event.
                if d == 0 || (need_e && j != self.e_pos && cand.ty == self.e_ty && d == 1) {
                    continue;
                }
                rem - c.weight[cand.ty]
            };
            self.path.push(j);
            if self.dfs(j, next, need_e && j != self.e_pos) {
                return true;
            }
            self.path.pop();
            if self.budget == 0 {
                return false;
            }
        }
        self.memo.insert((pos, rem, need_e));
        false
    }

    /// Can the new event still take one of the remaining steps?
    fn still_fits(&self, rem: u64) -> bool {
        if self.c.ordered {
            self.c.steps[..rem as usize].contains(&self.e_ty)
        } else {
            self.c.digit(rem, self.e_ty) > 0
        }
    }
}
