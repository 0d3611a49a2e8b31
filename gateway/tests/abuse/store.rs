//! The real Redis store behind a wrapper that counts the commands sent to it and, once told to,
//! fails every call with an error of the test's choosing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use leadstream_shared::store::{Cmd, Guard, Kv, Reply, Store, StoreError};

pub(crate) struct Watched {
    inner: Store,
    commands: AtomicUsize,
    /// The error every call answers with, once set.
    broken: Mutex<Option<String>>,
}

impl Watched {
    /// Over a connection of its own to the real Redis.
    pub(crate) async fn new() -> Arc<Watched> {
        Arc::new(Watched {
            inner: leadstream_testkit::redis_store().await,
            commands: AtomicUsize::new(0),
            broken: Mutex::new(None),
        })
    }

    /// Commands sent so far (a guarded write counts as one).
    pub(crate) fn commands(&self) -> usize {
        self.commands.load(Ordering::SeqCst)
    }

    /// From now on every call fails as an unavailable store saying `error`.
    pub(crate) fn break_with(&self, error: &str) {
        *self.broken.lock().unwrap() = Some(error.to_string());
    }

    fn check(&self, commands: usize) -> Result<(), StoreError> {
        if let Some(e) = self.broken.lock().unwrap().clone() {
            return Err(StoreError::Unavailable(e));
        }
        self.commands.fetch_add(commands, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Kv for Watched {
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        self.check(cmds.len())?;
        self.inner.exec(cmds).await
    }

    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        self.check(1)?;
        self.inner.exec_guarded(guards, cmds).await
    }
}
