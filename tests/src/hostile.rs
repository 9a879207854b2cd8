//! Hostile but well-formed requests, built byte by byte in both codecs, and
//! what a server must do with each: answer it (with a result or a typed
//! error) or drop it. Published raw, on `memory://` and on RabbitMQ, to
//! servers of every executor and delivery mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::transport::{Bytes, Delivery, ReplySink};
use rpc_core::{Codec, ErrorCode, TransportError, Value, json};

/// What the server must do with a hostile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Serve it: the caller gets a result.
    Served,
    /// Answer it at once with this error.
    Refused(ErrorCode),
    /// Drop it (rejected, logged): it has no reply address a reply can go to.
    Dropped,
    /// Serve it; the reply goes to a queue that does not exist, and is lost.
    ReplyLost,
}

/// One hostile request.
#[derive(Debug, Clone)]
pub struct Hostile {
    /// What is hostile about it.
    pub case: String,
    /// Its codec (for the content type).
    pub codec: Codec,
    /// The body.
    pub body: Bytes,
    /// The id its reply would carry.
    pub msg_id: String,
    /// What the server must do.
    pub expect: Expect,
}

/// A header field of a hand-made request.
#[derive(Debug, Clone)]
enum Field {
    Absent,
    Text(String),
    Float(f64),
    Int(i64),
}

impl Field {
    fn text(text: impl Into<String>) -> Field {
        Field::Text(text.into())
    }
}

/// A request, field by field, as a hostile peer may write it.
#[derive(Debug, Clone)]
struct Raw {
    method: Field,
    namespace: Field,
    version: Field,
    msg_id: Field,
    reply_to: Field,
    call_monitor: Field,
    unique_id: Field,
    /// The arguments, as JSON text (so that anything can be written).
    args: String,
    /// The context, as JSON text.
    context: String,
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

impl Raw {
    fn call(msg_id: &str, reply_to: &str, unique_id: &str) -> Raw {
        Raw {
            method: Field::text("add"),
            namespace: Field::Absent,
            version: Field::Absent,
            msg_id: Field::text(msg_id),
            reply_to: Field::text(reply_to),
            call_monitor: Field::Absent,
            unique_id: Field::text(unique_id),
            args: r#"{"a": 1, "b": 2}"#.to_owned(),
            context: r#"{"request_id": "req-hostile"}"#.to_owned(),
        }
    }

    /// oslo.messaging's JSON: the 2.0 envelope around the inner message,
    /// written as text so that Python's `NaN` can appear.
    fn oslo(&self) -> Bytes {
        let mut entries = Vec::new();
        let mut put = |key: &str, field: &Field| {
            let value = match field {
                Field::Absent => return,
                Field::Text(text) => Value::from(text.as_str()).to_string(),
                Field::Float(value) if value.is_nan() => "NaN".to_owned(),
                Field::Float(value) => format!("{value:?}"),
                Field::Int(value) => value.to_string(),
            };
            entries.push(format!("{}: {value}", Value::from(key)));
        };
        put("method", &self.method);
        put("namespace", &self.namespace);
        put("version", &self.version);
        put("_msg_id", &self.msg_id);
        put("_reply_q", &self.reply_to);
        put("_timeout", &self.call_monitor);
        put("_unique_id", &self.unique_id);
        entries.push(format!("\"args\": {}", self.args));
        // The context travels flattened, one `_context_<key>` per entry.
        if let Ok(Value::Object(context)) = serde_json::from_str::<Value>(&self.context) {
            for (key, value) in context {
                entries.push(format!("{}: {value}", Value::from(format!("_context_{key}"))));
            }
        } else if !self.context.is_empty() {
            // Not an object (deeply nested): one entry holding it.
            entries.push(format!("\"_context_deep\": {}", self.context));
        }
        let inner = format!("{{{}}}", entries.join(", "));
        Bytes::from(json!({"oslo.version": "2.0", "oslo.message": inner}).to_string())
    }

    /// The native frame: `[1, method, namespace, version, msg_id, reply_to,
    /// call_monitor, unique_id, args (bin), context]`.
    fn msgpack(&self) -> Bytes {
        let mut out = Vec::new();
        rmp::encode::write_array_len(&mut out, 10).unwrap();
        rmp::encode::write_uint(&mut out, 1).unwrap();
        for field in [
            &self.method,
            &self.namespace,
            &self.version,
            &self.msg_id,
            &self.reply_to,
            &self.call_monitor,
            &self.unique_id,
        ] {
            match field {
                Field::Absent => rmp::encode::write_nil(&mut out).unwrap(),
                Field::Text(text) => rmp::encode::write_str(&mut out, text).unwrap(),
                Field::Float(value) => rmp::encode::write_f64(&mut out, *value).unwrap(),
                Field::Int(value) => {
                    rmp::encode::write_sint(&mut out, *value).unwrap();
                }
            }
        }
        let args = json_to_msgpack(&self.args);
        rmp::encode::write_bin(&mut out, &args).unwrap();
        out.extend(json_to_msgpack(&self.context));
        Bytes::from(out)
    }
}

/// A JSON text as MessagePack. serde_json's parser stops at 128 levels, so
/// the deeply nested values of `nested` are written by hand: a bare
/// `[[..1..]]`, or `{"a": [[..1..]], "b": 2}`.
fn json_to_msgpack(text: &str) -> Vec<u8> {
    let deep = |out: &mut Vec<u8>, depth: usize| {
        for _ in 0..depth {
            rmp::encode::write_array_len(out, 1).unwrap();
        }
        rmp::encode::write_uint(out, 1).unwrap();
    };
    let mut out = Vec::new();
    if let Some(rest) = text.strip_prefix(r#"{"a": "#) {
        let depth = rest.bytes().take_while(|byte| *byte == b'[').count();
        if depth > 100 {
            rmp::encode::write_map_len(&mut out, 2).unwrap();
            rmp::encode::write_str(&mut out, "a").unwrap();
            deep(&mut out, depth);
            rmp::encode::write_str(&mut out, "b").unwrap();
            rmp::encode::write_uint(&mut out, 2).unwrap();
            return out;
        }
    }
    let depth = text.bytes().take_while(|byte| *byte == b'[').count();
    if depth > 100 {
        deep(&mut out, depth);
        return out;
    }
    let value: Value = serde_json::from_str(text).expect("test JSON");
    serde::Serialize::serialize(&value, &mut rmp_serde::Serializer::new(&mut out).with_struct_map()).unwrap();
    out
}

/// Every hostile request, in `codec`, with replies going to `reply_to`.
/// Each has its own message id and `_unique_id`, prefixed with `tag`.
pub fn cases(codec: Codec, reply_to: &str, tag: &str) -> Vec<Hostile> {
    let oslo = codec == Codec::OsloJson;
    let huge = "x".repeat(10_000);
    /// What a case is, how it changes a good call, and what the server must do.
    type Case = (&'static str, Box<dyn Fn(&mut Raw)>, Expect);
    let mut list: Vec<Case> = vec![
        (
            "a huge call-monitor timeout",
            Box::new(|raw| raw.call_monitor = Field::Float(1e20)),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a negative call-monitor timeout",
            Box::new(|raw| raw.call_monitor = Field::Float(-5.0)),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a zero call-monitor timeout",
            Box::new(|raw| raw.call_monitor = Field::Float(0.0)),
            Expect::Served,
        ),
        (
            "a NaN call-monitor timeout",
            Box::new(|raw| raw.call_monitor = Field::Float(f64::NAN)),
            // Python's `NaN` token reads as null: no monitor.
            if oslo {
                Expect::Served
            } else {
                Expect::Refused(ErrorCode::BadRequest)
            },
        ),
        (
            "a call-monitor timeout of the wrong type",
            Box::new(|raw| raw.call_monitor = Field::text("10")),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a message id of the wrong type",
            Box::new(|raw| raw.msg_id = Field::Int(12)),
            Expect::Dropped,
        ),
        (
            "a huge message id",
            Box::new(move |raw| raw.msg_id = Field::text("m".repeat(10_000))),
            Expect::Dropped,
        ),
        (
            "an empty reply address",
            Box::new(|raw| raw.reply_to = Field::text("")),
            Expect::Dropped,
        ),
        (
            "a huge reply address",
            Box::new(|raw| raw.reply_to = Field::text("q".repeat(300))),
            Expect::Dropped,
        ),
        (
            "a reply address with no queue",
            Box::new(|raw| raw.reply_to = Field::text("reply_nobody_listens_here")),
            Expect::ReplyLost,
        ),
        (
            "a huge unique id",
            Box::new(|raw| raw.unique_id = Field::text("u".repeat(300))),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a unique id of the wrong type",
            Box::new(|raw| raw.unique_id = Field::Int(7)),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "an empty method",
            Box::new(|raw| raw.method = Field::text("")),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a huge method name",
            Box::new(|raw| raw.method = Field::text("m".repeat(300))),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a private method",
            Box::new(|raw| raw.method = Field::text("_secret")),
            Expect::Refused(ErrorCode::NoSuchMethod),
        ),
        (
            "a dunder method",
            Box::new(|raw| raw.method = Field::text("__init__")),
            Expect::Refused(ErrorCode::NoSuchMethod),
        ),
        (
            "a huge namespace",
            Box::new(|raw| raw.namespace = Field::text("n".repeat(300))),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a version of four parts",
            Box::new(|raw| raw.version = Field::text("1.2.3.4")),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "an overflowing version",
            Box::new(|raw| raw.version = Field::text("99999999999.0")),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "an empty version",
            Box::new(|raw| raw.version = Field::text("")),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a negative version",
            Box::new(|raw| raw.version = Field::text("1.-1")),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a version of the wrong type",
            Box::new(|raw| raw.version = Field::Int(2)),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "arguments of the wrong type",
            Box::new(|raw| raw.args = r#"{"a": "one", "b": [2]}"#.to_owned()),
            Expect::Refused(ErrorCode::InvalidArguments),
        ),
        (
            "huge arguments",
            Box::new(move |raw| {
                raw.method = Field::text("greet");
                raw.args = json!({"name": huge}).to_string();
            }),
            Expect::Served,
        ),
        (
            "deeply nested arguments",
            Box::new(|raw| raw.args = format!(r#"{{"a": {}, "b": 2}}"#, nested(300))),
            // Arguments are decoded by the method, which refuses them.
            Expect::Refused(ErrorCode::InvalidArguments),
        ),
        (
            "a deeply nested context",
            Box::new(|raw| raw.context = nested(300)),
            Expect::Refused(ErrorCode::BadRequest),
        ),
        (
            "a context of 2,000 entries",
            Box::new(|raw| {
                let context: serde_json::Map<String, Value> =
                    (0..2000).map(|i| (format!("k{i}"), Value::from(i))).collect();
                raw.context = Value::Object(context).to_string();
            }),
            Expect::Refused(ErrorCode::BadRequest),
        ),
    ];
    if !oslo {
        // MessagePack frames say where a call goes with both fields or neither.
        list.push((
            "a message id without a reply address",
            Box::new(|raw| raw.reply_to = Field::Absent),
            Expect::Dropped,
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(index, (case, mutate, expect))| {
            let msg_id = format!("{tag}{}{index:02}", codec.name());
            let mut raw = Raw::call(&msg_id, reply_to, &msg_id);
            mutate(&mut raw);
            Hostile {
                case: format!("{} ({codec})", case),
                codec,
                body: if oslo { raw.oslo() } else { raw.msgpack() },
                msg_id,
                expect,
            }
        })
        .collect()
}

/// One reply: whether it was the last (not a heartbeat), and its error code.
pub type Seen = (bool, Option<ErrorCode>);

/// Replies received, by message id.
#[derive(Debug, Default)]
pub struct Replies {
    seen: Mutex<HashMap<String, Vec<Seen>>>,
}

impl Replies {
    /// Records a reply body.
    pub fn record(&self, codec: Codec, body: &Bytes) {
        let (msg_id, failure) =
            rpc_core::__private::wire::decode_reply_failure(codec, body).expect("a reply the test can read");
        let ending = rpc_core::__private::wire::decode_reply_ending(codec, body).unwrap_or(true);
        self.seen
            .lock()
            .unwrap()
            .entry(msg_id)
            .or_default()
            .push((ending, failure.map(|failure| failure.code())));
    }

    /// The replies to `msg_id` so far.
    pub fn to(&self, msg_id: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().get(msg_id).cloned().unwrap_or_default()
    }

    /// Waits until `msg_id` has a final reply, at most `within`.
    pub async fn final_reply(&self, msg_id: &str, within: Duration) -> Option<Option<ErrorCode>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((_, code)) = self.to(msg_id).into_iter().find(|(ending, _)| *ending) {
                return Some(code);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A reply queue of a memory broker that records every reply.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Arc<Replies>);

impl ReplySink for RecordingSink {
    fn deliver(&self, delivery: Delivery) {
        if let Ok(codec) = delivery.codec() {
            self.0.record(codec, delivery.body());
        }
    }

    fn connection_lost(&self, _error: TransportError) {}
}

/// Checks what the server did with each case against what it must do.
pub async fn check(cases: &[Hostile], replies: &Replies) {
    for case in cases {
        match case.expect {
            Expect::Served => {
                let reply = replies.final_reply(&case.msg_id, Duration::from_secs(10)).await;
                assert_eq!(reply, Some(None), "{}: {:?}", case.case, replies.to(&case.msg_id));
            }
            Expect::Refused(code) => {
                let reply = replies.final_reply(&case.msg_id, Duration::from_secs(10)).await;
                assert_eq!(reply, Some(Some(code)), "{}: {:?}", case.case, replies.to(&case.msg_id));
            }
            Expect::Dropped | Expect::ReplyLost => {}
        }
    }
    // Every case has been processed by now (the caller waited for that):
    // exactly one reply each for the answered ones, none for the others.
    for case in cases {
        let seen = replies.to(&case.msg_id);
        let expected = usize::from(matches!(case.expect, Expect::Served | Expect::Refused(_)));
        assert_eq!(seen.len(), expected, "{}: {seen:?}", case.case);
    }
}
