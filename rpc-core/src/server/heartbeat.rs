//! Call-monitor heartbeats and progress notices: a task beside the handler
//! that tells a waiting caller, every half of its call-monitor timeout (or
//! every notice interval), that the call is alive and which server has it.
//!
//! The task is a sibling of the handler, not part of it: a heartbeat that
//! takes long to publish (a broker reconnecting) never delays the method,
//! and missed ticks are not fired back to back. It stops, and is waited for,
//! before the final reply, so no heartbeat follows it; dropping it aborts it,
//! so it never outlives the request.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Shared, reply};
use crate::Codec;
use crate::message::{ReplyAddress, Request};
use crate::transport::{Headers, headers};

/// How often to tell the caller the call is alive: oslo's call-monitor
/// interval when it asked for heartbeats, the progress-notice interval when
/// it sent a `deadline` (see `crate::progress`), the shorter of the two
/// when both.
pub(super) fn interval(request: &Request, deadline: Option<Instant>) -> Option<Duration> {
    // Only our callers send a deadline, and they read notices.
    let notices =
        deadline.map(|deadline| crate::progress::notice_interval(deadline.saturating_duration_since(Instant::now())));
    match (monitor_interval(request), notices) {
        (Some(monitor), Some(notices)) => Some(monitor.min(notices)),
        (monitor, notices) => monitor.or(notices),
    }
}

/// oslo's watchdog interval: half the caller's call-monitor timeout in whole
/// seconds; nothing under one second.
fn monitor_interval(request: &Request) -> Option<Duration> {
    let monitor = request.call_monitor?;
    let half = Duration::from_secs(monitor.as_secs()) / 2;
    if half < Duration::from_secs(1) {
        tracing::warn!(call_monitor_timeout = ?monitor, "call-monitor timeouts under 2 s get no heartbeats");
        return None;
    }
    Some(half)
}

/// The heartbeats of one call.
#[derive(Debug)]
pub(super) struct Heartbeats {
    task: JoinHandle<()>,
}

impl Heartbeats {
    /// Starts sending heartbeats to `address` every `interval`, the first one
    /// now (the handler has run for `interval`), each naming the server and
    /// the interval (the progress notice a Rust caller reads; oslo callers
    /// ignore the headers).
    pub(super) fn start(shared: Arc<Shared>, codec: Codec, address: ReplyAddress, interval: Duration) -> Heartbeats {
        let task = tokio::spawn(async move {
            let mut notice = Headers::new();
            notice.insert(
                headers::SERVER,
                shared.target.server_name().unwrap_or_default().to_owned(),
            );
            notice.insert(headers::PROGRESS, interval.as_millis().to_string());
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                reply::heartbeat(&shared, codec, &address, &notice).await;
            }
        });
        Heartbeats { task }
    }

    /// Stops sending, and waits until no heartbeat is being published.
    pub(super) async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}
