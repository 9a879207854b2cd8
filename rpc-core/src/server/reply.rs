//! Replies and heartbeats, on their way back to the caller.

use crate::message::{Payload, ReplyAddress, ReplyOut};
use crate::transport::{OutgoingMessage, Retry};
use crate::{Codec, RemoteError};

use super::Shared;

/// How many times a reply is retried while the broker is unreachable.
const REPLY_RETRY: Retry = Retry::Limited(5);

/// Sends the final reply of a call: its result or its error.
pub(super) async fn send(shared: &Shared, codec: Codec, address: &ReplyAddress, outcome: Result<Payload, RemoteError>) {
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
    publish(shared, codec, address, &reply).await;
}

/// Sends a call-monitor heartbeat: a reply that is not the last.
pub(super) async fn heartbeat(shared: &Shared, codec: Codec, address: &ReplyAddress) {
    let heartbeat = ReplyOut {
        msg_id: &address.msg_id,
        ending: false,
        result: None,
        failure: None,
    };
    publish(shared, codec, address, &heartbeat).await;
}

async fn publish(shared: &Shared, codec: Codec, address: &ReplyAddress, reply: &ReplyOut<'_>) {
    let body = match codec.encode_reply(reply) {
        Ok(body) => body,
        Err(reason) => {
            tracing::error!(%reason, "cannot encode a reply");
            return;
        }
    };
    let message = OutgoingMessage::new(body, codec, None, REPLY_RETRY);
    if let Err(error) = shared.transport.driver().reply(&address.reply_to, message).await {
        tracing::warn!(reply_to = %address.reply_to, %error, "cannot send a reply; the caller will time out");
    }
}
