//! The AMQP 0-9-1 transport for `rpc-core`, on lapin and tokio, for RabbitMQ.
//!
//! Its topology and behaviour follow oslo.messaging's rabbit driver, so Rust
//! and Python services share one broker: the same exchanges and queues, with
//! the same flags (see below).
//!
//! ```no_run
//! # async fn demo() -> Result<(), rpc_core::Error> {
//! rpc_amqp::register(); // once: `transport_from_url` now opens amqp://, amqps://, rabbit://
//! let transport = rpc_core::transport_from_url("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
//! # Ok(()) }
//! ```
//!
//! # URLs
//!
//! `scheme://[user:password@]host[:port][,[user:password@]host[:port]...][/vhost][?option=value&...]`
//!
//! - schemes: `amqp` (port 5672), `amqps` (TLS, port 5671), and oslo's `rabbit`
//!   (TLS with `?ssl=true`);
//! - user names, passwords and the vhost are percent-decoded (`%2f` is `/`);
//!   without credentials, `guest:guest`; an empty vhost is `/`;
//! - several comma-separated hosts fail over: on a lost connection, the next
//!   host is tried (`rabbit://u:p@h1:5672,u:p@h2:5672/nova`);
//! - passwords never appear in logs, `Debug` output or error messages.
//!
//! | option (oslo alias) | meaning | default |
//! |---|---|---|
//! | `codec` | what clients send: `msgpack`, or `oslo` (oslo.messaging's JSON, for Python servers) | `msgpack` |
//! | `control_exchange` | exchange of targets that name none | `openstack` |
//! | `heartbeat` (`heartbeat_timeout_threshold`) | AMQP heartbeat, seconds; a dead peer is noticed within twice this | 10 |
//! | `connect_timeout` | seconds one connection attempt may take | 10 |
//! | `prefetch` (`rabbit_qos_prefetch_count`) | cap on a server's prefetch (by default its concurrency limit) | none |
//! | `retry_interval` (`rabbit_retry_interval`) | first reconnection delay, seconds; doubles, with jitter | 1 |
//! | `max_retry_interval` (`rabbit_interval_max`) | longest reconnection delay, seconds | 30 |
//! | `failover_strategy` (`kombu_failover_strategy`) | `round-robin` or `shuffle` | `round-robin` |
//! | `durable` (`amqp_durable_queues`) | durable exchange and topic/server queues, persistent messages | false |
//! | `quorum` (`rabbit_quorum_queue`) | quorum topic/server queues (durable) | false |
//! | `transient_queues_ttl` (`rabbit_transient_queues_ttl`) | seconds an unused reply or fanout queue lives; 0: forever | 1800 |
//! | `shared_queues_ttl` | seconds an unused topic or server queue lives (not oslo's behaviour: for test brokers); 0: forever | 0 |
//! | `reply_retry_timeout` | seconds a server retries a reply whose queue is missing | 5 |
//! | `ssl`, `ssl_ca_file`, `ssl_cert_file`, `ssl_key_file` | TLS; extra CA (PEM), client certificate and PKCS#8 key | off |
//! | `connection_name` | the connection's name in the broker | `<program>:<pid>:<role>` |
//!
//! Unknown options are ignored with a warning, so an OpenStack transport URL
//! with options for Python drivers still works.
//!
//! # Topology (oslo.messaging's)
//!
//! | entity | name | flags |
//! |---|---|---|
//! | control exchange | `openstack`, or the target's exchange | topic; durable with `durable`/`quorum` |
//! | topic queue | `<topic>`, bound with key `<topic>` | durable with `durable`/`quorum` |
//! | server queue | `<topic>.<server>`, bound with key `<topic>.<server>` | same |
//! | fanout exchange | `<topic>_fanout` | fanout, auto-delete |
//! | fanout queue | `<topic>_fanout_<uuid>`, one per server | `x-expires`; deleted when the server stops |
//! | reply queue | `reply_<uuid>`, one per client transport | `x-expires`; replies come through the default exchange |
//!
//! # Behaviour
//!
//! - **Calls** publish with the mandatory flag and publisher confirms: a call
//!   or cast to a topic with no queue bound (or whose exchange no server ever
//!   declared) fails at once with
//!   [`Error::NoListener`](rpc_core::Error::NoListener). A call's request
//!   expires with the call's timeout. Clients declare nothing, so nothing
//!   lingers on the broker when nobody listens.
//! - **Replies** come back on the transport's one reply queue, consumed
//!   without a polling delay; late replies are dropped and counted.
//! - **Servers** consume their three queues on one channel with a prefetch
//!   equal to their concurrency limit, acknowledge requests when received
//!   (oslo's at-most-once) or, with
//!   [`DeliveryMode::AtLeastOnce`](rpc_core::DeliveryMode::AtLeastOnce), once
//!   answered; on stop they cancel their consumers, let running requests
//!   finish and settle them, return undelivered messages to the queues,
//!   close the channel and delete their fanout queue. Unreadable messages
//!   are rejected without requeue.
//! - **At-least-once casts** are persistent, and a cast whose connection is
//!   lost before the broker's confirm is published again after reconnection.
//! - **Connections**: one per transport (see [`AmqpDriver`] for why not
//!   two), with AMQP heartbeats. On a loss, calls waiting for replies
//!   fail at once with a connection error; the transport reconnects with
//!   exponential backoff and jitter, moving to the next host, declares its
//!   queues again and consumes again. Publishes wait for the reconnection as
//!   the request's [`Retry`](rpc_core::Retry) allows (calls at most until
//!   their timeout).

mod backoff;
mod config;
mod driver;
mod error;
mod link;
mod listener;
mod publisher;
mod topology;

pub use config::{
    AmqpConfig, DEFAULT_HEARTBEAT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_REPLY_RETRY_TIMEOUT, DEFAULT_TRANSIENT_QUEUE_TTL,
    FailoverStrategy, Host, TlsConfig,
};
pub use driver::AmqpDriver;

/// The URL schemes this transport opens.
pub const SCHEMES: [&str; 4] = ["amqp", "amqps", "rabbit", "kombu"];

/// Makes [`rpc_core::transport_from_url`] open `amqp://`, `amqps://` and
/// oslo's `rabbit://` URLs with this transport. Call it once at start-up.
pub fn register() {
    for scheme in SCHEMES {
        rpc_core::transport::register(scheme, |url| Box::pin(async move { connect(&url).await }));
    }
}

/// Connects to the broker of a transport URL (see the crate docs for the forms).
pub async fn connect(url: &str) -> Result<rpc_core::Transport, rpc_core::Error> {
    AmqpConfig::from_url(url)?.connect().await
}

impl AmqpConfig {
    /// Connects and returns a transport.
    pub async fn connect(self) -> Result<rpc_core::Transport, rpc_core::Error> {
        Ok(AmqpDriver::connect(self).await?.into_transport())
    }
}
