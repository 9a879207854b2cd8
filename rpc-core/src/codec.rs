//! Codecs: how requests, replies and notifications are written on the wire.

mod envelope;
mod msgpack;
mod oslo;

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CodecError;
use crate::message::{Payload, Reply, ReplyAddress, ReplyOut, Request, RequestHeader, UndecodableRequest};
use crate::notify::message::{Notification, NotificationHeader};

/// A wire format, told apart on the wire by the message's content type.
///
/// - [`Codec::MsgPack`] (`application/x-msgpack`, the default): the native
///   format between our peers. Arguments stay a map keyed by name, and the
///   arguments and result travel as embedded MessagePack documents that
///   handlers decode straight into their typed parameters.
/// - [`Codec::OsloJson`] (`application/json`): oslo.messaging's format, for
///   Python peers: the 2.0 envelope, the context flattened into
///   `_context_<key>` entries, failures as oslo's exception JSON.
///
/// A server accepts every codec on the same queues and answers in the
/// caller's codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// MessagePack, the native format.
    #[default]
    MsgPack,
    /// oslo.messaging's JSON, for Python peers.
    OsloJson,
}

impl Codec {
    /// The AMQP content type of messages in this codec.
    pub const fn content_type(self) -> &'static str {
        match self {
            Codec::MsgPack => "application/x-msgpack",
            Codec::OsloJson => "application/json",
        }
    }

    /// The codec whose messages carry `content_type`.
    pub fn from_content_type(content_type: &str) -> Option<Codec> {
        match content_type {
            "application/x-msgpack" | "application/msgpack" => Some(Codec::MsgPack),
            "application/json" => Some(Codec::OsloJson),
            _ => None,
        }
    }

    /// The codec's name in transport URLs (`?codec=msgpack`).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::MsgPack => "msgpack",
            Codec::OsloJson => "oslo",
        }
    }

    /// The codec named `name` in a transport URL.
    pub fn from_name(name: &str) -> Option<Codec> {
        match name {
            "msgpack" => Some(Codec::MsgPack),
            "oslo" | "json" => Some(Codec::OsloJson),
            _ => None,
        }
    }

    /// Encodes a value (arguments, a result) in this codec.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Payload, CodecError> {
        let bytes = match self {
            Codec::MsgPack => msgpack::encode_value(value)?,
            Codec::OsloJson => oslo::encode_value(value)?,
        };
        Ok(Payload::owned(self, bytes))
    }

    pub(crate) fn decode_value<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::MsgPack => msgpack::decode_value(bytes),
            Codec::OsloJson => oslo::decode_value(bytes),
        }
    }

    /// Frames a request with its arguments, encoded in place. Fails when
    /// the arguments cannot be encoded or do not encode as a map.
    pub(crate) fn encode_request<A: Serialize + ?Sized>(
        self,
        header: &RequestHeader<'_>,
        args: &A,
    ) -> Result<Bytes, CodecError> {
        match self {
            Codec::MsgPack => msgpack::encode_request(header, args).map(Bytes::from),
            Codec::OsloJson => oslo::encode_request(header, args).map(Bytes::from),
        }
    }

    pub(crate) fn decode_request(self, body: &Bytes) -> Result<Request, UndecodableRequest> {
        match self {
            Codec::MsgPack => msgpack::decode_request(body),
            Codec::OsloJson => oslo::decode_request(body),
        }
    }

    /// The reply address of a request that will not be decoded in full.
    pub(crate) fn reply_address(self, body: &Bytes) -> Option<ReplyAddress> {
        match self {
            Codec::MsgPack => msgpack::reply_address(body),
            Codec::OsloJson => oslo::reply_address(body),
        }
    }

    pub(crate) fn encode_reply(self, reply: &ReplyOut<'_>) -> Result<Bytes, CodecError> {
        match self {
            Codec::MsgPack => msgpack::encode_reply(reply).map(Bytes::from),
            Codec::OsloJson => oslo::encode_reply(reply).map(Bytes::from),
        }
    }

    /// The message id of a reply that does not decode, read leniently: the
    /// call it answers can then fail at once rather than time out.
    pub(crate) fn reply_msg_id(self, body: &Bytes) -> Option<String> {
        match self {
            Codec::MsgPack => msgpack::reply_msg_id(body),
            Codec::OsloJson => oslo::reply_msg_id(body),
        }
    }

    pub(crate) fn decode_reply(self, body: &Bytes) -> Result<Reply, CodecError> {
        match self {
            Codec::MsgPack => msgpack::decode_reply(body),
            Codec::OsloJson => oslo::decode_reply(body),
        }
    }

    /// Frames a notification with its payload; `envelope` chooses oslo's
    /// 2.0 envelope or its 1.0 format (JSON only: MessagePack has one form).
    pub(crate) fn encode_notification<P: Serialize + ?Sized>(
        self,
        header: &NotificationHeader<'_>,
        payload: &P,
        envelope: bool,
    ) -> Result<Bytes, CodecError> {
        match self {
            Codec::MsgPack => msgpack::encode_notification(header, payload).map(Bytes::from),
            Codec::OsloJson => oslo::encode_notification(header, payload, envelope).map(Bytes::from),
        }
    }

    pub(crate) fn decode_notification(self, body: &Bytes) -> Result<Notification, CodecError> {
        match self {
            Codec::MsgPack => msgpack::decode_notification(body),
            Codec::OsloJson => oslo::decode_notification(body),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
