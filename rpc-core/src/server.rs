//! The server: listens on a target and dispatches requests to its endpoints.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

use crate::endpoint::Dispatcher;
use crate::message::{Payload, ReplyAddress, ReplyOut, Request, UndecodableRequest};
use crate::transport::{Address, Delivery, DeliveryMode, ListenOptions, Listener, OutgoingMessage, Retry};
use crate::{Codec, CodecError, Endpoint, Error, ErrorCode, RemoteError, Target, Transport};

/// How many requests a server runs at once by default (oslo's `executor_thread_pool_size`).
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The largest request body a server reads by default: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// How many recent message ids a server remembers, at least, to drop
/// duplicates (oslo keeps 16); a server remembers twice its concurrency.
const RECENT_IDS: usize = 16;

/// How many times a reply is retried while the broker is unreachable.
const REPLY_RETRY: Retry = Retry::Limited(5);

/// How a server runs its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// Up to this many requests at once, in no particular order (1 to 65535).
    /// The transport's prefetch follows this bound, so memory stays bounded.
    Concurrent(usize),
    /// One request at a time, in arrival order (the seed's `blocking` executor).
    Sequential,
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::Concurrent(DEFAULT_CONCURRENCY)
    }
}

impl Executor {
    fn limit(self) -> usize {
        match self {
            Executor::Concurrent(limit) => limit,
            Executor::Sequential => 1,
        }
    }
}

/// Serves endpoints on a target: a topic and a server name.
///
/// Lifecycle, as in oslo.messaging: [`start`](Server::start) declares the
/// queues and begins consuming; [`stop`](Server::stop) stops taking new
/// requests and returns at once; [`wait`](Server::wait) returns once the
/// server has stopped and every request it took has been answered. A stopped
/// server may be started again. Dropping a server stops it.
///
/// By default requests are acknowledged when received, before the method
/// runs (oslo's at-most-once delivery): a server that dies mid-request does
/// not run it twice. With [`DeliveryMode::AtLeastOnce`] they are acknowledged
/// once answered, and a request whose server died runs again elsewhere.
/// Copies of a request the server already took (same `_unique_id`) are
/// dropped. A request the server cannot read (unknown content type, malformed,
/// larger than [`max_message_size`](ServerBuilder::max_message_size)) is
/// rejected without requeueing and logged, and its caller, when known, gets a
/// [`BadRequest`](crate::ErrorCode::BadRequest) error at once. A handler that
/// panics answers [`Internal`](crate::ErrorCode::Internal); the server keeps serving.
///
/// ```
/// # use rpc_core::{Context, Server, Target, endpoint, transport::memory::Broker};
/// struct Echo;
///
/// #[endpoint]
/// impl Echo {
///     async fn echo(&self, _ctx: &Context, text: String) -> String {
///         text
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_core::Error> {
/// # let transport = Broker::new().transport();
/// let server = Server::builder(transport, Target::server("echo", "host-1"))
///     .endpoint(Echo)
///     .build()?;
/// server.start().await?;
/// // ... serve until something calls `stop()` ...
/// server.stop();
/// server.wait().await;
/// # Ok(())
/// # }
/// ```
pub struct Server {
    shared: Arc<Shared>,
}

struct Shared {
    transport: Transport,
    target: Target,
    dispatcher: Dispatcher,
    limit: usize,
    max_message_size: usize,
    delivery: DeliveryMode,
    control: Arc<Control>,
    recent: Mutex<RecentIds>,
    counters: Counters,
}

impl Shared {
    fn recent(&self) -> MutexGuard<'_, RecentIds> {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }
}

/// The message ids a server took recently (oslo's `_MsgIdCache`, kept as
/// 64-bit hashes), to drop copies of a message it already ran or is running.
struct RecentIds {
    capacity: usize,
    order: VecDeque<u64>,
    seen: HashMap<u64, Seen>,
}

enum Seen {
    /// Being handled (at-least-once); copies that arrived meanwhile wait
    /// here, unacknowledged, to be settled when it is done.
    Running(Vec<Delivery>),
    Done,
}

/// What to do with a request, given the ids seen before.
enum Admission {
    /// A new id: run it.
    Fresh(Delivery),
    /// A copy of a finished request: drop it (acknowledging it).
    Duplicate(Delivery),
    /// A copy of a request still running: kept until that one finishes.
    Parked,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            capacity,
            order: VecDeque::with_capacity(capacity + 1),
            seen: HashMap::with_capacity(capacity + 1),
        }
    }

    fn hash(id: &str) -> u64 {
        BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
    }

    /// Records `id`, as running when `running` (else as done at once).
    fn admit(&mut self, id: &str, delivery: Delivery, running: bool) -> Admission {
        let hash = RecentIds::hash(id);
        match self.seen.get_mut(&hash) {
            Some(Seen::Done) => return Admission::Duplicate(delivery),
            Some(Seen::Running(parked)) => {
                parked.push(delivery);
                return Admission::Parked;
            }
            None => {}
        }
        self.seen
            .insert(hash, if running { Seen::Running(Vec::new()) } else { Seen::Done });
        self.order.push_back(hash);
        // Forget the oldest finished id; running ones stay (at most one per slot).
        for _ in 0..self.order.len() {
            if self.order.len() <= self.capacity {
                break;
            }
            let Some(oldest) = self.order.pop_front() else { break };
            if matches!(self.seen.get(&oldest), Some(Seen::Running(_))) {
                self.order.push_back(oldest);
            } else {
                self.seen.remove(&oldest);
            }
        }
        Admission::Fresh(delivery)
    }

    /// Marks `id` done; returns the copies that arrived while it ran.
    fn finish(&mut self, id: &str) -> Vec<Delivery> {
        match self.seen.get_mut(&RecentIds::hash(id)) {
            Some(seen @ Seen::Running(_)) => match std::mem::replace(seen, Seen::Done) {
                Seen::Running(parked) => parked,
                Seen::Done => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

/// Counts of what a server did with the messages it received, since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Requests dispatched to a method (whatever the outcome).
    pub handled: u64,
    /// Messages rejected as unreadable: unknown content type, malformed, or too large.
    pub rejected: u64,
    /// Copies of a request already taken, dropped without running.
    pub duplicates: u64,
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    rejected: AtomicU64,
    duplicates: AtomicU64,
}

/// Stops a server from anywhere, an endpoint of that server included.
///
/// Get one from [`ServerBuilder::handle`] before the server exists, to give
/// it to an endpoint (the seed's `ServerControlEndpoint`), or from
/// [`Server::handle`].
#[derive(Clone, Default)]
pub struct ServerHandle {
    control: Arc<Control>,
}

#[derive(Default)]
struct Control {
    run: Mutex<Option<Run>>,
}

/// A run of the server, from `start` until drained.
struct Run {
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

impl Control {
    fn run(&self) -> MutexGuard<'_, Option<Run>> {
        self.run.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ServerHandle {
    /// Stops the server taking new requests; requests already taken still
    /// finish. Returns at once; a no-op when the server is not running.
    pub fn stop(&self) {
        if let Some(run) = self.control.run().as_ref() {
            run.stop.send_replace(true);
        }
    }

    /// Whether the server is running or still finishing its requests.
    pub fn is_running(&self) -> bool {
        self.control.run().is_some()
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("running", &self.is_running())
            .finish()
    }
}

/// Builds a [`Server`]; see [`Server::builder`].
pub struct ServerBuilder {
    transport: Transport,
    target: Target,
    dispatcher: Dispatcher,
    executor: Executor,
    max_message_size: usize,
    delivery: DeliveryMode,
    handle: ServerHandle,
}

impl Server {
    /// Starts building a server on `transport` that listens on `target`,
    /// which needs a topic and a server name.
    pub fn builder(transport: Transport, target: Target) -> ServerBuilder {
        ServerBuilder {
            transport,
            target,
            dispatcher: Dispatcher::default(),
            executor: Executor::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            delivery: DeliveryMode::default(),
            handle: ServerHandle::default(),
        }
    }

    /// The target the server listens on.
    pub fn target(&self) -> &Target {
        &self.shared.target
    }

    /// A handle that stops this server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            control: Arc::clone(&self.shared.control),
        }
    }

    /// The APIs of the server's endpoints that describe themselves (every
    /// `#[endpoint]` does), in registration order.
    pub fn describe(&self) -> Vec<crate::api::EndpointDescription> {
        self.shared.dispatcher.describe()
    }

    /// What the server did with the messages it received so far.
    pub fn stats(&self) -> ServerStats {
        let counters = &self.shared.counters;
        ServerStats {
            handled: counters.handled.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
            duplicates: counters.duplicates.load(Ordering::Relaxed),
        }
    }

    /// Declares the server's queues and starts serving.
    ///
    /// Fails when the server is already running, or when the transport
    /// cannot listen (the broker is unreachable, for example).
    pub async fn start(&self) -> Result<(), Error> {
        let (stop, stop_seen) = watch::channel(false);
        let (done_tx, done) = watch::channel(false);
        {
            let mut run = self.shared.control.run();
            if run.is_some() {
                return Err(Error::ServerState("is already running"));
            }
            *run = Some(Run { stop, done });
        }
        let shared = &self.shared;
        let address = Address::new(
            shared.target.exchange().unwrap_or(shared.transport.control_exchange()),
            shared.target.topic_name(),
            shared.target.server_name(),
            false,
        );
        let options = ListenOptions {
            prefetch: u16::try_from(shared.limit).unwrap_or(u16::MAX),
        };
        match shared.transport.driver().listen(address, &options).await {
            Ok(listener) => {
                tracing::info!(target = %shared.target, endpoints = ?shared.dispatcher, "server started");
                tokio::spawn(run(Arc::clone(shared), listener, stop_seen, done_tx));
                Ok(())
            }
            Err(error) => {
                *shared.control.run() = None;
                done_tx.send_replace(true);
                Err(Error::Transport(error))
            }
        }
    }

    /// Stops taking new requests; returns at once (see [`wait`](Server::wait)).
    pub fn stop(&self) {
        self.handle().stop();
    }

    /// Waits until the server has stopped and every request it took has been
    /// answered. Returns at once when the server is not running.
    pub async fn wait(&self) {
        let done = self.shared.control.run().as_ref().map(|run| run.done.clone());
        if let Some(mut done) = done {
            // An error means the run ended without saying so: it is over either way.
            let _ = done.wait_for(|done| *done).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("target", &self.shared.target)
            .field("endpoints", &self.shared.dispatcher)
            .field("concurrency", &self.shared.limit)
            .field("running", &self.handle().is_running())
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Adds an endpoint. Requests try endpoints in the order they were added.
    pub fn endpoint(mut self, endpoint: impl Endpoint) -> ServerBuilder {
        self.dispatcher.push(Box::new(endpoint));
        self
    }

    /// How requests run (default: 64 at once).
    pub fn executor(mut self, executor: Executor) -> ServerBuilder {
        self.executor = executor;
        self
    }

    /// The largest request body the server reads (default 4 MiB); larger
    /// requests are rejected, and their callers told.
    pub fn max_message_size(mut self, bytes: usize) -> ServerBuilder {
        self.max_message_size = bytes;
        self
    }

    /// When requests are acknowledged (default [`DeliveryMode::AtMostOnce`],
    /// on receipt, as oslo.messaging). With [`DeliveryMode::AtLeastOnce`]
    /// a request is acknowledged once its method finished and its reply was
    /// sent, so a request whose server dies runs again on the next server.
    pub fn delivery_mode(mut self, mode: DeliveryMode) -> ServerBuilder {
        self.delivery = mode;
        self
    }

    /// A handle that will stop the server being built.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Builds the server, checking the target and the settings.
    pub fn build(self) -> Result<Server, Error> {
        if self.target.topic_name().is_empty() {
            return Err(Error::InvalidTarget("a server needs a topic".to_owned()));
        }
        if self.target.server_name().is_none_or(str::is_empty) {
            return Err(Error::InvalidTarget(
                "a server needs a server name: use `Target::server(topic, server)`".to_owned(),
            ));
        }
        if self.dispatcher.is_empty() {
            return Err(Error::Config("a server needs at least one endpoint".to_owned()));
        }
        let limit = self.executor.limit();
        if !(1..=usize::from(u16::MAX)).contains(&limit) {
            return Err(Error::Config(format!(
                "the executor's concurrency must be between 1 and 65535, not {limit}"
            )));
        }
        Ok(Server {
            shared: Arc::new(Shared {
                transport: self.transport,
                target: self.target,
                dispatcher: self.dispatcher,
                limit,
                max_message_size: self.max_message_size,
                delivery: self.delivery,
                control: self.handle.control,
                recent: Mutex::new(RecentIds::new(RECENT_IDS.max(2 * limit))),
                counters: Counters::default(),
            }),
        })
    }
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("target", &self.target)
            .field("endpoints", &self.dispatcher)
            .field("executor", &self.executor)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

async fn run(
    shared: Arc<Shared>,
    mut listener: Box<dyn Listener>,
    mut stop: watch::Receiver<bool>,
    done: watch::Sender<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.limit));
    loop {
        // Take a slot first, so that no request is pulled that cannot run.
        let permit = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            next = listener.next() => next,
        };
        match next {
            // One at a time: run it here, sparing a task and a thread hop.
            Some(Ok(delivery)) if shared.limit == 1 => handle(Arc::clone(&shared), delivery, permit).await,
            Some(Ok(delivery)) => {
                tokio::spawn(handle(Arc::clone(&shared), delivery, permit));
            }
            Some(Err(error)) => {
                tracing::warn!(target = %shared.target, %error, "listening failed; waiting for the transport to recover");
            }
            None => {
                tracing::error!(target = %shared.target, "the transport closed the server's queues; stopping");
                break;
            }
        }
    }
    if let Err(error) = listener.close().await {
        tracing::warn!(target = %shared.target, %error, "closing the server's queues");
    }
    // Every handler holds a slot: all slots back means all requests answered.
    let all = u32::try_from(shared.limit).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    *shared.control.run() = None;
    done.send_replace(true);
    tracing::info!(target = %shared.target, "server stopped");
}

async fn handle(shared: Arc<Shared>, mut delivery: Delivery, _slot: OwnedSemaphorePermit) {
    let codec = match delivery.codec() {
        Ok(codec) => codec,
        Err(reason) => return reject(&shared, &mut delivery, &reason).await,
    };
    let body = delivery.body();
    let request = if body.len() > shared.max_message_size {
        Err(UndecodableRequest {
            reason: CodecError::new(format_args!(
                "the request is {} bytes, over the limit of {} bytes",
                body.len(),
                shared.max_message_size
            )),
            reply: codec.reply_address(body),
        })
    } else {
        // A decoder bug must cost one message, not the task serving it.
        std::panic::catch_unwind(AssertUnwindSafe(|| codec.decode_request(body))).unwrap_or_else(|panic| {
            Err(UndecodableRequest {
                reason: CodecError::new(format_args!("the decoder failed: {}", panic_message(&*panic))),
                reply: None,
            })
        })
    };
    let request = match request {
        Ok(request) => request,
        Err(bad) => {
            reject(&shared, &mut delivery, &bad.reason).await;
            if let Some(address) = bad.reply {
                let error =
                    RemoteError::bad_request(format_args!("the server cannot read the request: {}", bad.reason));
                send_reply(&shared, codec, &address, Err(error)).await;
            }
            return;
        }
    };
    let at_least_once = shared.delivery == DeliveryMode::AtLeastOnce;
    // At-most-once, as oslo.messaging: acknowledge before the method runs.
    if !at_least_once {
        if let Err(error) = delivery.ack().await {
            tracing::warn!(method = %request.method, %error, "cannot acknowledge a request; dropping it");
            return;
        }
    }
    if let Some(id) = &request.unique_id {
        let admission = shared.recent().admit(id, delivery, at_least_once);
        delivery = match admission {
            Admission::Fresh(delivery) => delivery,
            Admission::Duplicate(mut copy) => {
                shared.count(|counters| &counters.duplicates);
                tracing::warn!(method = %request.method, unique_id = %id, "dropping a duplicate message");
                return settle(&mut copy).await;
            }
            Admission::Parked => {
                shared.count(|counters| &counters.duplicates);
                tracing::warn!(method = %request.method, unique_id = %id, "a copy of a running request arrived; it is dropped when that one finishes");
                return;
            }
        };
    }
    let span = tracing::debug_span!(
        "rpc.request",
        method = %request.method,
        namespace = request.namespace.as_deref().unwrap_or(""),
        msg_id = request.reply.as_ref().map(|reply| reply.msg_id.as_str()).unwrap_or(""),
        request_id = request.context.request_id().unwrap_or(""),
    );
    async {
        shared.count(|counters| &counters.handled);
        let outcome = run_handler(&shared, codec, &request).await;
        if let Err(error) = &outcome {
            log_failure(&request, error);
        }
        if let Some(address) = &request.reply {
            send_reply(&shared, codec, address, outcome).await;
        }
        if at_least_once {
            settle(&mut delivery).await;
            let copies = request.unique_id.as_deref().map(|id| shared.recent().finish(id));
            for mut copy in copies.unwrap_or_default() {
                settle(&mut copy).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Logs, once, why a request failed: the server refused it (no such method,
/// bad arguments), or the method returned an error. Panics are logged where
/// they are caught.
fn log_failure(request: &Request, error: &RemoteError) {
    let kind = if request.reply.is_some() { "call" } else { "cast" };
    match error.code() {
        ErrorCode::NoSuchMethod
        | ErrorCode::UnsupportedVersion
        | ErrorCode::InvalidArguments
        | ErrorCode::BadRequest => {
            let (method, code, reason) = (&request.method, error.code().as_str(), error.message());
            tracing::warn!(%method, code, reason, "refusing a {kind}");
        }
        ErrorCode::Internal => {}
        ErrorCode::Application | ErrorCode::Other => {
            let (method, code, reason) = (&request.method, error.code().as_str(), error.message());
            tracing::debug!(%method, code, reason, "the method of a {kind} failed");
        }
    }
}

/// Acknowledges a request that was run (at-least-once), or a copy of one.
async fn settle(delivery: &mut Delivery) {
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, "cannot acknowledge a request; the broker will deliver it again");
    }
}

async fn reject(shared: &Shared, delivery: &mut Delivery, reason: &(dyn fmt::Display + Sync)) {
    shared.count(|counters| &counters.rejected);
    let (target, bytes) = (&shared.target, delivery.body().len());
    tracing::warn!(%target, %reason, bytes, "rejecting a message the server cannot read");
    if let Err(error) = delivery.reject(false).await {
        tracing::warn!(%error, "cannot reject a message");
    }
}

/// Runs the method, turning a panic into an error and sending call-monitor
/// heartbeats while it runs.
async fn run_handler(shared: &Shared, codec: Codec, request: &Request) -> Result<Payload, RemoteError> {
    let handler = AssertUnwindSafe(async { shared.dispatcher.dispatch(request).await })
        .catch_unwind()
        .map(|outcome| {
            outcome.unwrap_or_else(|panic| {
                let panic = panic_message(&*panic);
                tracing::error!(method = %request.method, %panic, "a handler panicked; the server keeps serving");
                Err(RemoteError::panicked(&request.method, &panic))
            })
        });
    let (Some(address), Some(interval)) = (&request.reply, heartbeat_interval(request)) else {
        return handler.await;
    };
    tokio::pin!(handler);
    let start = tokio::time::Instant::now() + interval;
    let mut ticks = tokio::time::interval_at(start, interval);
    loop {
        tokio::select! {
            outcome = &mut handler => return outcome,
            _ = ticks.tick() => send_heartbeat(shared, codec, address).await,
        }
    }
}

/// oslo's watchdog interval: half the caller's call-monitor timeout, whole
/// seconds only; nothing under one second.
fn heartbeat_interval(request: &Request) -> Option<Duration> {
    let monitor = request.call_monitor?;
    let half = monitor.trunc() / 2.0;
    if !half.is_finite() || half < 1.0 {
        if monitor > 0.0 {
            tracing::warn!(
                call_monitor_timeout = monitor,
                "call-monitor timeouts under 2 s get no heartbeats"
            );
        }
        return None;
    }
    Some(Duration::from_secs_f64(half))
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

async fn send_heartbeat(shared: &Shared, codec: Codec, address: &ReplyAddress) {
    let heartbeat = ReplyOut {
        msg_id: &address.msg_id,
        ending: false,
        result: None,
        failure: None,
    };
    publish_reply(shared, codec, address, &heartbeat).await;
}

async fn send_reply(shared: &Shared, codec: Codec, address: &ReplyAddress, outcome: Result<Payload, RemoteError>) {
    let (result, failure) = match &outcome {
        Ok(result) => (Some(result), None),
        Err(failure) => (None, Some(failure)),
    };
    let reply = ReplyOut {
        msg_id: &address.msg_id,
        ending: true,
        result,
        failure,
    };
    publish_reply(shared, codec, address, &reply).await;
}

async fn publish_reply(shared: &Shared, codec: Codec, address: &ReplyAddress, reply: &ReplyOut<'_>) {
    let body = match codec.encode_reply(reply) {
        Ok(body) => body,
        Err(reason) => {
            tracing::error!(%reason, "cannot encode a reply");
            return;
        }
    };
    let message = OutgoingMessage::new(body, codec, None, REPLY_RETRY);
    if let Err(error) = shared.transport.driver().reply(&address.reply_to, message).await {
        tracing::warn!(reply_to = %address.reply_to, %error, "cannot send a reply; the caller will time out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery::with_codec(bytes::Bytes::new(), Codec::MsgPack)
    }

    #[test]
    fn copies_of_a_finished_request_are_duplicates() {
        let mut recent = RecentIds::new(4);
        assert!(matches!(recent.admit("a", delivery(), false), Admission::Fresh(_)));
        assert!(matches!(recent.admit("a", delivery(), false), Admission::Duplicate(_)));
        assert!(matches!(recent.admit("b", delivery(), false), Admission::Fresh(_)));
    }

    #[test]
    fn copies_of_a_running_request_wait_for_it() {
        let mut recent = RecentIds::new(4);
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Fresh(_)));
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Parked));
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Parked));
        assert_eq!(recent.finish("a").len(), 2);
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Duplicate(_)));
        assert!(recent.finish("a").is_empty());
    }

    #[test]
    fn the_oldest_finished_ids_are_forgotten_and_running_ones_kept() {
        let mut recent = RecentIds::new(2);
        assert!(matches!(recent.admit("running", delivery(), true), Admission::Fresh(_)));
        for id in ["b", "c", "d"] {
            assert!(matches!(recent.admit(id, delivery(), false), Admission::Fresh(_)));
        }
        assert!(recent.seen.len() <= 2, "{} ids kept", recent.seen.len());
        assert!(matches!(recent.admit("running", delivery(), true), Admission::Parked));
        assert!(matches!(recent.admit("b", delivery(), false), Admission::Fresh(_)));
        assert_eq!(recent.finish("running").len(), 1);
    }
}
