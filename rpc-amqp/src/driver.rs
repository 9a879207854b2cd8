//! The AMQP driver: rpc-core's transport seam over RabbitMQ.

use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::ShortString;
use rpc_core::transport::{
    Address, DeliveryMode, Driver, ListenOptions, Listener, OutgoingMessage, ReplyQueue, ReplySink, Retry, async_trait,
};
use rpc_core::{Codec, Transport, TransportError, TransportErrorKind};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::AmqpConfig;
use crate::link::Link;
use crate::listener::{AmqpListener, Queues};
use crate::publisher::{Message, Outcome, Publisher};
use crate::topology;

/// Stops the reply consumer (and so closes its channel) when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether an at-least-once publish that failed with `error` goes out again:
/// only after a lost connection (the broker may not have it), as often as
/// the message's [`Retry`] allows.
fn may_republish(message: &OutgoingMessage, error: &TransportError, republished: u32) -> bool {
    message.delivery == DeliveryMode::AtLeastOnce
        && error.kind() == TransportErrorKind::ConnectionLost
        && match message.retry {
            Retry::Never => false,
            Retry::Limited(retries) => republished < retries,
            Retry::Forever => true,
        }
}

/// The longest a reply is retried, whatever the configuration says.
const MAX_REPLY_RETRY_TIMEOUT: Duration = Duration::from_secs(3600);

/// How often a server retries a reply whose queue is missing.
const REPLY_RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// The AMQP transport's [`Driver`]: one supervised connection, reconnected
/// on loss, carrying the publishing lane and every consumer.
///
/// One connection, not oslo.messaging's separate publishing and consuming
/// ones: each lapin connection has an I/O thread of its own, and every
/// thread a call crosses adds a context switch to its latency. The usual
/// reason to separate them (a broker that blocks publishers during a
/// resource alarm stops reading their connection, acknowledgements
/// included) does not help an RPC service, whose replies are publishes too.
#[derive(Debug)]
pub struct AmqpDriver {
    config: Arc<AmqpConfig>,
    publisher: Publisher,
    link: Arc<Link>,
}

impl AmqpDriver {
    /// Connects to the broker (trying each host of the configuration once).
    pub async fn connect(config: AmqpConfig) -> Result<AmqpDriver, rpc_core::Error> {
        let config = Arc::new(config);
        let link = Link::open(Arc::clone(&config), "rpc").await?;
        Ok(AmqpDriver {
            publisher: Publisher::new(Arc::clone(&link), &config),
            link,
            config,
        })
    }

    /// A transport on this driver, with the configuration's codec and control exchange.
    pub fn into_transport(self) -> Transport {
        let codec = self.config.codec;
        let control_exchange = self.config.control_exchange.clone();
        Transport::builder(self)
            .codec(codec)
            .control_exchange(control_exchange)
            .build()
    }

    fn properties(&self, message: &OutgoingMessage) -> BasicProperties {
        let mut properties = BasicProperties::default()
            .with_content_type(message.codec.content_type().into())
            // Persistent where the queues are durable or the sender asks for
            // at-least-once; elsewhere it costs and saves nothing.
            .with_delivery_mode(
                if self.config.durable() || message.delivery == DeliveryMode::AtLeastOnce {
                    2
                } else {
                    1
                },
            );
        if message.codec == Codec::OsloJson {
            properties = properties.with_content_encoding("utf-8".into());
        }
        properties
    }
}

#[async_trait]
impl Driver for AmqpDriver {
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        let (exchange, routing_key) = topology::route(&address)?;
        let properties = self.properties(&message);
        let mut republished = 0;
        let mut backoff = Backoff::new(Duration::from_millis(50), self.config.retry_interval);
        let outcome = loop {
            let outgoing = Message {
                exchange: exchange.clone(),
                routing_key: routing_key.clone(),
                // Fanout to no server is fine; anything else unroutable fails fast.
                mandatory: !address.fanout,
                body: message.body.clone(),
                properties: properties.clone(),
                deadline: message.deadline,
            };
            // A fanout exchange is auto-delete: it may vanish under a publish.
            let published = if address.fanout {
                self.publisher.publish_isolated(outgoing, message.retry).await
            } else {
                self.publisher.publish(outgoing, message.retry).await
            };
            match published {
                Ok(outcome) => break outcome,
                // At-least-once: the broker may not have it; publish it again.
                Err(error) if may_republish(&message, &error, republished) => {
                    republished += 1;
                    tracing::info!(%address, %error, attempt = republished, "publishing again after a lost connection");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(error) => return Err(error),
            }
        };
        match outcome {
            Outcome::Routed => Ok(()),
            // No exchange: no server ever listened. Fanout to nobody is fine.
            Outcome::NoExchange if address.fanout => Ok(()),
            Outcome::Returned | Outcome::NoExchange => Err(TransportError::new(
                TransportErrorKind::Unroutable,
                format!("no queue is bound for {address}"),
            )),
        }
    }

    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        // A missing reply queue may be a caller reconnecting: retry for a while.
        let deadline = Instant::now() + self.config.reply_retry_timeout.min(MAX_REPLY_RETRY_TIMEOUT);
        loop {
            let outgoing = Message {
                exchange: ShortString::from(""),
                routing_key: topology::short(reply_to)?,
                mandatory: true,
                body: message.body.clone(),
                properties: self.properties(&message),
                deadline: None,
            };
            match self.publisher.publish(outgoing, message.retry).await? {
                Outcome::Routed => return Ok(()),
                Outcome::Returned if Instant::now() + REPLY_RETRY_INTERVAL < deadline => {
                    tokio::time::sleep(REPLY_RETRY_INTERVAL).await;
                }
                Outcome::Returned | Outcome::NoExchange => {
                    return Err(TransportError::new(
                        TransportErrorKind::Unroutable,
                        format!("the reply queue `{reply_to}` is gone"),
                    ));
                }
            }
        }
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        let server = address
            .server
            .ok_or_else(|| TransportError::new(TransportErrorKind::Other, "a server listens with a server name"))?;
        let prefetch = match self.config.prefetch {
            Some(cap) => cap.min(options.prefetch),
            None => options.prefetch,
        };
        let queues = Queues::Server {
            topology: Box::new(topology::server(&self.config, &address, server)),
            prefetch,
        };
        let listener = AmqpListener::start(Arc::clone(&self.link), &self.config, queues).await?;
        Ok(Box::new(listener))
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>) -> Result<ReplyQueue, TransportError> {
        let spec = topology::reply_queue(&self.config);
        let name = spec.name.clone();
        let mut listener = AmqpListener::start(Arc::clone(&self.link), &self.config, Queues::Reply(spec)).await?;
        let consumer = tokio::spawn(async move {
            while let Some(next) = listener.next().await {
                match next {
                    Ok(delivery) => sink.deliver(delivery),
                    Err(error) => sink.connection_lost(error),
                }
            }
        });
        Ok(ReplyQueue::new(name, AbortOnDrop(consumer.abort_handle())))
    }

    async fn close(&self) -> Result<(), TransportError> {
        self.link.close();
        Ok(())
    }
}
