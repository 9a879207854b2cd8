//! Requests and replies as the runtime sees them, between the codec and the dispatcher.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::header::Header;
use crate::{Codec, CodecError, Context, RemoteError, Version};

/// A value still in its wire encoding: a method's arguments or its result.
///
/// Handlers decode it straight into their typed parameters, so no dynamic
/// value is built on the way.
#[derive(Clone)]
pub struct Payload {
    codec: Codec,
    bytes: PayloadBytes,
}

/// Equal when the codec and the bytes are.
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.codec == other.codec && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Payload {}

/// Encoded here (owned), or received (a slice of the message).
#[derive(Clone)]
enum PayloadBytes {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl Payload {
    pub(crate) fn owned(codec: Codec, bytes: Vec<u8>) -> Payload {
        Payload {
            codec,
            bytes: PayloadBytes::Owned(bytes),
        }
    }

    pub(crate) fn new(codec: Codec, bytes: Bytes) -> Payload {
        Payload {
            codec,
            bytes: PayloadBytes::Shared(bytes),
        }
    }

    /// Decodes the value as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.codec.decode_value(self.as_bytes())
    }

    /// The value re-encoded in `codec` (a copy when it already is).
    pub fn transcode(&self, codec: Codec) -> Result<Payload, CodecError> {
        if self.codec == codec {
            return Ok(self.clone());
        }
        let value: serde_json::Value = self.decode()?;
        codec.encode(&value)
    }

    /// The value in `codec`: itself when it already is, re-encoded otherwise.
    pub(crate) fn in_codec(&self, codec: Codec) -> Result<std::borrow::Cow<'_, Payload>, CodecError> {
        if self.codec == codec {
            return Ok(std::borrow::Cow::Borrowed(self));
        }
        self.transcode(codec).map(std::borrow::Cow::Owned)
    }

    /// The codec the value is encoded with.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            PayloadBytes::Owned(bytes) => bytes,
            PayloadBytes::Shared(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({:?}, {} bytes)", self.codec, self.as_bytes().len())
    }
}

/// Where the reply to a call goes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ReplyAddress {
    /// The call's correlation id (oslo's `_msg_id`).
    pub(crate) msg_id: String,
    /// The caller's reply queue (oslo's `_reply_q`).
    pub(crate) reply_to: String,
}

/// A request received by a server: a call when it has a reply address, a cast otherwise.
///
/// Endpoints receive it in [`Endpoint::dispatch`](crate::Endpoint::dispatch);
/// generated code reads the context, decodes the arguments and encodes the
/// result through it.
#[derive(Debug)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) namespace: Option<String>,
    pub(crate) version: Option<Version>,
    pub(crate) context: Context,
    pub(crate) args: Payload,
    pub(crate) reply: Option<ReplyAddress>,
    /// The caller's call-monitor timeout (oslo's `_timeout`).
    pub(crate) call_monitor: Option<Duration>,
    /// The message's de-duplication id (oslo's `_unique_id`).
    pub(crate) unique_id: Option<String>,
}

impl Request {
    /// A request from its checked header, context and arguments.
    pub(crate) fn new(header: Header, context: Context, args: Payload) -> Request {
        Request {
            method: header.method,
            namespace: header.namespace,
            version: header.version,
            context,
            args,
            reply: header.reply,
            call_monitor: header.call_monitor,
            unique_id: header.unique_id,
        }
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The namespace the request is addressed to; `None` is the default namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The version the request asks for; `None` means `1.0`.
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    /// The caller's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The caller's context, for a [`Middleware`](crate::middleware::Middleware)
    /// to enrich before the handler sees it.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// Whether the caller waits for a reply (a call, not a cast).
    pub fn is_call(&self) -> bool {
        self.reply.is_some()
    }

    /// The arguments, still encoded.
    pub fn args(&self) -> &Payload {
        &self.args
    }

    /// Decodes the arguments (a map of name to value) into `T`.
    ///
    /// A failure is the caller's mistake and becomes an
    /// [`ErrorCode::InvalidArguments`](crate::ErrorCode::InvalidArguments) reply.
    pub fn decode_args<T: DeserializeOwned>(&self) -> Result<T, RemoteError> {
        self.args
            .decode()
            .map_err(|reason| RemoteError::invalid_arguments(&self.method, reason))
    }

    /// Encodes a method's result in the caller's codec.
    pub fn encode_result<T: Serialize + ?Sized>(&self, value: &T) -> Result<Payload, RemoteError> {
        self.args.codec.encode(value).map_err(|reason| {
            tracing::error!(method = %self.method, %reason, "cannot encode the result");
            RemoteError::new(
                crate::ErrorCode::Internal,
                "EncodeError",
                format!("cannot encode the result of `{}`: {reason}", self.method),
            )
            .with_module("rpc_core")
        })
    }
}

/// The header of a request being sent; the codec frames it with the arguments.
#[derive(Debug)]
pub(crate) struct RequestHeader<'a> {
    pub(crate) method: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) version: Option<&'a Version>,
    pub(crate) msg_id: Option<&'a str>,
    pub(crate) reply_to: Option<&'a str>,
    pub(crate) call_monitor: Option<f64>,
    pub(crate) unique_id: &'a str,
    pub(crate) context: &'a Context,
    /// The request's span, for codecs that carry it in the context (oslo
    /// 18.3's `_context_traceparent`); headers carry it too.
    pub(crate) trace: Option<&'a crate::TraceContext>,
}

/// A reply to send, borrowed from the call's state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyOut<'a> {
    pub(crate) msg_id: &'a str,
    pub(crate) ending: bool,
    pub(crate) result: Option<&'a Payload>,
    pub(crate) failure: Option<&'a RemoteError>,
}

/// A reply received, or a call-monitor heartbeat (`ending == false`, nothing else set).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) msg_id: String,
    pub(crate) ending: bool,
    pub(crate) result: Option<Payload>,
    pub(crate) failure: Option<RemoteError>,
}

/// A request that could not be decoded, and where to say so when that is known.
#[derive(Debug)]
pub(crate) struct UndecodableRequest {
    pub(crate) reason: CodecError,
    pub(crate) reply: Option<ReplyAddress>,
}
