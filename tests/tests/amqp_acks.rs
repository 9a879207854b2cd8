//! Acknowledgements on RabbitMQ: under load, one `basic.ack` frame settles
//! several deliveries, and none is left unsettled when the server stops.
//! (That a frame never covers a delivery not acknowledged is proved on the
//! coalescing itself, in `rpc-amqp`'s unit tests, and end to end by the
//! requeue and rejection suites.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rpc_core::notify::{NotificationListener, NotificationResult, Notifier, Priority, handler};
use rpc_core::{Client, Context, Server, Target, Transport, endpoint, json};
use rpc_tests::api::CalculatorClient;
use rpc_tests::broker;
use rpc_tests::conformance::{start_server, unique_topic};
use rpc_tests::raw::Raw;
use tokio::sync::Notify;

const CASTS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_are_coalesced_and_all_sent_before_the_server_stops() {
    let topic = unique_topic("acks");
    let server_transport = broker::connect().await;
    let (server, calculator) = start_server(server_transport.clone(), &topic, "s1").await;
    let calc = CalculatorClient::new(Client::new(broker::connect().await, Target::topic(&topic)));
    let ctx = Context::new();
    // 64 casts in flight at a time.
    futures_util::stream::iter(0..CASTS)
        .map(|i| {
            let (calc, ctx) = (calc.clone(), ctx.clone());
            async move { calc.cast().record(&ctx, i.to_string()).await }
        })
        .buffer_unordered(64)
        .for_each(|sent| async move { sent.expect("cast sent") })
        .await;
    calculator
        .observed
        .wait_for_records(CASTS, Duration::from_secs(60))
        .await;
    server.stop();
    server.wait().await;

    let stats = server_transport.driver_stats();
    assert_eq!(stats.acknowledged, CASTS as u64, "{stats:?}");
    assert!(
        stats.ack_frames < stats.acknowledged,
        "no acknowledgement was coalesced: {stats:?}"
    );
    assert!(stats.ack_frames > 0, "{stats:?}");
    // Every delivery was settled before the channel closed: none went back
    // to the queue.
    let waiting = Raw::connect().await.message_count(&topic).await;
    assert_eq!(waiting, 0, "deliveries went back to the queue");
    assert_eq!(calculator.observed.records().len(), CASTS);
}

/// A notification requeued after later ones were acknowledged comes again:
/// the frames that acknowledged the later ones did not cover it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_requeued_after_later_ones_were_acknowledged_comes_again() {
    const LATER: usize = 20;
    let topic = unique_topic("acks_requeue");
    let transport = broker::connect().await;
    // Deliveries of the first notification, and later ones handled.
    let (first_seen, later_handled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let progress = Arc::new(Notify::new());
    let listener = NotificationListener::builder(transport.clone(), [Target::topic(&topic)])
        .endpoint(handler([Priority::Info], {
            let (watched, first_seen, later_handled, progress) = (
                transport.clone(),
                Arc::clone(&first_seen),
                Arc::clone(&later_handled),
                Arc::clone(&progress),
            );
            move |notification| {
                let (watched, first_seen, later_handled, progress) = (
                    watched.clone(),
                    Arc::clone(&first_seen),
                    Arc::clone(&later_handled),
                    Arc::clone(&progress),
                );
                async move {
                    let result = if notification.event_type() != "first" {
                        later_handled.fetch_add(1, Ordering::SeqCst);
                        NotificationResult::Handled
                    } else if first_seen.fetch_add(1, Ordering::SeqCst) > 0 {
                        NotificationResult::Handled
                    } else {
                        // Requeued only once later deliveries' acknowledgements went out.
                        while watched.driver_stats().ack_frames == 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        NotificationResult::Requeue
                    };
                    progress.notify_one();
                    result
                }
            }
        }))
        .allow_requeue(true)
        .build()
        .unwrap();
    listener.start().await.unwrap();
    let notifier = Notifier::new(broker::connect().await, "test").topics([topic.as_str()]);
    let ctx = Context::new();
    notifier.info(&ctx, "first", &json!({})).await.unwrap();
    for n in 0..LATER {
        notifier.info(&ctx, "later", &json!({ "n": n })).await.unwrap();
    }
    let all_handled = async {
        loop {
            let notified = progress.notified();
            if first_seen.load(Ordering::SeqCst) == 2 && later_handled.load(Ordering::SeqCst) == LATER {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all_handled)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the requeued notification did not come again: seen {} time(s), {} later ones handled",
                first_seen.load(Ordering::SeqCst),
                later_handled.load(Ordering::SeqCst)
            )
        });
    listener.stop();
    listener.wait().await;
    let stats = listener.stats();
    assert_eq!((stats.handled as usize, stats.requeued), (LATER + 1, 1), "{stats:?}");
}

/// Reports, from inside its method, the acknowledgement frames its
/// transport has queued so far.
#[derive(Clone, Debug)]
struct Probe {
    transport: Transport,
}

#[endpoint]
impl Probe {
    /// The acknowledgement frames queued when the method started.
    async fn ack_frames_at_start(&self, _ctx: &Context) -> u64 {
        self.transport.driver_stats().ack_frames
    }
}

/// At-most-once: a method starts only once its request's acknowledgement is
/// queued, even when coalesced (a method that keeps its thread must not hold
/// its own acknowledgement back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_most_once_method_starts_after_its_acknowledgement_is_queued() {
    let topic = unique_topic("acks_first");
    let transport = broker::connect().await;
    let server = Server::builder(transport.clone(), Target::server(&topic, "s1"))
        .endpoint(Probe {
            transport: transport.clone(),
        })
        .build()
        .unwrap();
    server.start().await.unwrap();
    let probe = ProbeClient::new(Client::new(broker::connect().await, Target::topic(&topic)));
    assert_eq!(probe.ack_frames_at_start(&Context::new()).await.unwrap(), 1);
    server.stop();
    server.wait().await;
}
