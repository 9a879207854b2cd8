//! Cancellation of a request being handled: its caller's deadline passed,
//! or its caller gave up and said so.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::future::Future;
use std::task::Poll;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

/// Why a request's handler should stop: set by the server when the caller's
/// deadline passes or the caller cancels the call, read by handlers through
/// [`Context::is_cancelled`](crate::Context::is_cancelled) and
/// [`Context::cancelled`](crate::Context::cancelled).
///
/// Clones share the flag. An interruptible handler is dropped anyway when
/// its request is cancelled; the token is for handlers that must not be
/// interrupted (`#[rpc(uninterruptible)]`) and for work a handler spawned,
/// so they can clean up and stop.
#[derive(Clone, Default)]
pub struct Cancellation {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
    /// The server's own waiter (it polls on every wake of the handler: a
    /// lock-free registration, where `notify` takes a lock).
    server: AtomicWaker,
}

impl Cancellation {
    /// A token not cancelled yet.
    pub fn new() -> Cancellation {
        Cancellation::default()
    }

    /// Cancels: wakes every waiter, now and later.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
        self.inner.server.wake();
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes once cancelled (at once if it already was).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read: a cancel in between wakes it.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// How many hold the token now.
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Cancels at `deadline` if, beyond its `owners`, someone still holds
    /// the token then: work a handler spawned with its context outlives the
    /// handler, and must hear its caller's deadline still. Costs nothing
    /// when nobody kept it; the timer holds the token weakly.
    pub(crate) fn cancel_at_if_kept(&self, owners: usize, deadline: tokio::time::Instant) {
        if self.is_cancelled() || Arc::strong_count(&self.inner) <= owners {
            return;
        }
        let kept = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(inner) = kept.upgrade() {
                Cancellation { inner }.cancel();
            }
        });
    }
}

/// Completes once `cancellation` is cancelled: the server's waiter.
pub(crate) fn server_waiter(cancellation: &Cancellation) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        if cancellation.is_cancelled() {
            return Poll::Ready(());
        }
        cancellation.inner.server.register(cx.waker());
        // Cancelled in between: the wake may have gone to the old waker.
        if cancellation.is_cancelled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_waiters_before_and_after() {
        let token = Cancellation::new();
        let waiter = tokio::spawn({
            let token = token.clone();
            async move { token.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!token.is_cancelled());
        token.cancel();
        waiter.await.unwrap();
        token.cancelled().await;
        assert!(token.is_cancelled());
    }
}
