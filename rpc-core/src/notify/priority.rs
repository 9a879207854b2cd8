//! Priorities, and what a handler says it did with a notification.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A notification's priority: oslo.messaging's seven.
///
/// On the wire the priority is upper case in the message (`"INFO"`) and
/// lower case in the routing key (`notifications.info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// `audit`: an auditable event.
    Audit,
    /// `debug`.
    Debug,
    /// `info`: most of OpenStack's events (`compute.instance.create.end`).
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
    /// `critical`.
    Critical,
    /// `sample`: a metering sample.
    Sample,
}

impl Priority {
    /// Every priority, in oslo's order.
    pub const ALL: [Priority; 7] = [
        Priority::Audit,
        Priority::Debug,
        Priority::Info,
        Priority::Warn,
        Priority::Error,
        Priority::Critical,
        Priority::Sample,
    ];

    /// The lower-case name: a handler method's name, the routing key's suffix.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Audit => "audit",
            Priority::Debug => "debug",
            Priority::Info => "info",
            Priority::Warn => "warn",
            Priority::Error => "error",
            Priority::Critical => "critical",
            Priority::Sample => "sample",
        }
    }

    /// The upper-case name, as the message's `priority` field carries it.
    pub const fn as_upper(self) -> &'static str {
        match self {
            Priority::Audit => "AUDIT",
            Priority::Debug => "DEBUG",
            Priority::Info => "INFO",
            Priority::Warn => "WARN",
            Priority::Error => "ERROR",
            Priority::Critical => "CRITICAL",
            Priority::Sample => "SAMPLE",
        }
    }

    /// The priority named `name`, in any case (`"info"`, `"INFO"`);
    /// `warning` is read as [`Priority::Warn`], as Python's logging names it.
    pub fn from_name(name: &str) -> Option<Priority> {
        if name.eq_ignore_ascii_case("warning") {
            return Some(Priority::Warn);
        }
        Priority::ALL
            .into_iter()
            .find(|priority| priority.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = Error;

    fn from_str(name: &str) -> Result<Priority, Error> {
        Priority::from_name(name).ok_or_else(|| Error::InvalidNotification(format!("unknown priority `{name}`")))
    }
}

/// What a handler did with a notification (oslo's `NotificationResult`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NotificationResult {
    /// Done with it: the notification is acknowledged.
    #[default]
    Handled,
    /// Deliver it again later (when the listener allows requeueing;
    /// otherwise it is acknowledged and the request logged).
    Requeue,
}

/// Why a handler did not handle a notification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotificationError {
    message: String,
    undecodable: bool,
}

impl NotificationError {
    /// The handler failed: the notification is requeued when the listener
    /// allows it (an exception in oslo), and acknowledged otherwise.
    pub fn failed(message: impl fmt::Display) -> NotificationError {
        NotificationError {
            message: message.to_string(),
            undecodable: false,
        }
    }

    /// The payload does not decode as the handler's type: trying again
    /// cannot help, so the notification is rejected without requeue (to the
    /// queue's dead-letter exchange, if it has one).
    pub fn undecodable(message: impl fmt::Display) -> NotificationError {
        NotificationError {
            message: message.to_string(),
            undecodable: true,
        }
    }

    /// Whether the payload did not decode.
    pub fn is_undecodable(&self) -> bool {
        self.undecodable
    }
}

/// What a notification handler may return: `()`, a [`NotificationResult`],
/// or a `Result` of either, whose error (logged) means
/// [`NotificationResult::Requeue`], as an exception does in oslo.
pub trait IntoNotificationResult {
    /// The result, or the failure.
    fn into_notification_result(self) -> Result<NotificationResult, NotificationError>;
}

impl IntoNotificationResult for () {
    fn into_notification_result(self) -> Result<NotificationResult, NotificationError> {
        Ok(NotificationResult::Handled)
    }
}

impl IntoNotificationResult for NotificationResult {
    fn into_notification_result(self) -> Result<NotificationResult, NotificationError> {
        Ok(self)
    }
}

impl<T: IntoNotificationResult, E: fmt::Display> IntoNotificationResult for Result<T, E> {
    fn into_notification_result(self) -> Result<NotificationResult, NotificationError> {
        match self {
            Ok(value) => value.into_notification_result(),
            Err(error) => Err(NotificationError::failed(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_both_ways() {
        for priority in Priority::ALL {
            assert_eq!(Priority::from_name(priority.as_str()), Some(priority));
            assert_eq!(Priority::from_name(priority.as_upper()), Some(priority));
        }
        assert_eq!(Priority::from_name("WARNING"), Some(Priority::Warn));
        assert_eq!(Priority::from_name("loud"), None);
        assert!("loud".parse::<Priority>().is_err());
    }

    #[test]
    fn results() {
        assert_eq!(().into_notification_result(), Ok(NotificationResult::Handled));
        let failed: Result<(), &str> = Err("boom");
        assert_eq!(
            failed.into_notification_result(),
            Err(NotificationError::failed("boom"))
        );
        let requeue: Result<NotificationResult, String> = Ok(NotificationResult::Requeue);
        assert_eq!(requeue.into_notification_result(), Ok(NotificationResult::Requeue));
    }
}
