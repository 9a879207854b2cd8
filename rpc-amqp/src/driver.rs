//! The AMQP driver: rpc-core's transport seam over RabbitMQ.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::BasicProperties;
use rpc_core::transport::{
    Address, DeliveryMode, Driver, DriverStats, ListenOptions, Listener, NotificationRoute, OutgoingMessage, ReplyName,
    ReplyQueue, ReplySink, Retry, async_trait,
};
use rpc_core::{Codec, Transport, TransportError, TransportErrorKind};

use crate::backoff::Backoff;
use crate::config::AmqpConfig;
use crate::gone::GoneQueues;
use crate::link::Link;
use crate::listener::{AmqpListener, ConsumerStats, QueueConsumer, ReplyConsumer};
use crate::publisher::{self, Message, Outcome, Publisher, UnconfirmedKind};
use crate::replies::{self, Replies, Reply, reply_window};
use crate::topology;

/// The publishes of one at-least-once message after the first: a message
/// whose publish failed with a lost connection (the broker may not have it)
/// goes out again, as often as its [`Retry`] allows, after a backoff.
struct Republish {
    republished: u32,
    backoff: Backoff,
}

impl Republish {
    fn new(config: &AmqpConfig) -> Republish {
        Republish {
            republished: 0,
            backoff: Backoff::new(Duration::from_millis(50), config.retry_interval),
        }
    }

    /// Whether `message`, whose publish to `to` failed with `error`, goes
    /// out again; if so, once the backoff has passed.
    async fn after(
        &mut self,
        message: &OutgoingMessage,
        error: &TransportError,
        to: &(dyn fmt::Display + Sync),
    ) -> bool {
        let again = message.delivery == DeliveryMode::AtLeastOnce
            && error.kind() == TransportErrorKind::ConnectionLost
            && match message.retry {
                Retry::Never => false,
                Retry::Limited(retries) => self.republished < retries,
                Retry::Forever => true,
            };
        if again {
            self.republished += 1;
            tracing::info!(%to, %error, attempt = self.republished, "publishing again after a lost connection");
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
        again
    }
}

/// The AMQP transport's [`Driver`]: a publishing connection and, once a
/// server listens, a consuming connection, each supervised and reconnected
/// on loss.
///
/// Servers consume on a connection of their own, as RabbitMQ advises and
/// oslo.messaging does: during a memory or disk alarm the broker stops
/// reading connections that publish, and one that also consumed could not
/// acknowledge, so a server could not even drain. Replies are consumed on
/// the publishing connection: without acknowledgements, they flow during an
/// alarm too, and a call's request and reply then cross one I/O thread, not
/// two (a client-only process has one connection). `single_connection` puts
/// servers' consumers on it as well.
#[derive(Debug)]
pub struct AmqpDriver {
    config: Arc<AmqpConfig>,
    publisher: Arc<Publisher>,
    /// Confirmed replies, published again as their failures allow.
    replies: Replies,
    /// Servers' consuming connection, opened when the first server listens.
    consume: tokio::sync::OnceCell<Arc<Link>>,
    consumers: Arc<ConsumerStats>,
    /// Reply queues found gone, shared with the unconfirmed channel's
    /// watcher, which finds unconfirmed replies returned.
    gone: Arc<GoneQueues>,
    /// Notification queues declared on the current connection.
    declared: Mutex<Declared>,
}

/// The notification queues declared on one connection: routing keys by
/// exchange, looked up without allocating.
#[derive(Debug, Default)]
struct Declared {
    generation: u64,
    keys: HashMap<String, HashSet<String>>,
}

impl Declared {
    /// Forgets the queues of an older connection.
    fn on(&mut self, generation: u64) -> &mut Declared {
        if self.generation != generation {
            *self = Declared {
                generation,
                keys: HashMap::new(),
            };
        }
        self
    }

    fn contains(&self, exchange: &str, key: &str) -> bool {
        self.keys.get(exchange).is_some_and(|keys| keys.contains(key))
    }

    fn forget(&mut self, exchange: &str, key: &str) {
        if let Some(keys) = self.keys.get_mut(exchange) {
            keys.remove(key);
        }
    }
}

impl AmqpDriver {
    /// Connects to the broker: the first connection tries the hosts with the
    /// reconnection backoff for at most `startup_timeout`.
    pub async fn connect(config: AmqpConfig) -> Result<AmqpDriver, rpc_core::Error> {
        if config.quorum_queues && config.auto_delete {
            // RabbitMQ refuses auto-delete quorum queues; the declaration's
            // error would read as a queue that exists with other settings.
            return Err(rpc_core::Error::Config(
                "`auto_delete` (`amqp_auto_delete`) cannot go with `quorum` (`rabbit_quorum_queue`): RabbitMQ refuses auto-delete quorum queues".to_owned(),
            ));
        }
        let config = Arc::new(config);
        if !config.confirm_replies && config.transient_quorum {
            tracing::warn!(
                "confirm_replies=false with transient_quorum: a quorum reply queue refuses a message without returning it, so replies it refuses are lost without a trace"
            );
        }
        let publish = Link::open(Arc::clone(&config), "publish", config.startup_timeout).await?;
        let gone = Arc::new(GoneQueues::new(reply_window(&config)));
        let publisher = Arc::new(Publisher::new(publish, &config, Arc::clone(&gone)));
        Ok(AmqpDriver {
            replies: Replies::new(Arc::clone(&publisher), Arc::clone(&gone), &config),
            publisher,
            consume: tokio::sync::OnceCell::new(),
            consumers: Arc::default(),
            gone,
            declared: Mutex::default(),
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
        if !message.headers.is_empty() {
            properties = properties.with_headers(crate::headers::to_table(&message.headers));
        }
        properties
    }

    /// Whether `message` goes out without waiting for the broker's confirm:
    /// a call's request (its reply proves it routed) in the default
    /// at-most-once mode, to classic queues (a quorum queue may refuse a
    /// message between leaders, and the confirm says so), when a client
    /// listens for replies to report a returned request to, unless the
    /// configuration asks for confirms (`confirm_calls`). With a reply queue
    /// that outlives the connection (`transient_quorum`) a lost connection
    /// does not fail the calls waiting, so only the confirm tells a request
    /// lost with it: confirmed, it fails at once; unconfirmed, its call
    /// would wait out its timeout.
    fn unconfirmed(&self, address: &Address<'_>, message: &OutgoingMessage) -> bool {
        !self.config.confirm_calls
            && !self.config.quorum_queues
            && !self.config.transient_quorum
            && !address.fanout
            && message.delivery == DeliveryMode::AtMostOnce
            && self.publisher.unconfirmed.can_report()
    }

    /// Whether `message` is a cast whose client opted out of confirms
    /// (`Client::confirm_casts(false)`): it goes out on the unconfirmed
    /// channel, and returns once written. At-least-once casts keep their
    /// confirms (a cast lost before its confirm is published again), and
    /// fanout casts (their exchange may vanish under them, which would close
    /// the channel other unconfirmed publishes share).
    fn cast_unconfirmed(&self, address: &Address<'_>, message: &OutgoingMessage) -> bool {
        !message.confirm && message.call_id.is_none() && message.delivery == DeliveryMode::AtMostOnce && !address.fanout
    }

    /// Servers' consuming connection, opened on first use.
    async fn consuming(&self) -> Result<Arc<Link>, TransportError> {
        let link = self
            .consume
            .get_or_try_init(|| async {
                let publish = self.publisher.link();
                if self.config.single_connection {
                    return Ok(Arc::clone(publish));
                }
                // The broker is reachable (waiting for a reconnection under
                // way, one more attempt at most): connect once more.
                publish.connected(Retry::Limited(1)).await?;
                Link::open(Arc::clone(&self.config), "consume", Duration::ZERO).await
            })
            .await?;
        Ok(Arc::clone(link))
    }

    /// A listener's prefetch per queue: what it asks, within the configured cap.
    fn prefetch(&self, options: &ListenOptions) -> u16 {
        match self.config.prefetch {
            Some(cap) => cap.min(options.prefetch),
            None => options.prefetch,
        }
        .max(1)
    }

    /// Consumes `queues` on the consuming connection.
    async fn start_listener(&self, queues: Vec<QueueConsumer>) -> Result<Box<dyn Listener>, TransportError> {
        let listener = AmqpListener::start(
            self.consuming().await?,
            Arc::clone(&self.config),
            Arc::clone(&self.consumers),
            queues,
        )
        .await?;
        Ok(Box::new(listener))
    }

    fn declared(&self) -> std::sync::MutexGuard<'_, Declared> {
        self.declared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes a notification once, its queue declared first. A queue
    /// deleted since it was declared is declared again, once. (The
    /// names are made for each attempt: copies kept for a second one
    /// would cost more than remaking them in the rare case it happens.)
    async fn notify_once(&self, route: &NotificationRoute, message: &OutgoingMessage) -> Result<(), TransportError> {
        // The declarations within a publish's time: one waits for a
        // reconnection, and a blocked connection writes no frame at all.
        let give_up = self.publisher.give_up_at(message.deadline, message.retry).await?;
        for _ in 0..2 {
            let routing_key = topology::short_owned(route.routing_key())?;
            let declared = self.declare_notification_queue(route, routing_key.as_str(), message.retry);
            match tokio::time::timeout_at(give_up, declared).await {
                Ok(declared) => declared?,
                Err(_) => return Err(publisher::not_sent_in_time(self.publisher.link().blocked())),
            }
            let outgoing = Message {
                exchange: topology::short(&route.exchange)?,
                routing_key,
                mandatory: true,
                body: message.body.clone(),
                properties: self.properties(message),
                deadline: message.deadline,
            };
            match self.publisher.publish(outgoing, message.retry).await? {
                Outcome::Routed => return Ok(()),
                Outcome::Returned | Outcome::NoExchange => {
                    self.declared().forget(&route.exchange, &route.routing_key());
                }
            }
        }
        Err(TransportError::new(
            TransportErrorKind::Unroutable,
            format!("no queue is bound for the notification route {route}"),
        ))
    }

    /// Declares the queue a notification on `route` waits in, once per
    /// connection (oslo's notifier does the same).
    /// `key` is the route's routing key.
    async fn declare_notification_queue(
        &self,
        route: &NotificationRoute,
        key: &str,
        retry: Retry,
    ) -> Result<(), TransportError> {
        let connected = self.publisher.link().connected(retry).await?;
        let exchange = route.exchange.as_str();
        if self.declared().on(connected.generation).contains(exchange, key) {
            return Ok(());
        }
        let spec = topology::notification_queue(
            &self.config,
            key.to_owned(),
            vec![(exchange.to_owned(), key.to_owned())],
        );
        // Not while the broker blocks publishers: the channel's opening
        // would wait in lapin, unwritten, for the whole alarm.
        self.publisher.link().unblocked().await;
        let channel = topology::declare(&connected, &spec).await?;
        let _ = channel.close(200, "declared".into()).await;
        self.declared()
            .on(connected.generation)
            .keys
            .entry(exchange.to_owned())
            .or_default()
            .insert(key.to_owned());
        Ok(())
    }
}

#[async_trait]
impl Driver for AmqpDriver {
    async fn send(&self, address: Address<'_>, mut message: OutgoingMessage) -> Result<(), TransportError> {
        // The first attempt takes the names and properties; an attempt after
        // it (at-least-once, after a lost connection: rare) makes them again.
        // Only a message that may be published again keeps its body.
        let mut first = Some((topology::route(&address)?, self.properties(&message)));
        let cast_unconfirmed = self.cast_unconfirmed(&address, &message);
        let unconfirmed = self.unconfirmed(&address, &message);
        let unconfirmed = message.call_id.take().filter(|_| unconfirmed);
        let mut republish = Republish::new(&self.config);
        let outcome = loop {
            let ((exchange, routing_key), properties) = match first.take() {
                Some(parts) => parts,
                None => (topology::route(&address)?, self.properties(&message)),
            };
            let body = if message.delivery == DeliveryMode::AtLeastOnce {
                message.body.clone()
            } else {
                std::mem::take(&mut message.body)
            };
            let outgoing = Message {
                exchange,
                routing_key,
                // Fanout to no server is fine; anything else unroutable fails fast.
                mandatory: !address.fanout,
                body,
                properties,
                deadline: message.deadline,
            };
            // A fanout exchange is auto-delete: it may vanish under a publish.
            let published = if address.fanout {
                self.publisher.publish_isolated(outgoing, message.retry).await
            } else if let Some(call_id) = unconfirmed.as_deref() {
                let kind = UnconfirmedKind::Request { call_id };
                self.publisher.publish_unconfirmed(outgoing, kind, message.retry).await
            } else if cast_unconfirmed {
                self.publisher
                    .publish_unconfirmed(outgoing, UnconfirmedKind::Cast, message.retry)
                    .await
            } else {
                self.publisher.publish(outgoing, message.retry).await
            };
            match published {
                Ok(outcome) => break outcome,
                // At-least-once: the broker may not have it; publish it again.
                Err(error) => {
                    if !republish.after(&message, &error, &address).await {
                        return Err(error);
                    }
                }
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
        if self.gone.is_gone(reply_to) {
            return Err(replies::gone(reply_to));
        }
        let reply = Reply {
            reply_to: reply_to.to_owned(),
            routing_key: topology::short(reply_to)?,
            properties: self.properties(&message),
            retry: message.retry,
            expiration: message.expiration(),
            final_reply: message.final_reply,
            body: message.body,
        };
        if !self.config.confirm_replies {
            // Opted out of confirms: once written, it is the broker's; a
            // returned one is counted and logged by the channel's watcher.
            let kind = UnconfirmedKind::Reply;
            return self
                .publisher
                .publish_unconfirmed(reply.message(), kind, reply.retry)
                .await
                .map(drop);
        }
        // Published again as its failures allow (one too big, refused by
        // the publisher, is not): see `replies`.
        self.replies.publish(reply).await
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        let server = address
            .server
            .ok_or_else(|| TransportError::new(TransportErrorKind::Other, "a server listens with a server name"))?;
        let limit = self.prefetch(options);
        let topology = topology::server(&self.config, &address, server);
        let queues = vec![
            QueueConsumer {
                spec: topology.topic_queue,
                prefetch: Some(limit),
                delete_on_close: false,
                renamed: None,
            },
            QueueConsumer {
                spec: topology.server_queue,
                prefetch: Some(limit),
                delete_on_close: false,
                renamed: None,
            },
            QueueConsumer {
                spec: topology.fanout_queue,
                prefetch: Some(limit.div_ceil(8)),
                delete_on_close: true,
                renamed: None,
            },
        ];
        self.start_listener(queues).await
    }

    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        // Notifications are at-least-once: one interrupted by a lost
        // connection (the broker may not have it) goes out again once
        // reconnected, as its `Retry` allows; a listener may see it twice,
        // as with oslo, whose listeners drop the copy by its `_unique_id`.
        let mut republish = Republish::new(&self.config);
        loop {
            let Err(error) = self.notify_once(route, &message).await else {
                return Ok(());
            };
            if !republish.after(&message, &error, route).await {
                return Err(error);
            }
        }
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let limit = self.prefetch(options);
        if let Some(batch) = options.batch.filter(|batch| *batch > usize::from(limit)) {
            tracing::warn!(
                prefetch = limit,
                batch,
                "the transport's prefetch (`prefetch`, oslo's `rabbit_qos_prefetch_count`) is below the listener's batch size: batches are cut to it, as oslo cuts them"
            );
        }
        let binding = |route: &NotificationRoute| (route.exchange.clone(), route.routing_key());
        let specs = match pool {
            Some(pool) => vec![topology::notification_queue(
                &self.config,
                pool.to_owned(),
                routes.iter().map(binding).collect(),
            )],
            None => routes
                .iter()
                .map(|route| topology::notification_queue(&self.config, route.routing_key(), vec![binding(route)]))
                .collect(),
        };
        let queues = specs
            .into_iter()
            .map(|spec| QueueConsumer {
                spec,
                prefetch: Some(limit),
                delete_on_close: false,
                renamed: None,
            })
            .collect();
        self.start_listener(queues).await
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError> {
        // The first call of a transport starts its reply queue: during an
        // outage it waits for the broker as its `retry` allows, within its
        // timeout, as its publish would (it failed at once, after one
        // attempt, until 2026-12-05; a caller that gives up drops the wait).
        self.publisher.link().connected(retry).await?;
        let spec = topology::reply_queue(&self.config);
        let name = ReplyName::new(&spec.name);
        self.publisher.unconfirmed.report_to(&sink);
        let consumer = ReplyConsumer::start(
            Arc::clone(self.publisher.link()),
            Arc::clone(&self.config),
            Arc::clone(&self.consumers),
            spec,
            name.clone(),
            sink,
        )
        .await?;
        Ok(ReplyQueue::renamable(name, consumer))
    }

    async fn close(&self) -> Result<(), TransportError> {
        // Replies waiting for their queue (a caller reconnecting) first:
        // each is bounded by its caller's deadline or the reply window.
        self.replies.settled().await;
        self.publisher.link().close();
        if let Some(consume) = self.consume.get() {
            consume.close();
        }
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.publisher.link().is_up() && self.consume.get().is_none_or(|consume| consume.is_up())
    }

    fn stats(&self) -> DriverStats {
        let mut stats = DriverStats::default();
        stats.reconnections = self.publisher.link().reconnections();
        if let Some(consume) = self.consume.get() {
            if !Arc::ptr_eq(consume, self.publisher.link()) {
                stats.reconnections += consume.reconnections();
            }
        }
        stats.consumer_cancels = self.consumers.cancels.load(Ordering::Relaxed);
        stats.blocked = self.publisher.link().blocked().is_some();
        let counts = self.publisher.unconfirmed.counts();
        stats.unconfirmed = counts.published.load(Ordering::Relaxed);
        stats.returned = counts.returned.load(Ordering::Relaxed);
        stats.acknowledged = self.consumers.acks.acknowledged.load(Ordering::Relaxed);
        stats.ack_frames = self.consumers.acks.frames.load(Ordering::Relaxed);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Host;

    #[tokio::test]
    async fn quorum_queues_cannot_be_auto_delete() {
        let config = AmqpConfig::new(vec![Host::new("127.0.0.1", 1, "u", "p")])
            .quorum_queues(true)
            .auto_delete(true);
        match AmqpDriver::connect(config).await {
            Err(rpc_core::Error::Config(reason)) => assert!(reason.contains("auto-delete quorum"), "{reason}"),
            other => panic!("{:?}", other.map(drop)),
        }
    }
}
