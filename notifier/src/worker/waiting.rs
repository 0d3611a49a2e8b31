//! Due jobs that wait for a permit, per endpoint (see [`super::Worker`]).

use std::collections::{HashMap, HashSet, VecDeque};

use leadstream_shared::keys::delivery_job_endpoint;

/// Due jobs that found no free permit, per endpoint, handed the next freed permit. Bounded: a
/// job dropped from here is still due in the store and the next poll finds it.
#[derive(Default)]
pub(super) struct Waiting {
    pub(super) queues: HashMap<String, VecDeque<String>>,
    known: HashSet<String>,
}

impl Waiting {
    const MAX: usize = 20_000;

    pub(super) fn push(&mut self, key: String) {
        if self.known.len() >= Self::MAX || !self.known.insert(key.clone()) {
            return;
        }
        let ep = delivery_job_endpoint(&key).to_string();
        self.queues.entry(ep).or_default().push_back(key);
    }

    pub(super) fn push_front(&mut self, key: String) {
        if self.known.insert(key.clone()) {
            let ep = delivery_job_endpoint(&key).to_string();
            self.queues.entry(ep).or_default().push_front(key);
        }
    }

    pub(super) fn pop(&mut self, endpoint: &str) -> Option<String> {
        let q = self.queues.get_mut(endpoint)?;
        let key = q.pop_front();
        if q.is_empty() {
            self.queues.remove(endpoint);
        }
        if let Some(k) = &key {
            self.known.remove(k);
        }
        key
    }
}
