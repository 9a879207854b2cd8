//! oslo.messaging's rabbit topology, made safe for RabbitMQ 4: the only
//! place exchange, queue and routing-key names and their flags are derived.
//!
//! RabbitMQ 4.3 refuses transient non-exclusive queues by default
//! (`deprecated_features.permit.transient_nonexcl_queues`), which oslo's
//! default topology declares. Here no such queue is ever declared:
//!
//! | entity | name | flags |
//! |---|---|---|
//! | control exchange | `openstack` (or the target's) | topic; durable with `durable`/`quorum` (oslo's default: not) |
//! | topic queue | `<topic>` | bound with key `<topic>`; durable, classic, or quorum with `quorum` |
//! | server queue | `<topic>.<server>` | bound with key `<topic>.<server>`; same flags |
//! | fanout exchange | `<topic>_fanout` | fanout, auto-delete; durable with `transient_quorum` |
//! | fanout queue | `<topic>_fanout_<uuid hex>` | one per server: exclusive; or durable quorum with `x-expires` with `transient_quorum` |
//! | reply queue | `reply_<uuid hex>` | one per client transport: exclusive; or durable quorum with `x-expires` with `transient_quorum`; replies go through the default exchange |

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use rpc_core::transport::Address;
use rpc_core::{TransportError, TransportErrorKind};

use crate::config::AmqpConfig;
use crate::error::from_lapin;
use crate::link::Connected;

/// An exchange to declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExchangeSpec {
    pub(crate) name: String,
    pub(crate) fanout: bool,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
}

/// A queue's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueKind {
    /// A classic queue, on one node.
    Classic,
    /// A quorum queue, replicated (`x-queue-type: quorum`).
    Quorum,
}

/// A queue to declare, the exchange and binding that feed it, and how to
/// consume it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueSpec {
    pub(crate) name: String,
    pub(crate) kind: QueueKind,
    pub(crate) durable: bool,
    /// Owned by the declaring connection, deleted with it.
    pub(crate) exclusive: bool,
    /// Deleted once its last consumer leaves (oslo's `amqp_auto_delete`).
    pub(crate) auto_delete: bool,
    /// `x-expires`, in milliseconds.
    pub(crate) expires: Option<u32>,
    /// `x-delivery-limit` (quorum queues).
    pub(crate) delivery_limit: Option<u32>,
    /// `x-max-in-memory-length` and `x-max-in-memory-bytes` (quorum queues,
    /// as oslo sends them: RabbitMQ 3 compares them between declarations).
    pub(crate) max_in_memory: (Option<u64>, Option<u64>),
    /// The exchanges to declare before binding.
    pub(crate) exchanges: Vec<ExchangeSpec>,
    /// (exchange, routing key) pairs.
    pub(crate) bindings: Vec<(String, String)>,
    /// `x-cancel-on-ha-failover` on the consumer.
    pub(crate) cancel_on_failover: bool,
}

/// The control exchange, declared by servers.
pub(crate) fn control_exchange(config: &AmqpConfig, name: &str) -> ExchangeSpec {
    ExchangeSpec {
        name: name.to_owned(),
        fanout: false,
        durable: config.durable(),
        auto_delete: config.auto_delete,
    }
}

/// The fanout exchange of a topic (not scoped by the control exchange).
pub(crate) fn fanout_exchange(config: &AmqpConfig, topic: &str) -> ExchangeSpec {
    ExchangeSpec {
        name: format!("{topic}_fanout"),
        fanout: true,
        durable: config.transient_quorum,
        auto_delete: true,
    }
}

/// Where a request to `address` is published: (exchange, routing key).
pub(crate) fn route(address: &Address<'_>) -> Result<(ShortString, ShortString), TransportError> {
    if address.fanout {
        return Ok((short_owned(format!("{}_fanout", address.topic))?, ShortString::from("")));
    }
    let key = match address.server {
        Some(server) => short_owned(format!("{}.{server}", address.topic))?,
        None => short(address.topic)?,
    };
    Ok((short(address.exchange)?, key))
}

fn millis(ttl: Duration) -> u32 {
    u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX)
}

/// A queue shared by the servers of a topic: durable (RabbitMQ 4.3 refuses
/// transient shared queues), classic or quorum.
fn shared_queue(config: &AmqpConfig, name: String, exchange: &str) -> QueueSpec {
    let binding = (exchange.to_owned(), name.clone());
    notification_queue(config, name, vec![binding])
}

/// A notification queue (or a server's shared queue): durable, classic or
/// quorum, bound with `bindings` ((exchange, routing key) pairs) on control
/// exchanges. A notifier declares `<topic>.<priority>` bound with that key,
/// as oslo does, so that notifications wait for their consumers; a pool's
/// queue is named after the pool and bound with every key it listens to.
pub(crate) fn notification_queue(config: &AmqpConfig, name: String, bindings: Vec<(String, String)>) -> QueueSpec {
    let kind = if config.quorum_queues {
        QueueKind::Quorum
    } else {
        QueueKind::Classic
    };
    let mut exchanges: Vec<ExchangeSpec> = Vec::new();
    for (exchange, _) in &bindings {
        if !exchanges.iter().any(|known| &known.name == exchange) {
            exchanges.push(control_exchange(config, exchange));
        }
    }
    QueueSpec {
        bindings,
        exchanges,
        name,
        kind,
        durable: true,
        exclusive: false,
        auto_delete: config.auto_delete,
        expires: config.shared_queue_ttl.map(millis),
        delivery_limit: config.quorum_delivery_limit.filter(|_| kind == QueueKind::Quorum),
        max_in_memory: if kind == QueueKind::Quorum {
            config.quorum_max_in_memory
        } else {
            (None, None)
        },
        cancel_on_failover: config.cancel_on_failover,
    }
}

/// A queue of one process (a server's fanout queue, a client's reply
/// queue): exclusive, or a durable quorum queue that expires unused with
/// `transient_quorum`.
fn private_queue(config: &AmqpConfig, name: String) -> QueueSpec {
    let quorum = config.transient_quorum;
    QueueSpec {
        name,
        kind: if quorum { QueueKind::Quorum } else { QueueKind::Classic },
        durable: quorum,
        exclusive: !quorum,
        auto_delete: false,
        expires: config.transient_queue_ttl.map(millis).filter(|_| quorum),
        // As oslo declares its transient quorum queues: with the quorum
        // limits (memory limits the broker's footprint of a backlog).
        delivery_limit: config.quorum_delivery_limit.filter(|_| quorum),
        max_in_memory: if quorum {
            config.quorum_max_in_memory
        } else {
            (None, None)
        },
        exchanges: Vec::new(),
        bindings: Vec::new(),
        cancel_on_failover: config.cancel_on_failover && quorum,
    }
}

/// What a server on `address` consumes: its three queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerTopology {
    pub(crate) topic_queue: QueueSpec,
    pub(crate) server_queue: QueueSpec,
    pub(crate) fanout_queue: QueueSpec,
}

/// The topology of a server listening on `address` (which names the server).
pub(crate) fn server(config: &AmqpConfig, address: &Address<'_>, server: &str) -> ServerTopology {
    let fanout = fanout_exchange(config, address.topic);
    let mut fanout_queue = private_queue(
        config,
        format!("{}_fanout_{}", address.topic, uuid::Uuid::new_v4().simple()),
    );
    fanout_queue.bindings = vec![(fanout.name.clone(), address.topic.to_owned())];
    fanout_queue.exchanges = vec![fanout];
    ServerTopology {
        topic_queue: shared_queue(config, address.topic.to_owned(), address.exchange),
        server_queue: shared_queue(config, format!("{}.{server}", address.topic), address.exchange),
        fanout_queue,
    }
}

/// A client's reply queue.
pub(crate) fn reply_queue(config: &AmqpConfig) -> QueueSpec {
    private_queue(config, format!("reply_{}", uuid::Uuid::new_v4().simple()))
}

/// A name as an AMQP short string (at most 255 bytes).
pub(crate) fn short(name: &str) -> Result<ShortString, TransportError> {
    ShortString::try_new(name).map_err(|_| too_long(name))
}

/// The same for a name already owned (no copy).
pub(crate) fn short_owned(name: String) -> Result<ShortString, TransportError> {
    if name.len() > usize::from(u8::MAX) {
        return Err(too_long(&name));
    }
    Ok(ShortString::from(name))
}

fn too_long(name: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Other,
        format!("`{name}` is longer than AMQP's 255-byte limit for names"),
    )
}

pub(crate) async fn declare_exchange(
    channel: &Channel,
    spec: &ExchangeSpec,
    passive: bool,
) -> Result<(), TransportError> {
    let kind = if spec.fanout {
        ExchangeKind::Fanout
    } else {
        ExchangeKind::Topic
    };
    let options = ExchangeDeclareOptions {
        passive,
        durable: spec.durable,
        auto_delete: spec.auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(short(&spec.name)?, kind, options, FieldTable::default())
        .await
        .map_err(|error| from_lapin(error, format!("declaring exchange `{}`", spec.name)))
}

/// The queue's arguments, as the broker compares them between declarations.
pub(crate) fn queue_arguments(spec: &QueueSpec) -> FieldTable {
    let mut arguments = FieldTable::default();
    if let Some(expires) = spec.expires {
        // A signed 32-bit integer, as py-amqp (oslo.messaging) sends it.
        arguments.insert(
            "x-expires".into(),
            AMQPValue::LongInt(i32::try_from(expires).unwrap_or(i32::MAX)),
        );
    }
    if spec.kind == QueueKind::Quorum {
        arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    }
    if let Some(limit) = spec.delivery_limit {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(i32::try_from(limit).unwrap_or(i32::MAX)),
        );
    }
    let (length, bytes) = spec.max_in_memory;
    for (name, value) in [("x-max-in-memory-length", length), ("x-max-in-memory-bytes", bytes)] {
        if let Some(value) = value {
            arguments.insert(name.into(), py_amqp_integer(value));
        }
    }
    arguments
}

/// An integer as py-amqp writes it into a field table: 32 bits when it
/// fits, else 64 (the broker compares the types too).
fn py_amqp_integer(value: u64) -> AMQPValue {
    match i32::try_from(value) {
        Ok(value) => AMQPValue::LongInt(value),
        Err(_) => AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX)),
    }
}

/// Declares the queue (`passive`: only checks that it exists, whatever its flags).
pub(crate) async fn declare_queue(channel: &Channel, spec: &QueueSpec, passive: bool) -> Result<(), TransportError> {
    let options = QueueDeclareOptions {
        passive,
        durable: spec.durable,
        exclusive: spec.exclusive,
        auto_delete: spec.auto_delete,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(short(&spec.name)?, options, queue_arguments(spec))
        .await
        .map(|_| ())
        .map_err(|error| from_lapin(error, format!("declaring queue `{}`", spec.name)))
}

/// Binds the queue to its exchanges.
pub(crate) async fn bind_queue(channel: &Channel, spec: &QueueSpec) -> Result<(), TransportError> {
    for (exchange, key) in &spec.bindings {
        channel
            .queue_bind(
                short(&spec.name)?,
                short(exchange)?,
                short(key)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| from_lapin(error, format!("binding queue `{}` to `{exchange}`", spec.name)))?;
    }
    Ok(())
}

/// Whether the broker refused a declaration because the entity exists with
/// other flags.
pub(crate) fn is_precondition_failed(error: &TransportError) -> bool {
    let lapin = std::error::Error::source(error).and_then(|source| source.downcast_ref::<lapin::Error>());
    matches!(lapin.map(lapin::Error::kind), Some(lapin::ErrorKind::ProtocolError(amqp))
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// Whether the broker refused a declaration because the queue is
/// exclusive to another connection.
pub(crate) fn is_resource_locked(error: &TransportError) -> bool {
    let lapin = std::error::Error::source(error).and_then(|source| source.downcast_ref::<lapin::Error>());
    matches!(lapin.map(lapin::Error::kind), Some(lapin::ErrorKind::ProtocolError(amqp))
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED)))
}

/// A private queue's name with a new id in place of its last one
/// (`reply_<id>`, `topic_fanout_<id>`).
pub(crate) fn renamed(name: &str) -> String {
    let prefix = name.rsplit_once('_').map_or(name, |(prefix, _)| prefix);
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub(crate) async fn new_channel(connected: &Connected) -> Result<Channel, TransportError> {
    connected
        .connection
        .create_channel()
        .await
        .map_err(|error| from_lapin(error, "opening a channel"))
}

/// Declares the queue, its exchanges and its bindings, on a channel it
/// returns open. A declaration refused because the entity exists with other
/// flags (a peer configured differently) falls back to using it as it is,
/// with a warning.
pub(crate) async fn declare(connected: &Connected, spec: &QueueSpec) -> Result<Channel, TransportError> {
    let mut channel = new_channel(connected).await?;
    for exchange in &spec.exchanges {
        if let Err(error) = declare_exchange(&channel, exchange, false).await {
            if !is_precondition_failed(&error) {
                return Err(error);
            }
            // A peer declared it with other flags: use it as it is.
            tracing::warn!(exchange = %exchange.name, %error, "the exchange exists with other settings; using it as it is");
            channel = new_channel(connected).await?;
            declare_exchange(&channel, exchange, true).await?;
        }
    }
    if let Err(error) = declare_queue(&channel, spec, false).await {
        if !is_precondition_failed(&error) {
            return Err(error);
        }
        tracing::warn!(queue = %spec.name, %error, "the queue exists with other settings (another peer's configuration); using it as it is");
        channel = new_channel(connected).await?;
        declare_queue(&channel, spec, true).await?;
    }
    bind_queue(&channel, spec).await?;
    Ok(channel)
}

/// The consumer's arguments.
pub(crate) fn consumer_arguments(spec: &QueueSpec) -> FieldTable {
    let mut arguments = FieldTable::default();
    if spec.cancel_on_failover {
        arguments.insert("x-cancel-on-ha-failover".into(), AMQPValue::Boolean(true));
    }
    arguments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Host;

    fn config() -> AmqpConfig {
        AmqpConfig::new(vec![Host::new("h", 5672, "u", "p")])
    }

    #[test]
    fn oslo_names_and_rabbitmq_4_flags() {
        let config = config();
        let address = Address::new("openstack", "compute", Some("host1"), false);
        let topology = server(&config, &address, "host1");
        let control = ExchangeSpec {
            name: "openstack".into(),
            fanout: false,
            durable: false,
            auto_delete: false,
        };
        assert_eq!(topology.topic_queue.exchanges, std::slice::from_ref(&control));
        assert_eq!(topology.topic_queue.name, "compute");
        assert_eq!(
            topology.topic_queue.bindings.first().cloned(),
            Some(("openstack".into(), "compute".into()))
        );
        // No transient non-exclusive queue: shared queues are durable,
        // private ones exclusive.
        for queue in [&topology.topic_queue, &topology.server_queue] {
            assert!(queue.durable && !queue.exclusive, "{queue:?}");
            assert_eq!(queue.kind, QueueKind::Classic);
            assert_eq!(queue.expires, None);
        }
        assert_eq!(topology.server_queue.name, "compute.host1");
        assert_eq!(
            topology.server_queue.bindings.first().cloned(),
            Some(("openstack".into(), "compute.host1".into()))
        );
        let fanout = &topology.fanout_queue;
        assert!(fanout.name.starts_with("compute_fanout_"));
        assert_eq!(fanout.name.len(), "compute_fanout_".len() + 32);
        assert_eq!(fanout.bindings, [("compute_fanout".into(), "compute".into())]);
        assert!(fanout.exclusive && !fanout.durable);
        assert_eq!(
            fanout.exchanges.first().cloned(),
            Some(ExchangeSpec {
                name: "compute_fanout".into(),
                fanout: true,
                durable: false,
                auto_delete: true
            })
        );
        let reply = reply_queue(&config);
        assert!(reply.name.starts_with("reply_") && reply.name.len() == 6 + 32);
        assert!(reply.exclusive && !reply.durable && reply.bindings.is_empty());
    }

    #[test]
    fn routes() {
        let route_of = |server, fanout| {
            let (exchange, key) = route(&Address::new("nova", "compute", server, fanout)).unwrap();
            (exchange.to_string(), key.to_string())
        };
        assert_eq!(route_of(None, false), ("nova".to_owned(), "compute".to_owned()));
        assert_eq!(
            route_of(Some("h1"), false),
            ("nova".to_owned(), "compute.h1".to_owned())
        );
        assert_eq!(route_of(Some("h1"), true), ("compute_fanout".to_owned(), String::new()));
    }

    #[test]
    fn quorum_options() {
        let config = config()
            .quorum_queues(true)
            .transient_quorum(true)
            .quorum_delivery_limit(Some(5))
            .quorum_max_in_memory(Some(100), Some(1 << 32))
            .cancel_on_failover(true);
        let topology = server(&config, &Address::new("openstack", "t", Some("s"), false), "s");
        assert!(topology.topic_queue.exchanges[0].durable);
        let topic = &topology.topic_queue;
        assert!(topic.durable && topic.kind == QueueKind::Quorum && topic.delivery_limit == Some(5));
        let arguments = queue_arguments(topic);
        assert_eq!(arguments.inner().get("x-delivery-limit"), Some(&AMQPValue::LongInt(5)));
        assert_eq!(
            arguments.inner().get("x-max-in-memory-length"),
            Some(&AMQPValue::LongInt(100))
        );
        assert_eq!(
            arguments.inner().get("x-max-in-memory-bytes"),
            Some(&AMQPValue::LongLongInt(1 << 32))
        );
        assert!(
            consumer_arguments(topic)
                .inner()
                .contains_key("x-cancel-on-ha-failover")
        );
        // Transient quorum queues: durable, not exclusive, expiring unused.
        let fanout = &topology.fanout_queue;
        assert!(fanout.durable && !fanout.exclusive && fanout.kind == QueueKind::Quorum);
        assert_eq!(fanout.expires, Some(1_800_000));
        assert!(fanout.exchanges[0].durable);
        // With oslo's quorum limits, as oslo declares them (none until 2026-12-05).
        assert_eq!(fanout.delivery_limit, Some(5));
        assert_eq!(fanout.max_in_memory, (Some(100), Some(1 << 32)));
        let reply = reply_queue(&config);
        assert!(reply.kind == QueueKind::Quorum && !reply.exclusive);
        assert_eq!(reply.max_in_memory, (Some(100), Some(1 << 32)));
        // Exclusive classic queues take none.
        let classic = reply_queue(&config.clone().transient_quorum(false));
        assert_eq!((classic.delivery_limit, classic.max_in_memory), (None, (None, None)));
    }

    #[test]
    fn long_names_are_errors_not_panics() {
        assert!(short(&"x".repeat(256)).is_err());
        assert!(short(&"x".repeat(255)).is_ok());
    }
}
