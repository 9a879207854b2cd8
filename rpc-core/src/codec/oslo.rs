//! oslo.messaging's JSON format (`application/json`), as its rabbit driver
//! writes it.
//!
//! Every message is the 2.0 envelope `{"oslo.version": "2.0", "oslo.message":
//! "<inner JSON, as a string>"}`; bodies without the envelope (oslo's "1.0"
//! format) are read as the inner message itself.
//!
//! - request: `{"method", "args", "namespace"?, "version"?, "_msg_id"?,
//!   "_reply_q"?, "_timeout"?, "_unique_id", "_context_<key>"...}`: the context
//!   is flattened into one `_context_` key per entry;
//! - reply: `{"result", "failure", "ending", "_msg_id", "_unique_id"}`, where
//!   `failure` is `null` or a JSON string describing the exception: `{"class",
//!   "module", "message", "tb", "args", "kwargs"}`. Ours also carry
//!   `rpc_code` and `rpc_data`, which Python ignores, so that Rust callers get
//!   the error code and typed application errors back.
//!
//! Python's `json` writes `NaN` and `Infinity` for non-finite floats, which
//! strict JSON forbids: they are read as `null`.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::envelope;
use crate::header::{self, RawHeader};
use crate::message::{Payload, Reply, ReplyAddress, ReplyOut, Request, RequestHeader, UndecodableRequest};
use crate::notify::message::{self, Names, Notification, NotificationHeader, RawNotification};
use crate::transport::headers::{TRACEPARENT, TRACESTATE};
use crate::{Codec, CodecError, Context, ErrorCode, RemoteError};

const CONTEXT_PREFIX: &str = "_context_";

pub(super) fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    serde_json::to_vec(value).map_err(CodecError::new)
}

pub(super) fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let text = std::str::from_utf8(bytes).map_err(CodecError::new)?;
    serde_json::from_str(&sanitize_non_finite(text)).map_err(CodecError::new)
}

/// Whether an encoded value is a JSON object.
pub(super) fn is_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{')
}

/// Replaces Python's bare `NaN`, `Infinity` and `-Infinity` tokens (outside
/// strings) with `null`.
pub(super) fn sanitize_non_finite(text: &str) -> Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut copied, mut i) = (false, false, 0, 0);
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        // Bytes, not `text[i..]`: `i` may be inside a multi-byte character.
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|token| bytes[i..].starts_with(token.as_bytes()));
        match (byte, token) {
            (b'"', _) => {
                in_string = true;
                i += 1;
            }
            (_, Some(token)) => {
                out.push_str(&text[copied..i]);
                out.push_str("null");
                i += token.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn raw(bytes: &[u8]) -> Result<&RawValue, CodecError> {
    let text = std::str::from_utf8(bytes).map_err(CodecError::new)?;
    serde_json::from_str(text).map_err(CodecError::new)
}

struct RequestOut<'a> {
    header: &'a RequestHeader<'a>,
    args: &'a RawValue,
}

impl Serialize for RequestOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let header = self.header;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("method", header.method)?;
        map.serialize_entry("args", self.args)?;
        if let Some(namespace) = header.namespace {
            map.serialize_entry("namespace", namespace)?;
        }
        if let Some(version) = header.version {
            map.serialize_entry("version", version)?;
        }
        if let (Some(msg_id), Some(reply_to)) = (header.msg_id, header.reply_to) {
            map.serialize_entry("_msg_id", msg_id)?;
            map.serialize_entry("_reply_q", reply_to)?;
            map.serialize_entry("_timeout", &header.call_monitor)?;
        }
        map.serialize_entry("_unique_id", header.unique_id)?;
        for (key, value) in header.context.iter() {
            // oslo 18.3 carries the trace in the context: this request's
            // span replaces the one it came with (a context passed on).
            if header.trace.is_some() && matches!(key, TRACEPARENT | TRACESTATE) {
                continue;
            }
            map.serialize_entry(&format_args!("{CONTEXT_PREFIX}{key}"), value)?;
        }
        if let Some(trace) = header.trace {
            map.serialize_entry(&format_args!("{CONTEXT_PREFIX}{TRACEPARENT}"), &trace.traceparent())?;
            if let Some(state) = trace.state() {
                map.serialize_entry(&format_args!("{CONTEXT_PREFIX}{TRACESTATE}"), state)?;
            }
        }
        map.end()
    }
}

pub(super) fn encode_request<A: Serialize + ?Sized>(
    header: &RequestHeader<'_>,
    args: &A,
) -> Result<Vec<u8>, CodecError> {
    // serde_json's own output: valid JSON, not parsed again to prove it.
    let args = serde_json::value::to_raw_value(args).map_err(CodecError::new)?;
    if !is_object(args.get().as_bytes()) {
        return Err(CodecError::new(
            "arguments must serialize as a map of argument name to value",
        ));
    }
    envelope::seal(&RequestOut { header, args: &args })
}

/// A string of the inner message, borrowed from it unless it holds escapes
/// (keys and header fields: no allocation each).
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text<'a>, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A request's inner message.
#[derive(Default)]
struct RequestIn<'a> {
    method: Option<Text<'a>>,
    args: Option<&'a RawValue>,
    namespace: Option<Text<'a>>,
    version: Option<Text<'a>>,
    msg_id: Option<Text<'a>>,
    reply_to: Option<Text<'a>>,
    timeout: Option<f64>,
    unique_id: Option<Text<'a>>,
    context: Map<String, Value>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RequestIn<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RequestIn<'a>, D::Error> {
        struct RequestVisitor;
        impl<'de> Visitor<'de> for RequestVisitor {
            type Value = RequestIn<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an oslo.messaging request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestIn<'de>, A::Error> {
                let mut request = RequestIn::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match &*key {
                        "method" => request.method = Some(map.next_value()?),
                        "args" => request.args = Some(map.next_value()?),
                        "namespace" => request.namespace = map.next_value()?,
                        "version" => request.version = map.next_value()?,
                        "_msg_id" => request.msg_id = map.next_value()?,
                        "_reply_q" => request.reply_to = map.next_value()?,
                        "_timeout" => request.timeout = map.next_value()?,
                        "_unique_id" => request.unique_id = map.next_value()?,
                        key => match key.strip_prefix(CONTEXT_PREFIX) {
                            Some(name) => {
                                let value = map.next_value()?;
                                request.context.insert(name.to_owned(), value);
                            }
                            None => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(request)
            }
        }
        deserializer.deserialize_map(RequestVisitor)
    }
}

/// Only the reply address, read leniently from a request that did not decode.
#[derive(Deserialize)]
struct ReplyAddressIn {
    #[serde(rename = "_msg_id", default)]
    msg_id: Option<String>,
    #[serde(rename = "_reply_q", default)]
    reply_to: Option<String>,
}

pub(super) fn reply_msg_id(body: &[u8]) -> Option<String> {
    let inner = envelope::open(body).ok()?;
    serde_json::from_str::<ReplyAddressIn>(&inner).ok()?.msg_id
}

pub(super) fn reply_address(body: &[u8]) -> Option<ReplyAddress> {
    let inner = envelope::open(body).ok()?;
    let address: ReplyAddressIn = serde_json::from_str(&inner).ok()?;
    header::reply_address(address.msg_id.as_deref(), address.reply_to.as_deref())
}

pub(super) fn decode_request(body: &Bytes) -> Result<Request, UndecodableRequest> {
    let fail = |reason: CodecError| UndecodableRequest {
        reason,
        reply: reply_address(body),
    };
    let inner = envelope::open(body).map_err(fail)?;
    let request: RequestIn<'_> = serde_json::from_str(&inner).map_err(|error| {
        fail(CodecError::new(format_args!(
            "the message is not a request object: {error}"
        )))
    })?;
    let context = Context::from(request.context);
    let raw = RawHeader {
        method: request.method.as_deref(),
        namespace: request.namespace.as_deref(),
        version: request.version.as_deref(),
        msg_id: request.msg_id.as_deref(),
        reply_to: request.reply_to.as_deref(),
        call_monitor: request.timeout,
        unique_id: request.unique_id.as_deref(),
    };
    let header = header::check(raw, &context).map_err(fail)?;
    let args = match request.args {
        Some(args) if args.get() != "null" => Bytes::copy_from_slice(args.get().as_bytes()),
        _ => Bytes::from_static(b"{}"),
    };
    Ok(Request::new(header, context, Payload::new(Codec::OsloJson, args)))
}

/// oslo's failure description, plus our code and data.
#[derive(Serialize)]
struct FailureOut<'a> {
    class: &'a str,
    module: &'a str,
    message: &'a str,
    tb: &'a [String],
    args: [&'a str; 1],
    kwargs: Map<String, Value>,
    rpc_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpc_data: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct FailureIn {
    #[serde(default)]
    class: String,
    #[serde(default)]
    module: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    tb: Vec<String>,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    kwargs: Value,
    #[serde(default)]
    rpc_code: Option<String>,
    /// `null` is data too (a method's error may be `()`): kept, not `None`.
    #[serde(default, deserialize_with = "present")]
    rpc_data: Option<Box<RawValue>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

fn failure_text(error: &RemoteError) -> Result<String, CodecError> {
    // Data from another codec (a forwarded error) is re-encoded; data that
    // JSON cannot hold is left out rather than cost the caller its reply.
    let data = error.data_in(Codec::OsloJson);
    let rpc_data = data.as_deref().map(|data| raw(data.as_bytes())).transpose()?;
    serde_json::to_string(&FailureOut {
        class: error.class(),
        module: error.module(),
        message: error.message(),
        tb: error.traceback(),
        args: [error.message()],
        kwargs: Map::new(),
        rpc_code: error.code().as_str(),
        rpc_data,
    })
    .map_err(CodecError::new)
}

impl FailureIn {
    fn into_remote(self) -> RemoteError {
        let code = match (&self.rpc_code, self.module.as_str(), self.class.as_str()) {
            (Some(code), _, _) => ErrorCode::from_name(code),
            (None, "oslo_messaging.rpc.dispatcher", "NoSuchMethod") => ErrorCode::NoSuchMethod,
            (None, "oslo_messaging.rpc.dispatcher", "UnsupportedVersion") => ErrorCode::UnsupportedVersion,
            (None, "oslo_policy.policy", "PolicyNotAuthorized") => ErrorCode::Forbidden,
            _ => ErrorCode::Other,
        };
        let data = match self.rpc_data {
            Some(data) => Some(Payload::new(
                Codec::OsloJson,
                Bytes::from(data.get().as_bytes().to_vec()),
            )),
            // A Python exception: keep its arguments.
            None if self.rpc_code.is_none() => Codec::OsloJson
                .encode(&serde_json::json!({"args": self.args, "kwargs": self.kwargs}))
                .ok(),
            None => None,
        };
        let error = RemoteError::new(code, self.class, self.message)
            .with_module(self.module)
            .with_traceback(self.tb);
        match data {
            Some(data) => error.with_payload(data),
            None => error,
        }
    }
}

struct ReplyInner<'a> {
    reply: &'a ReplyOut<'a>,
    result: Option<&'a RawValue>,
    failure: Option<String>,
    unique_id: &'a str,
}

impl Serialize for ReplyInner<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("result", &self.result)?;
        map.serialize_entry("failure", &self.failure)?;
        map.serialize_entry("ending", &self.reply.ending)?;
        map.serialize_entry("_msg_id", self.reply.msg_id)?;
        map.serialize_entry("_unique_id", self.unique_id)?;
        map.end()
    }
}

pub(super) fn encode_reply(reply: &ReplyOut<'_>) -> Result<Vec<u8>, CodecError> {
    // A result from another codec (a forwarded or cached one) is re-encoded.
    let result = reply
        .result
        .map(|payload| payload.in_codec(Codec::OsloJson))
        .transpose()?;
    let result = result.as_deref().map(|payload| raw(payload.as_bytes())).transpose()?;
    let failure = reply.failure.map(failure_text).transpose()?;
    let unique_id = crate::ids::Id::next();
    envelope::seal(&ReplyInner {
        reply,
        result,
        failure,
        unique_id: unique_id.as_str(),
    })
}

#[derive(Deserialize)]
struct ReplyIn<'a> {
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    failure: Option<String>,
    /// oslo: a reply without `ending` is not the last one.
    #[serde(default)]
    ending: bool,
    #[serde(rename = "_msg_id")]
    msg_id: String,
}

pub(super) fn decode_reply(body: &Bytes) -> Result<Reply, CodecError> {
    let inner = envelope::open(body)?;
    let reply: ReplyIn<'_> = serde_json::from_str(&inner)
        .map_err(|error| CodecError::new(format_args!("the message is not a reply object: {error}")))?;
    let failure = match reply.failure {
        None => None,
        Some(text) => {
            let failure: FailureIn = serde_json::from_str(&sanitize_non_finite(&text)).unwrap_or_else(|_| FailureIn {
                class: "RemoteError".to_owned(),
                message: text.clone(),
                ..FailureIn::default()
            });
            Some(failure.into_remote())
        }
    };
    Ok(Reply {
        msg_id: reply.msg_id,
        ending: reply.ending,
        // A `null` or missing result (a method returning nothing) is no
        // payload: the caller decodes it as unit, or `None`.
        result: reply
            .result
            .map(|result| Payload::new(Codec::OsloJson, Bytes::copy_from_slice(result.get().as_bytes()))),
        failure,
    })
}

struct NotificationOut<'a, P: ?Sized> {
    header: &'a NotificationHeader<'a>,
    payload: &'a P,
}

impl<P: Serialize + ?Sized> Serialize for NotificationOut<'_, P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // oslo's order: the notifier's fields, then `_unique_id`, then the context.
        let header = self.header;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("message_id", header.message_id)?;
        map.serialize_entry("publisher_id", header.publisher_id)?;
        map.serialize_entry("event_type", header.event_type)?;
        map.serialize_entry("priority", header.priority.as_upper())?;
        map.serialize_entry("payload", self.payload)?;
        map.serialize_entry("timestamp", header.timestamp)?;
        map.serialize_entry("_unique_id", header.unique_id)?;
        for (key, value) in header.context.iter() {
            map.serialize_entry(&format_args!("{CONTEXT_PREFIX}{key}"), value)?;
        }
        map.end()
    }
}

/// A notification: in the 2.0 envelope (oslo's `messagingv2` driver), or
/// without it (the `messaging` driver's 1.0 format).
pub(super) fn encode_notification<P: Serialize + ?Sized>(
    header: &NotificationHeader<'_>,
    payload: &P,
    in_envelope: bool,
) -> Result<Vec<u8>, CodecError> {
    let notification = NotificationOut { header, payload };
    if in_envelope {
        envelope::seal(&notification)
    } else {
        encode_value(&notification)
    }
}

/// A notification's inner message. The names oslo's filters read
/// (`publisher_id`, `message_id`, `timestamp`), and `_unique_id`, are taken
/// as any JSON value, as oslo dispatches a notification whatever they are.
#[derive(Default)]
struct NotificationIn<'a> {
    message_id: Option<&'a RawValue>,
    publisher_id: Option<&'a RawValue>,
    event_type: Option<Text<'a>>,
    priority: Option<Text<'a>>,
    payload: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    unique_id: Option<&'a RawValue>,
    context: Map<String, Value>,
}

/// A name as sent: a string's text, or another value's JSON text (whether
/// it was a string is the `bool`); `None` when left out or null.
fn name<'a>(what: &str, raw: Option<&'a RawValue>) -> Result<Option<(Text<'a>, bool)>, CodecError> {
    let Some(raw) = raw else { return Ok(None) };
    let json = raw.get();
    if json.starts_with('"') {
        let text = serde_json::from_str(json)
            .map_err(|error| CodecError::new(format_args!("`{what}` is not a valid string: {error}")))?;
        Ok(Some((text, true)))
    } else {
        Ok(Some((Text(Cow::Borrowed(json)), false)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for NotificationIn<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NotificationIn<'a>, D::Error> {
        struct NotificationVisitor;
        impl<'de> Visitor<'de> for NotificationVisitor {
            type Value = NotificationIn<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an oslo.messaging notification object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NotificationIn<'de>, A::Error> {
                let mut notification = NotificationIn::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match &*key {
                        "message_id" => notification.message_id = map.next_value()?,
                        "publisher_id" => notification.publisher_id = map.next_value()?,
                        "event_type" => notification.event_type = map.next_value()?,
                        "priority" => notification.priority = map.next_value()?,
                        "payload" => notification.payload = Some(map.next_value()?),
                        "timestamp" => notification.timestamp = map.next_value()?,
                        "_unique_id" => notification.unique_id = map.next_value()?,
                        key => match key.strip_prefix(CONTEXT_PREFIX) {
                            Some(name) => {
                                let value = map.next_value()?;
                                notification.context.insert(name.to_owned(), value);
                            }
                            None => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(notification)
            }
        }
        deserializer.deserialize_map(NotificationVisitor)
    }
}

/// A notification in either of oslo's formats (with or without the envelope).
pub(super) fn decode_notification(body: &Bytes) -> Result<Notification, CodecError> {
    let inner = envelope::open(body)?;
    let notification: NotificationIn<'_> = serde_json::from_str(&inner)
        .map_err(|error| CodecError::new(format_args!("the message is not a notification object: {error}")))?;
    let publisher_id = name("publisher_id", notification.publisher_id)?;
    let message_id = name("message_id", notification.message_id)?;
    let timestamp = name("timestamp", notification.timestamp)?;
    let unique_id = name("_unique_id", notification.unique_id)?;
    fn text<'a>(name: &'a Option<(Text<'_>, bool)>) -> Option<&'a str> {
        name.as_ref().map(|(text, _)| &**text)
    }
    fn not_string(name: &Option<(Text<'_>, bool)>, index: usize) -> u8 {
        u8::from(matches!(name, Some((_, false)))) << index
    }
    let raw = RawNotification {
        priority: notification.priority.as_deref(),
        publisher_id: text(&publisher_id),
        event_type: notification.event_type.as_deref(),
        message_id: text(&message_id),
        timestamp: text(&timestamp),
        unique_id: text(&unique_id),
        not_strings: not_string(&publisher_id, Names::PUBLISHER_ID)
            | not_string(&message_id, Names::MESSAGE_ID)
            | not_string(&timestamp, Names::TIMESTAMP)
            | not_string(&unique_id, Names::UNIQUE_ID),
    };
    let payload = match notification.payload {
        Some(payload) => Bytes::copy_from_slice(payload.get().as_bytes()),
        None => Bytes::from_static(b"null"),
    };
    message::check(
        raw,
        Context::from(notification.context),
        Payload::new(Codec::OsloJson, payload),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    fn python_call() -> Bytes {
        // What oslo.messaging 18.3.1 sends for client.call({"user": "alice", ...}, "add", a=1, b=2)
        // through prepare(namespace="calc", version="1.2"), with call_monitor_timeout unset.
        Bytes::from_static(
            br#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add\", \"args\": {\"a\": 1, \"b\": 2}, \"namespace\": \"calc\", \"version\": \"1.2\", \"_msg_id\": \"0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5\", \"_reply_q\": \"reply_6f2e8a1d9b7c4e0fa1b2c3d4e5f60718\", \"_timeout\": null, \"_unique_id\": \"9a8b7c6d5e4f40312a1b2c3d4e5f6a7b\", \"_context_user\": \"alice\", \"_context_request_id\": \"req-42\"}"}"#,
        )
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct AddArgs {
        a: i64,
        b: i64,
    }

    #[test]
    fn reads_a_python_call() {
        let request = decode_request(&python_call()).unwrap();
        assert_eq!(request.method(), "add");
        assert_eq!(request.namespace(), Some("calc"));
        assert_eq!(request.version(), Some(&Version::new(1, 2)));
        assert_eq!(request.context().user(), Some("alice"));
        assert_eq!(request.context().request_id(), Some("req-42"));
        assert_eq!(request.call_monitor, None);
        let reply = request.reply.as_ref().unwrap();
        assert_eq!(reply.reply_to, "reply_6f2e8a1d9b7c4e0fa1b2c3d4e5f60718");
        assert_eq!(request.unique_id.as_deref(), Some("9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"));
        assert_eq!(request.decode_args::<AddArgs>().unwrap(), AddArgs { a: 1, b: 2 });
    }

    #[test]
    fn reads_unenveloped_and_refuses_future_envelopes() {
        let bare = Bytes::from_static(br#"{"method": "ping", "_unique_id": "u"}"#);
        let request = decode_request(&bare).unwrap();
        assert_eq!(request.method(), "ping");
        assert!(!request.is_call());
        assert_eq!(request.args().as_bytes(), b"{}");

        for version in ["2.1", "3.0", "1.0", "x"] {
            let body = format!(r#"{{"oslo.version": "{version}", "oslo.message": "{{\"method\": \"m\"}}"}}"#);
            let error = decode_request(&Bytes::from(body)).unwrap_err();
            assert!(
                error.reason.to_string().contains("unsupported envelope version"),
                "{}",
                error.reason
            );
        }
        let ok = Bytes::from_static(br#"{"oslo.version": "2.0.0", "oslo.message": "{\"method\": \"m\"}"}"#);
        assert!(decode_request(&ok).is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_request() {
        for body in [
            &b"[1, 2]"[..],
            b"\"text\"",
            b"{\"args\": {}}",
            b"not json",
            b"\xff\xfe",
            b"{\"method\": \"m\", \"version\": \"two\"}",
        ] {
            assert!(decode_request(&Bytes::copy_from_slice(body)).is_err(), "{body:?}");
        }
        // A malformed request still says where its reply goes.
        let broken = Bytes::from_static(br#"{"_msg_id": "m1", "_reply_q": "reply_x", "method": 7}"#);
        let error = decode_request(&broken).unwrap_err();
        assert_eq!(error.reply.unwrap().reply_to, "reply_x");
    }

    #[test]
    fn python_nan_and_infinity_are_null() {
        let body = Bytes::from_static(
            br#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"m\", \"args\": {\"x\": NaN, \"y\": [Infinity, -Infinity], \"s\": \"NaN and Infinity\"}}"}"#,
        );
        let request = decode_request(&body).unwrap();
        let args: Value = request.decode_args().unwrap();
        assert_eq!(
            args,
            serde_json::json!({"x": null, "y": [null, null], "s": "NaN and Infinity"})
        );
        assert_eq!(sanitize_non_finite(r#"["a\"NaN", NaN]"#), r#"["a\"NaN", null]"#);
    }

    #[test]
    fn the_requests_span_replaces_the_traceparent_its_context_came_with() {
        let stale = crate::TraceContext::new_root();
        let mut context = Context::new();
        context.insert("traceparent", stale.traceparent()).unwrap();
        context.insert("tracestate", "old=1").unwrap();
        let span = crate::TraceContext::new_root();
        let header = RequestHeader {
            method: "test",
            namespace: None,
            version: None,
            msg_id: None,
            reply_to: None,
            call_monitor: None,
            unique_id: "u1",
            context: &context,
            trace: Some(&span),
        };
        let body = encode_request(&header, &serde_json::json!({})).unwrap();
        let outer: Value = serde_json::from_slice(&body).unwrap();
        let inner = outer["oslo.message"].as_str().unwrap();
        // Once each (Python's json keeps the last of a repeated key; a
        // strict reader refuses it).
        assert_eq!(inner.matches("\"_context_traceparent\"").count(), 1, "{inner}");
        assert!(!inner.contains("_context_tracestate"), "{inner}");
        let inner: Value = serde_json::from_str(inner).unwrap();
        assert_eq!(inner["_context_traceparent"], span.traceparent());
    }

    #[test]
    fn writes_a_request_python_reads() {
        let context = Context::new().with_request_id("req-1");
        let version = Version::new(2, 0);
        let header = RequestHeader {
            method: "test",
            namespace: Some("control"),
            version: Some(&version),
            msg_id: Some("abc"),
            reply_to: Some("reply_q"),
            call_monitor: None,
            unique_id: "u1",
            context: &context,
            trace: None,
        };
        let body = encode_request(&header, &serde_json::json!({"arg": "myarg"})).unwrap();
        let outer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(outer["oslo.version"], "2.0");
        let inner: Value = serde_json::from_str(outer["oslo.message"].as_str().unwrap()).unwrap();
        assert_eq!(
            inner,
            serde_json::json!({
                "method": "test", "args": {"arg": "myarg"}, "namespace": "control", "version": "2.0",
                "_msg_id": "abc", "_reply_q": "reply_q", "_timeout": null, "_unique_id": "u1",
                "_context_request_id": "req-1",
            })
        );
        // Casts carry no reply fields at all.
        let cast = RequestHeader {
            msg_id: None,
            reply_to: None,
            ..header
        };
        let inner: Value = serde_json::from_str(
            serde_json::from_slice::<Value>(&encode_request(&cast, &serde_json::json!({})).unwrap()).unwrap()["oslo.message"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert!(inner.get("_msg_id").is_none() && inner.get("_timeout").is_none());
    }

    #[test]
    fn replies_round_trip_and_read_python_failures() {
        let result = Payload::new(Codec::OsloJson, Bytes::from_static(b"[1,2]"));
        let reply = ReplyOut {
            msg_id: "m1",
            ending: true,
            result: Some(&result),
            failure: None,
        };
        let back = decode_reply(&Bytes::from(encode_reply(&reply).unwrap())).unwrap();
        assert_eq!(back.result.unwrap().decode::<Vec<u8>>().unwrap(), [1, 2]);

        // A Python ValueError, as oslo.messaging sends it.
        let python = Bytes::from_static(
            br#"{"oslo.version": "2.0", "oslo.message": "{\"result\": null, \"failure\": \"{\\\"class\\\": \\\"ValueError\\\", \\\"module\\\": \\\"builtins\\\", \\\"message\\\": \\\"bad\\\", \\\"tb\\\": [\\\"Traceback ...\\\\n\\\", \\\"ValueError: bad\\\\n\\\"], \\\"args\\\": [\\\"bad\\\"], \\\"kwargs\\\": {}}\", \"ending\": true, \"_msg_id\": \"m2\", \"_unique_id\": \"u\"}"}"#,
        );
        let back = decode_reply(&python).unwrap();
        let failure = back.failure.unwrap();
        assert_eq!(
            (failure.class(), failure.module(), failure.message()),
            ("ValueError", "builtins", "bad")
        );
        assert_eq!(failure.code(), ErrorCode::Other);
        assert_eq!(failure.traceback().len(), 2);

        // oslo.policy's refusal from a Python server reads as `Forbidden`.
        let refused = Bytes::from_static(
            br#"{"oslo.version": "2.0", "oslo.message": "{\"result\": null, \"failure\": \"{\\\"class\\\": \\\"PolicyNotAuthorized\\\", \\\"module\\\": \\\"oslo_policy.policy\\\", \\\"message\\\": \\\"no\\\", \\\"tb\\\": [], \\\"args\\\": [], \\\"kwargs\\\": {}}\", \"ending\": true, \"_msg_id\": \"m3\"}"}"#,
        );
        let refusal = decode_reply(&refused).unwrap().failure.unwrap();
        assert_eq!(refusal.code(), ErrorCode::Forbidden);

        // Our own errors keep their code and data.
        let error = RemoteError::no_such_method("frob").with_data(serde_json::json!({"k": 1}));
        let ours = ReplyOut {
            msg_id: "m3",
            ending: true,
            result: None,
            failure: Some(&error),
        };
        let back = decode_reply(&Bytes::from(encode_reply(&ours).unwrap())).unwrap();
        assert_eq!(
            back.failure.unwrap(),
            RemoteError::no_such_method("frob").with_data(serde_json::json!({"k": 1}))
        );
    }

    #[test]
    fn arguments_must_be_an_object() {
        let context = Context::new();
        let header = RequestHeader {
            method: "m",
            namespace: None,
            version: None,
            msg_id: None,
            reply_to: None,
            call_monitor: None,
            unique_id: "u",
            context: &context,
            trace: None,
        };
        let error = encode_request(&header, &[1, 2]).unwrap_err();
        assert!(error.to_string().contains("must serialize as a map"), "{error}");
    }

    #[test]
    fn heartbeats_and_missing_ending() {
        let heartbeat = Bytes::from_static(
            br#"{"oslo.version": "2.0", "oslo.message": "{\"result\": null, \"failure\": null, \"ending\": false, \"_msg_id\": \"m\"}"}"#,
        );
        let back = decode_reply(&heartbeat).unwrap();
        assert!(!back.ending);
        assert!(back.failure.is_none());
        let no_ending = Bytes::from_static(br#"{"result": 1, "_msg_id": "m"}"#);
        assert!(!decode_reply(&no_ending).unwrap().ending);
    }
}
