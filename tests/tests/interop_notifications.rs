//! Notifications between Rust and the real oslo.messaging 18.3.1, both
//! ways, on the test broker: a Python `Notifier` to Rust listeners (every
//! priority, both drivers, a filter, pools, a requeue, a batch listener),
//! and a Rust `Notifier` to a Python `NotificationListener`.
//!
//! Both sides use durable queues on a control exchange of the test's own, as
//! a deployment sharing notification topics does (`amqp_durable_queues` on
//! the Python side, `?durable=true` on ours).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::notify::{
    Notification, NotificationFilter, NotificationListener, NotificationResult, Notifier, NotifyDriver, Priority,
    handler,
};
use rpc_core::{Context, Executor, Target, Transport, Value, json};
use rpc_tests::broker::{self, Declared};
use rpc_tests::conformance::unique_topic;
use rpc_tests::interop::{PythonServer, command};
use rpc_tests::worker::TempDir;
use serde::Deserialize;

const PRIORITIES: [&str; 7] = ["audit", "debug", "info", "warn", "error", "critical", "sample"];

/// A transport configured as the Python side is: durable, on `exchange`.
async fn transport(exchange: &str) -> Transport {
    broker::connect_url(&broker::url_with(&format!("durable=true&control_exchange={exchange}"))).await
}

/// Notifications recorded by a listener's endpoint.
#[derive(Clone, Debug, Default)]
struct Recorded(Arc<Mutex<Vec<Notification>>>);

impl Recorded {
    fn endpoint(&self) -> impl rpc_core::notify::NotificationEndpoint {
        let recorded = self.clone();
        handler(Priority::ALL, move |notification| {
            let recorded = recorded.clone();
            async move { recorded.0.lock().unwrap().push(notification) }
        })
    }

    fn all(&self) -> Vec<Notification> {
        self.0.lock().unwrap().clone()
    }

    fn event_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.all().iter().map(|n| n.event_type().to_owned()).collect();
        types.sort();
        types
    }
}

async fn until(what: &str, within: Duration, done: impl Fn() -> bool) {
    tokio::time::timeout(within, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn listening(builder: rpc_core::notify::NotificationListenerBuilder) -> NotificationListener {
    let listener = builder.build().unwrap();
    listener.start().await.unwrap();
    listener
}

/// The payload `notify_send.py` sends.
#[derive(Debug, Deserialize, PartialEq)]
struct SentPayload {
    priority: String,
    driver: String,
    n: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notifier_to_rust_listeners() {
    let exchange = unique_topic("notify_py_ex");
    let topic = unique_topic("notify_py");
    let target = || Target::topic(&topic).with_exchange(&exchange);
    let pool = |name: &str| format!("{topic}-{name}");
    let priority_queues = PRIORITIES.iter().map(|p| format!("{topic}.{p}"));
    let pool_queues = ["shared", "requeue", "batch"].map(pool);
    let _declared = Declared::queues(priority_queues.chain(pool_queues)).and_exchange(&exchange);

    // Without a pool: everything, and through a filter, what passes it.
    let (everything, filtered) = (Recorded::default(), Recorded::default());
    let filter = NotificationFilter::new()
        .event_type(r"interop\.messagingv2\.")
        .unwrap()
        .context("user", "^alice$")
        .unwrap();
    let plain = listening(
        NotificationListener::builder(transport(&exchange).await, [target()])
            .endpoint(everything.endpoint())
            .filtered_endpoint(filtered.endpoint(), filter),
    )
    .await;
    // A pool of two: each notification reaches one of them.
    let (first, second) = (Recorded::default(), Recorded::default());
    let shared = [
        listening(
            NotificationListener::builder(transport(&exchange).await, [target()])
                .endpoint(first.endpoint())
                .pool(pool("shared")),
        )
        .await,
        listening(
            NotificationListener::builder(transport(&exchange).await, [target()])
                .endpoint(second.endpoint())
                .pool(pool("shared")),
        )
        .await,
    ];
    // A pool that requeues `requeue.me` once.
    let attempts = Recorded::default();
    let recorder = attempts.clone();
    let requeueing = listening(
        NotificationListener::builder(transport(&exchange).await, [target()])
            .endpoint(handler(Priority::ALL, move |notification| {
                let recorder = recorder.clone();
                async move {
                    let again = notification.event_type() == "requeue.me"
                        && !recorder.all().iter().any(|n| n.event_type() == "requeue.me");
                    recorder.0.lock().unwrap().push(notification);
                    if again {
                        NotificationResult::Requeue
                    } else {
                        NotificationResult::Handled
                    }
                }
            }))
            .pool(pool("requeue"))
            .allow_requeue(true),
    )
    .await;
    // A pool that takes batches of at most four.
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    #[derive(Clone)]
    struct Batches(Arc<Mutex<Vec<usize>>>);
    impl rpc_core::notify::NotificationEndpoint for Batches {
        fn priorities(&self) -> &[Priority] {
            &Priority::ALL
        }
        fn dispatch<'a>(&'a self, _: &'a Notification) -> Option<rpc_core::notify::NotificationFuture<'a>> {
            None
        }
        fn dispatch_batch<'a>(&'a self, batch: &'a [Notification]) -> Option<rpc_core::notify::NotificationFuture<'a>> {
            self.0.lock().unwrap().push(batch.len());
            Some(Box::pin(async { Ok(NotificationResult::Handled) }))
        }
    }
    let batching = listening(
        NotificationListener::builder(transport(&exchange).await, [target()])
            .endpoint(Batches(Arc::clone(&batches)))
            .pool(pool("batch"))
            .batch(4, Duration::from_millis(200))
            .executor(Executor::Sequential),
    )
    .await;

    let program = {
        let mut program = command("notify_send.py");
        program.arg(&topic).env("OSLO_EXCHANGE", &exchange);
        program
    };
    let output = tokio::task::spawn_blocking(move || {
        let mut program = program;
        program.output()
    })
    .await
    .unwrap()
    .expect("the Python notifier runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("sent 15"),
        "the Python notifier failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut expected: Vec<String> = ["messagingv2", "messaging"]
        .iter()
        .flat_map(|driver| {
            PRIORITIES
                .iter()
                .map(move |priority| format!("interop.{driver}.{priority}"))
        })
        .collect();
    expected.push("requeue.me".to_owned());
    expected.sort();
    let within = Duration::from_secs(15);
    until("every notification", within, || everything.all().len() >= 15).await;
    assert_eq!(everything.event_types(), expected);
    for notification in everything.all().iter().filter(|n| n.event_type() != "requeue.me") {
        let payload: SentPayload = notification.payload().unwrap();
        assert_eq!(notification.priority().as_str(), payload.priority);
        assert_eq!(
            notification.event_type(),
            format!("interop.{}.{}", payload.driver, payload.priority)
        );
        assert_eq!(PRIORITIES[payload.n], payload.priority);
        assert_eq!(notification.publisher_id(), "compute.py-host");
        assert_eq!(notification.message_id().len(), 36);
        assert_eq!(
            notification.timestamp().as_bytes()[10],
            b' ',
            "{}",
            notification.timestamp()
        );
        let ctx = notification.context();
        assert_eq!(ctx.request_id(), Some("req-notify"));
        assert_eq!(ctx.get_str("user"), Some("alice"));
        assert_eq!(
            ctx.get_value("auth_token"),
            Some(&Value::Null),
            "oslo redacts the token"
        );
    }
    let mut v2: Vec<String> = PRIORITIES.iter().map(|p| format!("interop.messagingv2.{p}")).collect();
    v2.sort();
    until("the filtered ones", within, || filtered.all().len() >= v2.len()).await;
    assert_eq!(filtered.event_types(), v2, "the filter passes messagingv2 only");

    until("the shared pool", within, || {
        first.all().len() + second.all().len() >= 15
    })
    .await;
    let mut together = first.event_types();
    together.extend(second.event_types());
    together.sort();
    assert_eq!(together, expected, "the pool's listeners share each notification once");

    until("the requeued one again", within, || attempts.all().len() >= 16).await;
    assert_eq!(attempts.event_types().iter().filter(|e| *e == "requeue.me").count(), 2);
    assert_eq!(requeueing.stats().requeued, 1);

    until("the batches", within, || {
        batches.lock().unwrap().iter().sum::<usize>() >= 15
    })
    .await;
    let sizes = batches.lock().unwrap().clone();
    assert!(sizes.iter().all(|size| *size <= 4), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 15);

    for listener in [plain, requeueing, batching].into_iter().chain(shared) {
        listener.stop();
        listener.wait().await;
    }
}

/// What `notify_listen.py` writes per notification.
#[derive(Debug, Deserialize)]
struct Received {
    priority: String,
    publisher_id: String,
    event_type: String,
    payload: Value,
    metadata: BTreeMap<String, Value>,
    ctxt: BTreeMap<String, Value>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_notifier_to_python_listener() {
    let exchange = unique_topic("notify_rs_ex");
    let topic = unique_topic("notify_rs");
    let second = unique_topic("notify_rs_second");
    let queues = [&topic, &second]
        .map(|topic| PRIORITIES.map(|p| format!("{topic}.{p}")))
        .into_iter()
        .flatten();
    let _declared = Declared::queues(queues).and_exchange(&exchange);
    let dir = TempDir::new("notify-interop");
    let out = dir.path().join("received.jsonl");
    let count = PRIORITIES.len() + 4;
    let mut program = command("notify_listen.py");
    program
        .arg(format!("{topic},{second}"))
        .arg(count.to_string())
        .arg(&out)
        .env("OSLO_EXCHANGE", &exchange);
    let mut python = PythonServer::spawn("notify_listen.py", program).await;

    let notifier = Notifier::new(transport(&exchange).await, "compute.rs-host").topics([topic.as_str()]);
    let mut ctx = Context::new().with_request_id("req-rust");
    ctx.insert("user", "bob").unwrap();
    ctx.insert("auth_token", "s3cr3t").unwrap();
    for (n, priority) in Priority::ALL.into_iter().enumerate() {
        notifier
            .notify(
                &ctx,
                priority,
                &format!("rust.{priority}"),
                &json!({"priority": priority.as_str(), "n": n}),
            )
            .await
            .unwrap();
    }
    let v1 = notifier.prepare().driver(NotifyDriver::Messaging);
    v1.info(&ctx, "rust.v1.info", &json!({"v": 1})).await.unwrap();
    v1.error(&ctx, "rust.v1.error", &json!({"v": 1})).await.unwrap();
    // One notification on both topics the listener listens to: oslo's
    // listener takes both copies (each has its own `_unique_id`).
    notifier
        .prepare()
        .topics([topic.as_str(), second.as_str()])
        .warn(&ctx, "rust.both.topics", &json!({}))
        .await
        .unwrap();

    let status = python.wait_exit(Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "the Python listener did not get {count} notifications"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let received: Vec<Received> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(received.len(), count, "{text}");
    for priority in PRIORITIES {
        let notification = received
            .iter()
            .find(|r| r.event_type == format!("rust.{priority}"))
            .unwrap_or_else(|| panic!("no rust.{priority}: {text}"));
        assert_eq!(
            notification.priority, priority,
            "the Python endpoint method named after it"
        );
        assert_eq!(notification.payload["priority"], priority);
        assert_eq!(notification.publisher_id, "compute.rs-host");
        assert_eq!(notification.ctxt["request_id"], "req-rust");
        assert_eq!(notification.ctxt["user"], "bob");
        assert!(
            !notification.ctxt.contains_key("auth_token"),
            "secrets stay home: {:?}",
            notification.ctxt
        );
        assert_eq!(notification.metadata["message_id"].as_str().map(str::len), Some(36));
        assert!(
            notification.metadata["timestamp"]
                .as_str()
                .is_some_and(|t| t.as_bytes()[10] == b' ')
        );
    }
    for (event_type, priority) in [("rust.v1.info", "info"), ("rust.v1.error", "error")] {
        let notification = received.iter().find(|r| r.event_type == event_type).expect(event_type);
        assert_eq!(notification.priority, priority);
        assert_eq!(notification.payload, json!({"v": 1}));
    }
    let both: Vec<&Received> = received.iter().filter(|r| r.event_type == "rust.both.topics").collect();
    assert_eq!(both.len(), 2, "{text}");
    assert_eq!(both[0].metadata["message_id"], both[1].metadata["message_id"]);
}
