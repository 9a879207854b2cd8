//! The seam between the runtime and a transport: what a transport implements.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::Headers;
use crate::{Codec, TransportError};

/// Where a message goes, or which queues a server consumes, in oslo.messaging's terms.
///
/// A transport maps it onto its own topology; the AMQP transport follows
/// oslo.messaging's rabbit driver (exchange `exchange`, queues `topic` and
/// `topic.server`, fanout exchange `topic_fanout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address<'a> {
    /// The exchange (already resolved: the target's or the control exchange).
    pub exchange: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// One server on the topic, if set.
    pub server: Option<&'a str>,
    /// Every server on the topic (casts only).
    pub fanout: bool,
}

impl<'a> Address<'a> {
    /// An address: `server` picks one server, `fanout` every server.
    pub fn new(exchange: &'a str, topic: &'a str, server: Option<&'a str>, fanout: bool) -> Address<'a> {
        Address {
            exchange,
            topic,
            server,
            fanout,
        }
    }
}

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/topic `{}`", self.exchange, self.topic)?;
        if let Some(server) = self.server {
            write!(f, ", server `{server}`")?;
        }
        if self.fanout {
            f.write_str(", fanout")?;
        }
        Ok(())
    }
}

/// Where notifications of one priority on one topic go, in oslo.messaging's
/// terms: the routing key `<topic>.<priority>` on an exchange.
///
/// On AMQP a notifier declares the queue `<topic>.<priority>` bound with
/// that key (so notifications wait for their first consumer), and a
/// listener consumes that queue, or with a pool, a queue named after the
/// pool bound with the keys of all its routes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NotificationRoute {
    /// The exchange (already resolved: the target's or the control exchange).
    pub exchange: String,
    /// The topic (`notifications`).
    pub topic: String,
    /// The priority, lower case (`info`).
    pub priority: String,
}

impl NotificationRoute {
    /// The route of `priority` notifications on `topic` in `exchange`.
    pub fn new(
        exchange: impl Into<String>,
        topic: impl Into<String>,
        priority: impl Into<String>,
    ) -> NotificationRoute {
        NotificationRoute {
            exchange: exchange.into(),
            topic: topic.into(),
            priority: priority.into(),
        }
    }

    /// The routing key, and the name of the queue a notifier declares:
    /// `<topic>.<priority>`.
    pub fn routing_key(&self) -> String {
        let mut key = String::with_capacity(self.topic.len() + 1 + self.priority.len());
        key.push_str(&self.topic);
        key.push('.');
        key.push_str(&self.priority);
        key
    }
}

impl fmt::Display for NotificationRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.{}", self.exchange, self.topic, self.priority)
    }
}

/// How hard a transport tries to publish while the broker is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Retry {
    /// Publish once; fail if the broker is unreachable.
    Never,
    /// Retry up to this many times, with backoff.
    Limited(u32),
    /// Retry until the broker answers (oslo's default, `retry=None`): a cast
    /// or a notification waits through an outage of any length (closing its
    /// transport ends the wait). A call still gives up at its timeout.
    #[default]
    Forever,
}

/// What survives a failure: a lost connection, a server that dies mid-request.
///
/// Set it on a [`Server`](crate::Server) (when requests are acknowledged) and
/// on a [`Client`](crate::Client) (whether an interrupted cast is published
/// again). `docs/reliability.md` states what a caller sees in each case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// oslo.messaging's semantics. A server acknowledges a request when it
    /// receives it, before the method runs: a server that dies mid-request
    /// loses that request, and never runs it twice. A cast interrupted by a
    /// lost connection fails with a connection error; it may or may not have
    /// reached the broker.
    #[default]
    AtMostOnce,
    /// A server acknowledges a request only once its method has finished (and
    /// its reply is sent), so a request whose server dies is delivered again,
    /// to the next server on its queue. A client publishes casts as
    /// persistent messages, waits for the broker's confirm, and publishes a
    /// cast again when the connection is lost before the confirm (as its
    /// [`Retry`] allows). Nothing is lost; a request may run more than once,
    /// so methods should be idempotent. A request that completes (with a
    /// result, an error or a panic) is acknowledged: only infrastructure
    /// failures cause a redelivery. Surviving a broker restart also needs
    /// durable queues (`amqp_durable_queues=true` on the AMQP transport).
    AtLeastOnce,
}

/// A message for a transport to publish.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OutgoingMessage {
    /// The encoded message.
    pub body: Bytes,
    /// Its codec, which gives the content type.
    pub codec: Codec,
    /// When the message becomes useless (calls: when their caller gives
    /// up). A transport publishes it with the time left at the moment it is
    /// published as its expiration, so a stale request dies in the queue,
    /// and does not publish it at all once the deadline has passed.
    pub deadline: Option<Instant>,
    /// How hard to try while the broker is unreachable.
    pub retry: Retry,
    /// With [`DeliveryMode::AtLeastOnce`], the message is persistent and a
    /// publish interrupted by a lost connection is repeated after reconnection.
    pub delivery: DeliveryMode,
    /// Headers beside the body (AMQP message headers): the request
    /// lifecycle's deadline and trace context, which peers that do not
    /// know them ignore.
    pub headers: Headers,
    /// The call's message id (oslo's `_msg_id`) when this is a call's
    /// request. A transport may then publish it without waiting for the
    /// broker's confirm (the reply proves it was routed) and report a
    /// returned request through [`ReplySink::undeliverable`] with this id.
    pub call_id: Option<String>,
    /// Whether the sender waits for the broker to take the message (default
    /// `true`). With `false` (a cast from a client with
    /// [`confirm_casts(false)`](crate::Client::confirm_casts)) a transport
    /// may return once the message is written to its connection, without the
    /// broker's word: a message the broker then returns is only logged and
    /// counted, and one a lost connection takes with it is lost. A call's request
    /// is governed by [`call_id`](OutgoingMessage::call_id) instead, and an
    /// at-least-once message keeps its confirm whatever this says.
    pub confirm: bool,
    /// For a reply: whether it is the call's last (its result or error;
    /// default `true`), or a heartbeat or progress notice, which the next
    /// one replaces: a transport need not keep such a notice waiting for
    /// its queue apart from its sender, and never after the last.
    pub final_reply: bool,
}

impl OutgoingMessage {
    /// A message with `body` encoded in `codec`, useless after `deadline`.
    pub fn new(body: Bytes, codec: Codec, deadline: Option<Instant>, retry: Retry) -> OutgoingMessage {
        OutgoingMessage {
            body,
            codec,
            deadline,
            retry,
            delivery: DeliveryMode::AtMostOnce,
            headers: Headers::new(),
            call_id: None,
            confirm: true,
            final_reply: true,
        }
    }

    /// Marks the message as a reply that is not the call's last: a
    /// heartbeat or progress notice (see [`OutgoingMessage::final_reply`]).
    pub fn as_notice(mut self) -> OutgoingMessage {
        self.final_reply = false;
        self
    }

    /// Marks the message as the request of the call `msg_id`, whose reply
    /// proves it was routed (see [`OutgoingMessage::call_id`]).
    pub fn for_call(mut self, msg_id: impl Into<String>) -> OutgoingMessage {
        self.call_id = Some(msg_id.into());
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: Headers) -> OutgoingMessage {
        self.headers = headers;
        self
    }

    /// The time left before the deadline, from now: the message's expiration
    /// when it is published now. `None` without a deadline; zero once it passed.
    pub fn expiration(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed: nobody waits for the message any more.
    pub fn is_expired(&self) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= Instant::now())
    }

    /// Sets the delivery mode (default [`DeliveryMode::AtMostOnce`]).
    pub fn with_delivery(mut self, delivery: DeliveryMode) -> OutgoingMessage {
        self.delivery = delivery;
        self
    }

    /// Sets whether the sender waits for the broker to take the message
    /// (default `true`; see [`OutgoingMessage::confirm`]).
    pub fn with_confirm(mut self, confirm: bool) -> OutgoingMessage {
        self.confirm = confirm;
        self
    }
}

/// Options for a server's listener.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ListenOptions {
    /// How many unacknowledged deliveries the broker may push ahead: the
    /// server's concurrency limit, so memory stays bounded.
    pub prefetch: u16,
    /// A notification listener's batch size, when it hands its handlers
    /// batches: a batch fills only as far as the prefetch lets deliveries
    /// in, so a transport that caps the prefetch below it says so.
    pub batch: Option<usize>,
}

/// Settles a delivery with the broker: acknowledge or reject it.
#[async_trait]
pub trait Acker: Send + Sync + fmt::Debug {
    /// Acknowledges the delivery: the broker forgets it.
    async fn ack(&self) -> Result<(), TransportError>;
    /// Rejects the delivery; with `requeue` the broker delivers it again.
    async fn reject(&self, requeue: bool) -> Result<(), TransportError>;
    /// Whether the delivery can no longer be settled: the channel that
    /// brought it is closed (with its connection, say), so the broker has
    /// taken it back and delivers it again. Handling it now would handle it
    /// twice. By default, never.
    fn is_gone(&self) -> bool {
        false
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ContentType {
    Known(Codec),
    Unknown(Box<str>),
    Missing,
}

/// A message received from a transport.
#[derive(Debug)]
pub struct Delivery {
    body: Bytes,
    content_type: ContentType,
    redelivered: bool,
    headers: Headers,
    acker: Option<Box<dyn Acker>>,
}

impl Delivery {
    /// A delivery with `body` and its AMQP-style content type.
    pub fn new(body: Bytes, content_type: Option<&str>) -> Delivery {
        let content_type = match content_type {
            None => ContentType::Missing,
            Some(name) => match Codec::from_content_type(name) {
                Some(codec) => ContentType::Known(codec),
                None => ContentType::Unknown(name.into()),
            },
        };
        Delivery {
            body,
            content_type,
            redelivered: false,
            headers: Headers::new(),
            acker: None,
        }
    }

    /// A delivery whose codec is already known (in-process transports).
    pub fn with_codec(body: Bytes, codec: Codec) -> Delivery {
        Delivery {
            body,
            content_type: ContentType::Known(codec),
            redelivered: false,
            headers: Headers::new(),
            acker: None,
        }
    }

    /// Sets how the delivery is settled with the broker.
    pub fn with_acker(mut self, acker: Box<dyn Acker>) -> Delivery {
        self.acker = Some(acker);
        self
    }

    /// Marks the delivery as delivered before (the broker's `redelivered` flag).
    pub fn with_redelivered(mut self, redelivered: bool) -> Delivery {
        self.redelivered = redelivered;
        self
    }

    /// Sets the headers the message carried (bounded on receipt: see
    /// [`Headers::insert_received`]).
    pub fn with_headers(mut self, headers: Headers) -> Delivery {
        self.headers = headers;
        self
    }

    /// The headers the message carried.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The codec of the body, or a description of the unusable content type.
    pub fn codec(&self) -> Result<Codec, String> {
        match &self.content_type {
            ContentType::Known(codec) => Ok(*codec),
            ContentType::Unknown(name) => Err(format!("unsupported content type `{name}`")),
            ContentType::Missing => Err("no content type".to_owned()),
        }
    }

    /// Whether the broker delivered this message before.
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// Whether the delivery needs no more settling: acknowledged or rejected
    /// already, or from a transport without acknowledgements.
    pub fn is_settled(&self) -> bool {
        self.acker.is_none()
    }

    /// Whether the delivery can no longer be settled, and the broker
    /// delivers it again (see [`Acker::is_gone`]); never for a delivery
    /// settled already or from a transport without acknowledgements.
    pub fn is_gone(&self) -> bool {
        self.acker.as_ref().is_some_and(|acker| acker.is_gone())
    }

    /// Acknowledges the delivery (a no-op for transports without acknowledgements).
    pub async fn ack(&mut self) -> Result<(), TransportError> {
        match self.acker.take() {
            Some(acker) => acker.ack().await,
            None => Ok(()),
        }
    }

    /// Rejects the delivery (a no-op for transports without acknowledgements).
    pub async fn reject(&mut self, requeue: bool) -> Result<(), TransportError> {
        match self.acker.take() {
            Some(acker) => acker.reject(requeue).await,
            None => Ok(()),
        }
    }
}

/// A stream of deliveries: a server's queues, or a client's reply queue.
#[async_trait]
pub trait Listener: Send + fmt::Debug {
    /// The next delivery; `Some(Err(..))` reports a transient failure (the
    /// connection was lost and the listener is recovering), `None` means the
    /// listener is closed for good.
    ///
    /// Must be cancel-safe: dropping the future loses no delivery.
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>>;

    /// Stops consuming. Deliveries not yet returned by [`next`](Listener::next)
    /// go back to their queue; deliveries already returned can still be
    /// settled; a server's private queues (fanout) are deleted.
    async fn close(self: Box<Self>) -> Result<(), TransportError>;

    /// The queues the listener consumes, each saying whether it is being
    /// consumed right now (for [`Server::health`](crate::Server::health) and
    /// [`NotificationListener::health`](crate::notify::NotificationListener::health));
    /// none by default.
    fn queues(&self) -> Vec<QueueState> {
        Vec::new()
    }

    /// How many deliveries the broker hands each of the listener's queues
    /// ahead of their settlement (its prefetch), where it limits them;
    /// `None` (the default): no limit. A notification listener's batches
    /// are cut to it, as oslo.messaging's are: a batch larger would wait
    /// for deliveries the broker holds back until the batch is settled.
    fn prefetch(&self) -> Option<u16> {
        None
    }
}

/// Whether one of a listener's queues is being consumed: the listener sets
/// it as its consumer starts and stops (a lost connection, a consumer the
/// broker cancelled), a server's or listener's health reads it. Cheap to clone.
#[derive(Clone)]
pub struct QueueState {
    inner: Arc<(String, AtomicBool)>,
}

impl QueueState {
    /// The state of the queue `name`, not consumed yet.
    pub fn new(name: impl Into<String>) -> QueueState {
        QueueState {
            inner: Arc::new((name.into(), AtomicBool::new(false))),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.0
    }

    /// Whether the queue is being consumed.
    pub fn is_consuming(&self) -> bool {
        self.inner.1.load(Ordering::Relaxed)
    }

    /// Says whether the queue is being consumed.
    pub fn set_consuming(&self, consuming: bool) {
        self.inner.1.store(consuming, Ordering::Relaxed);
    }
}

impl fmt::Debug for QueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueState")
            .field("name", &self.name())
            .field("consuming", &self.is_consuming())
            .finish()
    }
}

/// Where a transport delivers the replies of a client's calls: the runtime's
/// table of waiting calls. Transports call it from any task; it never blocks.
pub trait ReplySink: Send + Sync + fmt::Debug {
    /// A message arrived on the reply queue.
    fn deliver(&self, delivery: Delivery);
    /// The connection was lost: replies to requests sent before may never
    /// come, so waiting calls fail at once. Delivery resumes after reconnection.
    fn connection_lost(&self, error: TransportError);
    /// The request of the call `msg_id` (see [`OutgoingMessage::call_id`])
    /// could not be delivered: the broker returned it, say. The call fails
    /// at once with `error` instead of waiting for its timeout. Transports
    /// that report every failure from [`Driver::send`] never call it.
    fn undeliverable(&self, msg_id: &str, error: TransportError) {
        let _ = (msg_id, error);
    }

    /// The request of the call `msg_id` was handed to the connection: a
    /// lost connection fails the call from now on. A driver that publishes
    /// requests without a confirm says so as it hands the frames over, and
    /// then checks that the connection still stands, so that no loss falls
    /// between the two (the client also marks the call, once the publish
    /// returned: a loss noticed in between left it waiting out its
    /// timeout, its request lost with the connection).
    fn sent(&self, msg_id: &str) {
        let _ = msg_id;
    }
}

/// A client's reply queue: its address, and what keeps replies coming.
/// Dropping it stops the deliveries.
#[non_exhaustive]
pub struct ReplyQueue {
    /// The name servers send replies to (oslo's `_reply_q`), as the queue
    /// was first declared; [`name`](ReplyQueue::name) is the current one.
    pub address: String,
    name: ReplyName,
    _guard: Box<dyn std::any::Any + Send + Sync>,
}

impl ReplyQueue {
    /// A reply queue named `address`; dropping `guard` must stop deliveries.
    pub fn new(address: String, guard: impl std::any::Any + Send + Sync) -> ReplyQueue {
        ReplyQueue::renamable(ReplyName::new(&address), guard)
    }

    /// A reply queue whose driver may give it a new name (see [`ReplyName`]).
    pub fn renamable(name: ReplyName, guard: impl std::any::Any + Send + Sync) -> ReplyQueue {
        ReplyQueue {
            address: name.get().to_string(),
            name,
            _guard: Box::new(guard),
        }
    }

    /// The name calls send now.
    pub fn name(&self) -> Arc<str> {
        self.name.get()
    }
}

/// The name of a reply queue that its driver may change: an exclusive
/// queue the broker still holds for a connection it has not yet seen die
/// cannot be declared again under its name, so the driver declares it
/// under a new one, and the calls sent from then on name that.
#[derive(Clone, Debug)]
pub struct ReplyName(Arc<std::sync::Mutex<Arc<str>>>);

impl ReplyName {
    /// A name, to be shared by the driver and its [`ReplyQueue`].
    pub fn new(name: &str) -> ReplyName {
        ReplyName(Arc::new(std::sync::Mutex::new(Arc::from(name))))
    }

    /// The current name.
    pub fn get(&self) -> Arc<str> {
        Arc::clone(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Renames the queue.
    pub fn set(&self, name: &str) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(name);
    }
}

impl fmt::Debug for ReplyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyQueue")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// What a driver counts and knows about its connections, for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Connections re-established after a loss, since the driver was made.
    pub reconnections: u64,
    /// Consumers the broker cancelled (a queue deleted, a node lost), each
    /// consumed again since.
    pub consumer_cancels: u64,
    /// Whether the broker blocks this driver's publishers right now (a
    /// memory or disk alarm).
    pub blocked: bool,
    /// Messages published without waiting for the broker's confirm (calls'
    /// requests, whose reply proves them routed, casts from clients that
    /// opted out of confirms, and replies where the transport did), since
    /// the driver was made.
    pub unconfirmed: u64,
    /// Of those, the ones the broker returned (no queue bound for them).
    pub returned: u64,
    /// Deliveries acknowledged, since the driver was made.
    pub acknowledged: u64,
    /// The acknowledgement frames that carried them: fewer when one frame
    /// settles several deliveries at once.
    pub ack_frames: u64,
}

fn notifications_unsupported() -> TransportError {
    TransportError::new(
        crate::TransportErrorKind::Other,
        "this transport does not carry notifications",
    )
}

/// A transport: moves encoded messages to addresses and back.
///
/// All RPC semantics (correlation, timeouts, dispatch, versions) live in the
/// runtime; a driver only publishes, consumes and settles. Implement it to
/// add a broker, then wrap it in a [`Transport`](crate::Transport).
#[async_trait]
pub trait Driver: Send + Sync + fmt::Debug + 'static {
    /// Publishes a request or cast to `address`.
    ///
    /// Fails with [`TransportErrorKind::Unroutable`](crate::TransportErrorKind::Unroutable)
    /// when nothing is bound to receive it (except for fanout, where zero
    /// receivers is not an error).
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError>;

    /// Publishes a reply to the reply queue named `reply_to`.
    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError>;

    /// Starts consuming a server's queues: the topic's shared queue, the
    /// server's own queue, and a private fanout queue.
    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError>;

    /// Creates this transport's reply queue and starts delivering what
    /// arrives on it to `sink`, waiting for the broker as `retry` allows
    /// (the first call's: its timeout bounds the wait). Called once per
    /// transport, again after a start that failed.
    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError>;

    /// Publishes a notification on `route`, making sure it waits for a
    /// consumer (the queue `<topic>.<priority>` exists). The default fails:
    /// the driver does not carry notifications.
    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        let _ = (route, message);
        Err(notifications_unsupported())
    }

    /// Starts consuming the notifications of `routes`: each route's own
    /// queue, or with `pool`, one queue named after the pool bound to every
    /// route (listeners in one pool share the notifications; each pool gets
    /// them all). Deliveries are acknowledged (or requeued) by the listener,
    /// after its handlers ran. The default fails: the driver does not carry
    /// notifications.
    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let _ = (routes, pool, options);
        Err(notifications_unsupported())
    }

    /// Releases the transport's connections.
    async fn close(&self) -> Result<(), TransportError> {
        Ok(())
    }

    /// Whether the driver's connections to the broker are up right now
    /// (always, for drivers without connections).
    fn is_connected(&self) -> bool {
        true
    }

    /// What the driver counts about its connections (zeros for drivers that
    /// have nothing to count).
    fn stats(&self) -> DriverStats {
        DriverStats::default()
    }
}
