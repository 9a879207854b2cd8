//! The server: listens on a target and dispatches requests to its endpoints.
//!
//! - `mod.rs`: the server's lifecycle (start, stop, wait) and its counters;
//! - `builder.rs`: building one, with its settings checked;
//! - `run.rs`: the loop that takes deliveries as executor slots free up;
//! - `delivery.rs`: one delivery, from decode to reply, under one guard;
//! - `ping.rs`: oslo's built-in ping endpoint, when enabled;
//! - `health.rs`: what a readiness or liveness probe reads;
//! - `incoming.rs`: a request's deadline and trace, from its headers;
//! - `heartbeat.rs`: call-monitor heartbeats, beside the handler;
//! - `reply.rs`: replies on their way back;
//! - `running.rs`: the calls running, which their callers may cancel.

mod builder;
pub(crate) mod delivery;
mod health;
mod heartbeat;
mod incoming;
mod ping;
mod reply;
mod run;
pub(crate) mod running;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::recent::RecentIds;
pub use builder::ServerBuilder;
pub(crate) use health::Watch;
pub use health::{Health, QueueHealth};
pub use ping::PING_METHOD;

use crate::endpoint::Dispatcher;
use crate::lifecycle::Lifecycle;
use crate::metrics::{Dropped, ServerMetrics};
use crate::middleware::Stack;
use crate::transport::{Address, DeliveryMode, ListenOptions};
use crate::{Error, Target, Transport};

/// How many requests a server runs at once by default (oslo's `executor_thread_pool_size`).
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The largest request body a server reads by default: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

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
/// A request carries its caller's deadline (a header Python peers ignore):
/// the handler sees it in [`Context::deadline`](crate::Context::deadline),
/// a request taken after it passed is not started (counted in
/// [`ServerStats::expired`]), and a handler still running at the deadline
/// is dropped and answered [`DeadlineExceeded`](crate::ErrorCode::DeadlineExceeded),
/// unless the server ([`ServerBuilder::interrupt_at_deadline`]) or the
/// method (`#[rpc(uninterruptible)]`) opts out. A caller that drops its call
/// before then cancels it (when it knows the server handling it), which
/// stops an interruptible handler at once (counted in [`ServerStats::cancelled`]).
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
    layers: Stack,
    /// oslo's ping is on (`rpc_ping_enabled`): it answers before the layers.
    ping: bool,
    limit: usize,
    max_message_size: usize,
    delivery: DeliveryMode,
    interrupt_at_deadline: bool,
    control: Arc<Lifecycle>,
    recent: Mutex<RecentIds>,
    running: Arc<running::Running>,
    counters: Counters,
    /// Its queues while it serves, and its last delivery.
    watch: Watch,
    metrics: ServerMetrics,
}

impl Shared {
    fn recent(&self) -> MutexGuard<'_, RecentIds> {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message not run, or a handler stopped, in the stats and the metrics.
    fn dropped(&self, reason: Dropped) {
        let counter = match reason {
            Dropped::Unreadable => &self.counters.rejected,
            Dropped::Duplicate => &self.counters.duplicates,
            Dropped::Expired => &self.counters.expired,
            Dropped::Left => &self.counters.left_to_broker,
            Dropped::Interrupted => &self.counters.interrupted,
            Dropped::Cancelled => &self.counters.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.metrics.dropped(reason);
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
    /// Deliveries being handled right now, from receipt until settled.
    pub in_flight: u64,
    /// Message ids the duplicate window holds as still running
    /// (at-least-once): 0 whenever nothing is in flight.
    pub unfinished: u64,
    /// Requests not started because their caller's deadline had passed
    /// when the server took them (not answered: nobody waits).
    pub expired: u64,
    /// Requests not started because the connection they came on was lost
    /// first (seen before they started, or as their at-most-once
    /// acknowledgement failed): left to the broker, which delivers them
    /// again (to this server, or another).
    pub left_to_broker: u64,
    /// Handlers stopped because their caller's deadline passed while they ran.
    pub interrupted: u64,
    /// Handlers stopped because their caller gave up and cancelled the call
    /// (not answered: nobody waits).
    pub cancelled: u64,
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    rejected: AtomicU64,
    duplicates: AtomicU64,
    in_flight: AtomicU64,
    expired: AtomicU64,
    left_to_broker: AtomicU64,
    interrupted: AtomicU64,
    cancelled: AtomicU64,
}

/// Stops a server from anywhere, an endpoint of that server included.
///
/// Get one from [`ServerBuilder::handle`] before the server exists, to give
/// it to an endpoint (the seed's `ServerControlEndpoint`), or from
/// [`Server::handle`].
#[derive(Clone, Default)]
pub struct ServerHandle {
    pub(crate) control: Arc<Lifecycle>,
}

impl ServerHandle {
    /// Stops the server taking new requests; requests already taken still
    /// finish. Returns at once; a no-op when the server is not running.
    pub fn stop(&self) {
        self.control.stop();
    }

    /// Whether the server is running or still finishing its requests.
    pub fn is_running(&self) -> bool {
        self.control.is_running()
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("running", &self.is_running())
            .finish()
    }
}

impl Server {
    /// Starts building a server on `transport` that listens on `target`,
    /// which needs a topic and a server name.
    pub fn builder(transport: Transport, target: Target) -> ServerBuilder {
        ServerBuilder {
            transport,
            target,
            dispatcher: Dispatcher::default(),
            layers: Stack::default(),
            executor: Executor::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            delivery: DeliveryMode::default(),
            interrupt_at_deadline: true,
            ping: false,
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
            in_flight: counters.in_flight.load(Ordering::Relaxed),
            unfinished: self.shared.recent().running() as u64,
            expired: counters.expired.load(Ordering::Relaxed),
            left_to_broker: counters.left_to_broker.load(Ordering::Relaxed),
            interrupted: counters.interrupted.load(Ordering::Relaxed),
            cancelled: counters.cancelled.load(Ordering::Relaxed),
        }
    }

    /// The server's health, for readiness and liveness probes: whether it
    /// runs, whether its transport is connected and consumes each of its
    /// queues, and when the last message arrived. Cheap: reads a few atomics
    /// and copies the queues' names.
    ///
    /// ```
    /// # use rpc_core::{Context, Server, Target, endpoint, transport::memory::Broker};
    /// # struct Echo;
    /// # #[endpoint] impl Echo { async fn echo(&self, _ctx: &Context) {} }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpc_core::Error> {
    /// # let transport = Broker::new().transport();
    /// let server = Server::builder(transport, Target::server("echo", "host-1")).endpoint(Echo).build()?;
    /// assert!(!server.health().is_live());
    /// server.start().await?;
    /// assert!(server.health().is_ready());
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

    /// Declares the server's queues and starts serving.
    ///
    /// Fails when the server is already running, or when the transport
    /// cannot listen (the broker is unreachable, for example). Given up on
    /// before it returns (dropped, by a timeout around it), it leaves the
    /// server stopped, to be started again.
    pub async fn start(&self) -> Result<(), Error> {
        let started = self.shared.control.begin()?;
        let shared = &self.shared;
        let address = Address::new(
            shared.target.exchange().unwrap_or(shared.transport.control_exchange()),
            shared.target.topic_name(),
            shared.target.server_name(),
            false,
        );
        let options = ListenOptions {
            prefetch: u16::try_from(shared.limit).unwrap_or(u16::MAX),
            batch: None,
        };
        match shared.transport.driver().listen(address, &options).await {
            Ok(listener) => {
                shared.watch.serve(Some(listener.queues()));
                tracing::info!(target = %shared.target, endpoints = ?shared.dispatcher, "server started");
                tokio::spawn(run::run(Arc::clone(shared), listener, started));
                Ok(())
            }
            Err(error) => {
                started.done.finish();
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
    ///
    /// It has no bound of its own: a handler that never returns (one that
    /// waits on something that never comes, for a caller that sent no
    /// deadline, as oslo's callers do not) keeps it waiting. Bound it as
    /// oslo.service's `graceful_shutdown_timeout` does, then leave the
    /// process; requests not answered by then are those a broker gives to
    /// another server (at-least-once mode) or whose callers time out:
    ///
    /// ```no_run
    /// # async fn demo(server: rpc_core::Server) {
    /// server.stop();
    /// if tokio::time::timeout(std::time::Duration::from_secs(60), server.wait()).await.is_err() {
    ///     tracing::warn!("requests still running after 60 s; exiting without them");
    ///     std::process::exit(1);
    /// }
    /// # }
    /// ```
    pub async fn wait(&self) {
        self.shared.control.wait().await;
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
