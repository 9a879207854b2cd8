//! Which notifications an endpoint gets: oslo.messaging's `NotificationFilter`.

use std::fmt;

use regex::Regex;
use serde_json::Value;

use super::Notification;
use super::message::Names;
use crate::Error;

/// A filter on notifications, by regular expressions, as oslo.messaging's
/// `NotificationFilter`: an endpoint registered with a filter only gets the
/// notifications that match every pattern given.
///
/// Patterns match from the start of the value (Python's `re.match`): `compute`
/// matches `compute.host-1`; anchor with `$` for an exact match. A pattern on
/// a context, metadata or payload key needs the key present, with a string
/// value; a pattern on the publisher id, message id or timestamp fails when
/// the sender left it out, or sent `null` or another value than a string
/// (as oslo's: only strings match).
///
/// ```
/// use rpc_core::notify::NotificationFilter;
///
/// let filter = NotificationFilter::new()
///     .publisher_id(r"^compute\.")?
///     .event_type(r"^compute\.instance\..*\.end$")?
///     .context("project_id", "^5f64")?
///     .payload("state", "^active$")?;
/// # Ok::<(), rpc_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct NotificationFilter {
    publisher_id: Option<Pattern>,
    event_type: Option<Pattern>,
    context: Vec<(String, Pattern)>,
    metadata: Vec<(String, Pattern)>,
    payload: Vec<(String, Pattern)>,
}

/// A pattern as written, and compiled anchored at the start.
#[derive(Clone)]
struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    fn new(what: &str, source: &str) -> Result<Pattern, Error> {
        let regex = Regex::new(&format!("^(?:{source})")).map_err(|error| {
            Error::Config(format!(
                "the {what} pattern `{source}` is not a regular expression: {error}"
            ))
        })?;
        Ok(Pattern {
            source: source.to_owned(),
            regex,
        })
    }

    fn matches(&self, value: Option<&Value>) -> bool {
        matches!(value, Some(Value::String(text)) if self.regex.is_match(text))
    }
}

impl NotificationFilter {
    /// A filter that lets everything through.
    pub fn new() -> NotificationFilter {
        NotificationFilter::default()
    }

    /// Only notifications whose publisher id matches `pattern`.
    pub fn publisher_id(mut self, pattern: &str) -> Result<NotificationFilter, Error> {
        self.publisher_id = Some(Pattern::new("publisher_id", pattern)?);
        Ok(self)
    }

    /// Only notifications whose event type matches `pattern`.
    pub fn event_type(mut self, pattern: &str) -> Result<NotificationFilter, Error> {
        self.event_type = Some(Pattern::new("event_type", pattern)?);
        Ok(self)
    }

    /// Only notifications whose context has `key`, a string matching `pattern`.
    pub fn context(mut self, key: &str, pattern: &str) -> Result<NotificationFilter, Error> {
        self.context.push((key.to_owned(), Pattern::new("context", pattern)?));
        Ok(self)
    }

    /// Only notifications whose metadata (`message_id`, `timestamp`) has
    /// `key`, matching `pattern`.
    pub fn metadata(mut self, key: &str, pattern: &str) -> Result<NotificationFilter, Error> {
        self.metadata.push((key.to_owned(), Pattern::new("metadata", pattern)?));
        Ok(self)
    }

    /// Only notifications whose payload is a map with `key`, a string
    /// matching `pattern`.
    pub fn payload(mut self, key: &str, pattern: &str) -> Result<NotificationFilter, Error> {
        self.payload.push((key.to_owned(), Pattern::new("payload", pattern)?));
        Ok(self)
    }

    /// Whether `notification` passes.
    pub fn matches(&self, notification: &Notification) -> bool {
        let names = &notification.names;
        let text = |index| names.given(index).map(|value| Value::String(value.to_owned()));
        if let Some(pattern) = &self.publisher_id {
            // A notification that names no publisher matches no pattern.
            if !names
                .given(Names::PUBLISHER_ID)
                .is_some_and(|id| pattern.regex.is_match(id))
            {
                return false;
            }
        }
        if let Some(pattern) = &self.event_type {
            if !pattern.regex.is_match(notification.event_type()) {
                return false;
            }
        }
        let context = notification.context();
        if !self
            .context
            .iter()
            .all(|(key, pattern)| pattern.matches(context.get_value(key)))
        {
            return false;
        }
        for (key, pattern) in &self.metadata {
            let value = match key.as_str() {
                "message_id" => text(Names::MESSAGE_ID),
                "timestamp" => text(Names::TIMESTAMP),
                _ => None,
            };
            if !pattern.matches(value.as_ref()) {
                return false;
            }
        }
        if self.payload.is_empty() {
            return true;
        }
        // Decoded only when a pattern needs it.
        let Ok(Value::Object(payload)) = notification.payload::<Value>() else {
            return false;
        };
        self.payload
            .iter()
            .all(|(key, pattern)| pattern.matches(payload.get(key)))
    }
}

impl fmt::Debug for NotificationFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = |patterns: &[(String, Pattern)]| {
            patterns
                .iter()
                .map(|(key, pattern)| format!("{key}={}", pattern.source))
                .collect::<Vec<_>>()
        };
        f.debug_struct("NotificationFilter")
            .field(
                "publisher_id",
                &self.publisher_id.as_ref().map(|pattern| &pattern.source),
            )
            .field("event_type", &self.event_type.as_ref().map(|pattern| &pattern.source))
            .field("context", &pairs(&self.context))
            .field("metadata", &pairs(&self.metadata))
            .field("payload", &pairs(&self.payload))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Priority;
    use crate::{Codec, Context};

    fn notification(publisher_id: &str, event_type: &str, payload: Value) -> Notification {
        let mut context = Context::new();
        context.insert("project_id", "5f643cfc").unwrap();
        context.insert("roles", vec!["admin"]).unwrap();
        Notification {
            priority: Priority::Info,
            names: Names::new(publisher_id, event_type, "2b1a", "2026-12-03 09:41:07.123456"),
            context,
            payload: Codec::OsloJson.encode(&payload).unwrap(),
        }
    }

    #[test]
    fn a_name_left_out_matches_no_pattern_as_in_oslo() {
        // oslo's filter matches strings only: a publisher_id, message_id or
        // timestamp sent as null (or not at all) fails every pattern on it,
        // even one that matches the empty string; an empty one is a string.
        let mut left_out = notification("", "compute.instance.create.end", serde_json::json!({}));
        left_out.names = Names::decoded([None, Some("compute.instance.create.end"), None, None, None], 0);
        let empty = notification("", "compute.instance.create.end", serde_json::json!({}));
        assert_eq!(left_out.publisher_id(), "", "it still reads as empty");
        let filter = |build: fn(NotificationFilter) -> Result<NotificationFilter, Error>| {
            build(NotificationFilter::new()).unwrap()
        };
        for pattern in [
            filter(|f| f.publisher_id(".*")),
            filter(|f| f.publisher_id("^$")),
            filter(|f| f.metadata("message_id", ".*")),
            filter(|f| f.metadata("timestamp", ".*")),
        ] {
            assert!(!pattern.matches(&left_out), "{pattern:?}");
        }
        assert!(filter(|f| f.publisher_id("^$")).matches(&empty));
        assert!(filter(|f| f.event_type("compute")).matches(&left_out));
        assert!(NotificationFilter::new().matches(&left_out));
    }

    #[test]
    fn a_null_publisher_id_from_python_matches_no_pattern() {
        // What oslo's Notifier sends when it was made without a publisher_id.
        let inner = serde_json::json!({
            "message_id": "2b1a",
            "publisher_id": null,
            "event_type": "compute.instance.create.end",
            "priority": "INFO",
            "payload": {},
            "timestamp": "2026-12-03 09:41:07.123456",
        });
        let body = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}).to_string();
        let decoded = Codec::OsloJson.decode_notification(&body.into()).unwrap();
        assert!(!NotificationFilter::new().publisher_id(".*").unwrap().matches(&decoded));
        // Null reads as empty, not as the text `null`.
        assert_eq!(decoded.publisher_id(), "");
        assert!(
            NotificationFilter::new()
                .metadata("message_id", "2b")
                .unwrap()
                .matches(&decoded)
        );
    }

    #[test]
    fn names_that_are_not_strings_are_read_and_match_no_pattern() {
        // oslo dispatches such a notification (its filters match strings
        // only); before, the decoder refused it, and it was lost.
        let inner = serde_json::json!({
            "message_id": 7,
            "publisher_id": 42,
            "event_type": "compute.instance.create.end",
            "priority": "INFO",
            "payload": {},
            "timestamp": {"at": 1},
        });
        let body = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}).to_string();
        let decoded = Codec::OsloJson.decode_notification(&body.into()).unwrap();
        assert_eq!(
            (decoded.publisher_id(), decoded.message_id(), decoded.timestamp()),
            ("42", "7", r#"{"at":1}"#)
        );
        assert!(NotificationFilter::new().matches(&decoded));
        assert!(!NotificationFilter::new().publisher_id(".*").unwrap().matches(&decoded));
        assert!(!NotificationFilter::new().publisher_id("42").unwrap().matches(&decoded));
        assert!(
            !NotificationFilter::new()
                .metadata("message_id", ".*")
                .unwrap()
                .matches(&decoded)
        );
        assert!(
            !NotificationFilter::new()
                .metadata("timestamp", ".*")
                .unwrap()
                .matches(&decoded)
        );
        // A string, escapes and all, still reads as its text and matches.
        let inner = r#"{"publisher_id": "compute.\u0068ost", "event_type": "e", "priority": "INFO"}"#;
        let body = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner}).to_string();
        let decoded = Codec::OsloJson.decode_notification(&body.into()).unwrap();
        assert_eq!(decoded.publisher_id(), "compute.host");
        assert!(
            NotificationFilter::new()
                .publisher_id("^compute")
                .unwrap()
                .matches(&decoded)
        );
    }

    #[test]
    fn every_pattern_must_match_from_the_start() {
        let active = notification(
            "compute.host-1",
            "compute.instance.create.end",
            serde_json::json!({"state": "active", "n": 1}),
        );
        let filter = |build: fn(NotificationFilter) -> Result<NotificationFilter, Error>| {
            build(NotificationFilter::new()).unwrap()
        };
        assert!(NotificationFilter::new().matches(&active));
        assert!(filter(|f| f.publisher_id("compute")).matches(&active));
        assert!(
            !filter(|f| f.publisher_id("host")).matches(&active),
            "re.match anchors at the start"
        );
        assert!(!filter(|f| f.publisher_id("compute$")).matches(&active));
        assert!(filter(|f| f.event_type(r"compute\.instance\..*\.end")).matches(&active));
        assert!(filter(|f| f.context("project_id", "5f6")).matches(&active));
        assert!(!filter(|f| f.context("project_id", "abc")).matches(&active));
        assert!(
            !filter(|f| f.context("user_id", ".*")).matches(&active),
            "a missing key never matches"
        );
        assert!(
            !filter(|f| f.context("roles", ".*")).matches(&active),
            "a list is not a string"
        );
        assert!(filter(|f| f.metadata("timestamp", "2026-12")).matches(&active));
        assert!(filter(|f| f.metadata("message_id", "2b")).matches(&active));
        assert!(filter(|f| f.payload("state", "^active$")).matches(&active));
        assert!(!filter(|f| f.payload("state", "^error$")).matches(&active));
        assert!(
            !filter(|f| f.payload("n", ".*")).matches(&active),
            "a number is not a string"
        );
        let not_a_map = notification("compute.host-1", "x", serde_json::json!([1]));
        assert!(!filter(|f| f.payload("state", ".*")).matches(&not_a_map));
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let error = NotificationFilter::new().event_type("compute.(").unwrap_err();
        assert!(error.to_string().contains("compute.("), "{error}");
    }
}
