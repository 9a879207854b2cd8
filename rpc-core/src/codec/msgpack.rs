//! The native MessagePack frames.
//!
//! A frame is a MessagePack array, read by position:
//!
//! - request: `[1, method, namespace, version, msg_id, reply_to, call_monitor,
//!   unique_id, args, context]`: optional fields are `nil`; `args` is a binary
//!   string holding the arguments' own MessagePack document (a map keyed by
//!   argument name); `context` is a map.
//! - reply: `[1, msg_id, ending, result, failure]`: `result` is `nil` or a
//!   binary string holding the result's MessagePack document; `failure` is
//!   `nil` or the remote error as a map `{code, class, module, message,
//!   traceback, data}`, where `data` is `nil` or a binary string holding the
//!   error value's own MessagePack document (a method's typed error, lossless).
//!
//! - notification: `[1, priority, publisher_id, event_type, message_id,
//!   timestamp, unique_id, payload, context]`: `priority` upper case, as
//!   oslo writes it; `payload` a binary string holding the payload's own
//!   MessagePack document.
//!
//! The first element is the frame version: a peer refuses other versions.
//! Positions keep the frame small and quick to read (no key strings to
//! match); the arguments and results, which programs evolve, stay
//! self-describing maps. The arguments travel still encoded, so the handler
//! decodes them straight into its typed parameters.

use bytes::Bytes;
use rmp::Marker;
use rmp::decode as read;
use rmp::encode as write;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::header::{self, RawHeader};
use crate::message::{Payload, Reply, ReplyAddress, ReplyOut, Request, RequestHeader, UndecodableRequest};
use crate::notify::message::{self, Notification, NotificationHeader, RawNotification};
use crate::{Codec, CodecError, Context, ErrorCode, RemoteError, Version};

const FRAME_VERSION: u32 = 1;
const REQUEST_FIELDS: u32 = 10;
const REPLY_FIELDS: u32 = 5;
const NOTIFICATION_FIELDS: u32 = 9;

pub(super) fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut buffer = Vec::with_capacity(64);
    value
        .serialize(&mut rmp_serde::Serializer::new(&mut buffer).with_struct_map())
        .map_err(CodecError::new)?;
    Ok(buffer)
}

fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    // A kilobyte of nested arrays would otherwise overflow the stack.
    deserializer.set_max_depth(header::MAX_DEPTH);
    T::deserialize(&mut deserializer)
}

pub(super) fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    from_slice(bytes).map_err(CodecError::new)
}

// Writing to a Vec cannot fail: the results of `write::*` are ignored.

fn write_text(buffer: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => {
            let _ = write::write_str(buffer, text);
        }
        None => {
            let _ = write::write_nil(buffer);
        }
    }
}

fn write_bin(buffer: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            let _ = write::write_bin(buffer, bytes);
        }
        None => {
            let _ = write::write_nil(buffer);
        }
    }
}

/// Whether an encoded value is a map (the only shape arguments may have).
fn is_map(encoded: &[u8]) -> bool {
    matches!(encoded.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

pub(super) fn encode_request<A: Serialize + ?Sized>(
    header: &RequestHeader<'_>,
    args: &A,
) -> Result<Vec<u8>, CodecError> {
    let mut buffer = Vec::with_capacity(256);
    let _ = write::write_array_len(&mut buffer, REQUEST_FIELDS);
    let _ = write::write_uint(&mut buffer, u64::from(FRAME_VERSION));
    write_text(&mut buffer, Some(header.method));
    write_text(&mut buffer, header.namespace);
    let version = header.version.map(Version::to_string);
    write_text(&mut buffer, version.as_deref());
    write_text(&mut buffer, header.msg_id);
    write_text(&mut buffer, header.reply_to);
    match header.call_monitor {
        Some(seconds) => {
            let _ = write::write_f64(&mut buffer, seconds);
        }
        None => {
            let _ = write::write_nil(&mut buffer);
        }
    }
    write_text(&mut buffer, Some(header.unique_id));
    // The arguments go straight into the frame.
    let args_at = buffer.len() + 5;
    write_embedded(&mut buffer, args, header.context, "arguments")?;
    if !is_map(&buffer[args_at..]) {
        return Err(CodecError::new(
            "arguments must serialize as a map of argument name to value",
        ));
    }
    write_context(&mut buffer, header.context)?;
    Ok(buffer)
}

/// A reader over a frame.
struct Frame<'a> {
    rest: &'a [u8],
}

impl<'a> Frame<'a> {
    fn new(body: &'a [u8], fields: u32, what: &str) -> Result<Frame<'a>, CodecError> {
        let mut rest = body;
        let length = read::read_array_len(&mut rest)
            .map_err(|_| CodecError::new(format_args!("not a {what} frame (expected a MessagePack array)")))?;
        let mut frame = Frame { rest };
        let version = frame.integer("frame version")?;
        if version != FRAME_VERSION {
            return Err(CodecError::new(format_args!(
                "unsupported frame version {version} (this peer reads version {FRAME_VERSION})"
            )));
        }
        if length != fields {
            return Err(CodecError::new(format_args!(
                "a {what} frame has {fields} fields, not {length}"
            )));
        }
        Ok(frame)
    }

    fn is_nil(&mut self) -> bool {
        if self.rest.first() == Some(&Marker::Null.to_u8()) {
            self.rest = &self.rest[1..];
            true
        } else {
            false
        }
    }

    fn integer(&mut self, what: &str) -> Result<u32, CodecError> {
        read::read_int(&mut self.rest).map_err(|_| CodecError::new(format_args!("`{what}` is not an integer")))
    }

    fn boolean(&mut self, what: &str) -> Result<bool, CodecError> {
        read::read_bool(&mut self.rest).map_err(|_| CodecError::new(format_args!("`{what}` is not a boolean")))
    }

    fn text(&mut self, what: &str) -> Result<&'a str, CodecError> {
        let (text, rest) = read::read_str_from_slice(self.rest)
            .map_err(|_| CodecError::new(format_args!("`{what}` is not a UTF-8 string")))?;
        self.rest = rest;
        Ok(text)
    }

    fn optional_text(&mut self, what: &str) -> Result<Option<&'a str>, CodecError> {
        if self.is_nil() {
            Ok(None)
        } else {
            self.text(what).map(Some)
        }
    }

    fn optional_float(&mut self, what: &str) -> Result<Option<f64>, CodecError> {
        if self.is_nil() {
            return Ok(None);
        }
        let mut rest = self.rest;
        let value = match read::read_marker(&mut rest) {
            Ok(Marker::F64) => read::read_f64(&mut self.rest).ok(),
            Ok(Marker::F32) => read::read_f32(&mut self.rest).ok().map(f64::from),
            _ => read::read_int::<u64, _>(&mut self.rest).ok().map(|n| n as f64),
        };
        value
            .map(Some)
            .ok_or_else(|| CodecError::new(format_args!("`{what}` is not a number")))
    }

    /// Skips one value, whatever its type.
    fn skip(&mut self) -> Result<(), CodecError> {
        let mut cursor = std::io::Cursor::new(self.rest);
        let mut deserializer = rmp_serde::Deserializer::new(&mut cursor);
        deserializer.set_max_depth(header::MAX_DEPTH);
        serde::de::IgnoredAny::deserialize(&mut deserializer).map_err(CodecError::new)?;
        let read = usize::try_from(cursor.position()).map_err(CodecError::new)?;
        self.rest = self
            .rest
            .get(read..)
            .ok_or_else(|| CodecError::new("truncated frame"))?;
        Ok(())
    }

    fn optional_bin(&mut self, what: &str) -> Result<Option<&'a [u8]>, CodecError> {
        if self.is_nil() {
            return Ok(None);
        }
        let invalid = || CodecError::new(format_args!("`{what}` is not a binary string"));
        let length = read::read_bin_len(&mut self.rest).map_err(|_| invalid())? as usize;
        if self.rest.len() < length {
            return Err(invalid());
        }
        let (bytes, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(Some(bytes))
    }

    /// The last field, decoded with serde.
    fn last<T: DeserializeOwned>(&self, what: &str) -> Result<T, CodecError> {
        from_slice(self.rest).map_err(|error| CodecError::new(format_args!("`{what}`: {error}")))
    }
}

/// The reply address of a request, read from the start of its frame even
/// when the rest is malformed (the fields before it may be of any type).
pub(super) fn reply_address(body: &[u8]) -> Option<ReplyAddress> {
    let mut frame = Frame::new(body, REQUEST_FIELDS, "request").ok()?;
    for _ in ["method", "namespace", "version"] {
        frame.skip().ok()?;
    }
    let msg_id = frame.optional_text("msg_id").ok()?;
    let reply_to = frame.optional_text("reply_to").ok()?;
    header::reply_address(msg_id, reply_to)
}

pub(super) fn decode_request(body: &Bytes) -> Result<Request, UndecodableRequest> {
    let fail = |reason: CodecError| UndecodableRequest {
        reason,
        reply: reply_address(body),
    };
    let mut frame = Frame::new(body, REQUEST_FIELDS, "request").map_err(fail)?;
    let raw = RawHeader {
        method: Some(frame.text("method").map_err(fail)?),
        namespace: frame.optional_text("namespace").map_err(fail)?,
        version: frame.optional_text("version").map_err(fail)?,
        msg_id: frame.optional_text("msg_id").map_err(fail)?,
        reply_to: frame.optional_text("reply_to").map_err(fail)?,
        call_monitor: frame.optional_float("call_monitor").map_err(fail)?,
        unique_id: frame.optional_text("unique_id").map_err(fail)?,
    };
    let args = frame
        .optional_bin("args")
        .map_err(fail)?
        .ok_or_else(|| fail(CodecError::new("the request has no arguments")))?;
    let context: Context = frame.last("context").map_err(fail)?;
    let header = header::check(raw, &context).map_err(fail)?;
    Ok(Request::new(
        header,
        context,
        Payload::new(Codec::MsgPack, body.slice_ref(args)),
    ))
}

/// Room kept after a small write that grows the buffer, for what follows.
const TAIL_ROOM: usize = 512;

/// From this size, a write that grows the buffer makes room for the exact
/// size of what follows (the context, measured then): moving the frame
/// again would cost more than measuring.
const LARGE_WRITE: usize = 16 * 1024;

/// A buffer that, when a write outgrows it, grows with room for the
/// frame's `context`, which follows (its size measured once, for the first
/// large write): a large value (a 64 KiB argument) would otherwise fill the
/// buffer exactly, and the context after it move the whole frame once more.
struct Spacious<'a> {
    buffer: &'a mut Vec<u8>,
    context: &'a Context,
    context_len: Option<usize>,
}

impl std::io::Write for Spacious<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.buffer.capacity() - self.buffer.len() < bytes.len() {
            let room = if bytes.len() >= LARGE_WRITE {
                let context = self.context;
                (*self.context_len.get_or_insert_with(|| encoded_len(context))).max(TAIL_ROOM)
            } else {
                TAIL_ROOM
            };
            self.buffer.reserve(bytes.len().saturating_add(room));
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes written to it.
#[derive(Default)]
struct Measure(usize);

impl std::io::Write for Measure {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of `context` once encoded (as [`write_context`] writes it).
fn encoded_len(context: &Context) -> usize {
    let mut measure = Measure::default();
    match context.serialize(&mut rmp_serde::Serializer::new(&mut measure).with_struct_map()) {
        Ok(()) => measure.0,
        Err(_) => TAIL_ROOM,
    }
}

/// Writes `context` at the end of a frame.
fn write_context(buffer: &mut Vec<u8>, context: &Context) -> Result<(), CodecError> {
    context
        .serialize(&mut rmp_serde::Serializer::new(buffer).with_struct_map())
        .map_err(CodecError::new)
}

/// Writes `value` as a bin32 whose length is filled in once known; the
/// frame's `context` comes after it.
fn write_embedded<T: Serialize + ?Sized>(
    buffer: &mut Vec<u8>,
    value: &T,
    context: &Context,
    what: &str,
) -> Result<(), CodecError> {
    buffer.push(Marker::Bin32.to_u8());
    let length_at = buffer.len();
    buffer.extend_from_slice(&[0; 4]);
    let writer = Spacious {
        buffer: &mut *buffer,
        context,
        context_len: None,
    };
    value
        .serialize(&mut rmp_serde::Serializer::new(writer).with_struct_map())
        .map_err(CodecError::new)?;
    let length =
        u32::try_from(buffer.len() - length_at - 4).map_err(|_| CodecError::new(format_args!("{what} over 4 GiB")))?;
    buffer[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

pub(super) fn encode_notification<P: Serialize + ?Sized>(
    header: &NotificationHeader<'_>,
    payload: &P,
) -> Result<Vec<u8>, CodecError> {
    let mut buffer = Vec::with_capacity(256);
    let _ = write::write_array_len(&mut buffer, NOTIFICATION_FIELDS);
    let _ = write::write_uint(&mut buffer, u64::from(FRAME_VERSION));
    write_text(&mut buffer, Some(header.priority.as_upper()));
    write_text(&mut buffer, Some(header.publisher_id));
    write_text(&mut buffer, Some(header.event_type));
    write_text(&mut buffer, Some(header.message_id));
    write_text(&mut buffer, Some(header.timestamp));
    write_text(&mut buffer, Some(header.unique_id));
    write_embedded(&mut buffer, payload, header.context, "the payload")?;
    write_context(&mut buffer, header.context)?;
    Ok(buffer)
}

pub(super) fn decode_notification(body: &Bytes) -> Result<Notification, CodecError> {
    let mut frame = Frame::new(body, NOTIFICATION_FIELDS, "notification")?;
    let raw = RawNotification {
        priority: Some(frame.text("priority")?),
        publisher_id: frame.optional_text("publisher_id")?,
        event_type: frame.optional_text("event_type")?,
        message_id: frame.optional_text("message_id")?,
        timestamp: frame.optional_text("timestamp")?,
        unique_id: frame.optional_text("unique_id")?,
        // Only a Rust notifier writes this format: names are strings.
        not_strings: 0,
    };
    let payload = frame
        .optional_bin("payload")?
        .ok_or_else(|| CodecError::new("the notification has no payload"))?;
    let context: Context = frame.last("context")?;
    message::check(raw, context, Payload::new(Codec::MsgPack, body.slice_ref(payload)))
}

/// A remote error as the frame carries it.
#[derive(Serialize)]
struct FailureOut<'a> {
    code: ErrorCode,
    class: &'a str,
    module: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    traceback: &'a [String],
    #[serde(with = "serde_bytes")]
    data: Option<&'a [u8]>,
}

#[derive(Deserialize)]
struct FailureIn {
    code: ErrorCode,
    class: String,
    #[serde(default)]
    module: String,
    message: String,
    #[serde(default)]
    traceback: Vec<String>,
    #[serde(default, with = "serde_bytes")]
    data: Option<Vec<u8>>,
}

fn write_failure(buffer: &mut Vec<u8>, failure: &RemoteError) -> Result<(), CodecError> {
    // Data from another codec (a forwarded error) is re-encoded.
    let data = failure.data_in(Codec::MsgPack);
    FailureOut {
        code: failure.code(),
        class: failure.class(),
        module: failure.module(),
        message: failure.message(),
        traceback: failure.traceback(),
        data: data.as_deref().map(Payload::as_bytes),
    }
    .serialize(&mut rmp_serde::Serializer::new(buffer).with_struct_map())
    .map_err(CodecError::new)
}

fn into_remote(failure: FailureIn) -> RemoteError {
    let error = RemoteError::new(failure.code, failure.class, failure.message)
        .with_module(failure.module)
        .with_traceback(failure.traceback);
    match failure.data {
        Some(data) => error.with_payload(Payload::owned(Codec::MsgPack, data)),
        None => error,
    }
}

pub(super) fn encode_reply(reply: &ReplyOut<'_>) -> Result<Vec<u8>, CodecError> {
    // A result from another codec (a forwarded or cached one) is re-encoded.
    let result = reply
        .result
        .map(|payload| payload.in_codec(Codec::MsgPack))
        .transpose()?;
    let result = result.as_deref().map(Payload::as_bytes);
    let mut buffer = Vec::with_capacity(64 + result.map_or(0, <[u8]>::len));
    let _ = write::write_array_len(&mut buffer, REPLY_FIELDS);
    let _ = write::write_uint(&mut buffer, u64::from(FRAME_VERSION));
    write_text(&mut buffer, Some(reply.msg_id));
    let _ = write::write_bool(&mut buffer, reply.ending);
    write_bin(&mut buffer, result);
    match reply.failure {
        Some(failure) => write_failure(&mut buffer, failure)?,
        None => {
            let _ = write::write_nil(&mut buffer);
        }
    }
    Ok(buffer)
}

pub(super) fn reply_msg_id(body: &[u8]) -> Option<String> {
    let mut frame = Frame::new(body, REPLY_FIELDS, "reply").ok()?;
    frame.text("msg_id").ok().map(str::to_owned)
}

pub(super) fn decode_reply(body: &Bytes) -> Result<Reply, CodecError> {
    let mut frame = Frame::new(body, REPLY_FIELDS, "reply")?;
    let msg_id = frame.text("msg_id")?.to_owned();
    let ending = frame.boolean("ending")?;
    let result = frame
        .optional_bin("result")?
        .map(|result| Payload::new(Codec::MsgPack, body.slice_ref(result)));
    let failure = if frame.is_nil() {
        None
    } else {
        Some(into_remote(frame.last::<FailureIn>("failure")?))
    };
    Ok(Reply {
        msg_id,
        ending,
        result,
        failure,
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Args {
        name: String,
        count: Option<u32>,
    }

    fn header<'a>(context: &'a Context, version: Option<&'a Version>) -> RequestHeader<'a> {
        RequestHeader {
            method: "greet",
            namespace: Some("control"),
            version,
            msg_id: Some("abc"),
            reply_to: Some("reply_1"),
            call_monitor: Some(30.0),
            unique_id: "u1",
            context,
            trace: None,
        }
    }

    /// A large argument is written once: the frame is not moved again to
    /// fit the context after it, small or as large as OpenStack's (a token,
    /// a service catalog).
    #[test]
    fn a_large_argument_leaves_room_for_the_context() {
        #[derive(Serialize)]
        struct Large {
            payload: serde_bytes::ByteBuf,
        }
        let small = Context::new().with_request_id("req-1");
        let mut large = small.clone();
        large.insert("auth_token", "t".repeat(4 * 1024)).unwrap();
        for context in [small, large] {
            let args = Large {
                payload: serde_bytes::ByteBuf::from(vec![7; 64 * 1024]),
            };
            let frame = encode_request(&header(&context, None), &args).unwrap();
            // Moved again, it would be in a buffer twice its size.
            assert!(
                frame.capacity() < frame.len() + frame.len() / 4,
                "capacity {} for {} bytes",
                frame.capacity(),
                frame.len()
            );
            let request = decode_request(&Bytes::from(frame)).unwrap();
            assert_eq!(request.context(), &context);
        }
    }

    #[test]
    fn request_round_trip_keeps_args_encoded() {
        let mut context = Context::new().with_request_id("req-1");
        context
            .insert("nested", serde_json::json!({"a": [1, 2.5, null]}))
            .unwrap();
        let version = Version::new(2, 1);
        let args = Codec::MsgPack
            .encode(&Args {
                name: "x".into(),
                count: Some(2),
            })
            .unwrap();
        let body = Bytes::from(
            encode_request(
                &header(&context, Some(&version)),
                &Args {
                    name: "x".into(),
                    count: Some(2),
                },
            )
            .unwrap(),
        );
        let request = decode_request(&body).unwrap();
        assert_eq!(request.method(), "greet");
        assert_eq!(request.namespace(), Some("control"));
        assert_eq!(request.version(), Some(&version));
        assert_eq!(request.context(), &context);
        assert_eq!(request.call_monitor, Some(std::time::Duration::from_secs(30)));
        assert_eq!(request.unique_id.as_deref(), Some("u1"));
        assert_eq!(request.reply.as_ref().unwrap().reply_to, "reply_1");
        assert_eq!(
            request.args().as_bytes(),
            args.as_bytes(),
            "the arguments are kept as encoded"
        );
        let decoded: Args = request.decode_args().unwrap();
        assert_eq!(decoded.count, Some(2));
    }

    #[test]
    fn casts_have_no_reply_address() {
        let context = Context::new();
        let cast = RequestHeader {
            msg_id: None,
            reply_to: None,
            call_monitor: None,
            ..header(&context, None)
        };
        let body = Bytes::from(encode_request(&cast, &serde_json::json!({})).unwrap());
        let request = decode_request(&body).unwrap();
        assert!(!request.is_call());
        assert_eq!(request.version(), None);
    }

    #[test]
    fn args_are_a_named_map() {
        let args = Codec::MsgPack
            .encode(&Args {
                name: "x".into(),
                count: None,
            })
            .unwrap();
        let as_map: serde_json::Map<String, serde_json::Value> = rmp_serde::from_slice(args.as_bytes()).unwrap();
        assert_eq!(as_map["name"], "x");
        assert!(as_map["count"].is_null());
        // An absent optional argument decodes as `None`.
        let only_name = Codec::MsgPack.encode(&serde_json::json!({"name": "y"})).unwrap();
        assert_eq!(only_name.decode::<Args>().unwrap().count, None);
    }

    #[test]
    fn undecodable_request_keeps_reply_address() {
        let context = Context::new();
        let mut body = encode_request(&header(&context, None), &serde_json::json!({})).unwrap();
        // Corrupt the context: the reply address before it still reads.
        let last = body.len() - 1;
        body[last] = 0xc1;
        let error = decode_request(&Bytes::from(body)).unwrap_err();
        let reply = error.reply.unwrap();
        assert_eq!((reply.msg_id.as_str(), reply.reply_to.as_str()), ("abc", "reply_1"));

        for garbage in [&b"\xc1\xff not msgpack"[..], b"", b"\x92\x01", b"\x9a\x01\x07"] {
            let error = decode_request(&Bytes::copy_from_slice(garbage)).unwrap_err();
            assert!(error.reply.is_none());
            assert!(!error.reason.to_string().is_empty());
        }
    }

    #[test]
    fn other_frame_versions_are_refused() {
        let context = Context::new();
        let mut body = encode_request(&header(&context, None), &serde_json::json!({})).unwrap();
        body[1] = 2;
        let error = decode_request(&Bytes::from(body)).unwrap_err();
        assert!(error.reason.to_string().contains("frame version 2"), "{}", error.reason);
    }

    #[test]
    fn arguments_must_be_a_map() {
        let context = Context::new();
        for args in [
            serde_json::json!([1, 2]),
            serde_json::json!("text"),
            serde_json::json!(null),
        ] {
            let error = encode_request(&header(&context, None), &args).unwrap_err();
            assert!(error.to_string().contains("must serialize as a map"), "{error}");
        }
    }

    #[test]
    fn unknown_error_codes_decode_as_other() {
        let mut body = Vec::new();
        let _ = write::write_array_len(&mut body, REPLY_FIELDS);
        let _ = write::write_uint(&mut body, u64::from(FRAME_VERSION));
        write_text(&mut body, Some("m"));
        let _ = write::write_bool(&mut body, true);
        write_bin(&mut body, None);
        rmp_serde::encode::write_named(
            &mut body,
            &serde_json::json!({"code": "from_the_future", "class": "X", "message": "m"}),
        )
        .unwrap();
        let failure = decode_reply(&Bytes::from(body)).unwrap().failure.unwrap();
        assert_eq!(failure.code(), ErrorCode::Other);
        assert_eq!(failure.class(), "X");
    }

    #[test]
    fn reply_round_trip() {
        let result = Codec::MsgPack.encode("ok").unwrap();
        let reply = ReplyOut {
            msg_id: "m1",
            ending: true,
            result: Some(&result),
            failure: None,
        };
        let back = decode_reply(&Bytes::from(encode_reply(&reply).unwrap())).unwrap();
        assert!(back.ending);
        assert_eq!(back.msg_id, "m1");
        assert_eq!(back.result.unwrap().decode::<String>().unwrap(), "ok");

        let error = RemoteError::no_such_method("x").with_traceback(vec!["line\n".into()]);
        let failure = ReplyOut {
            msg_id: "m2",
            ending: true,
            result: None,
            failure: Some(&error),
        };
        let back = decode_reply(&Bytes::from(encode_reply(&failure).unwrap())).unwrap();
        assert_eq!(back.failure.unwrap(), error);

        // Typed data stays MessagePack; JSON data (from an oslo peer) is re-encoded.
        let typed = RemoteError::application(&u64::MAX, Codec::MsgPack);
        let json = RemoteError::no_such_method("x").with_data(serde_json::json!({"k": [1, 2]}));
        for error in [typed, json] {
            let failure = ReplyOut {
                msg_id: "m4",
                ending: true,
                result: None,
                failure: Some(&error),
            };
            let back = decode_reply(&Bytes::from(encode_reply(&failure).unwrap()))
                .unwrap()
                .failure
                .unwrap();
            assert_eq!(back.data().unwrap().codec(), Codec::MsgPack);
            assert_eq!(
                back.decode_data::<serde_json::Value>().unwrap(),
                error.decode_data::<serde_json::Value>().unwrap()
            );
        }

        let heartbeat = ReplyOut {
            msg_id: "m3",
            ending: false,
            result: None,
            failure: None,
        };
        let back = decode_reply(&Bytes::from(encode_reply(&heartbeat).unwrap())).unwrap();
        assert!(!back.ending && back.result.is_none() && back.failure.is_none());
    }
}
