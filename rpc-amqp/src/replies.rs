//! A server's confirmed replies: published again while their queue is
//! missing (a caller reconnecting, as oslo.messaging retries for
//! `kombu_missing_consumer_retry_timeout`), after a lost or unreachable
//! connection, after a nack (a quorum reply queue between leaders), or when
//! the connection had no channel left to open; not after a refusal that
//! closed the channel (it would come again at every try).
//!
//! A call's last reply waiting for its queue waits in the background when
//! there is room, not in the server's handler: a server answering calls whose
//! callers are gone (a client restarted with calls in flight, or requests
//! naming reply queues that never existed) would otherwise hold a handler
//! slot for the whole window each, and serve nothing meanwhile. The room
//! is bounded, in replies and in bytes; past it, a reply waits in its
//! handler, as before. A heartbeat or progress notice waits where it was
//! sent (the server's heartbeat task), never after the last reply. Closing
//! the transport waits for the replies waiting apart (as a server's `wait`
//! waits for one waiting in its handler); they hold the publisher weakly,
//! so a transport dropped without closing stops them.

use std::sync::{Arc, Weak};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::ShortString;
use rpc_core::transport::Retry;
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::config::AmqpConfig;
use crate::gone::GoneQueues;
use crate::publisher::{self, Message, Outcome, Publisher};

/// The longest a reply is retried, whatever the configuration says.
const MAX_REPLY_RETRY_TIMEOUT: Duration = Duration::from_secs(3600);

/// How often a server retries a reply whose queue is missing.
const REPLY_RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// How many replies may wait for their queue in the background.
const WAITING_APART: usize = 256;

/// How many bytes the replies waiting in the background may hold in all.
const WAITING_APART_BYTES: usize = 64 << 20;

/// How long a server retries a reply whose queue is missing, and then
/// believes the queue gone.
pub(crate) fn reply_window(config: &AmqpConfig) -> Duration {
    config.reply_retry_timeout.min(MAX_REPLY_RETRY_TIMEOUT)
}

/// Whether a reply that failed with `error` goes out again (within the
/// reply window): after a lost or unreachable connection, a nack (a quorum
/// queue without a leader), or running out of channels; a reply is
/// idempotent, its caller dropping copies.
/// Not after a refusal that closed the channel (a body over the broker's
/// own size limit, a permission): it would come again at every try, each
/// closing a channel.
fn may_reply_again(error: &TransportError) -> bool {
    matches!(
        error.kind(),
        TransportErrorKind::ConnectionLost | TransportErrorKind::Unreachable
    ) || publisher::is_nack(error)
        || out_of_channels(error)
}

/// Whether `error` says the connection has no channel left to open (a
/// burst of publishes alone, after a channel error): it passes.
fn out_of_channels(error: &TransportError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<lapin::Error>())
        .is_some_and(|error| matches!(error.kind(), lapin::ErrorKind::ChannelsLimitReached))
}

/// Where replies go, and the room for those waiting for their queue.
#[derive(Debug)]
pub(crate) struct Replies {
    publisher: Arc<Publisher>,
    gone: Arc<GoneQueues>,
    /// The reply window.
    window: Duration,
    /// The longest wait between tries after a failure.
    max_backoff: Duration,
    /// Replies that may wait in the background, and their bytes.
    room: Arc<Semaphore>,
    room_bytes: Arc<Semaphore>,
}

/// A reply to publish: to the queue `reply_to`, through the default exchange.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) reply_to: String,
    pub(crate) routing_key: ShortString,
    pub(crate) body: rpc_core::transport::Bytes,
    pub(crate) properties: BasicProperties,
    pub(crate) retry: Retry,
    /// What is left of its caller's deadline, if known.
    pub(crate) expiration: Option<Duration>,
    /// The call's last reply, not a heartbeat or progress notice.
    pub(crate) final_reply: bool,
}

impl Reply {
    /// The message of one try.
    pub(crate) fn message(&self) -> Message {
        Message {
            exchange: ShortString::from(""),
            routing_key: self.routing_key.clone(),
            mandatory: true,
            body: self.body.clone(),
            properties: self.properties.clone(),
            deadline: None,
        }
    }
}

impl Replies {
    pub(crate) fn new(publisher: Arc<Publisher>, gone: Arc<GoneQueues>, config: &AmqpConfig) -> Replies {
        Replies {
            publisher,
            gone,
            window: reply_window(config),
            max_backoff: config.retry_interval,
            room: Arc::new(Semaphore::new(WAITING_APART)),
            room_bytes: Arc::new(Semaphore::new(WAITING_APART_BYTES)),
        }
    }

    /// Publishes `reply`, and again as its failures allow, within the
    /// window (nobody waits for a reply after its caller's deadline). A
    /// reply whose queue is missing waits for it in the background when
    /// there is room: then `Ok` means it is on its way.
    pub(crate) async fn publish(&self, reply: Reply) -> Result<(), TransportError> {
        let window = reply.expiration.map_or(self.window, |left| self.window.min(left));
        let deadline = Instant::now() + window;
        let first = self.publisher.publish(reply.message(), reply.retry).await;
        if matches!(first, Ok(Outcome::Routed)) {
            return Ok(());
        }
        if reply.final_reply && matches!(first, Ok(Outcome::Returned)) && room_to_retry(deadline) {
            let size = u32::try_from(reply.body.len()).unwrap_or(u32::MAX);
            let room = Arc::clone(&self.room).try_acquire_owned();
            let room_bytes = Arc::clone(&self.room_bytes).try_acquire_many_owned(size);
            if let (Ok(room), Ok(room_bytes)) = (room, room_bytes) {
                let waiting = self.waiting();
                let wait = async move {
                    let _room = (room, room_bytes);
                    let returned = Some(Ok(Outcome::Returned));
                    if let Err(error) = waiting.publish(&reply, window, deadline, returned).await {
                        tracing::warn!(reply_to = %reply.reply_to, %error, "cannot send a reply; the caller will time out");
                    }
                };
                tokio::spawn(wait.instrument(tracing::Span::current()));
                return Ok(());
            }
        }
        self.waiting().publish(&reply, window, deadline, Some(first)).await
    }

    /// Waits until no reply waits for its queue in the background: each is
    /// delivered, or given up at its caller's deadline or the end of the
    /// reply window. A transport closing waits for them, as a server's
    /// `wait` would for a reply waiting in its handler.
    pub(crate) async fn settled(&self) {
        let all = u32::try_from(WAITING_APART).unwrap_or(u32::MAX);
        let _ = self.room.acquire_many(all).await;
    }

    fn waiting(&self) -> Waiting {
        Waiting {
            publisher: Arc::downgrade(&self.publisher),
            gone: Arc::clone(&self.gone),
            max_backoff: self.max_backoff,
        }
    }
}

/// What a reply's tries need, in its handler or in the background: the
/// publisher held weakly, so that a reply waiting apart does not keep a
/// dropped transport's connection open.
struct Waiting {
    publisher: Weak<Publisher>,
    gone: Arc<GoneQueues>,
    max_backoff: Duration,
}

impl Waiting {
    /// Tries `reply` until `deadline`, starting from the outcome of a try
    /// already made, if any.
    async fn publish(
        &self,
        reply: &Reply,
        window: Duration,
        deadline: Instant,
        mut tried: Option<Result<Outcome, TransportError>>,
    ) -> Result<(), TransportError> {
        let mut backoff = Backoff::new(REPLY_RETRY_INTERVAL, self.max_backoff);
        loop {
            let outcome = match tried.take() {
                Some(outcome) => outcome,
                None => {
                    let Some(publisher) = self.publisher.upgrade() else {
                        return Err(TransportError::new(TransportErrorKind::Closed, "the transport is gone"));
                    };
                    publisher.publish(reply.message(), reply.retry).await
                }
            };
            match outcome {
                Ok(Outcome::Routed) => return Ok(()),
                Ok(Outcome::Returned) if room_to_retry(deadline) => {
                    tokio::time::sleep(REPLY_RETRY_INTERVAL).await;
                }
                Ok(Outcome::Returned | Outcome::NoExchange) => {
                    self.gone.mark_for(&reply.reply_to, window);
                    return Err(gone(&reply.reply_to));
                }
                Err(error) if may_reply_again(&error) && room_to_retry(deadline) => {
                    tracing::info!(reply_to = %reply.reply_to, %error, "publishing a reply again");
                    tokio::time::sleep(backoff.next_delay().min(deadline - Instant::now())).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Whether another try fits before `deadline`.
fn room_to_retry(deadline: Instant) -> bool {
    Instant::now() + REPLY_RETRY_INTERVAL < deadline
}

/// The error of a reply to a queue found gone.
pub(crate) fn gone(reply_to: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Unroutable,
        format!("the reply queue `{reply_to}` is gone"),
    )
}

#[cfg(test)]
mod tests {
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPSoftError};

    use super::*;
    use crate::error::from_lapin;

    #[test]
    fn replies_go_out_again_after_a_loss_or_a_nack_but_not_a_refusal() {
        let lost = TransportError::new(TransportErrorKind::ConnectionLost, "lost");
        assert!(may_reply_again(&lost));
        let nack = publisher::outcome_of_nack();
        assert_eq!(nack.kind(), TransportErrorKind::Refused);
        assert!(may_reply_again(&nack));
        // Over the broker's own size limit: the channel is closed, and would be at every try.
        let too_big = AMQPError::new(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED), "too big".into());
        let too_big = from_lapin(lapin::ErrorKind::ProtocolError(too_big).into(), "publishing");
        assert_eq!(too_big.kind(), TransportErrorKind::Refused);
        assert!(!may_reply_again(&too_big));
    }
}
