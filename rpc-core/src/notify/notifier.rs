//! Sending notifications: oslo.messaging's `Notifier`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::message::NotificationHeader;
use super::{Priority, log_driver, timestamp};
use crate::ids::Id;
use crate::metrics::NotifierMetrics;
use crate::transport::{DeliveryMode, NotificationRoute, OutgoingMessage};
use crate::{Codec, Context, Error, Retry, Transport};

/// The topic notifications go to by default (oslo's `[oslo_messaging_notifications] topics`).
pub const DEFAULT_TOPIC: &str = "notifications";

/// How a notifier sends, by oslo.messaging's driver names
/// (`[oslo_messaging_notifications] driver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotifyDriver {
    /// `messagingv2`: over the transport, in oslo's 2.0 envelope (the default).
    #[default]
    MessagingV2,
    /// `messaging`: over the transport, oslo's 1.0 format (no envelope), for
    /// old consumers. Always JSON.
    Messaging,
    /// `log`: written to the log (`tracing`) at the priority's level, not
    /// sent; as oslo's, without the context and with secrets masked.
    Log,
    /// `noop`: dropped.
    Noop,
}

impl NotifyDriver {
    /// The driver oslo.messaging calls `name`.
    pub fn from_name(name: &str) -> Option<NotifyDriver> {
        match name {
            "messagingv2" => Some(NotifyDriver::MessagingV2),
            "messaging" => Some(NotifyDriver::Messaging),
            "log" => Some(NotifyDriver::Log),
            "noop" => Some(NotifyDriver::Noop),
            _ => None,
        }
    }

    /// oslo.messaging's name for the driver.
    pub const fn name(self) -> &'static str {
        match self {
            NotifyDriver::MessagingV2 => "messagingv2",
            NotifyDriver::Messaging => "messaging",
            NotifyDriver::Log => "log",
            NotifyDriver::Noop => "noop",
        }
    }

    /// Whether it sends over the transport (`messagingv2`, `messaging`);
    /// `log` and `noop` need no broker.
    pub const fn uses_transport(self) -> bool {
        matches!(self, NotifyDriver::MessagingV2 | NotifyDriver::Messaging)
    }
}

impl fmt::Display for NotifyDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sends notifications, as oslo.messaging's `Notifier`.
///
/// A notification says who sent it (`publisher_id`), what happened
/// (`event_type`), how much it matters ([`Priority`]), and carries a
/// payload of any serializable type and the sender's [`Context`] (its
/// secrets removed). It is published on each of the notifier's topics
/// (default `notifications`) with the routing key `<topic>.<priority>` on the
/// control exchange, where it waits in the queue of that name for its
/// consumers.
///
/// Notifications are JSON by default (oslo's `messagingv2`), because their
/// consumers (ceilometer, billing, audit tools) are often Python services the
/// sender does not know; [`codec(Codec::MsgPack)`](Notifier::codec) is the
/// native format, for Rust consumers only. Listeners read both.
///
/// ```
/// use rpc_core::notify::Notifier;
/// use rpc_core::{Context, json};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_core::Error> {
/// # let transport = rpc_core::transport::memory::Broker::new().transport();
/// let notifier = Notifier::new(transport, "compute.host-1");
/// let ctx = Context::new().with_request_id("req-42");
/// notifier
///     .info(&ctx, "compute.instance.create.end", &json!({"instance_id": "9f1c", "state": "active"}))
///     .await?;
/// // Another publisher id for some notifications, as oslo's `prepare()`:
/// notifier.prepare().publisher_id("compute.host-2").warn(&ctx, "compute.instance.delete.start", &json!({})).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Notifier {
    transport: Transport,
    publisher_id: Arc<str>,
    topics: Arc<[String]>,
    exchange: Option<Arc<str>>,
    /// Where each notification goes, made once: for each topic in turn, a
    /// route per priority (in [`Priority::ALL`]'s order).
    routes: Arc<[NotificationRoute]>,
    /// Its series, by route.
    metrics: NotifierMetrics,
    /// Each notification goes through each in turn.
    drivers: Arc<[NotifyDriver]>,
    codec: Codec,
    retry: Retry,
}

/// One method per priority, each a shorthand for [`Notifier::notify`].
macro_rules! priority_methods {
    ($($(#[$doc:meta])* $method:ident => $priority:ident,)*) => {
        $(
            $(#[$doc])*
            pub async fn $method<P: Serialize + ?Sized>(
                &self,
                ctx: &Context,
                event_type: &str,
                payload: &P,
            ) -> Result<(), Error> {
                self.notify(ctx, Priority::$priority, event_type, payload).await
            }
        )*
    };
}

impl Notifier {
    /// A notifier on `transport` that says `publisher_id` sent its
    /// notifications (oslo's convention: `<service>.<host>`).
    pub fn new(transport: Transport, publisher_id: impl Into<String>) -> Notifier {
        Notifier {
            transport,
            publisher_id: publisher_id.into().into(),
            topics: Arc::from([DEFAULT_TOPIC.to_owned()]),
            exchange: None,
            routes: Arc::from([]),
            metrics: NotifierMetrics::default(),
            drivers: Arc::from([NotifyDriver::default()]),
            codec: Codec::OsloJson,
            retry: Retry::default(),
        }
        .with_routes()
    }

    /// The routes of its topics in its exchange (the transport's control
    /// exchange unless set).
    fn with_routes(mut self) -> Notifier {
        let exchange = self.exchange.as_deref().unwrap_or(self.transport.control_exchange());
        self.routes = self
            .topics
            .iter()
            .flat_map(|topic| {
                Priority::ALL
                    .into_iter()
                    .map(move |priority| NotificationRoute::new(exchange, topic.as_str(), priority.as_str()))
            })
            .collect();
        self.metrics = NotifierMetrics::new(self.routes.len());
        self
    }

    /// Where the route of `priority` notifications on the topic at `topic` is.
    fn route_index(topic: usize, priority: Priority) -> usize {
        topic * Priority::ALL.len() + priority as usize
    }

    /// The route of `priority` notifications on the topic at `topic`.
    fn route(&self, topic: usize, priority: Priority) -> &NotificationRoute {
        &self.routes[Notifier::route_index(topic, priority)]
    }

    /// A copy to adjust for some notifications (oslo's `prepare()`): the
    /// setters below apply to the copy only.
    pub fn prepare(&self) -> Notifier {
        self.clone()
    }

    /// Says `publisher_id` sent the notifications.
    pub fn publisher_id(mut self, publisher_id: impl Into<String>) -> Notifier {
        self.publisher_id = publisher_id.into().into();
        self
    }

    /// Sends on each of `topics` (default `notifications`).
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Notifier {
        self.topics = topics.into_iter().map(Into::into).collect::<Vec<_>>().into();
        self.with_routes()
    }

    /// Sends on `exchange` instead of the transport's control exchange.
    pub fn exchange(mut self, exchange: impl Into<String>) -> Notifier {
        self.exchange = Some(exchange.into().into());
        self.with_routes()
    }

    /// Sends with `driver` (default [`NotifyDriver::MessagingV2`]).
    pub fn driver(self, driver: NotifyDriver) -> Notifier {
        self.drivers([driver])
    }

    /// Sends with each of `drivers` in turn, as oslo's multi-valued
    /// `driver` option does: `[MessagingV2, Log]` publishes each
    /// notification and logs it. None at all is [`NotifyDriver::Noop`].
    pub fn drivers(mut self, drivers: impl IntoIterator<Item = NotifyDriver>) -> Notifier {
        self.drivers = drivers.into_iter().collect();
        self
    }

    /// Encodes with `codec` (default [`Codec::OsloJson`]; see the type's docs).
    pub fn codec(mut self, codec: Codec) -> Notifier {
        self.codec = codec;
        self
    }

    /// How hard to try while the broker is unreachable, and how often to
    /// publish again a notification whose connection was lost before the
    /// broker confirmed it (default: until it answers, as oslo; the
    /// transport bounds each wait).
    pub fn retry(mut self, retry: Retry) -> Notifier {
        self.retry = retry;
        self
    }

    /// The transport it sends on.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends a notification of `priority`, through each of its drivers.
    ///
    /// Fails when the event type is empty or a name is over 4096 bytes, when
    /// the payload cannot be encoded, or when the transport fails on a topic
    /// (the other topics, and the other drivers, are still tried): with the
    /// first error.
    pub async fn notify<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        priority: Priority,
        event_type: &str,
        payload: &P,
    ) -> Result<(), Error> {
        if let Err(error) = self.check(event_type) {
            if self.sends() {
                self.refused(priority, &error);
            }
            return Err(error);
        }
        let context = ctx.redacted();
        // A version 4 UUID as oslo makes, from the thread's generator (no
        // system call per notification, as `Uuid::new_v4` would make),
        // written on the stack (no `fmt`, no allocation).
        let mut buffer = uuid::Uuid::encode_buffer();
        let message_id = uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .hyphenated()
            .encode_lower(&mut buffer);
        let timestamp = timestamp::now();
        // One message for every driver, as oslo's: the same id and time.
        let header = NotificationHeader {
            priority,
            publisher_id: &self.publisher_id,
            event_type,
            message_id,
            timestamp: &timestamp,
            // Each copy a messaging driver sends gets its own (`send`).
            unique_id: "",
            context: &context,
        };
        let mut failed = None;
        for &driver in self.drivers.iter() {
            let done = match driver {
                NotifyDriver::Noop => Ok(()),
                NotifyDriver::Log => log_driver::log(&header, payload),
                NotifyDriver::MessagingV2 => self.send(ctx, &header, payload, self.codec, true).await,
                NotifyDriver::Messaging => self.send(ctx, &header, payload, Codec::OsloJson, false).await,
            };
            if let Err(error) = done {
                failed.get_or_insert(error);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Whether one of its drivers sends over the transport.
    fn sends(&self) -> bool {
        self.drivers.iter().any(|driver| driver.uses_transport())
    }

    fn check(&self, event_type: &str) -> Result<(), Error> {
        check_name("event_type", event_type)?;
        if event_type.is_empty() {
            return Err(Error::InvalidNotification("the event type is empty".to_owned()));
        }
        check_name("publisher_id", &self.publisher_id)
    }

    /// Counts a notification refused before it was sent, on each topic.
    fn refused(&self, priority: Priority, error: &Error) {
        for (topic, name) in self.topics.iter().enumerate() {
            let route = Notifier::route_index(topic, priority);
            self.metrics.sent(route, name, priority, Some(error.kind_name()));
        }
    }

    /// Encodes the notification as a messaging driver sends it and
    /// publishes it on each topic. Each copy has a `_unique_id` of its own,
    /// as oslo gives each send: oslo's listeners take a second message with
    /// a `_unique_id` they acknowledged for a duplicate, and drop it (a
    /// listener on two of the topics would lose one copy).
    async fn send<P: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        header: &NotificationHeader<'_>,
        payload: &P,
        codec: Codec,
        envelope: bool,
    ) -> Result<(), Error> {
        let priority = header.priority;
        let bodies: Result<Vec<Bytes>, Error> = self
            .topics
            .iter()
            .map(|_| {
                let unique_id = Id::next();
                let header = NotificationHeader {
                    unique_id: unique_id.as_str(),
                    ..*header
                };
                codec
                    .encode_notification(&header, payload, envelope)
                    .map_err(|source| Error::Encode {
                        what: "the notification",
                        source,
                    })
            })
            .collect();
        let bodies = bodies.inspect_err(|error| self.refused(priority, error))?;
        let headers = crate::client::lifecycle_headers(crate::client::outgoing_trace(ctx).as_ref(), None);
        let mut failed = None;
        for ((topic, name), body) in self.topics.iter().enumerate().zip(bodies) {
            let route = self.route(topic, priority);
            // Persistent, and published again after a lost connection (as
            // `retry` allows), as oslo's notifications are: they wait in a
            // durable queue for their consumer.
            let message = OutgoingMessage::new(body, codec, None, self.retry)
                .with_headers(headers.clone())
                .with_delivery(DeliveryMode::AtLeastOnce);
            let sent = self.transport.driver().notify(route, message).await;
            let index = Notifier::route_index(topic, priority);
            self.metrics
                .sent(index, name, priority, sent.as_ref().err().map(|_| "transport"));
            if let Err(error) = sent {
                tracing::warn!(%route, event_type = header.event_type, %error, "could not send a notification");
                failed.get_or_insert(error);
            }
        }
        failed.map_or(Ok(()), |error| Err(Error::Transport(error)))
    }

    priority_methods! {
        /// Sends an `audit` notification.
        audit => Audit,
        /// Sends a `debug` notification.
        debug => Debug,
        /// Sends an `info` notification.
        info => Info,
        /// Sends a `warn` notification.
        warn => Warn,
        /// Sends an `error` notification.
        error => Error,
        /// Sends a `critical` notification.
        critical => Critical,
        /// Sends a `sample` notification.
        sample => Sample,
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("publisher_id", &self.publisher_id)
            .field("topics", &self.topics)
            .field("exchange", &self.exchange)
            .field("drivers", &self.drivers)
            .field("codec", &self.codec)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

fn check_name(what: &str, value: &str) -> Result<(), Error> {
    super::message::bounded_name(what, value)
        .map(drop)
        .map_err(|error| Error::InvalidNotification(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::Broker;

    fn expected(exchange: &str, topic: &str, priority: Priority) -> NotificationRoute {
        NotificationRoute::new(exchange, topic, priority.as_str())
    }

    #[test]
    fn each_topic_and_priority_has_its_route() {
        let transport = Broker::new().transport();
        let control = transport.control_exchange().to_owned();
        let notifier = Notifier::new(transport, "compute.host-1");
        for priority in Priority::ALL {
            assert_eq!(
                *notifier.route(0, priority),
                expected(&control, DEFAULT_TOPIC, priority)
            );
        }
        // Topics and the exchange set later remake the routes, in either order.
        let notifier = notifier.topics(["monitor", "billing"]).exchange("nova");
        let other_order = Notifier::new(Broker::new().transport(), "compute.host-1")
            .exchange("nova")
            .topics(["monitor", "billing"]);
        for (index, topic) in ["monitor", "billing"].into_iter().enumerate() {
            for priority in Priority::ALL {
                assert_eq!(*notifier.route(index, priority), expected("nova", topic, priority));
                assert_eq!(*other_order.route(index, priority), expected("nova", topic, priority));
            }
        }
        assert_eq!(notifier.routes.len(), 2 * Priority::ALL.len());
    }
}
