//! Notification metrics on `memory://`: a notifier and a listener record
//! the documented series (notifications by result, handler failures,
//! handling time, the in-flight gauge, notifications sent and their errors
//! by code), read back as Prometheus renders them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rpc_core::notify::{NotificationListener, NotificationResult, Notifier, Priority, handler};
use rpc_core::transport::memory::Broker;
use rpc_core::transport::{Driver, NotificationRoute, OutgoingMessage};
use rpc_core::{Codec, Context, Error, Retry, Target, json};
use rpc_tests::prometheus::sample;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifiers_and_listeners_record_their_series() {
    let metrics = rpc_examples::probe::install_prometheus().unwrap();
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

    // Five handled (four info, one warn), two requeued, one rejected.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let stats = listener.stats();
            if stats.in_flight == 0 && stats.handled + stats.requeued + stats.rejected >= 8 {
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
    assert_eq!(of("info", "handled"), Some(4.0), "{text}");
    assert_eq!(of("info", "requeued"), Some(2.0), "{text}");
    assert_eq!(of("info", "rejected"), Some(0.0), "{text}");
    assert_eq!(of("warn", "handled"), Some(1.0), "{text}");
    assert_eq!(of("(unknown)", "rejected"), Some(1.0), "{text}");
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
        Some(6.0),
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
