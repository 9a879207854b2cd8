//! A notification the listener gives back to the broker may be delivered
//! again before the requeue returns, as RabbitMQ does: it is handled then,
//! not taken for a copy of the one being handled (the listener drops copies
//! of a notification it is handling). And a notification whose connection
//! was lost while it was handled, delivered again meanwhile, is not lost
//! when its handler asks for a requeue that cannot reach the broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rpc_core::notify::{NotificationListener, NotificationResult, Notifier, Priority, handler};
use rpc_core::transport::memory::{Broker, MemoryDriver};
use rpc_core::transport::{Acker, Bytes, Delivery, Driver, ListenOptions, Listener, NotificationRoute, async_trait};
use rpc_core::{Codec, Context, Target, TransportError, json};
use rpc_tests::passthrough::{Passing, Passthrough};
use tokio::sync::{Mutex, Notify, mpsc};

/// How many times the handler ran, told to whoever waits.
#[derive(Debug, Default)]
struct Attempts {
    count: AtomicUsize,
    changed: Notify,
}

impl Attempts {
    fn add(&self) -> usize {
        let tries = self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        tries
    }

    async fn reach(&self, count: usize, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            loop {
                let changed = self.changed.notified();
                if self.count.load(Ordering::SeqCst) >= count {
                    return;
                }
                changed.await;
            }
        })
        .await
        .is_ok()
    }
}

/// A memory driver whose requeued notifications come back at once: the
/// requeue hands the listener a new delivery of the notification, and
/// returns only once the handler ran again (or after two seconds). With
/// `lose_first`, the first delivery's connection is lost while it is
/// handled: settling it fails, and the test delivers it again
/// ([`Redeliveries::first_again`]), as the broker does.
#[derive(Debug)]
struct RequeuedAtOnce {
    inner: MemoryDriver,
    attempts: Arc<Attempts>,
    lose_first: bool,
    redeliveries: Arc<Redeliveries>,
}

/// What the test needs to deliver the first notification again.
#[derive(Debug, Default)]
struct Redeliveries {
    again: std::sync::Mutex<Option<mpsc::UnboundedSender<Delivery>>>,
    first: std::sync::Mutex<Option<First>>,
}

/// The first delivery's notification, and the delivery itself.
type First = (Bytes, Codec, Arc<Mutex<Delivery>>);

impl Redeliveries {
    /// Delivers the first notification again, as the broker does once its
    /// connection was lost.
    fn first_again(&self, attempts: &Arc<Attempts>) {
        let (body, codec, original) = self.first.lock().unwrap().clone().expect("a first delivery");
        let again = self.again.lock().unwrap().clone().expect("a listener");
        let copy = Redeliver {
            original,
            body,
            codec,
            again: again.clone(),
            attempts: Arc::clone(attempts),
            lost: false,
        };
        let _ = again.send(copy.delivery().with_redelivered(true));
    }
}

#[async_trait]
impl Passthrough for RequeuedAtOnce {
    fn inner(&self) -> &dyn Driver {
        &self.inner
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let (again, redelivered) = mpsc::unbounded_channel();
        *self.redeliveries.again.lock().unwrap() = Some(again.clone());
        Ok(Box::new(Redelivering {
            inner: self.inner.listen_notifications(routes, pool, options).await?,
            again,
            redelivered,
            attempts: Arc::clone(&self.attempts),
            lose_first: self.lose_first,
            redeliveries: Arc::clone(&self.redeliveries),
        }))
    }
}

#[derive(Debug)]
struct Redelivering {
    inner: Box<dyn Listener>,
    again: mpsc::UnboundedSender<Delivery>,
    redelivered: mpsc::UnboundedReceiver<Delivery>,
    attempts: Arc<Attempts>,
    lose_first: bool,
    redeliveries: Arc<Redeliveries>,
}

#[async_trait]
impl Listener for Redelivering {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        tokio::select! {
            biased;
            Some(delivery) = self.redelivered.recv() => Some(Ok(delivery)),
            next = self.inner.next() => match next {
                Some(Ok(delivery)) => {
                    let (body, codec) = (delivery.body().clone(), delivery.codec().expect("a notification"));
                    let original = Arc::new(Mutex::new(delivery));
                    let first = self.redeliveries.first.lock().unwrap().is_none();
                    if first {
                        *self.redeliveries.first.lock().unwrap() = Some((body.clone(), codec, Arc::clone(&original)));
                    }
                    let redeliver = Redeliver {
                        body,
                        codec,
                        original,
                        again: self.again.clone(),
                        attempts: Arc::clone(&self.attempts),
                        lost: first && self.lose_first,
                    };
                    Some(Ok(redeliver.delivery()))
                }
                other => other,
            },
        }
    }

    async fn close(self: Box<Self>) -> Result<(), TransportError> {
        self.inner.close().await
    }
}

/// Settles a delivery of a notification through its first delivery, and
/// requeues it by delivering it again.
#[derive(Debug)]
struct Redeliver {
    original: Arc<Mutex<Delivery>>,
    body: Bytes,
    codec: Codec,
    again: mpsc::UnboundedSender<Delivery>,
    attempts: Arc<Attempts>,
    /// Its connection was lost: settling it fails (the broker has it back).
    lost: bool,
}

impl Redeliver {
    fn delivery(self) -> Delivery {
        Delivery::with_codec(self.body.clone(), self.codec).with_acker(Box::new(self))
    }
}

#[async_trait]
impl Acker for Redeliver {
    async fn ack(&self) -> Result<(), TransportError> {
        if self.lost {
            return Err(lost());
        }
        self.original.lock().await.ack().await
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        if self.lost {
            return Err(lost());
        }
        if !requeue {
            return self.original.lock().await.reject(false).await;
        }
        let tried = self.attempts.count.load(Ordering::SeqCst);
        let copy = Redeliver {
            original: Arc::clone(&self.original),
            body: self.body.clone(),
            codec: self.codec,
            again: self.again.clone(),
            attempts: Arc::clone(&self.attempts),
            lost: false,
        };
        let _ = self.again.send(copy.delivery().with_redelivered(true));
        // Delivered again before the requeue returns.
        self.attempts.reach(tried + 1, Duration::from_secs(2)).await;
        Ok(())
    }
}

fn lost() -> TransportError {
    TransportError::new(
        rpc_core::TransportErrorKind::ConnectionLost,
        "the connection was lost (test)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeued_notification_delivered_again_at_once_is_handled() {
    for batch in [None, Some(2)] {
        requeued_and_delivered_again_at_once(batch).await;
    }
}

/// One notification, requeued by its first handling, delivered again at
/// once: it is handled again, one at a time or in batches of `batch`.
async fn requeued_and_delivered_again_at_once(batch: Option<usize>) {
    let broker = Broker::new();
    let attempts = Arc::new(Attempts::default());
    let transport = Passing::transport(RequeuedAtOnce {
        inner: broker.driver(),
        attempts: Arc::clone(&attempts),
        lose_first: false,
        redeliveries: Arc::default(),
    });
    let tries = Arc::clone(&attempts);
    let mut builder = NotificationListener::builder(transport.clone(), [Target::topic("requeued_at_once")])
        .endpoint(handler([Priority::Info], move |_| {
            let tries = Arc::clone(&tries);
            async move {
                if tries.add() == 0 {
                    NotificationResult::Requeue
                } else {
                    NotificationResult::Handled
                }
            }
        }))
        .allow_requeue(true);
    if let Some(size) = batch {
        builder = builder.batch(size, Duration::from_millis(20));
    }
    let listener = builder.build().unwrap();
    listener.start().await.unwrap();
    Notifier::new(broker.transport(), "compute.host-1")
        .topics(["requeued_at_once"])
        .info(&Context::new(), "compute.instance.create.end", &json!({}))
        .await
        .unwrap();
    assert!(
        attempts.reach(2, Duration::from_secs(10)).await,
        "batch {batch:?}: handled again once requeued: {:?}",
        listener.stats()
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.stats().in_flight > 0 || listener.stats().handled == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("settled");
    let stats = listener.stats();
    assert_eq!(
        (stats.requeued, stats.handled, stats.duplicates),
        (1, 1, 0),
        "batch {batch:?}: {stats:?}"
    );
    listener.stop();
    listener.wait().await;
}

/// A notification whose connection is lost while its handler runs, and
/// which the broker delivers again meanwhile (a copy of one being handled:
/// it waits), is not lost when the handler asks for a requeue that cannot
/// reach the broker any more: the copy goes back to the queue, and is
/// handled. (Acknowledged as a plain copy, it was lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_waiting_for_a_requeue_that_failed_is_handled() {
    let broker = Broker::new();
    let attempts = Arc::new(Attempts::default());
    let redeliveries = Arc::new(Redeliveries::default());
    let transport = Passing::transport(RequeuedAtOnce {
        inner: broker.driver(),
        attempts: Arc::clone(&attempts),
        lose_first: true,
        redeliveries: Arc::clone(&redeliveries),
    });
    let parked = Arc::new(Notify::new());
    let listener = NotificationListener::builder(transport, [Target::topic("lost_while_handled")])
        .endpoint(handler([Priority::Info], {
            let (tries, parked) = (Arc::clone(&attempts), Arc::clone(&parked));
            move |_| {
                let (tries, parked) = (Arc::clone(&tries), Arc::clone(&parked));
                async move {
                    if tries.add() == 0 {
                        // The copy arrives, and waits for this one.
                        parked.notified().await;
                        NotificationResult::Requeue
                    } else {
                        NotificationResult::Handled
                    }
                }
            }
        }))
        .allow_requeue(true)
        .build()
        .unwrap();
    listener.start().await.unwrap();
    Notifier::new(broker.transport(), "compute.host-1")
        .topics(["lost_while_handled"])
        .info(&Context::new(), "compute.instance.create.end", &json!({}))
        .await
        .unwrap();
    assert!(attempts.reach(1, Duration::from_secs(10)).await, "handled once");
    redeliveries.first_again(&attempts);
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.stats().duplicates == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the copy waits for the first handling");
    parked.notify_one();
    assert!(
        attempts.reach(2, Duration::from_secs(10)).await,
        "the copy is handled once the requeue failed: {:?}",
        listener.stats()
    );
    listener.stop();
    listener.wait().await;
}
