//! The notification scenarios of the conformance suite: what every
//! transport must do with notifications, in the transport's own codec.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rpc_core::notify::{
    Notification, NotificationError, NotificationFilter, NotificationListener, NotificationResult, Notifier,
    NotifyDriver, Priority, handler, notifications,
};
use rpc_core::transport::{Driver, NotificationRoute, OutgoingMessage, async_trait};
use rpc_core::{Context, Error, Executor, Target, TraceContext, Transport, TransportError, Value, json};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::unique_topic;
use crate::passthrough::{Passing, Passthrough};

/// The notifications a test endpoint saw.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    inner: Arc<(Mutex<Vec<Notification>>, Notify)>,
}

impl Seen {
    fn push(&self, notification: Notification) {
        self.inner.0.lock().unwrap().push(notification);
        self.inner.1.notify_waiters();
    }

    /// Everything seen so far.
    pub fn all(&self) -> Vec<Notification> {
        self.inner.0.lock().unwrap().clone()
    }

    /// Waits until `count` notifications were seen (at most `within`).
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Notification> {
        tokio::time::timeout(within, async {
            loop {
                let seen = self.inner.1.notified();
                let all = self.all();
                if all.len() >= count {
                    return all;
                }
                seen.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {count} notifications, saw {}", self.all().len()))
    }

    /// How many times `notification` (by its message id) was seen before.
    fn tries(&self, notification: &Notification) -> usize {
        self.all()
            .iter()
            .filter(|seen| seen.message_id() == notification.message_id())
            .count()
    }

    fn event_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.all().iter().map(|n| n.event_type().to_owned()).collect();
        types.sort();
        types
    }
}

/// A listener on `topic` with one endpoint recording everything of every priority.
async fn recording_listener(transport: Transport, topic: &str, pool: Option<&str>) -> (NotificationListener, Seen) {
    let seen = Seen::default();
    let recorder = seen.clone();
    let mut builder = NotificationListener::builder(transport, [Target::topic(topic)]).endpoint(handler(
        Priority::ALL,
        move |notification| {
            let recorder = recorder.clone();
            async move { recorder.push(notification) }
        },
    ));
    if let Some(pool) = pool {
        builder = builder.pool(pool);
    }
    let listener = builder.build().expect("valid listener");
    listener.start().await.expect("listener starts");
    (listener, seen)
}

/// A notifier on `transport` for `topic`, in the transport's codec.
fn notifier(transport: Transport, topic: &str) -> Notifier {
    let codec = transport.codec();
    Notifier::new(transport, "compute.host-1").topics([topic]).codec(codec)
}

async fn shutdown(listener: NotificationListener) {
    listener.stop();
    listener.wait().await;
}

/// An instance, as nova's notifications describe one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstancePayload {
    /// Its id.
    pub instance_id: String,
    /// Its state.
    pub state: String,
    /// Its memory, in MiB.
    pub memory_mb: u64,
}

/// Every priority arrives with every field: publisher id, event type,
/// priority, message id, Python's timestamp, the context without its
/// secrets, and the payload, typed.
pub async fn notifications_arrive_with_every_field<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_fields");
    let (listener, seen) = recording_listener(connect().await, &topic, None).await;
    let notifier = notifier(connect().await, &topic);
    let trace = TraceContext::new_root();
    let mut ctx = Context::new().with_request_id("req-7").with_trace(trace.clone());
    ctx.insert("auth_token", "s3cr3t").unwrap();
    ctx.insert("user", "alice").unwrap();
    let payload = InstancePayload {
        instance_id: "9f1c".into(),
        state: "active".into(),
        memory_mb: 2048,
    };
    for priority in Priority::ALL {
        let event_type = format!("compute.instance.{priority}");
        notifier.notify(&ctx, priority, &event_type, &payload).await.unwrap();
    }
    let all = seen.wait_for(Priority::ALL.len(), Duration::from_secs(10)).await;
    for priority in Priority::ALL {
        let notification = all
            .iter()
            .find(|n| n.priority() == priority)
            .unwrap_or_else(|| panic!("no {priority} notification"));
        assert_eq!(notification.event_type(), format!("compute.instance.{priority}"));
        assert_eq!(notification.publisher_id(), "compute.host-1");
        assert_eq!(notification.payload::<InstancePayload>().unwrap(), payload);
        // A version 4 UUID, hyphenated and in lower case, as oslo writes it.
        let message_id = notification.message_id();
        let uuid = uuid::Uuid::parse_str(message_id).unwrap_or_else(|error| panic!("{message_id}: {error}"));
        assert_eq!(uuid.get_version_num(), 4, "{message_id}");
        assert_eq!(message_id, uuid.hyphenated().to_string(), "oslo's form");
        let timestamp = notification.timestamp();
        assert!(
            timestamp.len() >= 19 && timestamp.as_bytes()[10] == b' ' && timestamp.starts_with("20"),
            "Python's str(datetime): {timestamp}"
        );
        assert_eq!(notification.context().request_id(), Some("req-7"));
        assert_eq!(notification.context().get_str("user"), Some("alice"));
        assert!(!notification.context().contains_key("auth_token"), "secrets stay home");
        let received = notification.context().trace().map(TraceContext::trace_id);
        assert_eq!(received, Some(trace.trace_id()), "the sender's trace");
    }
    // Counted after the handler returns: read once the listener has finished.
    listener.stop();
    listener.wait().await;
    assert_eq!(listener.stats().handled, Priority::ALL.len() as u64);
}

/// A notification sent before any listener waits for the first one.
pub async fn notifications_wait_for_their_first_listener<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_early");
    let notifier = notifier(connect().await, &topic);
    notifier
        .info(&Context::new(), "early.bird", &json!({"n": 1}))
        .await
        .unwrap();
    let (listener, seen) = recording_listener(connect().await, &topic, None).await;
    let all = seen.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(all[0].event_type(), "early.bird");
    shutdown(listener).await;
}

/// A notification queue is one queue, whatever exchanges bind it: a
/// service notifying through its own exchange (as each OpenStack service
/// does, on its control exchange) reaches the listeners of the topic.
pub async fn notifications_share_queues_across_exchanges<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_exchanges");
    let (listener, seen) = recording_listener(connect().await, &topic, None).await;
    notifier(connect().await, &topic)
        .exchange(super::OTHER_EXCHANGE)
        .info(&Context::new(), "from.elsewhere", &json!({}))
        .await
        .unwrap();
    let all = seen.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(all[0].event_type(), "from.elsewhere");
    shutdown(listener).await;
}

/// A notification as large as a notifier sends (5 MiB here, over a server's
/// 4 MiB request limit) reaches its listener: it used to be sent, then
/// rejected by every listener, unseen by the sender.
pub async fn large_notifications_are_handled<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_large");
    let (listener, seen) = recording_listener(connect().await, &topic, None).await;
    let blob = "x".repeat(5 * 1024 * 1024);
    notifier(connect().await, &topic)
        .info(&Context::new(), "volume.large", &json!({ "blob": blob }))
        .await
        .unwrap();
    let all = seen.wait_for(1, Duration::from_secs(20)).await;
    let payload: Value = all[0].payload().unwrap();
    assert_eq!(payload["blob"].as_str().map(str::len), Some(blob.len()));
    listener.stop();
    listener.wait().await;
    assert_eq!(listener.stats().rejected, 0);
}

/// Listeners without a pool share a topic's notifications; each pool gets
/// every notification once, shared by the pool's listeners.
pub async fn pools_each_get_every_notification<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    const N: usize = 40;
    let topic = unique_topic("notify_pools");
    let (a1, seen_a1) = recording_listener(connect().await, &topic, Some(&format!("{topic}-a"))).await;
    let (a2, seen_a2) = recording_listener(connect().await, &topic, Some(&format!("{topic}-a"))).await;
    let (b, seen_b) = recording_listener(connect().await, &topic, Some(&format!("{topic}-b"))).await;
    let (shared1, seen_s1) = recording_listener(connect().await, &topic, None).await;
    let (shared2, seen_s2) = recording_listener(connect().await, &topic, None).await;
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    for i in 0..N {
        notifier
            .info(&ctx, &format!("event.{i:02}"), &json!({"i": i}))
            .await
            .unwrap();
    }
    let expected: Vec<String> = (0..N).map(|i| format!("event.{i:02}")).collect();
    seen_b.wait_for(N, Duration::from_secs(10)).await;
    assert_eq!(seen_b.event_types(), expected, "pool b gets everything");
    for (one, two, what) in [
        (&seen_a1, &seen_a2, "pool a"),
        (&seen_s1, &seen_s2, "the listeners without a pool"),
    ] {
        tokio::time::timeout(Duration::from_secs(10), async {
            while one.all().len() + two.all().len() < N {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: {} + {} of {N}", one.all().len(), two.all().len()));
        let mut together = one.event_types();
        together.extend(two.event_types());
        together.sort();
        assert_eq!(together, expected, "{what} share every notification once");
    }
    for listener in [a1, a2, b, shared1, shared2] {
        shutdown(listener).await;
    }
}

/// What the typed endpoint below received.
#[derive(Clone, Debug, Default)]
pub struct Typed {
    created: Arc<Mutex<Vec<InstancePayload>>>,
    others: Seen,
}

#[notifications]
impl Typed {
    #[on(info, event_type = "compute.instance.create.end")]
    async fn created(&self, _notification: &Notification, payload: InstancePayload) {
        self.created.lock().unwrap().push(payload);
    }

    /// Anything else of priority info or warn.
    #[on(info, warn)]
    async fn anything(&self, notification: &Notification, _payload: Value) {
        self.others.push(notification.clone());
    }
}

/// Handlers get typed payloads by event type, in declaration order; a
/// payload that does not decode as the handler's type is rejected and the
/// listener goes on.
pub async fn typed_handlers_by_event_type<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_typed");
    let typed = Typed::default();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(typed.clone())
        .build()
        .unwrap();
    listener.start().await.unwrap();
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    let payload = InstancePayload {
        instance_id: "1".into(),
        state: "active".into(),
        memory_mb: 512,
    };
    notifier
        .info(&ctx, "compute.instance.create.end", &json!({"instance_id": 2}))
        .await
        .unwrap();
    notifier
        .info(&ctx, "compute.instance.create.end", &payload)
        .await
        .unwrap();
    notifier
        .warn(&ctx, "compute.instance.create.end", &payload)
        .await
        .unwrap();
    notifier
        .info(&ctx, "compute.instance.delete.end", &json!([1, 2]))
        .await
        .unwrap();
    // Not a priority the endpoint handles: nobody listens for it.
    notifier
        .error(&ctx, "compute.instance.create.end", &payload)
        .await
        .unwrap();
    let others = typed.others.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.stats().rejected < 1 || typed.created.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the typed notification and the undecodable one");
    assert_eq!(*typed.created.lock().unwrap(), [payload]);
    let mut seen: Vec<(Priority, String)> = others
        .iter()
        .map(|n| (n.priority(), n.event_type().to_owned()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (Priority::Info, "compute.instance.delete.end".to_owned()),
            (Priority::Warn, "compute.instance.create.end".to_owned()),
        ]
    );
    assert_eq!(listener.stats().rejected, 1, "{:?}", listener.stats());
    assert!(
        listener
            .routes()
            .iter()
            .all(|route| route.priority == "info" || route.priority == "warn")
    );
    shutdown(listener).await;
}

/// An endpoint with a filter gets only what passes it.
pub async fn filters_pick_notifications<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_filter");
    let (picked, everything) = (Seen::default(), Seen::default());
    let record = |seen: &Seen| {
        let seen = seen.clone();
        handler([Priority::Info], move |notification| {
            let seen = seen.clone();
            async move { seen.push(notification) }
        })
    };
    let filter = NotificationFilter::new()
        .publisher_id(r"^compute\.")
        .unwrap()
        .event_type(r"instance\..*\.end$")
        .unwrap()
        .context("project_id", "^p1$")
        .unwrap()
        .payload("state", "^active$")
        .unwrap();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .filtered_endpoint(record(&picked), filter)
        .endpoint(record(&everything))
        .build()
        .unwrap();
    listener.start().await.unwrap();
    let transport = connect().await;
    let compute = notifier(transport.clone(), &topic);
    let network = compute.prepare().publisher_id("network.host-1");
    let mut p1 = Context::new();
    p1.insert("project_id", "p1").unwrap();
    let mut p2 = Context::new();
    p2.insert("project_id", "p2").unwrap();
    let active = json!({"state": "active"});
    compute.info(&p1, "instance.create.end", &active).await.unwrap();
    compute.info(&p1, "instance.create.start", &active).await.unwrap();
    network.info(&p1, "instance.create.end", &active).await.unwrap();
    compute.info(&p2, "instance.create.end", &active).await.unwrap();
    compute
        .info(&p1, "instance.delete.end", &json!({"state": "deleted"}))
        .await
        .unwrap();
    compute.info(&p1, "instance.resize.end", &active).await.unwrap();
    everything.wait_for(6, Duration::from_secs(10)).await;
    assert_eq!(picked.event_types(), ["instance.create.end", "instance.resize.end"]);
    shutdown(listener).await;
}

/// `Requeue` (or a failure) delivers a notification again when the listener
/// allows it, and not otherwise; a panicking handler is a failure and the
/// listener goes on.
pub async fn requeue_delivers_again<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    for allow in [true, false] {
        let topic = unique_topic("notify_requeue");
        let attempts = Seen::default();
        let recorder = attempts.clone();
        let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
            .endpoint(handler([Priority::Info, Priority::Warn], move |notification| {
                let recorder = recorder.clone();
                async move {
                    let tries = recorder.tries(&notification);
                    let event_type = notification.event_type().to_owned();
                    recorder.push(notification);
                    match (event_type.as_str(), tries) {
                        ("again", 0) => Ok(NotificationResult::Requeue),
                        ("fails", 0) => Err("the database is away"),
                        ("panics", 0) => panic!("a handler bug"),
                        _ => Ok(NotificationResult::Handled),
                    }
                }
            }))
            .allow_requeue(allow)
            .build()
            .unwrap();
        listener.start().await.unwrap();
        let notifier = notifier(connect().await, &topic);
        let ctx = Context::new();
        for event_type in ["again", "fails", "panics"] {
            notifier.info(&ctx, event_type, &json!({})).await.unwrap();
        }
        // A marker sent last: once it is handled, everything before was tried.
        notifier.warn(&ctx, "marker", &json!({})).await.unwrap();
        let expected = if allow { 7 } else { 4 };
        attempts.wait_for(expected, Duration::from_secs(10)).await;
        tokio::time::timeout(Duration::from_secs(10), async {
            while listener.stats().in_flight > 0
                || listener.stats().handled + listener.stats().requeued < expected as u64
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("settled");
        let stats = listener.stats();
        assert_eq!(stats.failed, 2, "{stats:?}");
        if allow {
            assert_eq!((stats.requeued, stats.handled), (3, 4), "{stats:?}");
        } else {
            assert_eq!((stats.requeued, stats.handled), (0, 4), "{stats:?}");
        }
        let mut tries: Vec<String> = attempts.event_types();
        tries.dedup();
        assert_eq!(tries, ["again", "fails", "marker", "panics"]);
        assert_eq!(attempts.all().len(), expected, "allow_requeue = {allow}");
        shutdown(listener).await;
    }
}

/// A transport whose notifier publishes every notification twice, the same
/// bytes (one `_unique_id`), as a notifier that lost its connection after
/// the broker had the first publish does.
#[derive(Debug)]
struct Twice(Transport);

impl Twice {
    fn transport(inner: Transport) -> Transport {
        let (codec, exchange) = (inner.codec(), inner.control_exchange().to_owned());
        Transport::builder(Passing(Twice(inner)))
            .codec(codec)
            .control_exchange(exchange)
            .build()
    }
}

#[async_trait]
impl Passthrough for Twice {
    fn inner(&self) -> &dyn Driver {
        self.0.driver()
    }

    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        self.0.driver().notify(route, message.clone()).await?;
        self.0.driver().notify(route, message).await
    }
}

/// Copies of a notification (the same `_unique_id`) are handled once, one
/// at a time, concurrently and in batches: a copy of one handled is
/// dropped, a copy of one being handled waits for it and is settled as it
/// is. A copy of one given back to the broker is not a duplicate: a
/// notification requeued once is handled once, whichever copy comes first.
pub async fn copies_of_a_notification_are_handled_once<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let shapes: [(&str, Executor, Option<usize>, bool); 4] = [
        ("one_at_a_time", Executor::Sequential, None, false),
        ("concurrent", Executor::default(), None, false),
        ("batches", Executor::Sequential, Some(4), false),
        ("requeued_once", Executor::default(), None, true),
    ];
    for (shape, executor, batch, requeue_first) in shapes {
        let topic = unique_topic(&format!("notify_copies_{shape}"));
        let attempts = Seen::default();
        let recorder = attempts.clone();
        let mut builder = NotificationListener::builder(connect().await, [Target::topic(&topic)])
            .endpoint(handler([Priority::Info], move |notification| {
                let recorder = recorder.clone();
                async move {
                    let tries = recorder.tries(&notification);
                    recorder.push(notification);
                    // Long enough for a copy to arrive while it runs.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if requeue_first && tries == 0 {
                        NotificationResult::Requeue
                    } else {
                        NotificationResult::Handled
                    }
                }
            }))
            .executor(executor)
            .allow_requeue(true);
        if let Some(size) = batch {
            builder = builder.batch(size, Duration::from_millis(100));
        }
        let listener = builder.build().unwrap();
        listener.start().await.unwrap();
        let notifier = notifier(Twice::transport(connect().await), &topic);
        let ctx = Context::new();
        let sent = 10;
        for i in 0..sent {
            notifier.info(&ctx, &format!("e{i:02}"), &json!({})).await.unwrap();
        }
        // Every copy settled: handled, requeued or dropped.
        let settled = if requeue_first { 3 * sent } else { 2 * sent };
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let stats = listener.stats();
                if stats.in_flight == 0 && stats.handled + stats.requeued + stats.duplicates >= settled {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{shape}: every copy settled: {:?}", listener.stats()));
        let stats = listener.stats();
        let requeued = if requeue_first { sent } else { 0 };
        assert_eq!((stats.handled, stats.requeued), (sent, requeued), "{shape}: {stats:?}");
        // A copy that waited for a requeued one goes back with it, and is
        // dropped once more when it returns after the one handled.
        let copies = if requeue_first { sent..=2 * sent } else { sent..=sent };
        assert!(copies.contains(&stats.duplicates), "{shape}: {stats:?}");
        let mut handled: Vec<String> = attempts.all().iter().map(|n| n.event_type().to_owned()).collect();
        handled.sort();
        let expected: Vec<String> = (0..sent)
            .flat_map(|i| vec![format!("e{i:02}"); if requeue_first { 2 } else { 1 }])
            .collect();
        assert_eq!(handled, expected, "{shape}: each handled once (after one requeue)");
        shutdown(listener).await;
    }
}

/// A batch listener hands its endpoints up to `size` notifications at once,
/// and a partial batch once its timeout passes.
pub async fn batch_listener_gets_batches<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    #[derive(Clone, Default)]
    struct Batches(Arc<Mutex<Vec<Vec<String>>>>);

    impl rpc_core::notify::NotificationEndpoint for Batches {
        fn priorities(&self) -> &[Priority] {
            &[Priority::Info]
        }
        fn dispatch<'a>(&'a self, _: &'a Notification) -> Option<rpc_core::notify::NotificationFuture<'a>> {
            None
        }
        fn dispatch_batch<'a>(&'a self, batch: &'a [Notification]) -> Option<rpc_core::notify::NotificationFuture<'a>> {
            self.0
                .lock()
                .unwrap()
                .push(batch.iter().map(|n| n.event_type().to_owned()).collect());
            Some(Box::pin(async { Ok(NotificationResult::Handled) }))
        }
    }

    let topic = unique_topic("notify_batch");
    let batches = Batches::default();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(batches.clone())
        .batch(10, Duration::from_millis(300))
        .executor(Executor::Sequential)
        .build()
        .unwrap();
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    // Queued before the listener starts, so that full batches are ready.
    for i in 0..25 {
        notifier.info(&ctx, &format!("e{i:02}"), &json!({})).await.unwrap();
    }
    listener.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while batches.0.lock().unwrap().iter().map(Vec::len).sum::<usize>() < 25 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("25 notifications in batches");
    let got = batches.0.lock().unwrap().clone();
    assert!(got.iter().all(|batch| batch.len() <= 10), "{got:?}");
    assert_eq!(got[0].len(), 10, "a full first batch: {got:?}");
    let mut all: Vec<String> = got.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, (0..25).map(|i| format!("e{i:02}")).collect::<Vec<_>>());
    listener.stop();
    listener.wait().await;
    assert_eq!(listener.stats().handled, 25);
}

/// One notification whose handler fails, or panics, does not keep the
/// rest of its batch from theirs: each is handled, and the batch is then
/// acknowledged (requeues are not allowed). Until 2026-12-05 the default
/// batch dispatch stopped at the first failure, and acknowledged the rest
/// unhandled: lost.
pub async fn a_failing_notification_does_not_cost_its_batch<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_batch_failing");
    let seen = Seen::default();
    let recorder = seen.clone();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(handler([Priority::Info], move |notification| {
            let recorder = recorder.clone();
            async move {
                let event_type = notification.event_type().to_owned();
                recorder.push(notification);
                match event_type.as_str() {
                    "e1" => Err(NotificationError::failed("e1 fails")),
                    "e3" => panic!("e3 panics"),
                    _ => Ok(NotificationResult::Handled),
                }
            }
        }))
        .batch(6, Duration::MAX)
        .executor(Executor::Sequential)
        .build()
        .unwrap();
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    // Queued before the listener starts: one batch of six.
    for i in 0..6 {
        notifier.info(&ctx, &format!("e{i}"), &json!({})).await.unwrap();
    }
    listener.start().await.unwrap();
    let mut handled: Vec<String> = seen
        .wait_for(6, Duration::from_secs(10))
        .await
        .iter()
        .map(|notification| notification.event_type().to_owned())
        .collect();
    handled.sort();
    assert_eq!(handled, ["e0", "e1", "e2", "e3", "e4", "e5"], "{:?}", listener.stats());
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.stats().handled < 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the batch settled: {:?}", listener.stats()));
    let stats = listener.stats();
    assert_eq!((stats.handled, stats.requeued, stats.failed), (6, 0, 1), "{stats:?}");
    shutdown(listener).await;
}

/// A batch listener whose batches have no timeout (`Duration::MAX`, the
/// usual "no timeout"): batches wait until full, and `stop` hands over the
/// partial one it holds.
pub async fn batch_listener_without_a_timeout<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_batch_forever");
    let batches = Arc::new(Mutex::new(Vec::<usize>::new()));
    let recorder = Arc::clone(&batches);
    let endpoint = handler([Priority::Info], |_| async {});
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(BatchSizes(recorder, endpoint))
        .batch(3, Duration::MAX)
        .build()
        .unwrap();
    listener.start().await.unwrap();
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    for i in 0..3 {
        notifier.info(&ctx, &format!("e{i}"), &json!({})).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while batches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a full batch");
    assert_eq!(*batches.lock().unwrap(), [3]);
    assert!(listener.health().is_live(), "{:?}", listener.health());
    // A fourth, held in a batch that never fills. Health keeps the last
    // delivery's millisecond: from the next one on, a delivery is the fourth.
    let millis = |time: SystemTime| time.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
    let batch_done = millis(SystemTime::now());
    while millis(SystemTime::now()) == batch_done {
        tokio::task::yield_now().await;
    }
    let after = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(batch_done + 1).unwrap());
    notifier.info(&ctx, "e3", &json!({})).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.health().last_delivery.is_none_or(|last| last < after) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the fourth is taken");
    assert_eq!(*batches.lock().unwrap(), [3]);
    listener.stop();
    tokio::time::timeout(Duration::from_secs(10), listener.wait())
        .await
        .expect("the listener stops");
    assert_eq!(*batches.lock().unwrap(), [3, 1]);
    assert_eq!(listener.stats().handled, 4);
}

/// Records the size of each batch, then hands it to the inner endpoint.
struct BatchSizes<E>(Arc<Mutex<Vec<usize>>>, E);

impl<E: rpc_core::notify::NotificationEndpoint> rpc_core::notify::NotificationEndpoint for BatchSizes<E> {
    fn priorities(&self) -> &[Priority] {
        self.1.priorities()
    }
    fn dispatch<'a>(&'a self, notification: &'a Notification) -> Option<rpc_core::notify::NotificationFuture<'a>> {
        self.1.dispatch(notification)
    }
    fn dispatch_batch<'a>(&'a self, batch: &'a [Notification]) -> Option<rpc_core::notify::NotificationFuture<'a>> {
        self.0.lock().unwrap().push(batch.len());
        self.1.dispatch_batch(batch)
    }
}

/// A handler that panics before returning its future (in the closure a
/// `handler` takes, say, decoding the payload) fails like one that panics
/// inside it: counted, requeued when allowed, and the listener keeps
/// listening.
pub async fn a_handler_panicking_before_its_future_is_caught<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_early_panic");
    let seen = Seen::default();
    let recorder = seen.clone();
    let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(handler([Priority::Info], move |notification| {
            if notification.event_type() == "early" && attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("a bug before the handler's future");
            }
            let recorder = recorder.clone();
            async move { recorder.push(notification) }
        }))
        .allow_requeue(true)
        .build()
        .unwrap();
    listener.start().await.unwrap();
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    notifier.info(&ctx, "early", &json!({})).await.unwrap();
    notifier.info(&ctx, "later", &json!({})).await.unwrap();
    seen.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.stats().in_flight > 0 || listener.stats().handled < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("settled");
    let stats = listener.stats();
    assert_eq!((stats.failed, stats.requeued, stats.handled), (1, 1, 2), "{stats:?}");
    assert_eq!(seen.event_types(), ["early", "later"]);
    assert!(listener.health().is_live(), "{:?}", listener.health());
    shutdown(listener).await;
}

/// A notification requeued again and again on one queue does not keep a
/// one-at-a-time listener from the others' notifications.
pub async fn a_notification_requeued_forever_does_not_starve_the_others<C: Fn() -> F, F: Future<Output = Transport>>(
    connect: C,
) {
    let topic = unique_topic("notify_starve");
    let seen = Seen::default();
    let recorder = seen.clone();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(handler([Priority::Audit, Priority::Info], move |notification| {
            let recorder = recorder.clone();
            async move {
                if notification.priority() == Priority::Audit {
                    return NotificationResult::Requeue;
                }
                recorder.push(notification);
                NotificationResult::Handled
            }
        }))
        .executor(Executor::Sequential)
        .allow_requeue(true)
        .build()
        .unwrap();
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    notifier.audit(&ctx, "always.again", &json!({})).await.unwrap();
    listener.start().await.unwrap();
    // Requeued at least once before the other notification exists.
    tokio::time::timeout(Duration::from_secs(10), async {
        while listener.stats().requeued == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the audit notification is requeued");
    notifier.info(&ctx, "meanwhile", &json!({})).await.unwrap();
    seen.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(seen.event_types(), ["meanwhile"]);
    shutdown(listener).await;
}

/// The events of a compute service, as a trait: a typed notifier and a listener.
#[notifications]
pub trait ComputeEvents {
    /// An instance was created.
    #[on(info, event_type = "compute.instance.create.end")]
    async fn instance_created(&self, notification: &Notification, payload: InstancePayload);

    /// An instance failed.
    #[on(error, event_type = "compute.instance.error")]
    async fn instance_failed(&self, notification: &Notification, payload: String);
}

#[derive(Clone, Default)]
struct ComputeAudit(Seen);

impl ComputeEvents for ComputeAudit {
    async fn instance_created(&self, notification: &Notification, _payload: InstancePayload) {
        self.0.push(notification.clone());
    }

    async fn instance_failed(&self, notification: &Notification, _payload: String) {
        self.0.push(notification.clone());
    }
}

/// A trait's typed notifier sends what the trait's listener handles.
pub async fn typed_notifier_from_a_trait<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_trait");
    let audit = ComputeAudit::default();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(ComputeEventsListener::new(audit.clone()))
        .build()
        .unwrap();
    listener.start().await.unwrap();
    let events = ComputeEventsNotifier::new(notifier(connect().await, &topic));
    let ctx = Context::new();
    let payload = InstancePayload {
        instance_id: "7".into(),
        state: "building".into(),
        memory_mb: 64,
    };
    events.instance_created(&ctx, &payload).await.unwrap();
    events.instance_failed(&ctx, &"no valid host".to_owned()).await.unwrap();
    let seen = audit.0.wait_for(2, Duration::from_secs(10)).await;
    let mut got: Vec<(Priority, String)> = seen.iter().map(|n| (n.priority(), n.event_type().to_owned())).collect();
    got.sort();
    assert_eq!(
        got,
        [
            (Priority::Info, "compute.instance.create.end".to_owned()),
            (Priority::Error, "compute.instance.error".to_owned()),
        ]
    );
    shutdown(listener).await;
}

/// oslo's other drivers: `messaging` (1.0, no envelope) arrives too; `noop`
/// and `log` send nothing.
pub async fn notifier_drivers<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_drivers");
    let (listener, seen) = recording_listener(connect().await, &topic, None).await;
    let notifier = notifier(connect().await, &topic);
    let ctx = Context::new();
    notifier
        .prepare()
        .driver(NotifyDriver::Noop)
        .info(&ctx, "noop", &json!({}))
        .await
        .unwrap();
    notifier
        .prepare()
        .driver(NotifyDriver::Log)
        .info(&ctx, "log", &json!({}))
        .await
        .unwrap();
    notifier
        .prepare()
        .driver(NotifyDriver::Messaging)
        .info(&ctx, "v1", &json!({"a": 1}))
        .await
        .unwrap();
    notifier.info(&ctx, "v2", &json!({"a": 2})).await.unwrap();
    // Several drivers, as oslo's multi-valued option: each in turn, one
    // message (the same id) for all.
    notifier
        .prepare()
        .drivers([NotifyDriver::Log, NotifyDriver::Messaging, NotifyDriver::MessagingV2])
        .info(&ctx, "both", &json!({"a": 3}))
        .await
        .unwrap();
    seen.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(seen.event_types(), ["both", "both", "v1", "v2"]);
    let v1 = seen.all().into_iter().find(|n| n.event_type() == "v1").unwrap();
    assert_eq!(v1.payload::<Value>().unwrap(), json!({"a": 1}));
    let both: Vec<Notification> = seen.all().into_iter().filter(|n| n.event_type() == "both").collect();
    assert_eq!(both[0].message_id(), both[1].message_id());
    // Bad input is refused before sending.
    let empty = notifier.info(&ctx, "", &json!({})).await;
    assert!(matches!(empty, Err(Error::InvalidNotification(_))), "{empty:?}");
    let long = notifier.info(&ctx, &"e".repeat(4097), &json!({})).await;
    assert!(matches!(long, Err(Error::InvalidNotification(_))), "{long:?}");
    shutdown(listener).await;
}

/// A notification listener's health, as a server's: not live before start;
/// ready once consuming a queue per priority; the last delivery moves with
/// notifications; not live once stopped.
pub async fn health_follows_the_notification_listener<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("notify_health");
    let seen = Seen::default();
    let recorder = seen.clone();
    let listener = NotificationListener::builder(connect().await, [Target::topic(&topic)])
        .endpoint(handler([Priority::Info, Priority::Error], move |notification| {
            let recorder = recorder.clone();
            async move { recorder.push(notification) }
        }))
        .build()
        .unwrap();
    let health = listener.health();
    assert!(!health.is_live() && !health.is_ready(), "{health:?}");
    assert!(health.queues.is_empty(), "{health:?}");

    listener.start().await.unwrap();
    let health = listener.health();
    assert!(health.is_live() && health.is_ready(), "{health:?}");
    let mut names: Vec<&str> = health.queues.iter().map(|queue| queue.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, [format!("{topic}.error"), format!("{topic}.info")], "{health:?}");
    assert!(health.queues.iter().all(|queue| queue.consuming), "{health:?}");
    assert_eq!((health.last_delivery, health.in_flight), (None, 0), "{health:?}");

    let before = SystemTime::now() - Duration::from_millis(1);
    notifier(connect().await, &topic)
        .error(&Context::new(), "compute.instance.delete.error", &json!({}))
        .await
        .unwrap();
    seen.wait_for(1, Duration::from_secs(10)).await;
    let last = listener.health().last_delivery.expect("a delivery was taken");
    assert!(last >= before, "{last:?} before {before:?}");

    listener.stop();
    listener.wait().await;
    let health = listener.health();
    assert!(!health.is_live() && !health.is_ready(), "{health:?}");
}

/// A listener needs a target with a topic and an endpoint with a priority.
pub async fn notification_listener_settings_are_checked<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let transport = connect().await;
    let some = || handler([Priority::Info], |_| async {});
    let no_target = NotificationListener::builder(transport.clone(), [])
        .endpoint(some())
        .build();
    assert!(matches!(no_target, Err(Error::InvalidTarget(_))));
    let no_topic = NotificationListener::builder(transport.clone(), [Target::topic("")])
        .endpoint(some())
        .build();
    assert!(matches!(no_topic, Err(Error::InvalidTarget(_))));
    let no_endpoint = NotificationListener::builder(transport.clone(), [Target::topic("t")]).build();
    assert!(matches!(no_endpoint, Err(Error::Config(_))));
    let no_priority = NotificationListener::builder(transport.clone(), [Target::topic("t")])
        .endpoint(handler([], |_| async {}))
        .build();
    assert!(matches!(no_priority, Err(Error::Config(_))));
    let empty_batch = NotificationListener::builder(transport, [Target::topic("t")])
        .endpoint(some())
        .batch(0, Duration::from_secs(1))
        .build();
    assert!(matches!(empty_batch, Err(Error::Config(_))));
}
