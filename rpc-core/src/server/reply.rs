//! Replies and heartbeats, on their way back to the caller.

use crate::message::{Payload, ReplyAddress, ReplyOut};
use crate::transport::{Headers, OutgoingMessage, Retry};
use tokio::time::Instant;

use crate::{Codec, ErrorCode, RemoteError};

use super::Shared;

/// How many times a reply is retried while the broker is unreachable.
const REPLY_RETRY: Retry = Retry::Limited(5);

/// Sends the final reply of a call: its result or its error. With the
/// caller's `deadline`, a transport retries it only until then (nobody
/// waits for it after).
pub(super) async fn send(
    shared: &Shared,
    codec: Codec,
    address: &ReplyAddress,
    outcome: Result<Payload, RemoteError>,
    deadline: Option<Instant>,
) {
    let (result, failure) = match &outcome {
        Ok(result) => (Some(result), None),
        Err(failure) => (None, Some(failure)),
    };
    let reply = ReplyOut {
        msg_id: &address.msg_id,
        ending: true,
        result,
        failure,
    };
    publish_with(shared, codec, address, &reply, Headers::new(), deadline).await;
}

/// Sends a call-monitor heartbeat or a progress notice: a reply that is
/// not the last, with `headers` naming the server and the interval.
pub(super) async fn heartbeat(shared: &Shared, codec: Codec, address: &ReplyAddress, headers: &Headers) {
    let heartbeat = ReplyOut {
        msg_id: &address.msg_id,
        ending: false,
        result: None,
        failure: None,
    };
    publish_with(shared, codec, address, &heartbeat, headers.clone(), None).await;
}

async fn publish_with(
    shared: &Shared,
    codec: Codec,
    address: &ReplyAddress,
    reply: &ReplyOut<'_>,
    headers: Headers,
    deadline: Option<Instant>,
) {
    let body = match codec.encode_reply(reply) {
        Ok(body) => body,
        Err(reason) if reply.ending => {
            // The caller is told why, rather than left to time out.
            tracing::error!(%reason, "cannot encode a reply; answering with the reason instead");
            let failure = RemoteError::new(
                ErrorCode::Internal,
                "EncodeError",
                format!("the server could not encode its reply: {reason}"),
            )
            .with_module("rpc_core");
            let fallback = ReplyOut {
                result: None,
                failure: Some(&failure),
                ..*reply
            };
            match codec.encode_reply(&fallback) {
                Ok(body) => body,
                Err(reason) => {
                    tracing::error!(%reason, "cannot encode a reply; its caller will time out");
                    return;
                }
            }
        }
        Err(reason) => {
            tracing::error!(%reason, "cannot encode a progress notice");
            return;
        }
    };
    let mut message = OutgoingMessage::new(body, codec, deadline, REPLY_RETRY).with_headers(headers);
    if !reply.ending {
        message = message.as_notice();
    }
    if let Err(error) = shared.transport.driver().reply(&address.reply_to, message).await {
        tracing::warn!(reply_to = %address.reply_to, %error, "cannot send a reply; the caller will time out");
    }
}
