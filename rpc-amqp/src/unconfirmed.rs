//! Publishing without publisher confirms: the requests of calls, the casts
//! of clients that opted out of confirms, and replies where the transport
//! opted out (`confirm_replies=false`).
//!
//! A call's reply proves its request was routed, and a returned request
//! proves it was not; the broker's confirm adds nothing the caller can
//! observe, and costs a frame each way through the broker and a wake-up of
//! the caller. So calls go out on a channel of their own, not in confirm
//! mode, still with the mandatory flag, and the caller goes on to wait for
//! the reply as soon as the request is handed to lapin's I/O loop.
//!
//! lapin keeps the messages returned on such a channel without telling
//! anyone, so a watcher drains them every [`TICK`] while messages go out
//! (and for [`QUIET`] after the last), and fails each returned request's
//! call through the client's reply sink: `NoListener`, within a tick
//! instead of a round trip. (A return later than [`QUIET`], on a broker
//! that slow, is collected with the next message.) A lost connection fails
//! every waiting call, as before (this path is not taken with
//! `transient_quorum`, whose reply queue outlives the connection: there a
//! loss fails no call, and only a confirm tells a request lost with it). What this path gives up: a channel error (an exchange deleted
//! under traffic, nothing else a checked request can cause) loses the
//! requests it interrupts, which then wait for their timeout; quorum
//! queues, which may refuse a message between leaders, keep confirms.
//!
//! A cast on this channel (`Client::confirm_casts(false)`) has no reply to
//! prove anything: its caller chose not to know. Nor has a reply from a
//! transport configured without reply confirms (`confirm_replies=false`:
//! at-most-once replies). A returned cast or reply is counted and
//! logged (a warning naming where the last one went, at once, then at most
//! every [`WARN_EVERY`] with the count since), and the watcher keeps
//! draining returns for as long as the transport lives, whether or not a
//! client listens for replies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lapin::Channel;
use lapin::message::BasicReturnMessage;
use rpc_core::transport::ReplySink;
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::gone::GoneQueues;
use crate::link::Connected;
use crate::publisher::connection_error;

/// How often returned requests are collected while requests go out.
const TICK: Duration = Duration::from_millis(5);

/// How long the watcher keeps collecting after the last request: a return
/// comes a broker round trip after its request, later on a loaded broker.
const QUIET: Duration = Duration::from_secs(2);

/// At most one warning about returned casts this often: a stream of casts
/// to nowhere is one misconfiguration, not one per tick.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The unconfirmed channel of the current connection, and where returned
/// requests are reported.
pub(crate) struct Unconfirmed {
    current: Mutex<Option<Watched>>,
    /// One channel opened at a time.
    opening: tokio::sync::Mutex<()>,
    sink: SharedSink,
    counts: Arc<Counts>,
    /// Where a returned reply's queue is noted as gone.
    gone: Arc<GoneQueues>,
    /// See [`Unconfirmed::reopens`].
    reopens: AtomicU64,
}

/// What the unconfirmed path counts, for [`DriverStats`](rpc_core::transport::DriverStats).
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) published: AtomicU64,
    pub(crate) returned: AtomicU64,
}

/// A channel to publish requests on, and its watcher's bell.
#[derive(Clone)]
pub(crate) struct Watched {
    generation: u64,
    pub(crate) channel: Channel,
    activity: Arc<Activity>,
}

impl Watched {
    fn usable(&self, connected: &Connected) -> bool {
        self.generation == connected.generation && self.channel.status().connected()
    }

    /// Keeps the watcher collecting: a request went out.
    pub(crate) fn sent(&self, counts: &Counts) {
        counts.published.fetch_add(1, Ordering::Relaxed);
        if !self.activity.busy.swap(true, Ordering::AcqRel) {
            self.activity.wake.notify_one();
        }
    }
}

/// Tells the watcher that requests went out.
#[derive(Default)]
struct Activity {
    wake: Notify,
    busy: AtomicBool,
}

impl Unconfirmed {
    /// Unconfirmed publishing; a returned reply's queue is noted in `gone`,
    /// so that the next replies to it are dropped at once.
    pub(crate) fn new(gone: Arc<GoneQueues>) -> Unconfirmed {
        Unconfirmed {
            current: Mutex::default(),
            opening: tokio::sync::Mutex::default(),
            sink: SharedSink::default(),
            counts: Arc::default(),
            gone,
            reopens: AtomicU64::new(0),
        }
    }

    /// Tells the reply sink that the request of the call `msg_id` was
    /// handed to the connection.
    pub(crate) fn request_sent(&self, msg_id: &str) {
        if let Some(sink) = current(&self.sink) {
            sink.sent(msg_id);
        }
    }

    /// Reports returned requests to `sink` from now on.
    pub(crate) fn report_to(&self, sink: &Arc<dyn ReplySink>) {
        *lock(&self.sink) = Some(Arc::downgrade(sink));
    }

    /// Whether a returned request can be reported: a client listens for replies.
    pub(crate) fn can_report(&self) -> bool {
        lock(&self.sink).as_ref().is_some_and(|sink| sink.strong_count() > 0)
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    /// How many times the broker closed the channel while its connection
    /// stood (most likely a message to an exchange deleted since it was
    /// checked), as seen when the channel was opened again.
    pub(crate) fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Acquire)
    }

    /// The channel to publish on, opened (with its watcher) once per
    /// connection, and again after the broker closed it.
    pub(crate) async fn channel(&self, connected: &Connected) -> Result<Watched, TransportError> {
        if let Some(watched) = lock(&self.current).as_ref().filter(|watched| watched.usable(connected)) {
            return Ok(watched.clone());
        }
        let _opening = self.opening.lock().await;
        match lock(&self.current).as_ref() {
            Some(watched) if watched.usable(connected) => return Ok(watched.clone()),
            Some(watched) if watched.generation == connected.generation => {
                self.reopens.fetch_add(1, Ordering::AcqRel);
            }
            _ => {}
        }
        let channel = connected
            .connection
            .create_channel()
            .await
            .map_err(|error| connection_error(connected, crate::error::from_lapin(error, "opening a channel")))?;
        let watched = Watched {
            generation: connected.generation,
            channel,
            activity: Arc::default(),
        };
        tokio::spawn(watch(
            watched.clone(),
            connected.connection.status().clone(),
            Arc::clone(&self.sink),
            Arc::downgrade(&self.counts),
            Arc::clone(&self.gone),
        ));
        *lock(&self.current) = Some(watched.clone());
        Ok(watched)
    }
}

/// Where returned requests are reported: the current reply sink, if any.
type SharedSink = Arc<Mutex<Option<Weak<dyn ReplySink>>>>;

/// Collects returned messages while messages go out; ends with its channel,
/// or once the transport is gone (`counts` no longer upgrades).
async fn watch(
    watched: Watched,
    connection: lapin::ConnectionStatus,
    sink: SharedSink,
    counts: Weak<Counts>,
    gone: Arc<GoneQueues>,
) {
    let Watched { channel, activity, .. } = watched;
    let quiet_ticks = QUIET.as_millis() / TICK.as_millis();
    let mut lost = Lost::default();
    loop {
        // Idle: check now and then that the channel still stands.
        if tokio::time::timeout(Duration::from_secs(1), activity.wake.notified())
            .await
            .is_err()
        {
            if !channel.status().connected() || counts.strong_count() == 0 {
                return;
            }
            continue;
        }
        let mut quiet = 0;
        while quiet < quiet_ticks {
            tokio::time::sleep(TICK).await;
            if !channel.status().connected() {
                if connection.connected() {
                    tracing::warn!(
                        "the broker closed the channel of unconfirmed publishes: calls sent just before may wait for their timeout, casts and replies sent without confirms just before are lost"
                    );
                }
                lost.warn();
                return;
            }
            let Some(counts) = counts.upgrade() else { return };
            collect(&channel, &sink, &counts, &gone, &mut lost).await;
            if activity.busy.swap(false, Ordering::AcqRel) {
                quiet = 0;
            } else {
                quiet += 1;
            }
        }
        // Quiet: say what is left to say.
        lost.warn();
    }
}

/// Fails the call of every request returned since the last collection, and
/// notes the casts and replies among them.
async fn collect(channel: &Channel, sink: &SharedSink, counts: &Counts, gone: &GoneQueues, lost: &mut Lost) {
    // Not in confirm mode, this only takes the returned messages.
    let Ok(returned) = channel.wait_for_confirms().await else {
        return;
    };
    if returned.is_empty() {
        return;
    }
    // Casts and replies are noted and logged, then everything counted, and
    // only then are the callers of returned requests told: whoever sees the
    // count sees the logs, and whoever sees a call fail sees it counted.
    let mut requests = Vec::new();
    for message in &returned {
        // Requests carry their call's id; casts and replies carry none,
        // and replies go through the default exchange, casts through their
        // target's (a cast addressed to the default exchange itself, which
        // nothing here declares, would be reported as a reply).
        match message.delivery.properties.message_id() {
            Some(msg_id) => requests.push((msg_id, message)),
            None if message.delivery.exchange.as_str().is_empty() => {
                // As a confirmed reply found returned: the next replies to
                // that queue are dropped at once for a while.
                gone.mark(message.delivery.routing_key.as_str());
                lost.replies.add(message);
            }
            None => lost.casts.add(message),
        }
    }
    lost.warn_due();
    counts.returned.fetch_add(returned.len() as u64, Ordering::Relaxed);
    if let Some(sink) = current(sink) {
        for (msg_id, message) in requests {
            sink.undeliverable(msg_id.as_str(), unroutable(message));
        }
    }
}

/// Returned casts and replies not yet logged.
#[derive(Default)]
struct Lost {
    casts: Returned,
    replies: Returned,
}

impl Lost {
    /// Warns of the casts and replies not yet logged, if any.
    fn warn(&mut self) {
        self.casts.warn_casts();
        self.replies.warn_replies();
    }

    /// The same, for each kind whose warning is due.
    fn warn_due(&mut self) {
        if self.casts.due() {
            self.casts.warn_casts();
        }
        if self.replies.due() {
            self.replies.warn_replies();
        }
    }
}

/// Returned messages of one kind not yet logged, and when the last warning
/// about them went out.
#[derive(Default)]
struct Returned {
    count: u64,
    /// Where the last of them went.
    last: Option<String>,
    warned_at: Option<Instant>,
}

impl Returned {
    fn add(&mut self, message: &BasicReturnMessage) {
        self.count += 1;
        self.last = Some(destination(message));
    }

    /// Whether to warn now: the first time, then at most every [`WARN_EVERY`].
    fn due(&self) -> bool {
        self.count > 0 && self.warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY)
    }

    /// Warns of the casts not yet logged, if any. (Two functions, not one:
    /// a `tracing` field's name cannot be chosen at run time.)
    fn warn_casts(&mut self) {
        if let Some((count, last)) = self.take() {
            tracing::warn!(
                casts = count,
                last,
                "casts sent without confirms were returned by the broker, and are lost"
            );
        }
    }

    /// Warns of the replies not yet logged, if any.
    fn warn_replies(&mut self) {
        if let Some((count, last)) = self.take() {
            tracing::warn!(
                replies = count,
                last,
                "replies sent without confirms (confirm_replies=false) were returned by the broker, their reply queues gone: they are lost, and their callers, if still waiting, time out"
            );
        }
    }

    /// The count not yet logged and where the last went, noted as logged now.
    fn take(&mut self) -> Option<(u64, String)> {
        if self.count == 0 {
            return None;
        }
        let count = std::mem::take(&mut self.count);
        self.warned_at = Some(Instant::now());
        Some((count, self.last.take().unwrap_or_default()))
    }
}

fn unroutable(message: &BasicReturnMessage) -> TransportError {
    TransportError::new(TransportErrorKind::Unroutable, destination(message))
}

/// Where a returned message went, as its error says it.
fn destination(message: &BasicReturnMessage) -> String {
    let exchange = message.delivery.exchange.as_str();
    let key = message.delivery.routing_key.as_str();
    format!("no queue is bound for {exchange}/{key}")
}

fn current(sink: &SharedSink) -> Option<Arc<dyn ReplySink>> {
    lock(sink).as_ref().and_then(Weak::upgrade)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
