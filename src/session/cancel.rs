//! Cooperative cancellation: Ctrl-C sets a flag that stops scripts between operations and
//! wakes native functions that are waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A shared cancel switch.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks everything watching this switch to stop.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Re-arms the switch (the REPL does this before each input).
    pub fn reset(&self) {
        self.inner.flag.store(false, Ordering::SeqCst);
    }

    /// Completes once [`Cancel::cancel`] has been called.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_waiters_and_resets() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cancel = Cancel::new();
        let waiter = cancel.clone();
        runtime.block_on(async move {
            let task = tokio::spawn(async move { waiter.cancelled().await });
            tokio::task::yield_now().await;
            cancel.cancel();
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .unwrap()
                .unwrap();
            assert!(cancel.is_cancelled());
            cancel.reset();
            assert!(!cancel.is_cancelled());
        });
    }
}
