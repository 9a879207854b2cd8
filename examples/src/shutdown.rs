//! Stopping on a signal, as a service under Kubernetes, Docker or systemd
//! is stopped: SIGTERM, or SIGINT (Ctrl-C) by hand.

use std::time::Duration;

/// How long a stopping service waits for its work in flight by default
/// (Kubernetes' `terminationGracePeriodSeconds` is 30 s: a pod is killed
/// then, whatever this says; set it above).
pub const GRACE: Duration = Duration::from_secs(25);

/// SIGINT and SIGTERM, heard from the moment this is made: none is missed
/// between two waits, and a second one is heard as the first was.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening for them.
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Completes at the next signal; returns its name.
    pub async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Runs until `ended` completes (the service stopped by itself) or a
/// signal comes; then `stop`s and waits for `ended` as
/// [`stopped_within`] does. Returns whether everything in flight finished.
pub async fn until_signalled(
    signals: &mut Signals,
    ended: impl std::future::Future<Output = ()>,
    stop: impl FnOnce(),
    grace: Duration,
) -> bool {
    tokio::pin!(ended);
    tokio::select! {
        () = &mut ended => return true,
        signal = signals.next() => {
            tracing::info!(signal, ?grace, "stopping: finishing the work in flight (a second signal ends at once)");
        }
    }
    stop();
    stopped_within(signals, ended, grace).await
}

/// Waits for `ended`, a service told to stop finishing its work in
/// flight, at most `grace`, or until a signal. Returns whether it finished.
/// When it did not, the work left may hold a thread of the runtime (a
/// handler in a blocking call), which would keep the process from exiting:
/// end it with `std::process::exit`.
pub async fn stopped_within(
    signals: &mut Signals,
    ended: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> bool {
    tokio::select! {
        () = ended => true,
        signal = signals.next() => {
            tracing::warn!(signal, "a second signal: leaving the work in flight unfinished");
            false
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "the work in flight did not finish within its grace: leaving it");
            false
        }
    }
}
