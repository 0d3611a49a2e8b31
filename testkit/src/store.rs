//! [`Faulty`]: a wrapper around a store for tests of what a service does when the store
//! misbehaves, or of how much it asks of it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use leadstream_shared::store::{Cmd, Guard, Kv, Reply, Store, StoreError};

/// The store it wraps (the real Redis, or memory), counting the commands sent to it; on demand
/// it fails every call as an unavailable store saying what the test chose ([`Faulty::break_with`]),
/// or applies the next guarded write and then answers as if the connection broke before its
/// reply arrived ([`Faulty::lose_next_reply`]: what a Redis killed between its
/// `appendfsync always` and its reply does).
pub struct Faulty {
    inner: Store,
    commands: AtomicUsize,
    broken: Mutex<Option<String>>,
    lose_next_reply: AtomicBool,
}

impl Faulty {
    pub fn new(inner: Store) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            commands: AtomicUsize::new(0),
            broken: Mutex::new(None),
            lose_next_reply: AtomicBool::new(false),
        })
    }

    /// Commands sent so far (a guarded write counts as one).
    pub fn commands(&self) -> usize {
        self.commands.load(Ordering::SeqCst)
    }

    /// From now on every call fails as an unavailable store saying `error`.
    pub fn break_with(&self, error: &str) {
        *self.broken.lock().unwrap() = Some(error.to_string());
    }

    /// The next guarded write is applied, then its answer is lost.
    pub fn lose_next_reply(&self) {
        self.lose_next_reply.store(true, Ordering::SeqCst);
    }

    fn admit(&self, commands: usize) -> Result<(), StoreError> {
        if let Some(e) = self.broken.lock().unwrap().clone() {
            return Err(StoreError::Unavailable(e));
        }
        self.commands.fetch_add(commands, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Kv for Faulty {
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        self.admit(cmds.len())?;
        self.inner.exec(cmds).await
    }

    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        self.admit(1)?;
        let answer = self.inner.exec_guarded(guards, cmds).await?;
        if self.lose_next_reply.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("broken pipe".into()));
        }
        Ok(answer)
    }
}
