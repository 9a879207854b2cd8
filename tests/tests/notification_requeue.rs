//! A notification the listener gives back to the broker may be delivered
//! again before the requeue returns, as RabbitMQ does: it is handled then,
//! not taken for a copy of the one being handled (the listener drops copies
//! of a notification it is handling).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rpc_core::notify::{NotificationListener, NotificationResult, Notifier, Priority, handler};
use rpc_core::transport::memory::{Broker, MemoryDriver};
use rpc_core::transport::{
    Acker, Address, Bytes, Delivery, Driver, ListenOptions, Listener, NotificationRoute, OutgoingMessage, ReplyQueue,
    ReplySink, async_trait,
};
use rpc_core::{Codec, Context, Target, Transport, TransportError, json};
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
/// returns only once the handler ran again (or after two seconds).
#[derive(Debug)]
struct RequeuedAtOnce {
    inner: MemoryDriver,
    attempts: Arc<Attempts>,
}

#[async_trait]
impl Driver for RequeuedAtOnce {
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner.send(address, message).await
    }

    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner.reply(reply_to, message).await
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        self.inner.listen(address, options).await
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>) -> Result<ReplyQueue, TransportError> {
        self.inner.listen_replies(sink).await
    }

    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner.notify(route, message).await
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let (again, redelivered) = mpsc::unbounded_channel();
        Ok(Box::new(Redelivering {
            inner: self.inner.listen_notifications(routes, pool, options).await?,
            again,
            redelivered,
            attempts: Arc::clone(&self.attempts),
        }))
    }
}

#[derive(Debug)]
struct Redelivering {
    inner: Box<dyn Listener>,
    again: mpsc::UnboundedSender<Delivery>,
    redelivered: mpsc::UnboundedReceiver<Delivery>,
    attempts: Arc<Attempts>,
}

#[async_trait]
impl Listener for Redelivering {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        tokio::select! {
            biased;
            Some(delivery) = self.redelivered.recv() => Some(Ok(delivery)),
            next = self.inner.next() => match next {
                Some(Ok(delivery)) => {
                    let redeliver = Redeliver {
                        body: delivery.body().clone(),
                        codec: delivery.codec().expect("a notification"),
                        original: Arc::new(Mutex::new(delivery)),
                        again: self.again.clone(),
                        attempts: Arc::clone(&self.attempts),
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
}

impl Redeliver {
    fn delivery(self) -> Delivery {
        Delivery::with_codec(self.body.clone(), self.codec).with_acker(Box::new(self))
    }
}

#[async_trait]
impl Acker for Redeliver {
    async fn ack(&self) -> Result<(), TransportError> {
        self.original.lock().await.ack().await
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
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
        };
        let _ = self.again.send(copy.delivery().with_redelivered(true));
        // Delivered again before the requeue returns.
        self.attempts.reach(tried + 1, Duration::from_secs(2)).await;
        Ok(())
    }
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
    let transport = Transport::new(RequeuedAtOnce {
        inner: broker.driver(),
        attempts: Arc::clone(&attempts),
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
