//! Notifications on RabbitMQ beyond the conformance suite: what a listener
//! that dies mid-notification leaves behind; a prefetch too small for a
//! batch, which cuts the batches, warned of.

use std::sync::Arc;
use std::time::Duration;

use rpc_core::notify::{NotificationListener, Notifier, Priority, handler};
use rpc_core::{Context, Target, json};
use rpc_tests::broker;
use rpc_tests::conformance::unique_topic;
use tokio::sync::Notify;

/// A notification is acknowledged only after its handlers ran: when the
/// listener that took it loses its connection mid-handler (as a process
/// that dies does), the broker delivers it to another listener of the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_taken_by_a_dying_listener_is_delivered_again() {
    let topic = unique_topic("notify_dying");
    let pool = format!("{topic}-pool");
    let taken = Arc::new(Notify::new());
    let dying_transport = broker::connect().await;
    let seen = Arc::clone(&taken);
    let dying = NotificationListener::builder(dying_transport.clone(), [Target::topic(&topic)])
        .endpoint(handler([Priority::Info], move |_| {
            let seen = Arc::clone(&seen);
            async move {
                seen.notify_one();
                // Never finishes: the process "dies" with it in hand.
                std::future::pending::<()>().await;
            }
        }))
        .pool(&pool)
        .build()
        .unwrap();
    dying.start().await.unwrap();
    Notifier::new(broker::connect().await, "test")
        .topics([topic.as_str()])
        .info(&Context::new(), "once.only", &json!({"n": 1}))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), taken.notified())
        .await
        .expect("the first listener took it");
    dying_transport.close().await.unwrap();

    let delivered = Arc::new(Notify::new());
    let again = Arc::clone(&delivered);
    let survivor = NotificationListener::builder(broker::connect().await, [Target::topic(&topic)])
        .endpoint(handler([Priority::Info], move |notification| {
            let again = Arc::clone(&again);
            async move {
                assert_eq!(notification.event_type(), "once.only");
                again.notify_one();
            }
        }))
        .pool(&pool)
        .build()
        .unwrap();
    survivor.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), delivered.notified())
        .await
        .expect("the notification came again to the surviving listener");
    survivor.stop();
    survivor.wait().await;
    assert_eq!(survivor.stats().handled, 1);
}

/// What a notifier on two topics puts on the wire: one copy per topic, the
/// same `message_id`, a `_unique_id` of each copy's own (oslo's listeners
/// drop a second message with a `_unique_id` they acknowledged), and
/// persistent, as oslo's are: they wait in durable queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_topic_gets_its_own_copy_persistent() {
    let topics = [unique_topic("notify_copy_a"), unique_topic("notify_copy_b")];
    Notifier::new(broker::connect_oslo().await, "test")
        .topics(topics.iter().map(String::as_str))
        .info(&Context::new(), "two.copies", &json!({"n": 1}))
        .await
        .unwrap();
    let raw = rpc_tests::raw::Raw::connect().await;
    let mut messages = Vec::new();
    for topic in &topics {
        let queue = format!("{topic}.info");
        let got = raw
            .channel
            .basic_get(queue.as_str().into(), lapin::options::BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a notification waits in {queue}"));
        assert_eq!(
            got.delivery.properties.delivery_mode(),
            &Some(2),
            "persistent in {queue}"
        );
        let envelope: serde_json::Value = serde_json::from_slice(&got.delivery.data).unwrap();
        let message: serde_json::Value =
            serde_json::from_str(envelope["oslo.message"].as_str().expect("the 2.0 envelope")).unwrap();
        messages.push(message);
        raw.channel
            .queue_delete(queue.as_str().into(), lapin::options::QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(messages[0]["message_id"], messages[1]["message_id"], "{messages:?}");
    assert_ne!(messages[0]["_unique_id"], messages[1]["_unique_id"], "{messages:?}");
    assert_eq!(messages[0]["payload"], json!({"n": 1}));
}

/// A batch listener on a transport whose prefetch is below its batch size
/// gets batches cut to the prefetch, as oslo's: a batch larger would wait
/// for its timeout every time (or, without one, for ever), for deliveries
/// the broker holds back until it is settled. The transport says so when
/// the listener starts, and not when the batch fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetch_below_the_batch_size_cuts_the_batches_and_is_warned_of() {
    let logs = rpc_tests::logs::Logs::global();
    let warning = "is below the listener's batch size";
    let url = broker::url_with(&format!("{}&prefetch=4", broker::TEST_OPTIONS));
    for (batch, warned) in [(4, 0), (10, 1)] {
        let topic = unique_topic("notify_prefetch");
        let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&handled);
        let listener = NotificationListener::builder(broker::connect_url(&url).await, [Target::topic(&topic)])
            .endpoint(handler([Priority::Info], move |_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async {}
            }))
            .batch(batch, Duration::MAX)
            .build()
            .unwrap();
        let before = logs.lines_with(&[warning]).len();
        listener.start().await.unwrap();
        let lines = logs.lines_with(&[warning]);
        assert_eq!(lines.len() - before, warned, "batch {batch}: {lines:?}");
        if warned > 0 {
            let line = lines.last().unwrap();
            assert!(line.contains("prefetch=4") && line.contains("batch=10"), "{line}");
        }
        // Two full batches of four, handled without a timeout to end them.
        let notifier = Notifier::new(broker::connect_url(&url).await, "test.host").topics([topic.as_str()]);
        for n in 0..8 {
            notifier
                .info(&Context::new(), "counted", &json!({"n": n}))
                .await
                .unwrap();
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            while handled.load(std::sync::atomic::Ordering::SeqCst) < 8 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("batch {batch}: {handled:?} of 8 handled"));
        listener.stop();
        listener.wait().await;
    }
}
