//! Receiving notifications: oslo.messaging's notification listener, one
//! notification at a time or in batches.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::{Notification, NotificationEndpoint, NotificationFilter, NotificationResult, Priority};
use crate::lifecycle::{Lifecycle, Started, next_delivery};
use crate::metrics::{ListenerMetrics, Settled, Timer};
use crate::recent::RecentIds;
use crate::server::Watch;
use crate::server::delivery::panic_message;
use crate::transport::{Delivery, ListenOptions, Listener, NotificationRoute};
use crate::{Error, Executor, Health, ServerHandle, Target, TraceContext, Transport};

mod duplicates;

use duplicates::Fate;

/// The largest notification a listener reads by default: 16 MiB, the
/// largest our AMQP notifier sends (and RabbitMQ 4's own limit). A
/// listener reading less than its notifiers send loses what lies between,
/// unseen by them: a notification has no reply to carry a refusal.
pub const DEFAULT_MAX_NOTIFICATION_SIZE: usize = 16 * 1024 * 1024;

/// Receives notifications and hands them to its endpoints, as
/// oslo.messaging's notification listener.
///
/// It listens on targets (a topic, and an exchange or the control
/// exchange), for the priorities its endpoints handle: each notification
/// goes to the endpoints handling its priority whose filter passes it, in
/// registration order, until one asks for a requeue or fails. Notifications
/// are acknowledged after their handlers ran (they are not at-most-once, as
/// in oslo): a listener that dies mid-notification gets it again. A copy of
/// a notification it handled, or is handling, is dropped (oslo's listeners
/// drop a copy of one they acknowledged).
///
/// Without a pool, every listener on a topic shares its notifications (each
/// notification reaches one of them); each [`pool`](NotificationListenerBuilder::pool)
/// gets every notification once, shared among the listeners of the pool.
///
/// ```
/// use rpc_core::notify::{Notification, NotificationListener, Notifier, notifications};
/// use rpc_core::{Context, Target, json};
///
/// struct Audit;
///
/// #[notifications]
/// impl Audit {
///     async fn info(&self, notification: &Notification, payload: rpc_core::Value) {
///         println!("{}: {payload}", notification.event_type());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_core::Error> {
/// # let transport = rpc_core::transport::memory::Broker::new().transport();
/// let listener = NotificationListener::builder(transport.clone(), [Target::topic("notifications")])
///     .endpoint(Audit)
///     .build()?;
/// listener.start().await?;
/// Notifier::new(transport, "compute.host-1").info(&Context::new(), "compute.instance.create.end", &json!({})).await?;
/// // ... until something calls `stop()` ...
/// listener.stop();
/// listener.wait().await;
/// # Ok(())
/// # }
/// ```
pub struct NotificationListener {
    shared: Arc<Shared>,
}

struct Shared {
    transport: Transport,
    targets: Vec<Target>,
    endpoints: Vec<Registered>,
    priorities: Vec<Priority>,
    pool: Option<String>,
    allow_requeue: bool,
    limit: usize,
    batch: Option<Batch>,
    max_message_size: usize,
    control: Arc<Lifecycle>,
    counters: Counters,
    /// Its queues while it listens, and its last delivery.
    watch: Watch,
    metrics: ListenerMetrics,
    /// The `_unique_id`s of the notifications handled lately, or being handled.
    recent: Mutex<RecentIds>,
}

struct Registered {
    endpoint: Box<dyn NotificationEndpoint>,
    filter: Option<NotificationFilter>,
}

impl Registered {
    fn takes(&self, notification: &Notification) -> bool {
        self.endpoint.priorities().contains(&notification.priority())
            && self.filter.as_ref().is_none_or(|filter| filter.matches(notification))
    }
}

/// Batch mode: how many notifications at most, and how long to wait for
/// them once the first arrived.
#[derive(Clone, Copy, Debug)]
struct Batch {
    size: usize,
    timeout: Duration,
}

/// Counts of what a listener did with the notifications it received, since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationStats {
    /// Notifications handed to the endpoints and acknowledged.
    pub handled: u64,
    /// Notifications given back to the broker for another try.
    pub requeued: u64,
    /// Messages rejected as unreadable (not a notification, unknown
    /// priority, too large).
    pub rejected: u64,
    /// Handler failures and panics (each also a requeue when allowed).
    pub failed: u64,
    /// Notifications being handled right now.
    pub in_flight: u64,
    /// Notifications not handled because the connection they came on was
    /// lost first: left to the broker, which delivers them again (to this
    /// listener, where they are counted once more as handled, requeued or
    /// rejected, or to another of its pool): `handled + left_to_broker` can
    /// exceed what was sent.
    pub left_to_broker: u64,
    /// Copies of a notification the listener handled lately, or was
    /// handling (the same `_unique_id`): not handled again, but dropped (or,
    /// for one that waited, settled as the one it copies). A notifier that
    /// lost its connection publishes again, and a broker delivers again
    /// what it was not told was settled.
    pub duplicates: u64,
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    requeued: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    left_to_broker: AtomicU64,
    duplicates: AtomicU64,
}

impl Counters {
    fn add(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Builds a [`NotificationListener`]; see its methods for the settings.
#[must_use = "a builder does nothing until `build` is called"]
pub struct NotificationListenerBuilder {
    transport: Transport,
    targets: Vec<Target>,
    endpoints: Vec<Registered>,
    pool: Option<String>,
    allow_requeue: bool,
    executor: Executor,
    batch: Option<Batch>,
    max_message_size: usize,
}

impl NotificationListener {
    /// Starts building a listener on `transport` for `targets` (each names a
    /// topic, and optionally an exchange; other fields are ignored).
    pub fn builder(transport: Transport, targets: impl IntoIterator<Item = Target>) -> NotificationListenerBuilder {
        NotificationListenerBuilder {
            transport,
            targets: targets.into_iter().collect(),
            endpoints: Vec::new(),
            pool: None,
            allow_requeue: false,
            executor: Executor::default(),
            batch: None,
            max_message_size: DEFAULT_MAX_NOTIFICATION_SIZE,
        }
    }

    /// Declares the queues and starts listening.
    ///
    /// Fails when the listener is already running, or when the transport
    /// cannot listen. Given up on before it returns (dropped, by a timeout
    /// around it), it leaves the listener stopped, to be started again.
    pub async fn start(&self) -> Result<(), Error> {
        let started = self.shared.control.begin()?;
        let shared = &self.shared;
        let routes = shared.routes();
        let options = ListenOptions {
            prefetch: holding(shared.batch, shared.limit),
            batch: shared.batch.map(|batch| batch.size),
        };
        match shared
            .transport
            .driver()
            .listen_notifications(&routes, shared.pool.as_deref(), &options)
            .await
        {
            Ok(listener) => {
                shared.watch.serve(Some(listener.queues()));
                tracing::info!(targets = ?shared.targets, priorities = ?shared.priorities, pool = ?shared.pool, "notification listener started");
                tokio::spawn(run(Arc::clone(shared), listener, started));
                Ok(())
            }
            Err(error) => {
                started.done.finish();
                Err(Error::Transport(error))
            }
        }
    }

    /// Stops taking notifications; returns at once (see [`wait`](NotificationListener::wait)).
    pub fn stop(&self) {
        self.shared.control.stop();
    }

    /// Waits until the listener has stopped and every notification it took
    /// was handled and settled.
    pub async fn wait(&self) {
        self.shared.control.wait().await;
    }

    /// A handle that stops this listener.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            control: Arc::clone(&self.shared.control),
        }
    }

    /// What the listener consumes: its targets' topics at its endpoints'
    /// priorities.
    pub fn routes(&self) -> Vec<NotificationRoute> {
        self.shared.routes()
    }

    /// The listener's health, for readiness and liveness probes: whether it
    /// runs, whether its transport is connected and consumes each of its
    /// queues, and when the last notification arrived (see [`Health`]).
    /// Cheap: reads a few atomics and copies the queues' names.
    ///
    /// ```
    /// # use rpc_core::notify::{NotificationListener, Priority, handler};
    /// # use rpc_core::Target;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpc_core::Error> {
    /// # let transport = rpc_core::transport::memory::Broker::new().transport();
    /// let listener = NotificationListener::builder(transport, [Target::topic("notifications")])
    ///     .endpoint(handler([Priority::Info], |_| async {}))
    ///     .build()?;
    /// assert!(!listener.health().is_live());
    /// listener.start().await?;
    /// assert!(listener.health().is_ready());
    /// # Ok(()) }
    /// ```
    pub fn health(&self) -> Health {
        let shared = &self.shared;
        shared.watch.health(
            shared.control.is_running(),
            shared.transport.driver().is_connected(),
            shared.counters.in_flight.load(Ordering::Relaxed),
        )
    }

    /// What the listener did with the notifications it received so far.
    pub fn stats(&self) -> NotificationStats {
        let counters = &self.shared.counters;
        NotificationStats {
            handled: counters.handled.load(Ordering::Relaxed),
            requeued: counters.requeued.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            in_flight: counters.in_flight.load(Ordering::Relaxed),
            left_to_broker: counters.left_to_broker.load(Ordering::Relaxed),
            duplicates: counters.duplicates.load(Ordering::Relaxed),
        }
    }
}

impl Drop for NotificationListener {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for NotificationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: Vec<&str> = self.shared.endpoints.iter().map(|e| e.endpoint.name()).collect();
        f.debug_struct("NotificationListener")
            .field("targets", &self.shared.targets)
            .field("endpoints", &endpoints)
            .field("pool", &self.shared.pool)
            .field("running", &self.shared.control.is_running())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn recent(&self) -> MutexGuard<'_, RecentIds> {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn routes(&self) -> Vec<NotificationRoute> {
        let control = self.transport.control_exchange();
        self.targets
            .iter()
            .flat_map(|target| {
                self.priorities.iter().map(move |priority| {
                    NotificationRoute::new(
                        target.exchange().unwrap_or(control),
                        target.topic_name(),
                        priority.as_str(),
                    )
                })
            })
            .collect()
    }
}

impl NotificationListenerBuilder {
    /// Adds an endpoint: notifications of its priorities are offered to it.
    pub fn endpoint(mut self, endpoint: impl NotificationEndpoint) -> NotificationListenerBuilder {
        self.endpoints.push(Registered {
            endpoint: Box::new(endpoint),
            filter: None,
        });
        self
    }

    /// Adds an endpoint that only gets the notifications `filter` passes
    /// (oslo's `filter_rule`).
    pub fn filtered_endpoint(
        mut self,
        endpoint: impl NotificationEndpoint,
        filter: NotificationFilter,
    ) -> NotificationListenerBuilder {
        self.endpoints.push(Registered {
            endpoint: Box::new(endpoint),
            filter: Some(filter),
        });
        self
    }

    /// Joins the pool `name`: each pool gets every notification once,
    /// shared among the listeners of the pool (on AMQP, the queue is named
    /// after the pool).
    pub fn pool(mut self, name: impl Into<String>) -> NotificationListenerBuilder {
        self.pool = Some(name.into());
        self
    }

    /// Lets handlers ask for a requeue (and have failures requeued), as
    /// oslo's `allow_requeue`; off by default: such notifications are then
    /// acknowledged, and the request logged.
    pub fn allow_requeue(mut self, allow: bool) -> NotificationListenerBuilder {
        self.allow_requeue = allow;
        self
    }

    /// How many notifications (or batches) are handled at once (default
    /// [`Executor::Concurrent`] of 64; [`Executor::Sequential`] keeps
    /// arrival order).
    pub fn executor(mut self, executor: Executor) -> NotificationListenerBuilder {
        self.executor = executor;
        self
    }

    /// Batch mode (oslo's batch listener): endpoints get up to `size`
    /// notifications of one priority at once, gathered for at most `timeout`
    /// after the first arrived. Where the transport's prefetch is smaller
    /// than `size`, batches hold at most the prefetch, as oslo's.
    pub fn batch(mut self, size: usize, timeout: Duration) -> NotificationListenerBuilder {
        self.batch = Some(Batch { size, timeout });
        self
    }

    /// The largest message read (default [`DEFAULT_MAX_NOTIFICATION_SIZE`],
    /// 16 MiB); larger ones are rejected without requeue (to the queue's
    /// dead-letter exchange, if it has one), and counted as `rejected`.
    pub fn max_message_size(mut self, bytes: usize) -> NotificationListenerBuilder {
        self.max_message_size = bytes;
        self
    }

    /// Builds the listener; fails on settings that cannot work.
    pub fn build(self) -> Result<NotificationListener, Error> {
        if self.targets.is_empty() {
            return Err(Error::InvalidTarget(
                "a notification listener needs a target".to_owned(),
            ));
        }
        if let Some(target) = self.targets.iter().find(|target| target.topic_name().is_empty()) {
            return Err(Error::InvalidTarget(format!(
                "{target}: a notification target needs a topic"
            )));
        }
        if self.endpoints.is_empty() {
            return Err(Error::Config("a notification listener needs an endpoint".to_owned()));
        }
        let priorities: Vec<Priority> = Priority::ALL
            .into_iter()
            .filter(|priority| {
                self.endpoints
                    .iter()
                    .any(|registered| registered.endpoint.priorities().contains(priority))
            })
            .collect();
        if priorities.is_empty() {
            return Err(Error::Config("the endpoints handle no priority".to_owned()));
        }
        if let Some(pool) = &self.pool {
            if pool.is_empty() || pool.len() > crate::header::MAX_NAME_LEN {
                return Err(Error::Config(format!(
                    "the pool name `{pool}` must have 1 to 255 bytes"
                )));
            }
        }
        let limit = match self.executor {
            Executor::Concurrent(limit) if (1..=65_535).contains(&limit) => limit,
            Executor::Concurrent(limit) => {
                return Err(Error::Config(format!("concurrency must be 1 to 65535, not {limit}")));
            }
            Executor::Sequential => 1,
        };
        if let Some(batch) = self.batch {
            if batch.size == 0 || batch.size > 65_535 {
                return Err(Error::Config(format!(
                    "a batch holds 1 to 65535 notifications, not {}",
                    batch.size
                )));
            }
        }
        let mut topics: Vec<&str> = Vec::new();
        for target in &self.targets {
            if !topics.contains(&target.topic_name()) {
                topics.push(target.topic_name());
            }
        }
        let metrics = ListenerMetrics::new(&topics.join(","), &priorities);
        Ok(NotificationListener {
            shared: Arc::new(Shared {
                transport: self.transport,
                targets: self.targets,
                endpoints: self.endpoints,
                priorities,
                pool: self.pool,
                allow_requeue: self.allow_requeue,
                limit,
                batch: self.batch,
                max_message_size: self.max_message_size,
                control: Arc::default(),
                counters: Counters::default(),
                watch: Watch::default(),
                metrics,
                recent: Mutex::new(RecentIds::holding(usize::from(holding(self.batch, limit)))),
            }),
        })
    }
}

impl fmt::Debug for NotificationListenerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationListenerBuilder")
            .field("targets", &self.targets)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// How many notifications a listener holds at most at once, unsettled: the
/// prefetch it asks its broker for.
fn holding(batch: Option<Batch>, limit: usize) -> u16 {
    let holding = match batch {
        Some(batch) => batch.size.saturating_mul(limit),
        None => limit,
    };
    u16::try_from(holding).unwrap_or(u16::MAX)
}

/// Takes deliveries (one by one, or gathered in batches) as slots free up,
/// until stopped; then drains and says so.
async fn run(shared: Arc<Shared>, mut listener: Box<dyn Listener>, started: Started) {
    let Started { mut stop, done } = started;
    let permits = Arc::new(Semaphore::new(shared.limit));
    // A batch larger than the prefetch would wait for deliveries the broker
    // holds back until it is settled: cut to it, as oslo cuts it.
    let batch = shared.batch.map(|batch| Batch {
        size: listener
            .prefetch()
            .map_or(batch.size, |prefetch| batch.size.min(usize::from(prefetch).max(1))),
        ..batch
    });
    while let Some((permit, first)) = next_delivery(&mut stop, &permits, &mut *listener).await {
        let first = match first {
            Some(Ok(delivery)) => {
                shared.watch.delivered();
                delivery
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "listening for notifications failed; waiting for the transport to recover");
                continue;
            }
            None => {
                tracing::error!("the transport closed the notification queues; stopping");
                break;
            }
        };
        let Some(batch) = batch else {
            if shared.limit == 1 {
                handle_one(Arc::clone(&shared), first, permit).await;
            } else {
                tokio::spawn(handle_one(Arc::clone(&shared), first, permit));
            }
            continue;
        };
        let mut deliveries = vec![first];
        // `Duration::MAX`, the usual "no timeout", is about thirty years.
        let deadline = crate::deadline::after(batch.timeout);
        while deliveries.len() < batch.size {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break,
                () = tokio::time::sleep_until(deadline) => break,
                next = listener.next() => match next {
                    Some(Ok(delivery)) => {
                        shared.watch.delivered();
                        deliveries.push(delivery);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "listening for notifications failed; waiting for the transport to recover");
                    }
                    None => break,
                },
            }
        }
        if shared.limit == 1 {
            handle_batch(Arc::clone(&shared), deliveries, permit).await;
        } else {
            tokio::spawn(handle_batch(Arc::clone(&shared), deliveries, permit));
        }
    }
    shared.watch.serve(None);
    if let Err(error) = listener.close().await {
        tracing::warn!(%error, "closing the notification queues");
    }
    let all = u32::try_from(shared.limit).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    done.finish();
    tracing::info!(targets = ?shared.targets, "notification listener stopped");
}

/// Counts a delivery in flight while it lives.
struct InFlight {
    shared: Arc<Shared>,
    count: usize,
}

impl InFlight {
    fn new(shared: &Arc<Shared>, count: usize) -> InFlight {
        shared.counters.add(&shared.counters.in_flight, count);
        shared.metrics.in_flight(true, count);
        InFlight {
            shared: Arc::clone(shared),
            count,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The gauge first: once `stats()` says nothing is in flight, the
        // gauge says so too.
        self.shared.metrics.in_flight(false, self.count);
        self.shared
            .counters
            .in_flight
            .fetch_sub(self.count as u64, Ordering::Relaxed);
    }
}

/// The notification a delivery holds, or `None` when it cannot be read (it
/// is then rejected without requeue, and logged).
async fn read(shared: &Shared, delivery: &mut Delivery) -> Option<Notification> {
    let decoded = match delivery.codec() {
        Err(reason) => Err(reason),
        Ok(_) if delivery.body().len() > shared.max_message_size => Err(format!(
            "the message is {} bytes, over the limit of {} bytes",
            delivery.body().len(),
            shared.max_message_size
        )),
        Ok(codec) => {
            let body = delivery.body().clone();
            match std::panic::catch_unwind(|| codec.decode_notification(&body)) {
                Ok(decoded) => decoded.map_err(|error| error.to_string()),
                Err(_) => Err("decoding it panicked".to_owned()),
            }
        }
    };
    match decoded {
        Ok(mut notification) => {
            // The sender's span, when it sent one: handlers that call or
            // notify with this context stay in the sender's trace.
            if let Some(trace) = TraceContext::from_headers(delivery.headers()) {
                notification.context = std::mem::take(&mut notification.context).with_trace(trace.child());
            }
            Some(notification)
        }
        Err(reason) => {
            tracing::warn!(%reason, bytes = delivery.body().len(), "rejecting an unreadable notification");
            shared.counters.add(&shared.counters.rejected, 1);
            shared.metrics.settled(None, Settled::Rejected, 1);
            if let Err(error) = delivery.reject(false).await {
                tracing::warn!(%error, "rejecting a notification");
            }
            None
        }
    }
}

/// What becomes of a delivery once its handlers ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Handled or requeued, as the handlers said.
    Result(NotificationResult),
    /// A payload that cannot decode: rejected without requeue.
    Reject,
}

/// An endpoint's dispatch, which may run user code before its future (a
/// [`handler`](super::handler) closure does): a panic there comes out of the
/// future instead, where [`outcome`] catches it like any handler's.
fn guarded<'a>(
    dispatch: impl FnOnce() -> Option<super::NotificationFuture<'a>>,
) -> Option<super::NotificationFuture<'a>> {
    match std::panic::catch_unwind(AssertUnwindSafe(dispatch)) {
        Ok(handler) => handler,
        Err(panic) => Some(Box::pin(async move { std::panic::resume_unwind(panic) })),
    }
}

/// Runs `handler` (an endpoint's future) and turns a failure or a panic
/// into a requeue, logged.
async fn outcome(
    shared: &Shared,
    priority: Priority,
    endpoint: &str,
    handler: super::NotificationFuture<'_>,
) -> Verdict {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(Ok(result)) => Verdict::Result(result),
        Ok(Err(error)) if error.is_undecodable() => {
            tracing::error!(endpoint, %error, "a notification's payload does not decode; rejecting it");
            Verdict::Reject
        }
        Ok(Err(error)) => {
            shared.counters.add(&shared.counters.failed, 1);
            shared.metrics.failed(priority);
            tracing::error!(endpoint, %error, "a notification handler failed");
            Verdict::Result(NotificationResult::Requeue)
        }
        Err(panic) => {
            shared.counters.add(&shared.counters.failed, 1);
            shared.metrics.failed(priority);
            tracing::error!(endpoint, panic = %panic_message(&*panic), "a notification handler panicked; the listener keeps listening");
            Verdict::Result(NotificationResult::Requeue)
        }
    }
}

impl Shared {
    /// How `verdict` settles the notification: a requeue only when allowed.
    fn fate(&self, verdict: Verdict) -> Fate {
        match verdict {
            Verdict::Reject => Fate::Reject,
            Verdict::Result(NotificationResult::Requeue) if self.allow_requeue => Fate::Requeue,
            Verdict::Result(_) => Fate::Ack,
        }
    }
}

/// Acknowledges, or requeues when asked and allowed, or rejects, a
/// `priority` notification.
async fn settle(shared: &Shared, delivery: &mut Delivery, priority: Priority, verdict: Verdict) {
    let counters = &shared.counters;
    let fate = shared.fate(verdict);
    let (counter, settled) = match fate {
        Fate::Reject => (Settled::Rejected, &counters.rejected),
        Fate::Requeue => (Settled::Requeued, &counters.requeued),
        Fate::Ack => (Settled::Handled, &counters.handled),
    };
    counters.add(settled, 1);
    shared.metrics.settled(Some(priority), counter, 1);
    if fate == Fate::Ack && verdict == Verdict::Result(NotificationResult::Requeue) {
        tracing::warn!(
            "a handler asked for a requeue, but the listener does not allow it (`allow_requeue`); acknowledging"
        );
    }
    let settled = match fate {
        Fate::Reject => delivery.reject(false).await,
        Fate::Requeue => delivery.reject(true).await,
        Fate::Ack => delivery.ack().await,
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "settling a notification");
    }
}

/// Deliveries whose channel closed before they were handled: the broker
/// has them back and delivers them again, so they are not handled here (they
/// would be handled twice, and could not be acknowledged).
fn left_to_the_broker(shared: &Shared, count: usize) {
    shared.counters.add(&shared.counters.left_to_broker, count);
    shared.metrics.left(count);
    tracing::info!(
        count,
        "notifications received on a connection since lost are left to the broker, which delivers them again"
    );
}

async fn handle_one(shared: Arc<Shared>, mut delivery: Delivery, _slot: OwnedSemaphorePermit) {
    if delivery.is_gone() {
        left_to_the_broker(&shared, 1);
        return;
    }
    let _in_flight = InFlight::new(&shared, 1);
    let timer = Timer::start();
    let Some(notification) = read(&shared, &mut delivery).await else {
        return;
    };
    let Some((mut delivery, taken)) = duplicates::admit(&shared, &notification, delivery).await else {
        return;
    };
    let span = tracing::debug_span!(
        "rpc.notification",
        priority = %notification.priority(),
        event_type = notification.event_type(),
        publisher_id = notification.publisher_id(),
        message_id = notification.message_id(),
    );
    async {
        let mut verdict = Verdict::Result(NotificationResult::Handled);
        for registered in shared
            .endpoints
            .iter()
            .filter(|registered| registered.takes(&notification))
        {
            let endpoint = registered.endpoint.name();
            let Some(handler) = guarded(|| registered.endpoint.dispatch(&notification)) else {
                continue;
            };
            verdict = outcome(&shared, notification.priority(), endpoint, handler).await;
            if verdict != Verdict::Result(NotificationResult::Handled) {
                break;
            }
        }
        let copies = taken.settling(shared.fate(verdict));
        settle(&shared, &mut delivery, notification.priority(), verdict).await;
        copies.settle().await;
        shared.metrics.handled(notification.priority(), timer);
    }
    .instrument(span)
    .await;
}

async fn handle_batch(shared: Arc<Shared>, deliveries: Vec<Delivery>, _slot: OwnedSemaphorePermit) {
    // A batch gathers for up to its timeout: its first deliveries may have
    // lost their connection meanwhile.
    let (gone, deliveries): (Vec<Delivery>, Vec<Delivery>) = deliveries.into_iter().partition(Delivery::is_gone);
    if !gone.is_empty() {
        left_to_the_broker(&shared, gone.len());
    }
    if deliveries.is_empty() {
        return;
    }
    let _in_flight = InFlight::new(&shared, deliveries.len());
    let mut read_ones = Vec::with_capacity(deliveries.len());
    for mut delivery in deliveries {
        let Some(notification) = read(&shared, &mut delivery).await else {
            continue;
        };
        if let Some((delivery, taken)) = duplicates::admit(&shared, &notification, delivery).await {
            read_ones.push((delivery, notification, taken));
        }
    }
    // One round per priority, as oslo groups a batch.
    for priority in Priority::ALL {
        let (group, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut read_ones)
            .into_iter()
            .partition(|(_, notification, _)| notification.priority() == priority);
        read_ones = rest;
        if group.is_empty() {
            continue;
        }
        let mut deliveries = Vec::with_capacity(group.len());
        let mut notifications = Vec::with_capacity(group.len());
        let mut taken = Vec::with_capacity(group.len());
        for (delivery, notification, entry) in group {
            deliveries.push(delivery);
            notifications.push(notification);
            taken.push(entry);
        }
        let timer = Timer::start();
        let mut verdict = Verdict::Result(NotificationResult::Handled);
        for registered in &shared.endpoints {
            let taken: Vec<Notification> = notifications
                .iter()
                .filter(|notification| registered.takes(notification))
                .cloned()
                .collect();
            if taken.is_empty() {
                continue;
            }
            let Some(handler) = guarded(|| registered.endpoint.dispatch_batch(&taken)) else {
                continue;
            };
            verdict = outcome(&shared, priority, registered.endpoint.name(), handler).await;
            if verdict != Verdict::Result(NotificationResult::Handled) {
                break;
            }
        }
        for (delivery, taken) in deliveries.iter_mut().zip(taken) {
            let copies = taken.settling(shared.fate(verdict));
            settle(&shared, delivery, priority, verdict).await;
            copies.settle().await;
        }
        shared.metrics.handled(priority, timer);
    }
}
