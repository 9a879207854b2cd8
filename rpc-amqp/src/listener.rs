//! Consuming: a server's three queues, or a client's reply queue, each on a
//! channel of its own, each kept consumed by a task of its own across lost
//! connections, consumer cancellations and refused declarations.
//!
//! A queue's task declares the queue (and its exchange and binding), sets
//! its prefetch, consumes, and hands deliveries over. When its consumer
//! ends, it finds out why: the connection was lost (wait for the
//! reconnection, then declare and consume again), or the broker cancelled
//! the consumer (the queue was deleted, or the node holding it went down:
//! counted, logged, declared and consumed again, with backoff), or the
//! listener is closing. A declaration the broker refuses because the queue
//! or exchange exists with other flags (a peer configured differently)
//! falls back to using it as it is, logged once; any other refusal is
//! retried with backoff and a warning naming the queue, while the other
//! queues keep being consumed. At start, every queue must be consumed
//! once, or `start` fails with the error naming the queue.
//!
//! One channel per consumer: RabbitMQ 4.3 removed global QoS, and quorum
//! queues never had it, so each consumer has its own prefetch. A server's
//! topic and server queues each get its concurrency limit (so that either
//! alone can keep every slot busy), its fanout queue an eighth of it: at
//! most about twice the limit is held unacknowledged.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueDeleteOptions};
use lapin::types::ShortString;
use lapin::{Channel, Consumer};
use rpc_core::transport::{Delivery, Listener, QueueState, ReplyName, ReplySink, Retry, async_trait};
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::acks::{AckStats, Acks};
use crate::backoff::Backoff;
use crate::config::AmqpConfig;
use crate::error::from_lapin;
use crate::link::{Connected, Link};
use crate::topology::{self, QueueSpec, short};

/// Where a queue's deliveries go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// A server's listener: deliveries to acknowledge, or news of a loss.
    Server(mpsc::Sender<Result<Delivery, TransportError>>),
    /// A client's reply queue: deliveries without acknowledgement.
    Replies(Arc<dyn ReplySink>),
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sink::Server(_) => "Sink::Server",
            Sink::Replies(_) => "Sink::Replies",
        })
    }
}

/// One queue to keep consumed.
#[derive(Debug, Clone)]
pub(crate) struct QueueConsumer {
    pub(crate) spec: QueueSpec,
    /// Unacknowledged deliveries the broker may push ahead; `None`: no
    /// acknowledgements at all (reply queues).
    pub(crate) prefetch: Option<u16>,
    /// Whether to delete the queue when the listener closes (a server's
    /// fanout queue).
    pub(crate) delete_on_close: bool,
    /// Where a reply queue's new name goes, when it must take one.
    pub(crate) renamed: Option<ReplyName>,
}

/// Counters shared by a driver's consumers.
#[derive(Debug, Default)]
pub(crate) struct ConsumerStats {
    /// Consumers the broker cancelled.
    pub(crate) cancels: AtomicU64,
    /// The acknowledgements sent.
    pub(crate) acks: Arc<AckStats>,
}

/// What a queue's task needs.
#[derive(Clone)]
struct Context {
    link: Arc<Link>,
    config: Arc<AmqpConfig>,
    stats: Arc<ConsumerStats>,
}

/// A queue's task, and how to stop it.
struct Task {
    queue: QueueState,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// A server's listener: its queues' tasks, and the deliveries they hand over.
pub(crate) struct AmqpListener {
    deliveries: mpsc::Receiver<Result<Delivery, TransportError>>,
    tasks: Vec<Task>,
    /// The smallest of its queues' prefetch.
    prefetch: Option<u16>,
}

impl fmt::Debug for AmqpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues: Vec<&str> = self.tasks.iter().map(|task| task.queue.name()).collect();
        f.debug_struct("AmqpListener")
            .field("queues", &queues)
            .finish_non_exhaustive()
    }
}

/// Starts consuming `queues`, handing deliveries to `sink`; returns once
/// every queue is consumed, or the first refusal.
///
/// While the connection is down, each waits for the reconnection under way,
/// one more attempt at most: a server started just after a broker restart
/// comes up with the broker, and one started against a broker that stays
/// away fails within a retry interval.
pub(crate) async fn start(
    link: Arc<Link>,
    config: Arc<AmqpConfig>,
    stats: Arc<ConsumerStats>,
    queues: Vec<QueueConsumer>,
    sink: Sink,
) -> Result<Vec<(QueueState, watch::Sender<bool>, JoinHandle<()>)>, TransportError> {
    let context = Context { link, config, stats };
    let mut started = Vec::new();
    let mut tasks = Vec::new();
    for queue in queues {
        let (stop, stopped) = watch::channel(false);
        let (first, first_result) = oneshot::channel();
        let state = QueueState::new(queue.spec.name.clone());
        let handle = tokio::spawn(keep_consuming(
            context.clone(),
            queue,
            state.clone(),
            sink.clone(),
            first,
            stopped,
        ));
        started.push(first_result);
        tasks.push((state, stop, handle));
    }
    for first in started {
        let result = first.await.unwrap_or_else(|_| {
            Err(TransportError::new(
                TransportErrorKind::Closed,
                "the transport closed while starting a consumer",
            ))
        });
        if let Err(error) = result {
            for (_, stop, handle) in tasks {
                stop.send_replace(true);
                let _ = handle.await;
            }
            return Err(error);
        }
    }
    Ok(tasks)
}

impl AmqpListener {
    /// Starts a server's listener on its queues.
    pub(crate) async fn start(
        link: Arc<Link>,
        config: Arc<AmqpConfig>,
        stats: Arc<ConsumerStats>,
        queues: Vec<QueueConsumer>,
    ) -> Result<AmqpListener, TransportError> {
        let capacity = queues
            .iter()
            .map(|queue| usize::from(queue.prefetch.unwrap_or(1)))
            .sum::<usize>()
            .max(1);
        let prefetch = queues.iter().filter_map(|queue| queue.prefetch).min();
        let (sender, deliveries) = mpsc::channel(capacity);
        let tasks = start(link, config, stats, queues, Sink::Server(sender))
            .await?
            .into_iter()
            .map(|(queue, stop, handle)| Task { queue, stop, handle })
            .collect();
        Ok(AmqpListener {
            deliveries,
            tasks,
            prefetch,
        })
    }
}

#[async_trait]
impl Listener for AmqpListener {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        self.deliveries.recv().await
    }

    fn queues(&self) -> Vec<QueueState> {
        self.tasks.iter().map(|task| task.queue.clone()).collect()
    }

    fn prefetch(&self) -> Option<u16> {
        self.prefetch
    }

    async fn close(mut self: Box<Self>) -> Result<(), TransportError> {
        // Stop consuming first; deliveries handed over but not taken go back
        // to their queues once their channels close; those being handled
        // keep their channels open until settled.
        for task in &self.tasks {
            task.stop.send_replace(true);
        }
        self.deliveries.close();
        while self.deliveries.recv().await.is_some() {}
        for task in self.tasks.drain(..) {
            let _ = task.handle.await;
        }
        Ok(())
    }
}

/// Stops a client's reply consumer (and closes its channel) when dropped.
pub(crate) struct ReplyConsumer {
    stop: watch::Sender<bool>,
}

impl ReplyConsumer {
    /// Starts consuming a client's reply queue into `sink`.
    pub(crate) async fn start(
        link: Arc<Link>,
        config: Arc<AmqpConfig>,
        stats: Arc<ConsumerStats>,
        spec: QueueSpec,
        name: ReplyName,
        sink: Arc<dyn ReplySink>,
    ) -> Result<ReplyConsumer, TransportError> {
        let queue = QueueConsumer {
            spec,
            prefetch: None,
            delete_on_close: false,
            renamed: Some(name),
        };
        let mut tasks = start(link, config, stats, vec![queue], Sink::Replies(sink)).await?;
        let (_, stop, _) = tasks.pop().expect("one task per queue");
        Ok(ReplyConsumer { stop })
    }
}

impl Drop for ReplyConsumer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// A queue consumed on one channel of one connection.
struct Session {
    connected: Arc<Connected>,
    channel: Channel,
    consumer: Consumer,
    /// The deliveries' acknowledgements; `None` without acknowledgements.
    acks: Option<Arc<Acks>>,
    /// Cloned into every unsettled delivery's acker: once all are gone,
    /// `settled` yields `None` and the channel can close.
    unsettled: mpsc::Sender<()>,
    settled: mpsc::Receiver<()>,
}

/// Why a session ended.
enum Ended {
    /// The listener is closing.
    Stopped,
    /// The connection was lost.
    ConnectionLost(TransportError),
    /// The broker cancelled the consumer, or closed its channel.
    Cancelled(String),
}

/// The task of one queue: consumes it until stopped, whatever happens.
async fn keep_consuming(
    context: Context,
    mut queue: QueueConsumer,
    state: QueueState,
    sink: Sink,
    first: oneshot::Sender<Result<(), TransportError>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut name = queue.spec.name.clone();
    let mut first = Some(first);
    let mut backoff = Backoff::new(context.config.retry_interval, context.config.max_retry_interval);
    loop {
        if *stop.borrow() {
            return;
        }
        // At start, wait for a reconnection under way (one more attempt at
        // most); afterwards, for as long as it takes.
        let retry = if first.is_some() {
            Retry::Limited(1)
        } else {
            Retry::Forever
        };
        let connected = tokio::select! {
            connected = context.link.connected(retry) => connected,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let connected = match connected {
            Ok(connected) => connected,
            Err(error) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(error));
                    return;
                }
                if context.link.is_closed() {
                    // Closed while reconnecting: the calls a lasting reply
                    // queue kept waiting will get nothing now.
                    closed(&sink);
                    return;
                }
                continue;
            }
        };
        let session = match open(&connected, &queue, &context.stats).await {
            Ok(session) => session,
            Err(error) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(error));
                    return;
                }
                if queue.spec.exclusive && topology::is_resource_locked(&error) {
                    // The broker still holds the queue for the connection
                    // lost (it has not seen it die: a half-open socket, a
                    // balancer that failed over), and may for minutes: a
                    // queue of this process alone takes a new name.
                    name = topology::renamed(&name);
                    tracing::warn!(queue = %queue.spec.name, renamed = %name, "the broker still holds the queue for the lost connection; declaring it under a new name");
                    queue.spec.name.clone_from(&name);
                    if let Some(renamed) = &queue.renamed {
                        renamed.set(&name);
                    }
                    continue;
                }
                let delay = backoff.next_delay();
                tracing::warn!(queue = %name, %error, retry_in = ?delay, "cannot consume the queue; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                continue;
            }
        };
        // Consuming before the server hears it started: its health is
        // ready from then on.
        state.set_consuming(true);
        if let Some(first) = first.take() {
            let _ = first.send(Ok(()));
        } else {
            tracing::info!(queue = %name, "consuming the queue again");
        }
        backoff.reset();
        let (ended, session) = forward(&context, session, &sink, &mut stop).await;
        state.set_consuming(false);
        match ended {
            Ended::Stopped => {
                finish(session, &queue).await;
                return;
            }
            // Closed for good: no connection will bring the replies, even
            // those a lasting reply queue keeps (its calls waited out their
            // timeouts).
            Ended::ConnectionLost(_) if matches!(sink, Sink::Replies(_)) && context.link.is_closed() => closed(&sink),
            Ended::ConnectionLost(error) => {
                tracing::warn!(queue = %name, %error, "stopped consuming; will consume again once reconnected");
                lost(&sink, &queue.spec, error);
            }
            Ended::Cancelled(why) => {
                context.stats.cancels.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(queue = %name, %why, "the broker cancelled the consumer; declaring and consuming the queue again");
                if matches!(sink, Sink::Replies(_)) {
                    // Replies sent meanwhile may be lost: say so to the waiting calls.
                    let error = TransportError::new(
                        TransportErrorKind::ConnectionLost,
                        format!("the reply queue's consumer was cancelled: {why}"),
                    );
                    lost(&sink, &queue.spec, error);
                }
                let delay = backoff.next_delay();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
            }
        }
    }
}

/// Tells the sink that the connection was lost, or the consumer
/// cancelled. A server's notice is dropped when its buffer is full (its
/// handlers are all busy): waiting for room would hold this queue off the
/// broker until a handler finishes. The waiting calls are failed only when
/// their replies went with the queue's consumer: a reply queue that
/// outlives its connection (`transient_quorum`, a durable quorum queue)
/// keeps the replies sent meanwhile, and hands them over once consumed
/// again, as oslo's reply queue does.
fn lost(sink: &Sink, queue: &QueueSpec, error: TransportError) {
    match sink {
        Sink::Server(sender) => {
            let _ = sender.try_send(Err(error));
        }
        Sink::Replies(_) if !queue.exclusive => {
            tracing::info!(queue = %queue.name, %error, "the calls waiting keep waiting: their replies wait in the reply queue");
        }
        Sink::Replies(sink) => sink.connection_lost(error),
    }
}

/// Tells a reply sink that its transport was closed: its waiting calls
/// fail at once, whatever their reply queue keeps.
fn closed(sink: &Sink) {
    if let Sink::Replies(sink) = sink {
        sink.connection_lost(TransportError::new(
            TransportErrorKind::Closed,
            "the transport was closed",
        ));
    }
}

/// Declares the queue (and its exchanges and bindings) and consumes it.
async fn open(
    connected: &Arc<Connected>,
    queue: &QueueConsumer,
    stats: &ConsumerStats,
) -> Result<Session, TransportError> {
    let spec = &queue.spec;
    let channel = topology::declare(connected, spec).await?;
    if let Some(prefetch) = queue.prefetch {
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|error| from_lapin(error, "setting the prefetch"))?;
    }
    let options = BasicConsumeOptions {
        no_ack: queue.prefetch.is_none(),
        ..BasicConsumeOptions::default()
    };
    let consumer = channel
        .basic_consume(
            short(&spec.name)?,
            "".into(),
            options,
            topology::consumer_arguments(spec),
        )
        .await
        .map_err(|error| from_lapin(error, format!("consuming `{}`", spec.name)))?;
    let (unsettled, settled) = mpsc::channel(1);
    let acks = queue
        .prefetch
        .map(|_| Acks::new(channel.clone(), Arc::clone(&stats.acks)));
    Ok(Session {
        connected: Arc::clone(connected),
        channel,
        consumer,
        acks,
        unsettled,
        settled,
    })
}

/// Hands the session's deliveries to the sink until it ends.
async fn forward(
    context: &Context,
    mut session: Session,
    sink: &Sink,
    stop: &mut watch::Receiver<bool>,
) -> (Ended, Session) {
    let link = Arc::clone(&context.link);
    let generation = session.connected.generation;
    let lost = link.lost(generation);
    tokio::pin!(lost);
    let connection_lost = || TransportError::new(TransportErrorKind::ConnectionLost, "the connection was lost");
    loop {
        // A delivery already received goes on without registering for the
        // stop signal or the loss, which costs locks on every delivery: the
        // select's checks, in its order, made by reading their state. Only
        // when nothing is ready does the task wait on all three.
        let next = if *stop.borrow() {
            return (Ended::Stopped, session);
        } else if link.is_lost(generation) {
            return (Ended::ConnectionLost(connection_lost()), session);
        } else if let Some(next) = session.consumer.next().now_or_never() {
            next
        } else {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => return (Ended::Stopped, session),
                () = &mut lost => return (Ended::ConnectionLost(connection_lost()), session),
                next = session.consumer.next() => next,
            }
        };
        match next {
            Some(Ok(delivery)) => {
                let delivery = convert(delivery, &session);
                match sink {
                    Sink::Server(sender) => {
                        // Back-pressure: wait for room, or for the end.
                        let delivery = match sender.try_send(Ok(delivery)) {
                            Ok(()) => continue,
                            Err(mpsc::error::TrySendError::Closed(_)) => return (Ended::Stopped, session),
                            Err(mpsc::error::TrySendError::Full(delivery)) => delivery,
                        };
                        // A loss meanwhile: the delivery is the broker's again.
                        let sent = tokio::select! {
                            sent = sender.send(delivery) => sent.is_ok(),
                            _ = stop.wait_for(|stop| *stop) => return (Ended::Stopped, session),
                            () = &mut lost => return (Ended::ConnectionLost(connection_lost()), session),
                        };
                        if !sent {
                            return (Ended::Stopped, session);
                        }
                    }
                    Sink::Replies(sink) => sink.deliver(delivery),
                }
            }
            Some(Err(error)) => {
                let error = from_lapin(error, "consuming");
                return (why_ended(&session, error), session);
            }
            None => {
                let error = TransportError::new(TransportErrorKind::ConnectionLost, "the consumer ended");
                return (why_ended(&session, error), session);
            }
        }
    }
}

/// Whether a consumer that ended with `error` lost its connection, or was
/// cancelled by the broker (its channel, or the consumer alone).
fn why_ended(session: &Session, error: TransportError) -> Ended {
    let status = session.connected.connection.status();
    if status.connected() {
        Ended::Cancelled(error.message().to_owned())
    } else {
        Ended::ConnectionLost(error)
    }
}

/// Ends a session for good: cancels the consumer, deletes the queue when
/// asked, waits for the deliveries being handled to be settled, closes
/// the channel (deliveries received but not handled go back to the queue).
async fn finish(session: Session, queue: &QueueConsumer) {
    let Session {
        channel,
        consumer,
        acks,
        unsettled,
        mut settled,
        ..
    } = session;
    let _ = channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await;
    if queue.delete_on_close {
        if let Ok(name) = short(&queue.spec.name) {
            if let Err(error) = channel.queue_delete(name, QueueDeleteOptions::default()).await {
                tracing::warn!(queue = %queue.spec.name, %error, "cannot delete the queue; it goes with its connection or expires unused");
            }
        }
    }
    drop((consumer, unsettled));
    let _ = settled.recv().await;
    // The last acknowledgements, queued before the close.
    if let Some(acks) = acks {
        acks.flush();
    }
    if let Err(error) = channel.close(200, "closing".into()).await {
        tracing::debug!(queue = %queue.spec.name, %error, "closing the consumer's channel");
    }
}

fn convert(delivery: lapin::message::Delivery, session: &Session) -> Delivery {
    let converted = Delivery::new(
        Bytes::from(delivery.data),
        delivery.properties.content_type().as_ref().map(ShortString::as_str),
    )
    .with_redelivered(delivery.redelivered)
    .with_headers(crate::headers::from_table(delivery.properties.headers().as_ref()));
    match &session.acks {
        Some(acks) => {
            acks.delivered(delivery.delivery_tag);
            converted.with_acker(acks.acker(delivery.delivery_tag, session.unsettled.clone()))
        }
        None => converted,
    }
}
