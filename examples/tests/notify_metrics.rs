//! Notification metrics on `memory://`: a notifier and a listener record
//! the documented series (notifications by result, handler failures,
//! handling time, the in-flight gauge, notifications sent and their errors
//! by code, deliveries left to the broker), read back as Prometheus renders
//! them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use rpc_core::notify::{NotificationListener, NotificationResult, Notifier, NotifyDriver, Priority, handler};
use rpc_core::transport::memory::{Broker, MemoryDriver};
use rpc_core::transport::{Driver, ListenOptions, Listener, NotificationRoute, OutgoingMessage, async_trait};
use rpc_core::{Codec, Context, Error, Retry, Target, TransportError, json};
use rpc_tests::passthrough::{Losing, Passing, Passthrough};
use rpc_tests::prometheus::sample;

/// The process's recorder, shared by the tests (each uses its own topics).
static METRICS: LazyLock<PrometheusHandle> = LazyLock::new(|| rpc_examples::probe::install_prometheus().unwrap());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifiers_and_listeners_record_their_series() {
    let metrics = &*METRICS;
    let broker = Broker::new();
    // How often each event type was tried.
    let tries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counted = Arc::clone(&tries);
    let listener = NotificationListener::builder(
        broker.transport(),
        [Target::topic("metrics_a"), Target::topic("metrics_b")],
    )
    .endpoint(handler([Priority::Info, Priority::Warn], move |notification| {
        let counted = Arc::clone(&counted);
        async move {
            let event_type = notification.event_type().to_owned();
            let tried = {
                let mut tries = counted.lock().unwrap();
                let tried = tries.entry(event_type.clone()).or_default();
                *tried += 1;
                *tried
            };
            match (event_type.as_str(), tried) {
                ("again", 1) => Ok(NotificationResult::Requeue),
                ("fails", 1) => Err("the database is away"),
                _ => Ok(NotificationResult::Handled),
            }
        }
    }))
    .allow_requeue(true)
    .build()
    .unwrap();
    listener.start().await.unwrap();

    let notifier = Notifier::new(broker.transport(), "compute.host-1").topics(["metrics_a"]);
    let ctx = Context::new();
    for event_type in ["ok", "ok", "again", "fails"] {
        notifier.info(&ctx, event_type, &json!({})).await.unwrap();
    }
    notifier.warn(&ctx, "marker", &json!({})).await.unwrap();
    // Refused before sending: a payload JSON cannot hold (keys that are not
    // strings), an empty event type.
    let unencodable = HashMap::from([((1, 2), 3)]);
    let refused = notifier.info(&ctx, "unencodable", &unencodable).await;
    assert!(matches!(refused, Err(Error::Encode { .. })), "{refused:?}");
    let refused = notifier.info(&ctx, "", &json!({})).await;
    assert!(matches!(refused, Err(Error::InvalidNotification(_))), "{refused:?}");
    // Bytes that are no notification, on the listener's info queue.
    let route = NotificationRoute::new(broker.transport().control_exchange(), "metrics_b", "info");
    let garbage = OutgoingMessage::new(Bytes::from_static(b"\xc1"), Codec::MsgPack, None, Retry::Never);
    broker.driver().notify(&route, garbage).await.unwrap();
    // A notification sent twice (one `_unique_id`): handled once, one duplicate.
    let copied =
        br#"{"event_type": "copied", "priority": "INFO", "payload": {}, "message_id": "m-1", "_unique_id": "u-1"}"#;
    for _ in 0..2 {
        let copy = OutgoingMessage::new(Bytes::from_static(copied), Codec::OsloJson, None, Retry::Never);
        broker.driver().notify(&route, copy).await.unwrap();
    }

    // Six handled (five info, one warn), two requeued, one rejected, one duplicate.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let stats = listener.stats();
            if stats.in_flight == 0 && stats.handled + stats.requeued + stats.rejected + stats.duplicates >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not settled: {:?}", listener.stats()));

    let text = metrics.render();
    let topics = r#"topic="metrics_a,metrics_b""#;
    let of = |priority: &'static str, result: &'static str| {
        let (priority, result) = (format!(r#"priority="{priority}""#), format!(r#"result="{result}""#));
        sample(&text, "rpc_listener_notifications_total", &[topics, &priority, &result])
    };
    assert_eq!(of("info", "handled"), Some(5.0), "{text}");
    assert_eq!(of("info", "requeued"), Some(2.0), "{text}");
    assert_eq!(of("info", "duplicate"), Some(1.0), "{text}");
    assert_eq!(of("info", "rejected"), Some(0.0), "{text}");
    assert_eq!(of("warn", "handled"), Some(1.0), "{text}");
    assert_eq!(of("(unknown)", "rejected"), Some(1.0), "{text}");
    // Registered with the listener; on `memory://` no connection is lost.
    assert_eq!(of("(unknown)", "left"), Some(0.0), "{text}");
    // Only the priorities the endpoints handle have series.
    assert_eq!(of("audit", "handled"), None, "{text}");
    assert_eq!(
        sample(&text, "rpc_listener_failures_total", &[topics, r#"priority="info""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "rpc_listener_handle_duration_seconds_count",
            &[topics, r#"priority="info""#]
        ),
        Some(7.0),
        "{text}"
    );
    assert_eq!(sample(&text, "rpc_listener_in_flight", &[topics]), Some(0.0), "{text}");

    let sent = |priority: &'static str| {
        let priority = format!(r#"priority="{priority}""#);
        sample(
            &text,
            "rpc_notifier_notifications_total",
            &[r#"topic="metrics_a""#, &priority],
        )
    };
    assert_eq!(sent("info"), Some(6.0), "{text}");
    assert_eq!(sent("warn"), Some(1.0), "{text}");
    let errors = |code: &'static str| {
        let code = format!(r#"code="{code}""#);
        sample(
            &text,
            "rpc_notifier_errors_total",
            &[r#"topic="metrics_a""#, r#"priority="info""#, &code],
        )
    };
    assert_eq!(errors("encode"), Some(1.0), "{text}");
    assert_eq!(errors("invalid_notification"), Some(1.0), "{text}");
    assert_eq!(errors("transport"), None, "{text}");
    listener.stop();
    listener.wait().await;
}

/// A batch listener in a pool gets the priorities of the pool's other
/// listeners too: they are counted under their own priority, each batch's
/// notifications timed once per priority; drivers that send nothing
/// record nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_batches_and_drivers_that_send_nothing() {
    let metrics = &*METRICS;
    let broker = Broker::new();
    let in_pool = |priority| {
        NotificationListener::builder(broker.transport(), [Target::topic("metrics_pool")])
            .endpoint(handler([priority], |_| async {}))
            .pool("metrics")
    };
    // The warn listener binds the pool's queue to warn notifications, then
    // leaves: the info listener gets them.
    let other = in_pool(Priority::Warn).build().unwrap();
    other.start().await.unwrap();
    other.stop();
    other.wait().await;
    let batched = in_pool(Priority::Info)
        .batch(10, Duration::from_millis(50))
        .build()
        .unwrap();
    batched.start().await.unwrap();

    let ctx = Context::new();
    let notifier = Notifier::new(broker.transport(), "compute.host-1").topics(["metrics_pool"]);
    for _ in 0..3 {
        notifier
            .info(&ctx, "compute.instance.update", &json!({}))
            .await
            .unwrap();
        notifier.warn(&ctx, "compute.instance.slow", &json!({})).await.unwrap();
    }
    let silent = Notifier::new(broker.transport(), "compute.host-1").topics(["metrics_silent"]);
    for driver in [NotifyDriver::Noop, NotifyDriver::Log] {
        let silent = silent.prepare().driver(driver);
        silent.info(&ctx, "compute.instance.update", &json!({})).await.unwrap();
        let refused = silent.info(&ctx, "", &json!({})).await;
        assert!(matches!(refused, Err(Error::InvalidNotification(_))), "{refused:?}");
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while batched.stats().handled < 6 || batched.stats().in_flight > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not handled: {:?}", batched.stats()));

    let text = metrics.render();
    let pool = r#"topic="metrics_pool""#;
    for priority in [r#"priority="info""#, r#"priority="warn""#] {
        assert_eq!(
            sample(
                &text,
                "rpc_listener_notifications_total",
                &[pool, priority, r#"result="handled""#]
            ),
            Some(3.0),
            "{text}"
        );
        let timed = sample(&text, "rpc_listener_handle_duration_seconds_count", &[pool, priority]);
        assert!(
            timed.is_some_and(|batches| (1.0..=3.0).contains(&batches)),
            "{priority}: {timed:?}\n{text}"
        );
    }
    assert!(!text.contains("metrics_silent"), "{text}");
    batched.stop();
    batched.wait().await;
}

/// Deliveries whose connection is lost before a handler starts are left to
/// the broker, one by one and in a gathering batch alike: counted in the
/// stats and under the result `left`, not handled, and handled once when
/// the broker delivers them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_lost_before_their_handler_are_left_to_the_broker() {
    let metrics = &*METRICS;
    let broker = Broker::new();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener_of = |topic: &str, batch: Option<usize>| {
        // Its first delivery comes as a lost connection leaves it.
        let transport = Passing::transport(LosesFirst {
            inner: broker.driver(),
            left: AtomicUsize::new(1),
        });
        let seen = Arc::clone(&seen);
        let builder = NotificationListener::builder(transport, [Target::topic(topic)]).endpoint(handler(
            [Priority::Info],
            move |notification| {
                seen.lock().unwrap().push(notification.event_type().to_owned());
                async {}
            },
        ));
        match batch {
            Some(size) => builder.batch(size, Duration::from_millis(50)),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let one_by_one = listener_of("metrics_left_one", None);
    let batched = listener_of("metrics_left_batch", Some(2));
    for listener in [&one_by_one, &batched] {
        listener.start().await.unwrap();
    }
    let ctx = Context::new();
    Notifier::new(broker.transport(), "compute.host-1")
        .topics(["metrics_left_one"])
        .info(&ctx, "single", &json!({}))
        .await
        .unwrap();
    // However the batches fall, the one holding the first delivery leaves
    // it, and a later one gets its copy delivered again.
    let to_batch = Notifier::new(broker.transport(), "compute.host-1").topics(["metrics_left_batch"]);
    for event_type in ["first", "second"] {
        to_batch.info(&ctx, event_type, &json!({})).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while one_by_one.stats().handled < 1 || batched.stats().handled < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not handled: {:?} {:?}", one_by_one.stats(), batched.stats()));

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["first", "second", "single"]);
    for (listener, sent) in [(&one_by_one, 1), (&batched, 2)] {
        let stats = listener.stats();
        assert_eq!((stats.left_to_broker, stats.handled), (1, sent), "{stats:?}");
    }
    let text = metrics.render();
    for topic in ["metrics_left_one", "metrics_left_batch"] {
        let topic = format!(r#"topic="{topic}""#);
        let left = sample(
            &text,
            "rpc_listener_notifications_total",
            &[&topic, r#"priority="(unknown)""#, r#"result="left""#],
        );
        assert_eq!(left, Some(1.0), "{topic}\n{text}");
    }
    for listener in [one_by_one, batched] {
        listener.stop();
        listener.wait().await;
    }
}

/// `memory://`, except that the first `left` notification deliveries come
/// as a lost connection leaves them: they cannot be settled, and dropping
/// them gives them back to their queue.
#[derive(Debug)]
struct LosesFirst {
    inner: MemoryDriver,
    left: AtomicUsize,
}

#[async_trait]
impl Passthrough for LosesFirst {
    fn inner(&self) -> &dyn Driver {
        &self.inner
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        let inner = self.inner.listen_notifications(routes, pool, options).await?;
        Ok(Losing::first(inner, self.left.swap(0, Ordering::SeqCst), true))
    }
}
