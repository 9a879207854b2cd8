//! Start, stop and wait: the lifecycle a [`Server`](crate::Server) and a
//! [`NotificationListener`](crate::notify::NotificationListener) share.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};

use crate::transport::{Delivery, Listener};
use crate::{Error, TransportError};

/// Whether something runs, how to stop it, and how to wait for it.
#[derive(Default)]
pub(crate) struct Lifecycle {
    run: Mutex<Option<Run>>,
}

/// One run, from `start` until drained.
struct Run {
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

/// What a run's task holds: the stop signal to watch, and the way to say
/// it is over.
pub(crate) struct Started {
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) done: Done,
}

/// Says a run is over when it goes: the run's task calls
/// [`Done::finish`] once drained, `start` when it failed; and dropped
/// otherwise (a `start` given up on while it listened, its future dropped
/// by a timeout; a run's task that panicked), it says so too, so that
/// nothing stays marked running that does not run.
pub(crate) struct Done {
    lifecycle: Arc<Lifecycle>,
    done: watch::Sender<bool>,
}

impl Done {
    /// The run is over: `wait` returns, `start` may begin another.
    pub(crate) fn finish(self) {
        drop(self);
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        *self.lifecycle.run() = None;
        self.done.send_replace(true);
    }
}

impl Lifecycle {
    fn run(&self) -> MutexGuard<'_, Option<Run>> {
        self.run.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Begins a run; fails when one is under way.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<Started, Error> {
        let (stop, stop_seen) = watch::channel(false);
        let (done, done_seen) = watch::channel(false);
        let mut run = self.run();
        if run.is_some() {
            return Err(Error::ServerState("is already running"));
        }
        *run = Some(Run { stop, done: done_seen });
        Ok(Started {
            stop: stop_seen,
            done: Done {
                lifecycle: Arc::clone(self),
                done,
            },
        })
    }

    /// Asks the run to stop; a no-op when nothing runs.
    pub(crate) fn stop(&self) {
        if let Some(run) = self.run().as_ref() {
            run.stop.send_replace(true);
        }
    }

    /// Whether a run is under way (running or draining).
    pub(crate) fn is_running(&self) -> bool {
        self.run().is_some()
    }

    /// Waits until the current run (if any) is over.
    pub(crate) async fn wait(&self) {
        let done = self.run().as_ref().map(|run| run.done.clone());
        if let Some(mut done) = done {
            // An error means the run ended without saying so: it is over either way.
            let _ = done.wait_for(|done| *done).await;
        }
    }
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("running", &self.is_running())
            .finish()
    }
}

/// What a run loop takes next: a free slot, then what the listener gives
/// (`None` inside: the queues are closed for good). `None` once stopped.
///
/// Under load a slot is free and a delivery waiting: both are taken without
/// registering to hear the stop signal, which costs a lock each time; the
/// signal is read before, and waited for only while nothing is ready.
pub(crate) async fn next_delivery(
    stop: &mut watch::Receiver<bool>,
    permits: &Arc<Semaphore>,
    listener: &mut dyn Listener,
) -> Option<(OwnedSemaphorePermit, Option<Result<Delivery, TransportError>>)> {
    if *stop.borrow() {
        return None;
    }
    // Take a slot first, so that no delivery is pulled that cannot run.
    let permit = match Arc::clone(permits).try_acquire_owned() {
        Ok(permit) => permit,
        Err(TryAcquireError::Closed) => return None,
        Err(TryAcquireError::NoPermits) => tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return None,
            permit = Arc::clone(permits).acquire_owned() => permit.ok()?,
        },
    };
    if *stop.borrow() {
        return None;
    }
    let mut next = listener.next();
    if let Some(next) = (&mut next).now_or_never() {
        return Some((permit, next));
    }
    tokio::select! {
        biased;
        _ = stop.wait_for(|stop| *stop) => None,
        next = next => Some((permit, next)),
    }
}
