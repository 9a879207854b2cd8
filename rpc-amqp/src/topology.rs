//! oslo.messaging's rabbit topology: the only place exchange, queue and
//! routing-key names and their flags are derived.
//!
//! | entity | name | flags |
//! |---|---|---|
//! | control exchange | `openstack` (or the target's) | topic; durable with durable/quorum queues |
//! | topic queue | `<topic>` | bound with key `<topic>`; durable with durable/quorum queues |
//! | server queue | `<topic>.<server>` | bound with key `<topic>.<server>`; same flags |
//! | fanout exchange | `<topic>_fanout` | fanout, auto-delete |
//! | fanout queue | `<topic>_fanout_<uuid hex>` | one per server, `x-expires` |
//! | reply queue | `reply_<uuid hex>` | one per client transport, `x-expires`; replies go through the default exchange |

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use rpc_core::transport::Address;
use rpc_core::{TransportError, TransportErrorKind};

use crate::config::AmqpConfig;
use crate::error::from_lapin;

/// An exchange to declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExchangeSpec {
    pub(crate) name: String,
    pub(crate) fanout: bool,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
}

/// A queue to declare, and the binding that feeds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueSpec {
    pub(crate) name: String,
    pub(crate) durable: bool,
    /// `x-expires`, in milliseconds.
    pub(crate) expires: Option<u32>,
    pub(crate) quorum: bool,
    /// (exchange, routing key).
    pub(crate) binding: Option<(String, String)>,
}

/// The control exchange, declared by servers.
pub(crate) fn control_exchange(config: &AmqpConfig, name: &str) -> ExchangeSpec {
    ExchangeSpec {
        name: name.to_owned(),
        fanout: false,
        durable: config.durable(),
        auto_delete: false,
    }
}

/// The fanout exchange of a topic (not scoped by the control exchange).
pub(crate) fn fanout_exchange(topic: &str) -> ExchangeSpec {
    ExchangeSpec {
        name: format!("{topic}_fanout"),
        fanout: true,
        durable: false,
        auto_delete: true,
    }
}

/// Where a request to `address` is published: (exchange, routing key).
pub(crate) fn route(address: &Address<'_>) -> Result<(ShortString, ShortString), TransportError> {
    if address.fanout {
        return Ok((short(&fanout_exchange(address.topic).name)?, ShortString::from("")));
    }
    let key = match address.server {
        Some(server) => short(&format!("{}.{server}", address.topic))?,
        None => short(address.topic)?,
    };
    Ok((short(address.exchange)?, key))
}

fn expires(config: &AmqpConfig) -> Option<u32> {
    config
        .transient_queue_ttl
        .map(|ttl: Duration| u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX))
}

fn shared_queue(config: &AmqpConfig, name: String, exchange: &str) -> QueueSpec {
    QueueSpec {
        binding: Some((exchange.to_owned(), name.clone())),
        name,
        durable: config.durable(),
        expires: config
            .shared_queue_ttl
            .map(|ttl| u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX)),
        quorum: config.quorum_queues,
    }
}

/// What a server on `address` declares: its exchanges and its three queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerTopology {
    pub(crate) exchanges: Vec<ExchangeSpec>,
    pub(crate) topic_queue: QueueSpec,
    pub(crate) server_queue: QueueSpec,
    pub(crate) fanout_queue: QueueSpec,
}

/// The topology of a server listening on `address` (which names the server).
pub(crate) fn server(config: &AmqpConfig, address: &Address<'_>, server: &str) -> ServerTopology {
    let fanout = fanout_exchange(address.topic);
    let fanout_queue = QueueSpec {
        name: format!("{}_fanout_{}", address.topic, uuid::Uuid::new_v4().simple()),
        durable: false,
        expires: expires(config),
        quorum: false,
        binding: Some((fanout.name.clone(), address.topic.to_owned())),
    };
    ServerTopology {
        topic_queue: shared_queue(config, address.topic.to_owned(), address.exchange),
        server_queue: shared_queue(config, format!("{}.{server}", address.topic), address.exchange),
        exchanges: vec![control_exchange(config, address.exchange), fanout],
        fanout_queue,
    }
}

/// A client's reply queue.
pub(crate) fn reply_queue(config: &AmqpConfig) -> QueueSpec {
    QueueSpec {
        name: format!("reply_{}", uuid::Uuid::new_v4().simple()),
        durable: false,
        expires: expires(config),
        quorum: false,
        binding: None,
    }
}

/// A name as an AMQP short string (at most 255 bytes).
pub(crate) fn short(name: &str) -> Result<ShortString, TransportError> {
    ShortString::try_new(name).map_err(|_| {
        TransportError::new(
            TransportErrorKind::Other,
            format!("`{name}` is longer than AMQP's 255-byte limit for names"),
        )
    })
}

pub(crate) async fn declare_exchange(channel: &Channel, spec: &ExchangeSpec) -> Result<(), TransportError> {
    let kind = if spec.fanout {
        ExchangeKind::Fanout
    } else {
        ExchangeKind::Topic
    };
    let options = ExchangeDeclareOptions {
        durable: spec.durable,
        auto_delete: spec.auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(short(&spec.name)?, kind, options, FieldTable::default())
        .await
        .map_err(|error| from_lapin(error, format!("declaring exchange `{}`", spec.name)))
}

pub(crate) async fn declare_queue(channel: &Channel, spec: &QueueSpec) -> Result<(), TransportError> {
    let mut arguments = FieldTable::default();
    if let Some(expires) = spec.expires {
        // A signed 32-bit integer, as py-amqp (oslo.messaging) sends it.
        arguments.insert(
            "x-expires".into(),
            AMQPValue::LongInt(i32::try_from(expires).unwrap_or(i32::MAX)),
        );
    }
    if spec.quorum {
        arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    }
    let options = QueueDeclareOptions {
        durable: spec.durable,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(short(&spec.name)?, options, arguments)
        .await
        .map_err(|error| from_lapin(error, format!("declaring queue `{}`", spec.name)))?;
    if let Some((exchange, key)) = &spec.binding {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Host;

    fn config() -> AmqpConfig {
        AmqpConfig::new(vec![Host::new("h", 5672, "u", "p")])
    }

    #[test]
    fn oslo_names_and_flags() {
        let config = config();
        let address = Address::new("openstack", "compute", Some("host1"), false);
        let topology = server(&config, &address, "host1");
        assert_eq!(
            topology.exchanges,
            [
                ExchangeSpec {
                    name: "openstack".into(),
                    fanout: false,
                    durable: false,
                    auto_delete: false
                },
                ExchangeSpec {
                    name: "compute_fanout".into(),
                    fanout: true,
                    durable: false,
                    auto_delete: true
                },
            ]
        );
        assert_eq!(topology.topic_queue.name, "compute");
        assert_eq!(
            topology.topic_queue.binding,
            Some(("openstack".into(), "compute".into()))
        );
        assert_eq!(topology.topic_queue.expires, None);
        assert!(!topology.topic_queue.durable);
        assert_eq!(topology.server_queue.name, "compute.host1");
        assert_eq!(
            topology.server_queue.binding,
            Some(("openstack".into(), "compute.host1".into()))
        );
        assert!(topology.fanout_queue.name.starts_with("compute_fanout_"));
        assert_eq!(topology.fanout_queue.name.len(), "compute_fanout_".len() + 32);
        assert_eq!(
            topology.fanout_queue.binding,
            Some(("compute_fanout".into(), "compute".into()))
        );
        assert_eq!(topology.fanout_queue.expires, Some(1_800_000));

        let reply = reply_queue(&config);
        assert!(reply.name.starts_with("reply_") && reply.name.len() == 6 + 32);
        assert_eq!(reply.expires, Some(1_800_000));
        assert_eq!(reply.binding, None);
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
    fn durable_and_quorum_options() {
        let config = config().quorum_queues(true);
        let topology = server(&config, &Address::new("openstack", "t", Some("s"), false), "s");
        assert!(topology.exchanges[0].durable);
        assert!(topology.topic_queue.durable && topology.topic_queue.quorum);
        assert!(!topology.fanout_queue.durable && !topology.fanout_queue.quorum);
        let config = config.quorum_queues(false).transient_queue_ttl(None);
        assert_eq!(reply_queue(&config).expires, None);
    }

    #[test]
    fn long_names_are_errors_not_panics() {
        assert!(short(&"x".repeat(256)).is_err());
        assert!(short(&"x".repeat(255)).is_ok());
    }
}
