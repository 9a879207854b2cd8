//! A request's header as a peer wrote it, checked once, at decode, into the
//! typed fields of a [`Request`](crate::Request).
//!
//! Every value here comes from whoever can publish to the server's queues.
//! Each is bounded or converted with checked arithmetic here, so that
//! nothing later (timers, maps, log lines, replies) meets a value it cannot
//! handle. A header that fails a check makes the request undecodable: it is
//! rejected and logged, and its caller, when its reply address passes the
//! checks, gets a `BadRequest` error.

use std::time::Duration;

use crate::message::ReplyAddress;
use crate::{CodecError, Context, Version};

/// The longest method, namespace, id or reply address accepted, in bytes:
/// AMQP's limit for names (a reply address is a routing key).
pub const MAX_NAME_LEN: usize = 255;

/// The most context entries a request may carry (oslo.context sends about
/// twenty).
pub const MAX_CONTEXT_ENTRIES: usize = 1024;

/// How deeply decoded values (arguments, context, results) may nest; deeper
/// input is refused instead of overflowing the stack.
pub const MAX_DEPTH: usize = 128;

/// The longest call-monitor timeout accepted: a day. Heartbeats are sent
/// every half of it, so anything longer is no monitor at all.
pub const MAX_CALL_MONITOR: Duration = Duration::from_secs(24 * 60 * 60);

/// The header fields as decoded, before any check.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RawHeader<'a> {
    pub(crate) method: Option<&'a str>,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) version: Option<&'a str>,
    pub(crate) msg_id: Option<&'a str>,
    pub(crate) reply_to: Option<&'a str>,
    /// oslo's `_timeout`, in seconds.
    pub(crate) call_monitor: Option<f64>,
    pub(crate) unique_id: Option<&'a str>,
}

/// The header fields, checked.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) method: String,
    pub(crate) namespace: Option<String>,
    pub(crate) version: Option<Version>,
    pub(crate) reply: Option<ReplyAddress>,
    pub(crate) call_monitor: Option<Duration>,
    pub(crate) unique_id: Option<String>,
}

fn name<'a>(what: &str, value: &'a str) -> Result<&'a str, CodecError> {
    if value.is_empty() {
        return Err(CodecError::new(format_args!("`{what}` is empty")));
    }
    bounded(what, value)
}

/// `value`, when it is at most [`MAX_NAME_LEN`] bytes long.
pub(crate) fn bounded<'a>(what: &str, value: &'a str) -> Result<&'a str, CodecError> {
    within(what, value, MAX_NAME_LEN)
}

/// `value`, when it is at most `limit` bytes long.
pub(crate) fn within<'a>(what: &str, value: &'a str, limit: usize) -> Result<&'a str, CodecError> {
    if value.len() > limit {
        return Err(CodecError::new(format_args!(
            "`{what}` is {} bytes long, over the limit of {limit}",
            value.len()
        )));
    }
    Ok(value)
}

/// The reply address of a call, when it is one a reply can go to: both
/// parts present, non-empty and within [`MAX_NAME_LEN`].
pub(crate) fn reply_address(msg_id: Option<&str>, reply_to: Option<&str>) -> Option<ReplyAddress> {
    let msg_id = name("_msg_id", msg_id?).ok()?;
    let reply_to = name("_reply_q", reply_to?).ok()?;
    Some(ReplyAddress {
        msg_id: msg_id.to_owned(),
        reply_to: reply_to.to_owned(),
    })
}

/// oslo's `_timeout`: `null` or `0` is no call monitor; anything else must
/// be a finite, positive number of seconds, at most [`MAX_CALL_MONITOR`].
fn call_monitor(seconds: Option<f64>) -> Result<Option<Duration>, CodecError> {
    let Some(seconds) = seconds else {
        return Ok(None);
    };
    if seconds == 0.0 {
        return Ok(None);
    }
    let invalid = || {
        CodecError::new(format_args!(
            "the call-monitor timeout `_timeout` is {seconds}: expected a number of seconds between 0 and {}",
            MAX_CALL_MONITOR.as_secs()
        ))
    };
    let monitor = Duration::try_from_secs_f64(seconds).map_err(|_| invalid())?;
    if monitor > MAX_CALL_MONITOR {
        return Err(invalid());
    }
    Ok(Some(monitor))
}

/// Checks the context's size (its depth is bounded by the decoders).
pub(crate) fn check_context(context: &Context) -> Result<(), CodecError> {
    if context.len() > MAX_CONTEXT_ENTRIES {
        return Err(CodecError::new(format_args!(
            "the context has {} entries, over the limit of {MAX_CONTEXT_ENTRIES}",
            context.len()
        )));
    }
    Ok(())
}

/// Checks every field of `raw`, and the context's size.
pub(crate) fn check(raw: RawHeader<'_>, context: &Context) -> Result<Header, CodecError> {
    let method = name(
        "method",
        raw.method
            .ok_or_else(|| CodecError::new("the request has no `method`"))?,
    )?;
    let namespace = raw
        .namespace
        .map(|namespace| name("namespace", namespace))
        .transpose()?;
    let version = raw.version.map(Version::parse).transpose().map_err(CodecError::new)?;
    let reply = match (raw.msg_id, raw.reply_to) {
        (None, None) => None,
        (msg_id, reply_to) => Some(reply_address(msg_id, reply_to).ok_or_else(|| {
            CodecError::new("a call needs a non-empty `_msg_id` and `_reply_q` of at most 255 bytes")
        })?),
    };
    let unique_id = raw.unique_id.map(|id| name("_unique_id", id)).transpose()?;
    check_context(context)?;
    Ok(Header {
        method: method.to_owned(),
        namespace: namespace.map(str::to_owned),
        version,
        reply,
        call_monitor: call_monitor(raw.call_monitor)?,
        unique_id: unique_id.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(raw: RawHeader<'_>) -> Result<Header, CodecError> {
        check(raw, &Context::new())
    }

    fn call<'a>() -> RawHeader<'a> {
        RawHeader {
            method: Some("add"),
            msg_id: Some("m1"),
            reply_to: Some("reply_q"),
            unique_id: Some("u1"),
            ..RawHeader::default()
        }
    }

    #[test]
    fn call_monitor_timeouts_are_bounded_and_checked() {
        for (seconds, expected) in [
            (None, Ok(None)),
            (Some(0.0), Ok(None)),
            (Some(30.0), Ok(Some(Duration::from_secs(30)))),
            (Some(0.5), Ok(Some(Duration::from_millis(500)))),
            (Some(1e20), Err("100000000000000000000")),
            (Some(-3.0), Err("-3")),
            (Some(f64::NAN), Err("NaN")),
            (Some(f64::INFINITY), Err("inf")),
            (Some(86_401.0), Err("86401")),
        ] {
            let result = header(RawHeader {
                call_monitor: seconds,
                ..call()
            })
            .map(|header| header.call_monitor);
            match (result, expected) {
                (Ok(monitor), Ok(expected)) => assert_eq!(monitor, expected, "{seconds:?}"),
                (Err(error), Err(needle)) => assert!(error.to_string().contains(needle), "{seconds:?}: {error}"),
                (result, expected) => panic!("{seconds:?}: {result:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn names_are_bounded() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for raw in [
            RawHeader {
                method: Some(""),
                ..call()
            },
            RawHeader { method: None, ..call() },
            RawHeader {
                method: Some(&long),
                ..call()
            },
            RawHeader {
                namespace: Some(&long),
                ..call()
            },
            RawHeader {
                unique_id: Some(&long),
                ..call()
            },
            RawHeader {
                version: Some("1.99999999999"),
                ..call()
            },
            RawHeader {
                version: Some("1.2.3.4"),
                ..call()
            },
        ] {
            assert!(header(raw).is_err(), "{raw:?}");
        }
        assert!(header(call()).is_ok());
    }

    #[test]
    fn reply_addresses_must_be_usable() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for (msg_id, reply_to) in [
            (Some("m"), Some("")),
            (Some(""), Some("q")),
            (Some("m"), None),
            (None, Some("q")),
            (Some("m"), Some(long.as_str())),
        ] {
            assert_eq!(reply_address(msg_id, reply_to), None, "{msg_id:?} {reply_to:?}");
            let raw = RawHeader {
                msg_id,
                reply_to,
                ..call()
            };
            assert!(header(raw).is_err(), "{raw:?}");
        }
        let cast = RawHeader {
            msg_id: None,
            reply_to: None,
            ..call()
        };
        assert!(header(cast).unwrap().reply.is_none());
    }

    #[test]
    fn contexts_are_bounded() {
        let big: Context = (0..=MAX_CONTEXT_ENTRIES)
            .map(|i| (format!("k{i}"), serde_json::Value::Null))
            .collect();
        let error = check(call(), &big).unwrap_err();
        assert!(error.to_string().contains("entries"), "{error}");
    }
}
