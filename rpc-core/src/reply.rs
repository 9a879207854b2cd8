//! The client side of replies: one reply queue per transport, and the
//! table of calls waiting on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};

use crate::ids::{self, Id, RandomKeys};
use crate::message::Reply;
use crate::progress::Heard;
use crate::transport::{Delivery, Driver, ReplyQueue, ReplySink, Retry};
use crate::{CodecError, TransportError, TransportErrorKind};

/// What a waiting call receives: its final reply, or why none will come.
pub(crate) type Outcome = Result<Reply, Unanswered>;

/// Why a call gets no reply it can read.
#[derive(Debug)]
pub(crate) enum Unanswered {
    /// The transport failed it: not delivered, or lost with a connection.
    Transport(TransportError),
    /// Its reply came and does not decode.
    Undecodable(CodecError),
}

#[cfg(test)]
impl Unanswered {
    fn transport(self) -> TransportError {
        match self {
            Unanswered::Transport(error) => error,
            Unanswered::Undecodable(reason) => panic!("undecodable: {reason}"),
        }
    }
}

impl From<TransportError> for Unanswered {
    fn from(error: TransportError) -> Unanswered {
        Unanswered::Transport(error)
    }
}

#[derive(Debug)]
struct Pending {
    done: oneshot::Sender<Outcome>,
    /// Only calls with a call monitor listen for heartbeats.
    heartbeat: Option<Arc<Notify>>,
    /// A result sent ahead of the final message (oslo's legacy two-message replies).
    partial: Option<Reply>,
    /// The last progress notice from the server handling the call.
    heard: Option<Heard>,
    /// Whether its request went out: a lost connection fails only those
    /// (their replies may be lost with it); one still going out is
    /// published once the transport is back, and answered.
    sent: bool,
}

/// The calls waiting for replies, by the value of their message id.
#[derive(Debug, Default)]
struct Table {
    calls: Mutex<HashMap<u128, Pending, RandomKeys>>,
    late_replies: AtomicU64,
}

impl Table {
    fn calls(&self) -> MutexGuard<'_, HashMap<u128, Pending, RandomKeys>> {
        // A panic while the lock is held cannot leave the map inconsistent.
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn route(&self, delivery: &Delivery) {
        let codec = match delivery.codec() {
            Ok(codec) => codec,
            Err(reason) => {
                tracing::warn!(%reason, "dropping a message on the reply queue");
                return;
            }
        };
        // A decoder bug must cost one reply, not the consumer of them all.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| codec.decode_reply(delivery.body())));
        let Ok(decoded) = decoded else {
            tracing::error!("the reply decoder panicked; dropping the reply");
            return;
        };
        let reply = match decoded {
            Ok(reply) => reply,
            Err(reason) => {
                // The call it answers, if its id can be read, fails now
                // with the reason, rather than time out.
                let pending = codec
                    .reply_msg_id(delivery.body())
                    .and_then(|msg_id| ids::key_of(&msg_id))
                    .and_then(|key| self.calls().remove(&key));
                tracing::warn!(%reason, answered = pending.is_some(), "an undecodable reply");
                if let Some(pending) = pending {
                    let _ = pending.done.send(Err(Unanswered::Undecodable(reason)));
                }
                return;
            }
        };
        let mut calls = self.calls();
        let pending = ids::key_of(&reply.msg_id).and_then(|key| calls.get_mut(&key).map(|pending| (key, pending)));
        let Some((key, pending)) = pending else {
            drop(calls);
            if !reply.ending {
                // A heartbeat or progress notice for a call that gave up:
                // its server keeps sending them until the call's deadline.
                tracing::debug!(msg_id = %reply.msg_id, "dropping a heartbeat for a call that no longer waits");
                return;
            }
            self.late_replies.fetch_add(1, Ordering::Relaxed);
            tracing::info!(msg_id = %reply.msg_id, "dropping a reply nobody waits for (its call gave up, or never was)");
            crate::metrics::late_reply();
            return;
        };
        if let Some(heartbeat) = &pending.heartbeat {
            heartbeat.notify_one();
        }
        if !reply.ending {
            if let Some(heard) = Heard::from_headers(delivery.headers()) {
                tracing::debug!(msg_id = %reply.msg_id, server = heard.server(), "a server is working on the call");
                pending.heard = Some(heard);
            }
            if reply.result.is_some() || reply.failure.is_some() {
                pending.partial = Some(reply);
            }
            return;
        }
        let Some(pending) = calls.remove(&key) else {
            return;
        };
        drop(calls);
        let reply = match pending.partial {
            Some(partial) if reply.result.is_none() && reply.failure.is_none() => partial,
            _ => reply,
        };
        // The caller may have given up in between; then nobody needs the reply.
        let _ = pending.done.send(Ok(reply));
    }

    /// Fails the waiting calls: all of them, or with `sent_only`, those
    /// whose request went out.
    fn fail_all(&self, kind: TransportErrorKind, message: &str, sent_only: bool) {
        let failed: Vec<Pending> = {
            let mut calls = self.calls();
            let keys: Vec<u128> = calls
                .iter()
                .filter(|(_, pending)| pending.sent || !sent_only)
                .map(|(key, _)| *key)
                .collect();
            keys.into_iter().filter_map(|key| calls.remove(&key)).collect()
        };
        if !failed.is_empty() {
            tracing::warn!(calls = failed.len(), %message, "failing calls waiting for replies");
        }
        for pending in failed {
            let _ = pending.done.send(Err(TransportError::new(kind, message).into()));
        }
    }
}

impl Table {
    fn register(self: &Arc<Table>, monitored: bool) -> PendingCall {
        let id = Id::next();
        let (done, outcome) = oneshot::channel();
        let heartbeat = monitored.then(|| Arc::new(Notify::new()));
        self.calls().insert(
            id.key(),
            Pending {
                done,
                heartbeat: heartbeat.clone(),
                partial: None,
                heard: None,
                sent: false,
            },
        );
        PendingCall {
            table: Arc::clone(self),
            id,
            outcome,
            heartbeat,
        }
    }
}

impl ReplySink for Table {
    fn deliver(&self, delivery: Delivery) {
        self.route(&delivery);
    }

    fn connection_lost(&self, error: TransportError) {
        // Replies to requests sent before the loss may never come: say so
        // now rather than let every caller wait out its timeout.
        self.fail_all(error.kind(), &error.to_string(), true);
    }

    fn sent(&self, msg_id: &str) {
        let Some(key) = ids::key_of(msg_id) else { return };
        if let Some(pending) = self.calls().get_mut(&key) {
            pending.sent = true;
        }
    }

    fn undeliverable(&self, msg_id: &str, error: TransportError) {
        let pending = ids::key_of(msg_id).and_then(|key| self.calls().remove(&key));
        match pending {
            Some(pending) => {
                let _ = pending.done.send(Err(error.into()));
            }
            None => tracing::debug!(msg_id, %error, "a call that no longer waits was not delivered"),
        }
    }
}

/// The reply queue of a transport and the calls waiting on it. Dropping it
/// stops the deliveries and fails the calls still waiting.
#[derive(Debug)]
pub(crate) struct ReplyRouter {
    table: Arc<Table>,
    queue: ReplyQueue,
}

impl ReplyRouter {
    pub(crate) async fn start(driver: &dyn Driver, retry: Retry) -> Result<ReplyRouter, TransportError> {
        let table = Arc::new(Table::default());
        let queue = driver
            .listen_replies(Arc::clone(&table) as Arc<dyn ReplySink>, retry)
            .await?;
        Ok(ReplyRouter { table, queue })
    }

    /// The reply queue's name, sent with every call.
    pub(crate) fn address(&self) -> Arc<str> {
        self.queue.name()
    }

    /// Registers a call before its request is sent.
    pub(crate) fn register(&self, monitored: bool) -> PendingCall {
        self.table.register(monitored)
    }

    pub(crate) fn pending_calls(&self) -> usize {
        self.table.calls().len()
    }

    pub(crate) fn late_replies(&self) -> u64 {
        self.table.late_replies.load(Ordering::Relaxed)
    }
}

impl Drop for ReplyRouter {
    fn drop(&mut self) {
        self.table
            .fail_all(TransportErrorKind::Closed, "the transport was closed", false);
    }
}

/// A call waiting for its reply; dropping it forgets the call.
#[derive(Debug)]
pub(crate) struct PendingCall {
    table: Arc<Table>,
    id: Id,
    pub(crate) outcome: oneshot::Receiver<Outcome>,
    pub(crate) heartbeat: Option<Arc<Notify>>,
}

impl PendingCall {
    pub(crate) fn msg_id(&self) -> &str {
        self.id.as_str()
    }

    /// Its request went out: a lost connection fails it from now on.
    pub(crate) fn sent(&self) {
        if let Some(pending) = self.table.calls().get_mut(&self.id.key()) {
            pending.sent = true;
        }
    }

    /// The last progress notice the call received, if any.
    pub(crate) fn heard(&self) -> Option<Heard> {
        self.table
            .calls()
            .get(&self.id.key())
            .and_then(|pending| pending.heard.clone())
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.table.calls().remove(&self.id.key());
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::Codec;
    use crate::message::{Payload, ReplyOut};

    fn delivery(codec: Codec, msg_id: &str, ending: bool, result: Option<&str>) -> Delivery {
        let result = result.map(|value| codec.encode(value).unwrap());
        let reply = ReplyOut {
            msg_id,
            ending,
            result: result.as_ref(),
            failure: None,
        };
        Delivery::with_codec(codec.encode_reply(&reply).unwrap(), codec)
    }

    fn pending(table: &Arc<Table>) -> PendingCall {
        table.register(true)
    }

    fn result(reply: Reply) -> String {
        reply
            .result
            .map(|payload: Payload| payload.decode::<String>().unwrap())
            .unwrap()
    }

    #[tokio::test]
    async fn an_undecodable_reply_fails_its_call_at_once() {
        let table = Arc::new(Table::default());
        let mut oslo = pending(&table);
        let mut msgpack = pending(&table);
        let mut other = pending(&table);
        // A failure that is an object, not oslo's serialized string.
        let inner = format!(
            r#"{{"_msg_id": "{}", "failure": {{"class": "X"}}, "ending": true}}"#,
            oslo.msg_id()
        );
        let body = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner}).to_string();
        table.route(&Delivery::with_codec(Bytes::from(body), Codec::OsloJson));
        // A MessagePack reply whose failure has no class.
        let mut frame = Vec::new();
        rmp::encode::write_array_len(&mut frame, 5).unwrap();
        rmp::encode::write_uint(&mut frame, 1).unwrap();
        rmp::encode::write_str(&mut frame, msgpack.msg_id()).unwrap();
        rmp::encode::write_bool(&mut frame, true).unwrap();
        rmp::encode::write_nil(&mut frame).unwrap();
        rmp::encode::write_map_len(&mut frame, 0).unwrap();
        table.route(&Delivery::with_codec(Bytes::from(frame), Codec::MsgPack));
        for call in [&mut oslo, &mut msgpack] {
            match call.outcome.try_recv() {
                Ok(Err(Unanswered::Undecodable(_))) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(other.outcome.try_recv().is_err(), "another call was failed");
    }

    #[tokio::test]
    async fn legacy_two_message_replies_keep_the_first_result() {
        for codec in [Codec::MsgPack, Codec::OsloJson] {
            let table = Arc::new(Table::default());
            let mut call = pending(&table);
            table.route(&delivery(codec, call.msg_id(), false, Some("the result")));
            assert!(call.outcome.try_recv().is_err(), "not finished before `ending`");
            table.route(&delivery(codec, call.msg_id(), true, None));
            let reply = (&mut call.outcome).await.unwrap().unwrap();
            assert_eq!(result(reply), "the result");
            assert_eq!(table.calls().len(), 0);
        }
    }

    #[tokio::test]
    async fn heartbeats_wake_the_caller_without_finishing_the_call() {
        let table = Arc::new(Table::default());
        let mut call = pending(&table);
        table.route(&delivery(Codec::OsloJson, call.msg_id(), false, None));
        call.heartbeat.as_ref().unwrap().notified().await;
        assert!(call.outcome.try_recv().is_err());
        table.route(&delivery(Codec::OsloJson, call.msg_id(), true, Some("done")));
        assert_eq!(result((&mut call.outcome).await.unwrap().unwrap()), "done");
    }

    #[test]
    fn late_foreign_and_garbled_replies_are_dropped() {
        let table = Arc::new(Table::default());
        let gone = pending(&table);
        let msg_id = gone.msg_id().to_owned();
        drop(gone);
        table.route(&delivery(Codec::MsgPack, &msg_id, true, Some("late")));
        table.route(&delivery(
            Codec::MsgPack,
            "0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5",
            true,
            Some("not ours"),
        ));
        assert_eq!(table.late_replies.load(Ordering::Relaxed), 2);
        // A heartbeat for a call that gave up is no late reply: its server
        // sends them until the call's deadline.
        table.route(&delivery(Codec::OsloJson, &msg_id, false, None));
        assert_eq!(table.late_replies.load(Ordering::Relaxed), 2);
        table.route(&Delivery::with_codec(
            Bytes::from_static(b"\xc1garbage"),
            Codec::MsgPack,
        ));
        table.route(&Delivery::new(Bytes::from_static(b"{}"), Some("text/plain")));
        assert_eq!(table.late_replies.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn an_undeliverable_request_fails_its_own_call_only() {
        let table = Arc::new(Table::default());
        let mut returned = pending(&table);
        let mut other = pending(&table);
        let error = TransportError::new(TransportErrorKind::Unroutable, "no queue");
        table.undeliverable(returned.msg_id(), error);
        let failed = (&mut returned.outcome).await.unwrap().unwrap_err().transport();
        assert_eq!(failed.kind(), TransportErrorKind::Unroutable);
        assert!(other.outcome.try_recv().is_err(), "another call was failed");
        // A call that no longer waits, or an id that is not ours: nothing happens.
        table.undeliverable("not-an-id", TransportError::new(TransportErrorKind::Unroutable, "x"));
        assert_eq!(table.calls().len(), 1);
    }

    #[tokio::test]
    async fn a_lost_connection_fails_the_calls_whose_requests_went_out() {
        let table = Arc::new(Table::default());
        let calls: Vec<PendingCall> = (0..3).map(|_| pending(&table)).collect();
        let mut going_out = pending(&table);
        // Marked by the client, or by the driver as it hands the frames
        // over (through the sink, before the publish returns).
        calls[0].sent();
        calls[1].sent();
        ReplySink::sent(&*table, calls[2].msg_id());
        table.connection_lost(TransportError::new(TransportErrorKind::ConnectionLost, "gone"));
        for mut call in calls {
            let failed = tokio::time::timeout(std::time::Duration::from_secs(5), &mut call.outcome).await;
            let error = failed.expect("failed at the loss").unwrap().unwrap_err().transport();
            assert!(error.is_connection_error());
        }
        // Still going out at the loss: it goes out once the transport is
        // back, and its reply is routed.
        assert!(going_out.outcome.try_recv().is_err(), "failed before it went out");
        going_out.sent();
        table.route(&delivery(Codec::MsgPack, going_out.msg_id(), true, Some("answered")));
        assert_eq!(result((&mut going_out.outcome).await.unwrap().unwrap()), "answered");
    }
}
