//! Notifications on RabbitMQ beyond the conformance suite: what a listener
//! that dies mid-notification leaves behind.

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
