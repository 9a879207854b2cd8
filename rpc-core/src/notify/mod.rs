//! Notifications: oslo.messaging's other half, publish/subscribe over the
//! broker.
//!
//! A [`Notifier`] sends notifications: who sent it (`publisher_id`), what
//! happened (`event_type`), how much it matters ([`Priority`]), a payload of
//! any serializable type, and the sender's context. A
//! [`NotificationListener`] receives them on targets (topics) and hands each
//! to the endpoints that handle its priority and pass their
//! [`NotificationFilter`]; endpoints say whether it was
//! [handled or should be requeued](NotificationResult). Listeners may share
//! a topic's notifications, or each [pool](NotificationListenerBuilder::pool)
//! gets them all; a [batch](NotificationListenerBuilder::batch) listener
//! gets them in groups.
//!
//! `#[notifications]` makes an `impl` block or a trait an endpoint whose
//! methods take typed payloads per event type, and, on a trait, a typed
//! notifier whose methods check event types and payloads at compile time.
//!
//! On the wire, notifications are oslo.messaging's, both ways: the fields
//! `message_id`, `publisher_id`, `event_type`, `priority` (upper case),
//! `payload` and `timestamp` (Python's `str(datetime)`, UTC), the context
//! flattened into `_context_<key>`, in the 2.0 envelope (`messagingv2`) or
//! without (`messaging`); published with the routing key
//! `<topic>.<priority>` on the control exchange. `docs/notifications.md` is
//! the guide.

mod endpoint;
mod filter;
mod listener;
mod log_driver;
mod mask;
pub(crate) mod message;
mod notifier;
mod priority;
mod timestamp;

pub use endpoint::{Handler, NotificationEndpoint, NotificationFuture, handler};
pub use filter::NotificationFilter;
pub use listener::{
    DEFAULT_MAX_NOTIFICATION_SIZE, NotificationListener, NotificationListenerBuilder, NotificationStats,
};
pub use message::Notification;
pub use notifier::{DEFAULT_TOPIC, Notifier, NotifyDriver};
pub use priority::{IntoNotificationResult, NotificationError, NotificationResult, Priority};

#[cfg(feature = "macros")]
#[doc(no_inline)]
pub use crate::notifications;
