//! Notifications as the runtime sees them, between the codec and the
//! listener: oslo.messaging's message fields, checked at decode.

use serde::de::DeserializeOwned;

use super::Priority;
use crate::header;
use crate::{CodecError, Context, Payload};

/// A notification, as a listener receives it.
///
/// The fields are oslo.messaging's: who sent it (`publisher_id`, such as
/// `compute.host-1`), what happened (`event_type`, such as
/// `compute.instance.create.end`), its [`Priority`], its id and time (the
/// `metadata` of oslo's handlers), the sender's [`Context`] (secrets
/// removed by the sender), and a payload still in its wire encoding, decoded
/// by [`payload`](Notification::payload) into the type the handler wants.
#[derive(Clone, Debug)]
pub struct Notification {
    pub(crate) priority: Priority,
    pub(crate) publisher_id: String,
    pub(crate) event_type: String,
    pub(crate) message_id: String,
    pub(crate) timestamp: String,
    pub(crate) context: Context,
    pub(crate) payload: Payload,
}

impl Notification {
    /// Its priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Who sent it (`compute.host-1`); empty when the sender named nobody.
    pub fn publisher_id(&self) -> &str {
        &self.publisher_id
    }

    /// What happened (`compute.instance.create.end`).
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// Its id (a UUID, from oslo's `message_id`).
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// When it was sent, in UTC, as Python writes it: `2026-12-03 09:41:07.123456`.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The sender's context, without its secrets.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The payload, still encoded.
    pub fn raw_payload(&self) -> &Payload {
        &self.payload
    }

    /// The payload decoded as `T` (a typed struct, or
    /// [`Value`](serde_json::Value) for any payload).
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.payload.decode()
    }
}

/// A notification's fields on their way out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotificationHeader<'a> {
    pub(crate) priority: Priority,
    pub(crate) publisher_id: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) timestamp: &'a str,
    pub(crate) unique_id: &'a str,
    pub(crate) context: &'a Context,
}

/// A notification's fields as decoded, before any check.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RawNotification<'a> {
    pub(crate) priority: Option<&'a str>,
    pub(crate) publisher_id: Option<&'a str>,
    pub(crate) event_type: Option<&'a str>,
    pub(crate) message_id: Option<&'a str>,
    pub(crate) timestamp: Option<&'a str>,
}

/// A field a notification may leave out (as empty), bounded in length.
fn bounded(what: &str, value: Option<&str>) -> Result<String, CodecError> {
    header::bounded(what, value.unwrap_or_default()).map(str::to_owned)
}

/// Checks every field of `raw` and the context's size.
pub(crate) fn check(raw: RawNotification<'_>, context: Context, payload: Payload) -> Result<Notification, CodecError> {
    let priority = raw
        .priority
        .ok_or_else(|| CodecError::new("the notification has no `priority`"))?;
    let priority = Priority::from_name(priority)
        .ok_or_else(|| CodecError::new(format_args!("unknown priority `{}`", priority.escape_debug())))?;
    let event_type = bounded("event_type", raw.event_type)?;
    if event_type.is_empty() {
        return Err(CodecError::new("the notification has no `event_type`"));
    }
    header::check_context(&context)?;
    Ok(Notification {
        priority,
        publisher_id: bounded("publisher_id", raw.publisher_id)?,
        event_type,
        message_id: bounded("message_id", raw.message_id)?,
        timestamp: bounded("timestamp", raw.timestamp)?,
        context,
        payload,
    })
}
