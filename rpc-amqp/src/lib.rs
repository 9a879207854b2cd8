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
//! - schemes: `amqp` (port 5672; 5671 with `?ssl=true`), `amqps` (TLS, port
//!   5671), and oslo's `rabbit` (port 5672 unless written, with TLS too, as
//!   oslo connects; TLS with `?ssl=true`);
//! - user names, passwords and the vhost are percent-decoded (`%2f` is `/`);
//!   without credentials, `guest:guest`; an empty vhost is `/`;
//! - several comma-separated hosts fail over: on a lost connection, the next
//!   host is tried (`rabbit://u:p@h1:5672,u:p@h2:5672/nova`); oslo's
//!   `rabbit://` hosts in an order shuffled for each connection, as oslo
//!   shuffles them (a cluster's clients spread over its nodes), AMQP's forms
//!   in the order written unless `failover_strategy=shuffle`;
//! - passwords never appear in logs, `Debug` output or error messages.
//!
//! | option (oslo alias) | meaning | default |
//! |---|---|---|
//! | `codec` | what clients send: `msgpack`, or `oslo` (oslo.messaging's JSON, for Python servers) | `msgpack` |
//! | `control_exchange` | exchange of targets that name none | `openstack` |
//! | `heartbeat` (`heartbeat_timeout_threshold`) | AMQP heartbeat, seconds; a dead peer is noticed within twice this | 10 |
//! | `connect_timeout` | seconds one connection attempt may take (its socket is then shut, on Unix) | 10 |
//! | `startup_timeout` | seconds the first connection keeps trying the hosts, with the reconnection backoff, while no broker answers | 30 |
//! | `prefetch` (`rabbit_qos_prefetch_count`) | cap on a server's prefetch (by default its concurrency limit) | none |
//! | `retry_interval` (`rabbit_retry_interval`) | first reconnection delay, seconds (at least 0.1: 0 would retry in a loop); doubles, with jitter, and starts again only after a connection that lasted longer than the next delay | 1 |
//! | `max_retry_interval` (`rabbit_interval_max`) | longest reconnection delay, seconds | 30 |
//! | `failover_strategy` (`kombu_failover_strategy`) | `round-robin` or `shuffle` (with `rabbit://` always `shuffle`: oslo shuffles its hosts whatever the strategy) | `round-robin`; `shuffle` with `rabbit://` |
//! | `durable` (`amqp_durable_queues`) | durable control exchange, persistent messages | false |
//! | `auto_delete` (`amqp_auto_delete`) | auto-delete control exchanges, topic, server and notification queues, as oslo declares them with it; not with `quorum` (RabbitMQ refuses auto-delete quorum queues: connecting fails with `Error::Config`) | false |
//! | `quorum` (`rabbit_quorum_queue`) | quorum topic, server and notification queues (and `durable`) | false |
//! | `quorum_delivery_limit` (`rabbit_quorum_delivery_limit`) | `x-delivery-limit` of quorum queues; 0: the broker's (RabbitMQ 4: 20) | 0 |
//! | `quorum_max_memory_length`, `quorum_max_memory_bytes` (`rabbit_quorum_max_memory_length`, `rabbit_quorum_max_memory_bytes`) | `x-max-in-memory-length` and `x-max-in-memory-bytes` of quorum queues (with `transient_quorum`, the reply and fanout queues too, as the delivery limit), as oslo declares them; 0: none | 0 |
//! | `transient_quorum` (`rabbit_transient_quorum_queue`) | reply and fanout queues as quorum queues that expire unused, instead of exclusive ones | false |
//! | `cancel_on_failover` (`enable_cancel_on_failover`) | ask the broker to cancel consumers when a queue's leader moves (`x-cancel-on-ha-failover`); they are consumed again | false |
//! | `transient_queues_ttl` (`rabbit_transient_queues_ttl`) | seconds an unused `transient_quorum` reply or fanout queue lives; 0: forever | 1800 |
//! | `shared_queues_ttl` | seconds an unused topic, server or notification queue lives, with what waits in it (not oslo's behaviour: for test brokers); 0: forever | 0 |
//! | `reply_retry_timeout` (`kombu_missing_consumer_retry_timeout`) | seconds a server retries a reply whose queue is missing (its caller reconnecting) | 60 |
//! | `max_message_size` | largest body sent, bytes; larger ones fail before reaching the broker | 16 MiB |
//! | `publish_timeout` | seconds a publish without a deadline (a reply, a cast, a notification) may wait for an alarm's end and the confirm, and for a connection with a bounded `Retry` (with `Retry::Forever`, the default of casts and notifications, the wait for a connection has no bound, as oslo's) | 30 |
//! | `single_connection` | servers consume on the publishing connection (see *Connections*) | false |
//! | `confirm_calls` | calls' requests wait for the broker's publisher confirm, as casts do (see *Behaviour*) | false |
//! | `confirm_replies` | a server's replies wait for the broker's publisher confirm, and go out again when lost or returned, as oslo's do; `false`: at-most-once replies, a frame and a wake-up saved per call (see *Behaviour*) | true |
//! | `ssl`, `ssl_ca_file`, `ssl_cert_file`, `ssl_key_file` | TLS; extra CA (PEM), client certificate and PKCS#8 key, which apply only with TLS on (`ssl=true` or `amqps://`), as oslo's | off |
//! | `connection_name` | the connections' names in the broker (suffixed with `:publish` and `:consume`) | `<program>:<pid>` |
//!
//! Unknown options are ignored with a warning, so an OpenStack transport URL
//! with options for Python drivers still works.
//!
//! # Topology (oslo.messaging's, safe on RabbitMQ 4)
//!
//! RabbitMQ 4.3 refuses transient non-exclusive queues by default
//! (`deprecated_features.permit.transient_nonexcl_queues`), which oslo's
//! default topology uses. No such queue is declared here, in any mode:
//!
//! | entity | name | flags |
//! |---|---|---|
//! | control exchange | `openstack`, or the target's exchange | topic; durable with `durable`/`quorum` |
//! | topic queue | `<topic>`, bound with key `<topic>` | durable; classic, or quorum with `quorum` |
//! | server queue | `<topic>.<server>`, bound with key `<topic>.<server>` | same |
//! | fanout exchange | `<topic>_fanout` | fanout, auto-delete; durable with `transient_quorum` |
//! | fanout queue | `<topic>_fanout_<uuid>`, one per server | exclusive; with `transient_quorum`, durable quorum with `x-expires`; deleted when the server stops |
//! | reply queue | `reply_<uuid>`, one per client transport | exclusive; with `transient_quorum`, durable quorum with `x-expires`; replies come through the default exchange |
//!
//! A declaration the broker refuses because the entity exists with other
//! flags (declared by a peer configured differently) falls back to using it
//! as it is, with a warning. Peers declaring second must agree: an
//! oslo.messaging service sharing topics with Rust servers sets
//! `amqp_durable_queues = true` or `rabbit_quorum_queue = true` (see
//! `docs/oslo-interop.md`).
//!
//! # Behaviour
//!
//! - **Calls and casts** publish with the mandatory flag: a call or cast to a
//!   topic with no queue bound (or whose exchange no server ever declared)
//!   fails at once with [`Error::NoListener`](rpc_core::Error::NoListener).
//!   Casts, replies and notifications wait for the broker's publisher
//!   confirm. A call's request does not (unless `confirm_calls`, or with
//!   quorum queues, which may refuse a message between leaders, or with
//!   `transient_quorum`, whose lost connections fail no call): its reply
//!   proves it routed, and a returned request fails its call within a few
//!   milliseconds, collected from the channel's returns (the `unconfirmed`
//!   and `returned` counts of [`DriverStats`](rpc_core::transport::DriverStats)).
//!   A client may let its casts go the same way
//!   ([`Client::confirm_casts(false)`](rpc_core::Client::confirm_casts)):
//!   they return once written, and a returned one is only counted and
//!   logged. So may a server's replies (`confirm_replies=false`, weaker
//!   than oslo.messaging's replies): without confirms, a reply lost
//!   with the server's connection, or returned because its caller's reply
//!   queue is gone, is not published again; its caller times out.
//!   A call's request expires with the call's timeout, and is not sent at
//!   all once its caller gave up. Clients declare nothing, so nothing
//!   lingers on the broker when nobody listens.
//! - **Confirmed publishes** share one channel per connection, many in flight; a
//!   channel error (a publish to an exchange deleted since it was checked)
//!   or a refusal (a quorum queue without a leader) makes the publishes it
//!   interrupted go out again, one by one, on a fresh channel, so only the
//!   publish at fault fails. Bodies over `max_message_size` fail before
//!   sending ([`TransportErrorKind::Refused`](rpc_core::TransportErrorKind::Refused)).
//!   Every publish is bounded: by its message's deadline (a call's timeout),
//!   or by `publish_timeout`, which starts once connected for a publish that
//!   retries for ever (casts' and notifications' default: they wait through
//!   an outage, as oslo's); past it, the error says where it stood
//!   (`Unreachable`, `Blocked`, or `Unconfirmed`: it may have been routed).
//! - **Replies** come back on the transport's one reply queue, consumed
//!   without a polling delay; late replies are dropped and counted. A
//!   server retries a reply whose queue is missing for `reply_retry_timeout`
//!   (its caller may be reconnecting), then forgets the queue.
//! - **Servers** consume each of their three queues on a channel of its
//!   own, each with its own prefetch (RabbitMQ 4.3 removed global QoS, and
//!   quorum queues never had it): the topic and server queues the
//!   concurrency limit, the fanout queue an eighth of it, so at most about
//!   2.1 times the limit is held unacknowledged. They acknowledge requests
//!   when received (oslo's at-most-once) or, with
//!   [`DeliveryMode::AtLeastOnce`](rpc_core::DeliveryMode::AtLeastOnce), once
//!   answered; on stop they cancel their consumers, let running requests
//!   finish and settle them, return undelivered messages to the queues,
//!   close the channels and delete their fanout queue. Unreadable messages
//!   are rejected without requeue. `start` fails, naming the queue, unless
//!   every queue is consumed.
//! - **Consumer cancels**: when the broker cancels a consumer (its queue
//!   deleted, the node holding it lost, a quorum leader moved with
//!   `cancel_on_failover`), the queue is declared and consumed again with
//!   backoff; cancels are logged and counted in
//!   [`DriverStats`](rpc_core::transport::DriverStats).
//! - **At-least-once casts** are persistent, and a cast whose connection is
//!   lost before the broker's confirm is published again after reconnection.
//! - **Connections**: one publishing connection per transport, which also
//!   consumes replies (without acknowledgements, they flow during an
//!   alarm), and, once a server listens, a consuming connection for
//!   servers' queues, as RabbitMQ advises and oslo does: during a memory or
//!   disk alarm the broker stops reading from connections that publish, and
//!   a server sharing one could not even acknowledge. While blocked,
//!   publishes wait within their deadline and then fail with
//!   [`TransportErrorKind::Blocked`](rpc_core::TransportErrorKind::Blocked);
//!   servers keep consuming and acknowledging. `single_connection=true`
//!   puts servers on the publishing connection too, which is faster under
//!   pipelined load (`docs/benchmarks.md`) at that price. All have AMQP
//!   heartbeats. The first connection tries the hosts with the reconnection
//!   backoff for `startup_timeout` (a broker that answers and refuses, bad
//!   credentials say, fails at once). On a loss, calls waiting for replies
//!   fail at once with a connection error (with `transient_quorum`, whose
//!   reply queue outlives the connection, they wait for the replies kept
//!   there, their requests confirmed); the transport reconnects with
//!   exponential backoff and jitter, moving to the next host, declares its
//!   queues again and consumes again. Publishes wait for the reconnection as
//!   the request's [`Retry`](rpc_core::Retry) allows (calls at most until
//!   their timeout).
//!
//! `docs/reliability.md` states each guarantee with the test that proves it,
//! on RabbitMQ 3.10, RabbitMQ 4.0 with 4.3's defaults, and a three-node
//! cluster.

mod acks;
mod attempt;
mod backoff;
mod config;
mod driver;
mod error;
mod gone;
mod headers;
mod link;
mod listener;
mod publisher;
mod replies;
mod topology;
mod unconfirmed;

pub use config::{
    AmqpConfig, DEFAULT_HEARTBEAT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_REPLY_RETRY_TIMEOUT, DEFAULT_TRANSIENT_QUEUE_TTL,
    FailoverStrategy, Host, TlsConfig,
};
pub use driver::AmqpDriver;

/// The URL schemes this transport opens.
pub const SCHEMES: [&str; 4] = ["amqp", "amqps", "rabbit", "kombu"];

/// Makes [`rpc_core::transport_from_url`] open `amqp://`, `amqps://` and
/// oslo's `rabbit://` (and its older `kombu://`) URLs with this transport.
/// Call it once at start-up.
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
