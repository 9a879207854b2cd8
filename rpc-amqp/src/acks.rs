//! Settling a consumer's deliveries: acknowledgements coalesced into as few
//! `basic.ack` frames as the deliveries still unsettled allow.
//!
//! An acknowledgement is recorded, and a flush is scheduled behind the
//! tasks ready to run; by the time it runs, the deliveries acknowledged
//! meanwhile go out together. The acknowledgement of the only delivery
//! outstanding on the channel is flushed at once, in place: no other could
//! join it, and the hop to a flush task is a sizeable part of a sequential
//! call's time. Each acknowledgement returns once the flush
//! that carries it has queued its frame, as a lone acknowledgement did: an
//! at-most-once server's method still starts only after its request's
//! acknowledgement is on its way (queued in lapin's frame queue, in order),
//! however long the method then keeps its thread. The flush sends one
//! `basic.ack` with `multiple` for the longest run of acknowledged
//! deliveries from the oldest one still unsettled, and a single
//! `basic.ack` for each acknowledged delivery past a delivery not settled
//! yet (one still being handled, or dropped unsettled, or about to be
//! rejected): a `multiple` acknowledgement never covers a delivery that is
//! not acknowledged, and no acknowledgement waits for another delivery's
//! handling. Under load, one frame settles many deliveries: less work for
//! the broker, for lapin's I/O loop and for the socket. A rejection goes out
//! at once, alone.
//!
//! Acknowledgements are queued in lapin's frame queue, in order, before the
//! channel's close (see [`Acks::flush`]): a stopping server's last ones are
//! not cut off.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use rpc_core::transport::{Acker, async_trait};
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::{mpsc, watch};

use crate::error::from_lapin;

/// Counters of the acknowledgements a driver's consumers sent.
#[derive(Debug, Default)]
pub(crate) struct AckStats {
    /// Deliveries acknowledged.
    pub(crate) acknowledged: AtomicU64,
    /// `basic.ack` frames that carried them.
    pub(crate) frames: AtomicU64,
}

/// The acknowledgements of one consumer's channel.
pub(crate) struct Acks {
    channel: Channel,
    state: Mutex<Pending>,
    stats: Arc<AckStats>,
    /// The number of the last flush whose frames are queued.
    flushed: watch::Sender<u64>,
    /// The first flush that could not queue its frames (the channel closed
    /// under it; `u64::MAX`: none): its acknowledgements and every later
    /// flush's never reach the broker, which delivers them again.
    failed_from: AtomicU64,
}

impl fmt::Debug for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acks").finish_non_exhaustive()
    }
}

/// Deliveries by state, by delivery tag.
#[derive(Debug, Default)]
struct Pending {
    /// Delivered and not settled with the broker: neither acknowledged by a
    /// frame sent, nor rejected.
    outstanding: BTreeSet<u64>,
    /// Acknowledged, the frame not sent yet.
    acknowledged: Vec<u64>,
    /// Whether a flush is scheduled.
    scheduled: bool,
    /// The number of the next flush: the one that will carry what is
    /// acknowledged now.
    next_flush: u64,
}

/// The frames that settle the deliveries acknowledged so far.
#[derive(Debug, PartialEq, Eq)]
struct Frames {
    /// `basic.ack` with `multiple` up to this tag.
    up_to: Option<u64>,
    /// Single `basic.ack`s.
    singles: Vec<u64>,
}

impl Pending {
    /// Takes the acknowledged deliveries, as the frames that settle them.
    fn take(&mut self) -> Frames {
        self.acknowledged.sort_unstable();
        let mut acknowledged = self.acknowledged.drain(..).peekable();
        let mut up_to = None;
        // The run from the oldest delivery still outstanding.
        while let (Some(&oldest), Some(&next)) = (self.outstanding.first(), acknowledged.peek()) {
            if oldest != next {
                break;
            }
            self.outstanding.pop_first();
            acknowledged.next();
            up_to = Some(oldest);
        }
        let singles: Vec<u64> = acknowledged.collect();
        for tag in &singles {
            self.outstanding.remove(tag);
        }
        Frames { up_to, singles }
    }
}

impl Acks {
    pub(crate) fn new(channel: Channel, stats: Arc<AckStats>) -> Arc<Acks> {
        Arc::new(Acks {
            channel,
            state: Mutex::new(Pending {
                next_flush: 1,
                ..Pending::default()
            }),
            stats,
            flushed: watch::Sender::new(0),
            failed_from: AtomicU64::new(u64::MAX),
        })
    }

    fn state(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a delivery the consumer received: outstanding until settled.
    pub(crate) fn delivered(&self, tag: u64) {
        self.state().outstanding.insert(tag);
    }

    /// The acknowledger of the delivery `tag`; `unsettled` is held until it
    /// is settled.
    pub(crate) fn acker(self: &Arc<Self>, tag: u64, unsettled: mpsc::Sender<()>) -> Box<dyn Acker> {
        Box::new(AmqpAcker {
            tag,
            acks: Arc::clone(self),
            _unsettled: unsettled,
        })
    }

    /// Records the acknowledgement of `tag`, schedules a flush unless one
    /// is scheduled already, and waits until that flush queued its frames.
    /// Fails when they could not be queued (the channel closed before the
    /// flush ran): the broker delivers the message again, so an
    /// at-most-once method must not start.
    async fn acknowledge(self: &Arc<Self>, tag: u64) -> Result<(), TransportError> {
        if !self.channel.status().connected() {
            return Err(gone("acknowledging"));
        }
        let mut flushed = self.flushed.subscribe();
        let (flush, queued) = self.record(tag);
        if !queued {
            // The sender lives as long as `self`: this cannot fail.
            let _ = flushed.wait_for(|done| *done >= flush).await;
        }
        // Once a flush failed its channel is closed: every later one fails too.
        if self.failed_from.load(Ordering::Relaxed) <= flush {
            return Err(gone("acknowledging"));
        }
        Ok(())
    }

    /// Records `tag` as acknowledged; returns the number of the flush that
    /// carries it, and whether that flush ran already. When it is the only
    /// delivery outstanding, flushes at once; otherwise schedules a flush,
    /// unless one is scheduled already.
    fn record(self: &Arc<Self>, tag: u64) -> (u64, bool) {
        let mut state = self.state();
        state.acknowledged.push(tag);
        let flush = state.next_flush;
        // Nothing else acknowledged waits (a flush would be scheduled), and
        // no other delivery is outstanding, to join a later flush.
        let alone = !state.scheduled && state.outstanding.len() == 1 && state.outstanding.first() == Some(&tag);
        if alone {
            self.flush_locked(state);
            return (flush, true);
        }
        if !state.scheduled {
            state.scheduled = true;
            drop(state);
            let acks = Arc::clone(self);
            tokio::spawn(async move {
                // Behind the tasks ready to run: their acknowledgements go too.
                tokio::task::yield_now().await;
                acks.flush();
            });
        }
        (flush, false)
    }

    /// Queues the frames for the deliveries acknowledged so far, in lapin's
    /// frame queue, under the lock: frames queued by one flush precede those
    /// of the next, and a close queued after a flush follows its frames.
    pub(crate) fn flush(&self) {
        self.flush_locked(self.state());
    }

    /// [`Acks::flush`], under a lock already taken.
    fn flush_locked(&self, mut state: MutexGuard<'_, Pending>) {
        state.scheduled = false;
        let number = state.next_flush;
        state.next_flush += 1;
        let frames = state.take();
        let count = frames.singles.len() + usize::from(frames.up_to.is_some());
        let up_to = frames.up_to.map(|tag| (tag, true));
        for (tag, multiple) in up_to.into_iter().chain(frames.singles.iter().map(|&tag| (tag, false))) {
            // The first poll queues the frame; its write is lapin's from here on.
            let ack = self.channel.basic_ack(tag, BasicAckOptions { multiple });
            if let Some(Err(error)) = ack.now_or_never() {
                tracing::debug!(%error, "an acknowledgement was not sent; the broker will deliver it again");
                // Before the number is announced: its waiters see it.
                self.failed_from.fetch_min(number, Ordering::Relaxed);
            }
        }
        // Under the lock: numbers are announced in order.
        self.flushed.send_replace(number);
        drop(state);
        self.stats.frames.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Rejects `tag` at once, then stops counting it as outstanding.
    async fn reject(&self, tag: u64, requeue: bool) -> Result<(), TransportError> {
        let rejected = self.channel.basic_reject(tag, BasicRejectOptions { requeue }).await;
        self.state().outstanding.remove(&tag);
        rejected.map_err(|error| settle_error(error, "rejecting"))
    }
}

fn gone(doing: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::ConnectionLost,
        format!("{doing}: the delivery's channel is gone"),
    )
}

/// A settlement's error: a delivery whose channel is gone (closed, or lost
/// with its connection) cannot be settled any more, and the broker delivers
/// it again.
fn settle_error(error: lapin::Error, doing: &str) -> TransportError {
    if matches!(error.kind(), lapin::ErrorKind::InvalidChannelState(..)) {
        gone(doing).with_source(error)
    } else {
        from_lapin(error, doing)
    }
}

/// Settles one delivery; keeps its channel open until then, so that a
/// server can stop consuming and still acknowledge what it is running.
/// [`Delivery`](rpc_core::transport::Delivery) takes its acker to settle, so
/// each delivery is settled once.
struct AmqpAcker {
    tag: u64,
    acks: Arc<Acks>,
    /// Held, not read: the session closes the channel once every clone is gone.
    _unsettled: mpsc::Sender<()>,
}

impl fmt::Debug for AmqpAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpAcker")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    /// Returns once the acknowledgement is queued for lapin's I/O loop, in
    /// the next flush, without waiting for it to be written, as
    /// oslo.messaging's ack only reaches the socket's buffer; a delivery
    /// whose channel is gone fails at once.
    async fn ack(&self) -> Result<(), TransportError> {
        self.acks.acknowledge(self.tag).await?;
        self.acks.stats.acknowledged.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        self.acks.reject(self.tag, requeue).await
    }

    /// The channel is closing or closed, by the broker or with its
    /// connection: an acknowledgement is refused then too ([`Acks`]). (A
    /// stopping server or listener closes a channel only once every
    /// delivery on it is settled.)
    fn is_gone(&self) -> bool {
        !self.acks.channel.status().connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    /// A connection to the test broker, a channel on it, the name of a queue
    /// of the channel's own, and the tags of `count` deliveries taken from
    /// it, not settled.
    async fn unsettled(count: usize) -> (Connection, Channel, String, Vec<u64>) {
        let url =
            std::env::var("RPC_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        let connection = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|error| {
                panic!("cannot reach the test broker: {error}; start RabbitMQ or run scripts/test.sh")
            });
        let channel = connection.create_channel().await.unwrap();
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), exclusive, FieldTable::default())
            .await
            .unwrap()
            .name()
            .to_string();
        let mut tags = Vec::new();
        for _ in 0..count {
            let options = BasicPublishOptions::default();
            let properties = BasicProperties::default();
            channel
                .basic_publish("".into(), queue.as_str().into(), options, b"x", properties)
                .await
                .unwrap();
            let got = channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .unwrap()
                .expect("the message just published");
            tags.push(got.delivery.delivery_tag);
        }
        (connection, channel, queue, tags)
    }

    /// The messages in `queue`, read on a channel of its own.
    async fn messages_in(connection: &Connection, queue: &str) -> u32 {
        let channel = connection.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel.queue_declare(queue.into(), passive, FieldTable::default());
        declared.await.unwrap().message_count()
    }

    #[tokio::test]
    async fn the_only_delivery_outstanding_is_acknowledged_in_place() {
        let (connection, channel, queue, tags) = unsettled(2).await;
        let stats = Arc::new(AckStats::default());
        let acks = Acks::new(channel.clone(), Arc::clone(&stats));
        for &tag in &tags {
            acks.delivered(tag);
        }
        // Another delivery outstanding: the flush is left to a task, which
        // the other's acknowledgement could join.
        let mut first = std::pin::pin!(acks.acknowledge(tags[0]));
        assert!(
            first.as_mut().now_or_never().is_none(),
            "acknowledged before its flush ran"
        );
        first.await.unwrap();
        // The only one outstanding: its frame is queued on the first poll.
        let second = acks.acknowledge(tags[1]).now_or_never();
        assert!(matches!(second, Some(Ok(()))), "{second:?}");
        assert_eq!(stats.frames.load(Ordering::Relaxed), 2);

        // The broker had both: after the channel's close, nothing is back in the queue.
        channel.close(200, "done".into()).await.unwrap();
        assert_eq!(messages_in(&connection, &queue).await, 0);
        let _ = connection.close(200, "done".into()).await;
    }

    #[tokio::test]
    async fn an_acknowledgement_its_channel_closed_before_it_is_reported() {
        let (connection, channel, queue, tags) = unsettled(2).await;
        let acks = Acks::new(channel.clone(), Arc::new(AckStats::default()));
        for &tag in &tags {
            acks.delivered(tag);
        }
        // Another delivery outstanding: the flush is left to a task, which
        // runs only once the channel is closing.
        let mut first = std::pin::pin!(acks.acknowledge(tags[0]));
        assert!(first.as_mut().now_or_never().is_none());
        channel.close(200, "done".into()).await.unwrap();
        let acknowledged = first.await;
        assert!(
            matches!(&acknowledged, Err(error) if error.kind() == TransportErrorKind::ConnectionLost),
            "{acknowledged:?}"
        );

        // Not acknowledged indeed: both messages are back in the queue.
        assert_eq!(messages_in(&connection, &queue).await, 2);
        let _ = connection.close(200, "done".into()).await;
    }

    fn pending(outstanding: &[u64], acknowledged: &[u64]) -> Pending {
        Pending {
            outstanding: outstanding.iter().copied().collect(),
            acknowledged: acknowledged.to_vec(),
            scheduled: true,
            next_flush: 1,
        }
    }

    #[test]
    fn a_run_from_the_oldest_goes_in_one_frame() {
        let mut state = pending(&[1, 2, 3, 4, 5], &[3, 1, 2]);
        assert_eq!(
            state.take(),
            Frames {
                up_to: Some(3),
                singles: vec![]
            }
        );
        assert_eq!(state.outstanding, BTreeSet::from([4, 5]));
        assert!(state.acknowledged.is_empty());
    }

    #[test]
    fn an_unsettled_delivery_is_never_covered() {
        // 2 is being handled (or will be rejected): 3 and 5 go alone.
        let mut state = pending(&[1, 2, 3, 4, 5], &[1, 3, 5]);
        assert_eq!(
            state.take(),
            Frames {
                up_to: Some(1),
                singles: vec![3, 5]
            }
        );
        assert_eq!(state.outstanding, BTreeSet::from([2, 4]));
        // Once 2 and 4 are acknowledged, one frame covers both (3 and 5
        // are settled already).
        state.acknowledged = vec![4, 2];
        assert_eq!(
            state.take(),
            Frames {
                up_to: Some(4),
                singles: vec![]
            }
        );
        assert!(state.outstanding.is_empty());
    }

    #[test]
    fn nothing_acknowledged_sends_nothing() {
        let mut state = pending(&[7, 8], &[]);
        assert_eq!(
            state.take(),
            Frames {
                up_to: None,
                singles: vec![]
            }
        );
        assert_eq!(state.outstanding, BTreeSet::from([7, 8]));
    }

    #[test]
    fn a_rejected_delivery_no_longer_blocks_the_run() {
        let mut state = pending(&[1, 2, 3], &[1, 3]);
        state.outstanding.remove(&2); // rejected, its frame sent
        assert_eq!(
            state.take(),
            Frames {
                up_to: Some(3),
                singles: vec![]
            }
        );
    }
}
