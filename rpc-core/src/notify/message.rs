//! Notifications as the runtime sees them, between the codec and the
//! listener: oslo.messaging's message fields, checked at decode.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

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
///
/// Cloning it is cheap: its names share one allocation, its payload is
/// shared bytes.
#[derive(Clone)]
pub struct Notification {
    pub(crate) priority: Priority,
    pub(crate) names: Names,
    pub(crate) context: Context,
    pub(crate) payload: Payload,
}

/// The longest notification name accepted (`publisher_id`, `event_type`,
/// `message_id`, `timestamp`, `_unique_id`), in bytes. They are not AMQP
/// names, and oslo bounds none: a `publisher_id` such as
/// `compute.<a fully qualified host name>` may pass 255 bytes, where a
/// notification refused is lost.
pub(crate) const MAX_NOTIFICATION_NAME_LEN: usize = 4096;

/// `value`, when it is at most [`MAX_NOTIFICATION_NAME_LEN`] bytes long.
pub(crate) fn bounded_name<'a>(what: &str, value: &'a str) -> Result<&'a str, CodecError> {
    header::within(what, value, MAX_NOTIFICATION_NAME_LEN)
}

/// A notification's four names (`publisher_id`, `event_type`, `message_id`,
/// `timestamp`), and its `_unique_id`, in one shared text: one allocation
/// when decoded, none when cloned (a listener hands each handler its own
/// copy).
#[derive(Clone)]
pub(crate) struct Names {
    text: Arc<str>,
    /// Where each name ends in `text`; names are at most
    /// [`MAX_NOTIFICATION_NAME_LEN`] bytes, so five fit in a `u16`.
    ends: [u16; 5],
    /// The names the sender left out or sent as null, one bit each by
    /// index: they read as empty.
    missing: u8,
    /// The names the sender gave as another JSON value than a string, one
    /// bit each by index: they read as their JSON text. Neither these nor
    /// the missing ones match a filter pattern (as oslo's, which matches
    /// only strings).
    not_strings: u8,
}

impl Names {
    pub(crate) const PUBLISHER_ID: usize = 0;
    pub(crate) const EVENT_TYPE: usize = 1;
    pub(crate) const MESSAGE_ID: usize = 2;
    pub(crate) const TIMESTAMP: usize = 3;
    /// The id its duplicates share (`_unique_id`); not one of oslo's names.
    pub(crate) const UNIQUE_ID: usize = 4;

    /// The names, each at most `MAX_NOTIFICATION_NAME_LEN` bytes (checked by the caller).
    #[cfg(test)]
    pub(crate) fn new(publisher_id: &str, event_type: &str, message_id: &str, timestamp: &str) -> Names {
        Names::decoded(
            [
                Some(publisher_id),
                Some(event_type),
                Some(message_id),
                Some(timestamp),
                None,
            ],
            0,
        )
    }

    /// The names as decoded (`None`: left out), each at most `MAX_NOTIFICATION_NAME_LEN`
    /// bytes (checked by the caller), in the order of the indexes above;
    /// `not_strings` has a bit set, by index, for each name that was
    /// another JSON value than a string (given here as its JSON text).
    pub(crate) fn decoded(names: [Option<&str>; 5], not_strings: u8) -> Names {
        let mut text = String::with_capacity(names.iter().flatten().map(|name| name.len()).sum());
        let mut ends = [0; 5];
        let mut missing = 0;
        for (index, (end, name)) in ends.iter_mut().zip(names).enumerate() {
            let name = name.unwrap_or_else(|| {
                missing |= 1 << index;
                ""
            });
            debug_assert!(name.len() <= MAX_NOTIFICATION_NAME_LEN);
            text.push_str(name);
            *end = u16::try_from(text.len()).expect("five names of at most 4096 bytes");
        }
        Names {
            text: text.into(),
            ends,
            missing,
            not_strings: not_strings & !missing,
        }
    }

    fn get(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |previous| self.ends[previous]);
        &self.text[usize::from(start)..usize::from(self.ends[index])]
    }

    /// The name at `index`, `None` when the sender left it out or did not
    /// send a string.
    pub(crate) fn given(&self, index: usize) -> Option<&str> {
        ((self.missing | self.not_strings) & (1 << index) == 0).then(|| self.get(index))
    }

    /// The name at `index` as its sender wrote it: `None` when left out
    /// (or null), the JSON value itself when it was not a string.
    fn sent(&self, index: usize) -> Option<Value> {
        let bit = 1 << index;
        if self.missing & bit != 0 {
            return None;
        }
        let text = self.get(index);
        if self.not_strings & bit != 0 {
            // Decoded from JSON text, so it parses; a string if it ever did not.
            if let Ok(value) = serde_json::from_str(text) {
                return Some(value);
            }
        }
        Some(Value::String(text.to_owned()))
    }
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("priority", &self.priority)
            .field("publisher_id", &self.publisher_id())
            .field("event_type", &self.event_type())
            .field("message_id", &self.message_id())
            .field("timestamp", &self.timestamp())
            .field("context", &self.context)
            .field("payload", &self.payload)
            .finish()
    }
}

impl Notification {
    /// The id its copies share (`_unique_id`), when the sender gave one (a
    /// string, not empty): a listener handles one of them.
    pub(crate) fn unique_id(&self) -> Option<&str> {
        self.names.given(Names::UNIQUE_ID).filter(|id| !id.is_empty())
    }

    /// Its priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Who sent it (`compute.host-1`); empty when the sender named nobody.
    pub fn publisher_id(&self) -> &str {
        self.names.get(Names::PUBLISHER_ID)
    }

    /// What happened (`compute.instance.create.end`).
    pub fn event_type(&self) -> &str {
        self.names.get(Names::EVENT_TYPE)
    }

    /// Its id (a UUID, from oslo's `message_id`; a sender's other JSON
    /// value reads as its JSON text).
    pub fn message_id(&self) -> &str {
        self.names.get(Names::MESSAGE_ID)
    }

    /// When it was sent, in UTC, as Python writes it: `2026-12-03
    /// 09:41:07.123456` (a sender's other JSON value reads as its JSON text).
    pub fn timestamp(&self) -> &str {
        self.names.get(Names::TIMESTAMP)
    }

    /// The sender's context, without its secrets.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The payload, still encoded.
    pub fn raw_payload(&self) -> &Payload {
        &self.payload
    }

    /// Its priority (as [`Priority::as_str`] names it: `warn` for a sent
    /// `WARN`) and its four names as the sender wrote them, keyed by
    /// oslo.messaging's names (`priority`, `publisher_id`, `event_type`,
    /// `message_id`, `timestamp`), for printing or passing on: a name the
    /// sender left out (or sent as null) is `null`, one sent as another
    /// JSON value than a string is that value. The accessors above cannot
    /// tell those apart: they read a missing name as empty, another value
    /// as its JSON text.
    pub fn names_as_sent(&self) -> Map<String, Value> {
        let mut names = Map::with_capacity(5);
        names.insert("priority".to_owned(), Value::from(self.priority.as_str()));
        for (key, index) in [
            ("publisher_id", Names::PUBLISHER_ID),
            ("event_type", Names::EVENT_TYPE),
            ("message_id", Names::MESSAGE_ID),
            ("timestamp", Names::TIMESTAMP),
        ] {
            names.insert(key.to_owned(), self.names.sent(index).unwrap_or(Value::Null));
        }
        names
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
    /// The id its copies share (`_unique_id`).
    pub(crate) unique_id: Option<&'a str>,
    /// The names (by [`Names`] index) sent as another JSON value than a
    /// string, given above as their JSON text.
    pub(crate) not_strings: u8,
}

/// A field a notification may leave out (as empty), bounded in length.
fn bounded<'a>(what: &str, value: Option<&'a str>) -> Result<&'a str, CodecError> {
    bounded_name(what, value.unwrap_or_default())
}

/// Checks every field of `raw` and the context's size.
pub(crate) fn check<'a>(
    raw: RawNotification<'a>,
    context: Context,
    payload: Payload,
) -> Result<Notification, CodecError> {
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
    let given = |what: &str, value: Option<&'a str>| value.map(|value| bounded_name(what, value)).transpose();
    let names = Names::decoded(
        [
            given("publisher_id", raw.publisher_id)?,
            Some(event_type),
            given("message_id", raw.message_id)?,
            given("timestamp", raw.timestamp)?,
            // Not one of oslo's names: one this framework cannot keep is no
            // id (the notification is still handled), not a reason to drop it.
            raw.unique_id.and_then(|id| bounded_name("_unique_id", id).ok()),
        ],
        raw.not_strings,
    );
    Ok(Notification {
        priority,
        names,
        context,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    fn notification(raw: RawNotification<'_>) -> Result<Notification, CodecError> {
        check(raw, Context::new(), Codec::OsloJson.encode(&()).unwrap())
    }

    #[test]
    fn each_name_reads_back_as_decoded() {
        let longest = "x".repeat(MAX_NOTIFICATION_NAME_LEN);
        let cases = [
            (
                "compute.host-1",
                "compute.instance.create.end",
                "2b1a",
                "2026-12-03 09:41:07.123456",
            ),
            ("", "e", "", ""),
            (longest.as_str(), longest.as_str(), longest.as_str(), longest.as_str()),
            ("é", "ü.ß", "∑", "2026"),
        ];
        for (publisher_id, event_type, message_id, timestamp) in cases {
            let decoded = notification(RawNotification {
                priority: Some("INFO"),
                publisher_id: Some(publisher_id),
                event_type: Some(event_type),
                message_id: Some(message_id),
                timestamp: Some(timestamp),
                unique_id: Some(message_id),
                not_strings: 0,
            })
            .unwrap();
            let copy = decoded.clone();
            for notification in [&decoded, &copy] {
                assert_eq!(notification.unique_id(), Some(message_id).filter(|id| !id.is_empty()));
                assert_eq!(notification.publisher_id(), publisher_id);
                assert_eq!(notification.event_type(), event_type);
                assert_eq!(notification.message_id(), message_id);
                assert_eq!(notification.timestamp(), timestamp);
            }
        }
    }

    #[test]
    fn the_unique_id_is_read_in_every_format() {
        let context = Context::new();
        let header = NotificationHeader {
            priority: Priority::Info,
            publisher_id: "compute.host-1",
            event_type: "compute.instance.create.end",
            message_id: "2b1a",
            timestamp: "2026-12-03 09:41:07.123456",
            unique_id: "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b",
            context: &context,
        };
        for (codec, envelope) in [
            (Codec::MsgPack, true),
            (Codec::OsloJson, true),
            (Codec::OsloJson, false),
        ] {
            let body = codec.encode_notification(&header, &(), envelope).unwrap();
            let decoded = codec.decode_notification(&body).unwrap();
            assert_eq!(
                decoded.unique_id(),
                Some(header.unique_id),
                "{codec}, envelope {envelope}"
            );
            assert_eq!(decoded.message_id(), "2b1a");
        }
        // A sender's other value than a string, an empty one, one too long
        // to keep, or none: no id, and the notification is still read.
        let too_long = format!(", \"_unique_id\": \"{}\"", "u".repeat(MAX_NOTIFICATION_NAME_LEN + 1));
        for unique_id in [", \"_unique_id\": 7", ", \"_unique_id\": \"\"", &too_long, ""] {
            let body =
                format!(r#"{{"event_type": "e", "priority": "INFO", "payload": {{}}, "message_id": "m"{unique_id}}}"#);
            let decoded = Codec::OsloJson.decode_notification(&body.into()).unwrap();
            assert_eq!(decoded.unique_id(), None, "{unique_id}");
        }
    }

    #[test]
    fn missing_names_are_empty_and_long_ones_refused() {
        let decoded = notification(RawNotification {
            priority: Some("warn"),
            event_type: Some("volume.delete"),
            ..RawNotification::default()
        })
        .unwrap();
        assert_eq!(decoded.priority(), Priority::Warn);
        assert_eq!(
            (decoded.publisher_id(), decoded.message_id(), decoded.timestamp()),
            ("", "", "")
        );
        // Past AMQP's 255 bytes (a publisher on a long host name): kept.
        let publisher = format!("compute.{}", "h".repeat(300));
        let decoded = notification(RawNotification {
            priority: Some("INFO"),
            event_type: Some("e"),
            publisher_id: Some(&publisher),
            ..RawNotification::default()
        })
        .unwrap();
        assert_eq!(decoded.publisher_id(), publisher);
        let too_long = "x".repeat(MAX_NOTIFICATION_NAME_LEN + 1);
        let error = notification(RawNotification {
            priority: Some("INFO"),
            event_type: Some("e"),
            timestamp: Some(&too_long),
            ..RawNotification::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("`timestamp` is 4097 bytes long"), "{error}");
    }

    #[test]
    fn names_as_sent_tell_a_missing_name_from_an_empty_one_and_from_other_values() {
        // oslo's own notifier always sends strings; another sender may not.
        let inner = serde_json::json!({
            "publisher_id": "",
            "event_type": "volume.delete",
            "priority": "WARN",
            "message_id": 7,
            "timestamp": null,
            "payload": {},
        });
        let body = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}).to_string();
        let decoded = Codec::OsloJson.decode_notification(&body.into()).unwrap();
        let expected = serde_json::json!({
            "priority": "warn",
            "publisher_id": "",
            "event_type": "volume.delete",
            "message_id": 7,
            "timestamp": null,
        });
        assert_eq!(Value::Object(decoded.names_as_sent()), expected);
        // The accessors read both the empty and the missing name as empty.
        assert_eq!((decoded.publisher_id(), decoded.timestamp()), ("", ""));
        // Left out altogether reads as null too; a string with JSON in it stays a string.
        let decoded = notification(RawNotification {
            priority: Some("INFO"),
            event_type: Some("e"),
            message_id: Some("7"),
            ..RawNotification::default()
        })
        .unwrap();
        let names = decoded.names_as_sent();
        assert_eq!(
            (&names["publisher_id"], &names["message_id"]),
            (&Value::Null, &Value::from("7"))
        );
    }
}
