//! The in-memory transport (`memory://`): everything in one process, no broker.
//!
//! It keeps the addressing semantics of oslo.messaging on RabbitMQ, so that a
//! program or test written against it behaves the same on a real broker:
//!
//! - each server consumes three queues: the topic's shared queue (servers on
//!   a topic compete for its messages, taking turns), its own `topic.server`
//!   queue, and a private fanout queue;
//! - queues outlive the servers that declared them, so a request to a topic
//!   whose servers have stopped waits for the next server, or expires with the
//!   caller's timeout; a request to a topic no server ever listened on is
//!   unroutable and fails at once;
//! - fanout casts reach every server listening on the topic (in any exchange,
//!   as oslo's fanout exchange is not scoped by the control exchange);
//! - every message crosses as encoded bytes, so an unserializable type fails
//!   here as it would on the wire;
//! - notifications go to the queues bound to `<topic>.<priority>` in their
//!   exchange; sending one declares the queue of that name (so it waits for
//!   its first listener), a pool's listeners share a queue named after the
//!   pool, and a listener may requeue what it took.
//!
//! Transports opened with the same `memory://name` URL in one process share a
//! broker; [`Broker::new`] makes a private one.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Acker, Address, Delivery, Driver, Headers, ListenOptions, Listener, NotificationRoute, OutgoingMessage, QueueState,
    ReplyQueue, ReplySink, Retry,
};
use crate::{Codec, Transport, TransportError, TransportErrorKind};

static NAMED: LazyLock<Mutex<HashMap<String, Broker>>> = LazyLock::new(Default::default);

/// An in-memory message broker.
///
/// ```
/// use rpc_core::transport::memory::Broker;
///
/// let broker = Broker::new();
/// let server_side = broker.transport();
/// let client_side = broker.transport(); // a second "process" on the same broker
/// # let _ = (server_side, client_side);
/// ```
#[derive(Clone, Default)]
pub struct Broker {
    state: Arc<State>,
}

impl Broker {
    /// A private broker, reachable only through its own transports.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// The process-wide broker called `name` (`memory://name`; `""` is `memory://`).
    pub fn named(name: &str) -> Broker {
        lock(&NAMED).entry(name.to_owned()).or_default().clone()
    }

    /// A transport on this broker with the default settings.
    pub fn transport(&self) -> Transport {
        Transport::new(self.driver())
    }

    /// A driver on this broker, for [`Transport::builder`].
    pub fn driver(&self) -> MemoryDriver {
        MemoryDriver { broker: self.clone() }
    }

    /// Publishes `body` to `address` as a raw publisher would, with any
    /// content type (or none): for tests of what a server does with input
    /// no client of ours would send. Routed as a request is.
    pub fn publish_raw(
        &self,
        address: Address<'_>,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<(), TransportError> {
        self.route(
            address,
            Message {
                body,
                content_type: ContentType::Raw(content_type.map(Box::from)),
                expires_at: None,
                headers: Headers::new(),
            },
        )
    }

    /// Publishes `message` to `address` with its headers as they are, and
    /// without an expiration: for tests of what a server does with headers
    /// no client of ours would send (a deadline already past, say).
    pub fn publish_with_headers(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.route(
            address,
            Message {
                body: message.body,
                content_type: ContentType::Codec(message.codec),
                expires_at: None,
                headers: message.headers,
            },
        )
    }

    /// A reply queue called `name` delivering to `sink`, as
    /// [`Driver::listen_replies`] makes one with a generated name: for tests
    /// that must know the name in advance. Fails when the name is taken.
    pub fn listen_replies_named(&self, name: &str, sink: Arc<dyn ReplySink>) -> Result<ReplyQueue, TransportError> {
        let mut queues = lock(&self.state.queues);
        if queues.replies.contains_key(name) {
            return Err(TransportError::new(
                TransportErrorKind::Refused,
                format!("the reply queue `{name}` exists"),
            ));
        }
        queues.replies.insert(name.to_owned(), sink);
        let registration = ReplyRegistration {
            broker: self.clone(),
            name: name.to_owned(),
        };
        Ok(ReplyQueue::new(name.to_owned(), registration))
    }

    fn route(&self, address: Address<'_>, message: Message) -> Result<(), TransportError> {
        let queues = lock(&self.state.queues);
        if address.fanout {
            if let Some(listeners) = queues.fanout.get(address.topic) {
                for queue in listeners.values() {
                    queue.push(message.clone());
                }
            }
            return Ok(());
        }
        let key = match address.server {
            None => std::borrow::Cow::Borrowed(address.topic),
            Some(server) => std::borrow::Cow::Owned(format!("{}.{server}", address.topic)),
        };
        match queues.bound(address.exchange, &key) {
            [] => Err(unroutable(address)),
            [(_, queue)] => {
                queue.push(message);
                Ok(())
            }
            bound => {
                for (_, queue) in bound {
                    queue.push(message.clone());
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves the maps consistent, even on panic.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct State {
    queues: Mutex<Queues>,
    next_id: AtomicU64,
}

/// The broker's queues, by name (one namespace, as a RabbitMQ virtual host
/// has), and the bindings that route each exchange's messages to them: a
/// queue bound in two exchanges gets the messages of both, as on RabbitMQ.
#[derive(Default)]
struct Queues {
    /// Topic (`topic`), server (`topic.server`) and notification queues.
    named: HashMap<String, Arc<Queue>>,
    /// exchange -> routing key -> the queues bound with it.
    bindings: HashMap<String, HashMap<String, Vec<Bound>>>,
    /// topic -> one fanout queue per listening server, by listener id.
    fanout: HashMap<String, HashMap<u64, Arc<Queue>>>,
    /// reply queue name -> the client's sink (replies are handed over directly).
    replies: HashMap<String, Arc<dyn ReplySink>>,
}

/// A queue bound with a key: its name, and the queue.
type Bound = (String, Arc<Queue>);

impl Queues {
    /// Declares the queue `name` and binds it in `exchange` with `key`.
    fn bind(&mut self, exchange: &str, key: &str, name: &str) -> Arc<Queue> {
        let queue = Arc::clone(self.named.entry(name.to_owned()).or_default());
        let bound = self
            .bindings
            .entry(exchange.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default();
        if !bound.iter().any(|(known, _)| known == name) {
            bound.push((name.to_owned(), Arc::clone(&queue)));
        }
        queue
    }

    /// The queues `exchange` routes `key` to.
    fn bound(&self, exchange: &str, key: &str) -> &[Bound] {
        self.bindings
            .get(exchange)
            .and_then(|keys| keys.get(key))
            .map_or(&[], Vec::as_slice)
    }
}

#[derive(Clone)]
struct Message {
    body: Bytes,
    content_type: ContentType,
    expires_at: Option<Instant>,
    headers: Headers,
}

/// How a message says what it is: a codec our peers use, or whatever a raw
/// publisher wrote (for tests of bad input).
#[derive(Clone)]
enum ContentType {
    Codec(Codec),
    Raw(Option<Box<str>>),
}

/// A queue consumers pull from; waiting consumers are woken in turn.
#[derive(Default)]
struct Queue {
    messages: Mutex<VecDeque<Message>>,
    ready: Notify,
    closed: AtomicBool,
}

impl Queue {
    fn push(&self, message: Message) {
        let mut messages = lock(&self.messages);
        // As RabbitMQ reaps expired messages at a queue's head: a queue
        // nobody consumes (a stopped server's) does not grow with calls
        // that gave up on it.
        // (An empty queue, a consumer waiting: no clock read.)
        if messages.front().is_some_and(|head| head.expires_at.is_some()) {
            let now = Instant::now();
            while messages
                .front()
                .is_some_and(|head| head.expires_at.is_some_and(|at| at <= now))
            {
                messages.pop_front();
            }
        }
        messages.push_back(message);
        drop(messages);
        self.ready.notify_one();
    }

    /// The next unexpired message; `None` once the queue is closed. Cancel-safe.
    async fn pop(&self) -> Option<Message> {
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            {
                let mut messages = lock(&self.messages);
                let now = Instant::now();
                while let Some(message) = messages.pop_front() {
                    if message.expires_at.is_none_or(|at| at > now) {
                        return Some(message);
                    }
                }
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            ready.await;
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_waiters();
    }
}

/// The [`Driver`] of an in-memory [`Broker`].
#[derive(Debug, Clone)]
pub struct MemoryDriver {
    broker: Broker,
}

fn unroutable(what: impl fmt::Display) -> TransportError {
    TransportError::new(TransportErrorKind::Unroutable, format!("no queue is bound for {what}"))
}

#[async_trait]
impl Driver for MemoryDriver {
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.broker.route(
            address,
            Message {
                body: message.body,
                content_type: ContentType::Codec(message.codec),
                expires_at: message.deadline,
                headers: message.headers,
            },
        )
    }

    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        let sink = lock(&self.broker.state.queues)
            .replies
            .get(reply_to)
            .cloned()
            .ok_or_else(|| unroutable(format_args!("reply queue `{reply_to}`")))?;
        sink.deliver(Delivery::with_codec(message.body, message.codec).with_headers(message.headers));
        Ok(())
    }

    async fn listen(
        &self,
        address: Address<'_>,
        _options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let server = address
            .server
            .ok_or_else(|| TransportError::new(TransportErrorKind::Other, "a server listens with a server name"))?;
        let id = self.broker.state.next_id.fetch_add(1, Ordering::Relaxed);
        let fanout = Arc::new(Queue::default());
        let mut queues = lock(&self.broker.state.queues);
        let shared = queues.bind(address.exchange, address.topic, address.topic);
        let own_name = format!("{}.{server}", address.topic);
        let own = queues.bind(address.exchange, &own_name, &own_name);
        queues
            .fanout
            .entry(address.topic.to_owned())
            .or_default()
            .insert(id, Arc::clone(&fanout));
        Ok(Box::new(ServerListener {
            broker: self.broker.clone(),
            topic: address.topic.to_owned(),
            server: server.to_owned(),
            id,
            shared,
            own,
            fanout,
        }))
    }

    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        let key = route.routing_key();
        let mut queues = lock(&self.broker.state.queues);
        // As oslo's notifier: the queue named after the key waits for its consumer.
        queues.bind(&route.exchange, &key, &key);
        let message = Message {
            body: message.body,
            content_type: ContentType::Codec(message.codec),
            expires_at: message.deadline,
            headers: message.headers,
        };
        for (_, queue) in queues.bound(&route.exchange, &key) {
            queue.push(message.clone());
        }
        Ok(())
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        _options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let mut queues = lock(&self.broker.state.queues);
        let mut consumed: Vec<Arc<Queue>> = Vec::new();
        let mut names = Vec::new();
        for route in routes {
            let key = route.routing_key();
            let name = pool.unwrap_or(&key);
            let queue = queues.bind(&route.exchange, &key, name);
            if !consumed.iter().any(|known| Arc::ptr_eq(known, &queue)) {
                consumed.push(queue);
                names.push(name.to_owned());
            }
        }
        Ok(Box::new(NotificationListener {
            queues: consumed,
            names,
            turn: 0,
        }))
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, _retry: Retry) -> Result<ReplyQueue, TransportError> {
        let name = format!("reply_{}", uuid::Uuid::new_v4().simple());
        lock(&self.broker.state.queues).replies.insert(name.clone(), sink);
        let registration = ReplyRegistration {
            broker: self.broker.clone(),
            name: name.clone(),
        };
        Ok(ReplyQueue::new(name, registration))
    }
}

/// Keeps a client's reply queue; dropping it deletes the queue.
struct ReplyRegistration {
    broker: Broker,
    name: String,
}

impl Drop for ReplyRegistration {
    fn drop(&mut self) {
        lock(&self.broker.state.queues).replies.remove(&self.name);
    }
}

fn delivery(message: Message) -> Delivery {
    let delivery = match message.content_type {
        ContentType::Codec(codec) => Delivery::with_codec(message.body, codec),
        ContentType::Raw(content_type) => Delivery::new(message.body, content_type.as_deref()),
    };
    delivery.with_headers(message.headers)
}

/// The state of an in-process queue: consumed for as long as its listener lives.
fn consumed(name: impl Into<String>) -> QueueState {
    let state = QueueState::new(name);
    state.set_consuming(true);
    state
}

/// A server's consumer on its three queues. Dropping it deletes its fanout queue.
struct ServerListener {
    broker: Broker,
    topic: String,
    server: String,
    id: u64,
    shared: Arc<Queue>,
    own: Arc<Queue>,
    fanout: Arc<Queue>,
}

impl fmt::Debug for ServerListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerListener")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Listener for ServerListener {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        let message = tokio::select! {
            message = self.own.pop() => message,
            message = self.shared.pop() => message,
            message = self.fanout.pop() => message,
        };
        message.map(|message| Ok(delivery(message)))
    }

    async fn close(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }

    fn queues(&self) -> Vec<QueueState> {
        // Named as RabbitMQ's queues are (the fanout one by listener, not uuid).
        [
            self.topic.clone(),
            format!("{}.{}", self.topic, self.server),
            format!("{}_fanout_{}", self.topic, self.id),
        ]
        .into_iter()
        .map(consumed)
        .collect()
    }
}

impl Drop for ServerListener {
    fn drop(&mut self) {
        self.fanout.close();
        let mut queues = lock(&self.broker.state.queues);
        if let Some(listeners) = queues.fanout.get_mut(&self.topic) {
            listeners.remove(&self.id);
            if listeners.is_empty() {
                queues.fanout.remove(&self.topic);
            }
        }
    }
}

/// A consumer of notification queues; its deliveries can be requeued.
struct NotificationListener {
    queues: Vec<Arc<Queue>>,
    /// Their names, for health.
    names: Vec<String>,
    /// The queue polled first at the next delivery: each in turn, so that
    /// one queue never full (a notification requeued again and again)
    /// cannot starve the others.
    turn: usize,
}

impl fmt::Debug for NotificationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationListener")
            .field("queues", &self.queues.len())
            .finish()
    }
}

#[async_trait]
impl Listener for NotificationListener {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        let count = self.queues.len();
        let first = self.turn;
        self.turn = (first + 1) % count;
        let pops = (0..count).map(|at| Box::pin(self.queues[(first + at) % count].pop()));
        let (message, at, _) = futures_util::future::select_all(pops).await;
        let index = (first + at) % count;
        let message = message?;
        let acker = Requeue {
            queue: Arc::clone(&self.queues[index]),
            message: Mutex::new(Some(message.clone())),
        };
        Some(Ok(delivery(message).with_acker(Box::new(acker))))
    }

    async fn close(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }

    fn queues(&self) -> Vec<QueueState> {
        self.names.iter().map(|name| consumed(name.as_str())).collect()
    }
}

/// Settles a notification: a requeue puts it back at the end of its queue,
/// and so does dropping it unsettled (as a broker does with the deliveries
/// of a closed channel).
struct Requeue {
    queue: Arc<Queue>,
    message: Mutex<Option<Message>>,
}

impl fmt::Debug for Requeue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requeue").finish_non_exhaustive()
    }
}

#[async_trait]
impl Acker for Requeue {
    async fn ack(&self) -> Result<(), TransportError> {
        lock(&self.message).take();
        Ok(())
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        if let Some(message) = lock(&self.message).take().filter(|_| requeue) {
            self.queue.push(message);
        }
        Ok(())
    }
}

impl Drop for Requeue {
    fn drop(&mut self) {
        let unsettled = self
            .message
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(message) = unsettled {
            self.queue.push(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transport::Retry;

    fn message(body: &'static [u8], expiration: Option<Duration>) -> OutgoingMessage {
        let deadline = expiration.map(|ttl| Instant::now() + ttl);
        OutgoingMessage::new(Bytes::from_static(body), Codec::MsgPack, deadline, Retry::Never)
    }

    fn options() -> ListenOptions {
        ListenOptions {
            prefetch: 1,
            batch: None,
        }
    }

    #[tokio::test]
    async fn unknown_topic_is_unroutable() {
        let driver = Broker::new().driver();
        let error = driver
            .send(Address::new("openstack", "nobody", None, false), message(b"x", None))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Unroutable);
        // Fanout to nobody is not an error.
        driver
            .send(Address::new("openstack", "nobody", None, true), message(b"x", None))
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn expired_messages_do_not_pile_up_in_a_queue_nobody_reads() {
        let broker = Broker::new();
        let driver = broker.driver();
        let address = Address::new("openstack", "t", Some("s1"), false);
        drop(driver.listen(address, &options()).await.unwrap());
        for _ in 0..1000 {
            driver
                .send(address, message(b"gave up", Some(Duration::from_secs(1))))
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        driver.send(address, message(b"last", None)).await.unwrap();
        let queues = lock(&broker.state.queues);
        let held = lock(&queues.named["t.s1"].messages).len();
        assert_eq!(held, 1);
    }

    #[tokio::test]
    async fn queues_outlive_their_listener() {
        let driver = Broker::new().driver();
        let address = Address::new("openstack", "t", Some("s1"), false);
        let listener = driver.listen(address, &options()).await.unwrap();
        drop(listener);
        driver
            .send(Address::new("openstack", "t", None, false), message(b"kept", None))
            .await
            .unwrap();
        let mut listener = driver.listen(address, &options()).await.unwrap();
        let delivery = listener.next().await.unwrap().unwrap();
        assert_eq!(delivery.body().as_ref(), b"kept");
    }

    #[tokio::test]
    async fn a_notification_dropped_unsettled_goes_back_to_its_queue() {
        let driver = Broker::new().driver();
        let route = NotificationRoute::new("openstack", "n", "info");
        let mut listener = driver
            .listen_notifications(std::slice::from_ref(&route), None, &options())
            .await
            .unwrap();
        for body in [&b"dropped"[..], b"acked"] {
            driver.notify(&route, message(body, None)).await.unwrap();
        }
        let dropped = listener.next().await.unwrap().unwrap();
        assert_eq!(dropped.body().as_ref(), b"dropped");
        drop(dropped);
        let mut acked = listener.next().await.unwrap().unwrap();
        assert_eq!(acked.body().as_ref(), b"acked");
        acked.ack().await.unwrap();
        drop(acked);
        let again = tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("the dropped notification is back")
            .unwrap()
            .unwrap();
        assert_eq!(again.body().as_ref(), b"dropped");
        let nothing = tokio::time::timeout(Duration::from_millis(50), listener.next()).await;
        assert!(nothing.is_err(), "an acknowledged notification came back");
    }

    #[tokio::test(start_paused = true)]
    async fn expired_messages_are_dropped() {
        let driver = Broker::new().driver();
        let address = Address::new("openstack", "t", Some("s1"), false);
        let mut listener = driver.listen(address, &options()).await.unwrap();
        let to_topic = Address::new("openstack", "t", None, false);
        driver
            .send(to_topic, message(b"stale", Some(Duration::from_secs(1))))
            .await
            .unwrap();
        driver.send(to_topic, message(b"fresh", None)).await.unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        let delivery = listener.next().await.unwrap().unwrap();
        assert_eq!(delivery.body().as_ref(), b"fresh");
    }

    #[tokio::test]
    async fn fanout_queue_goes_with_its_listener() {
        let driver = Broker::new().driver();
        let mut first = driver
            .listen(Address::new("a", "t", Some("s1"), false), &options())
            .await
            .unwrap();
        let second = driver
            .listen(Address::new("b", "t", Some("s2"), false), &options())
            .await
            .unwrap();
        drop(second);
        driver
            .send(Address::new("ignored", "t", None, true), message(b"all", None))
            .await
            .unwrap();
        assert_eq!(first.next().await.unwrap().unwrap().body().as_ref(), b"all");
        assert_eq!(lock(&driver.broker.state.queues).fanout["t"].len(), 1);
    }

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<Bytes>>);

    impl ReplySink for Collect {
        fn deliver(&self, delivery: Delivery) {
            lock(&self.0).push(delivery.body().clone());
        }
        fn connection_lost(&self, _error: TransportError) {}
    }

    #[tokio::test]
    async fn replies_go_straight_to_the_sink_until_the_queue_is_dropped() {
        let driver = Broker::new().driver();
        let sink = Arc::new(Collect::default());
        let queue = driver
            .listen_replies(Arc::clone(&sink) as Arc<dyn ReplySink>, Retry::Never)
            .await
            .unwrap();
        driver.reply(&queue.address, message(b"r", None)).await.unwrap();
        assert_eq!(lock(&sink.0).as_slice(), [Bytes::from_static(b"r")]);
        let address = queue.address.clone();
        drop(queue);
        let error = driver.reply(&address, message(b"r", None)).await.unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Unroutable);
    }
}
