//! Hostile but well-formed requests published raw on RabbitMQ (see
//! `tests/src/hostile.rs`), in a binary of their own: their servers run on a
//! multi-thread runtime, away from tests that capture logs per thread.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rpc_core::transport::Bytes;
use rpc_core::{Client, Codec, Context, Server, Target};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::broker;
use rpc_tests::conformance::unique_topic;
use rpc_tests::raw::{Raw, message_count};

/// Hostile but well-formed requests, published raw in both codecs, to
/// servers of every executor and delivery mode: each is answered or dropped
/// as `docs/reliability.md` says, nothing is requeued or left running, and
/// the server keeps serving and stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_on_every_executor_and_delivery_mode() {
    use std::sync::Arc;

    use rpc_core::{DeliveryMode, Executor};
    use rpc_tests::hostile::{self, Replies};

    for executor in [Executor::Concurrent(8), Executor::Sequential] {
        for mode in [DeliveryMode::AtMostOnce, DeliveryMode::AtLeastOnce] {
            let topic = unique_topic("hostile");
            // A reply to a queue that does not exist is given up quickly here.
            let transport = broker::connect_url(&broker::url_with(&format!(
                "{}&reply_retry_timeout=0.2",
                broker::TEST_OPTIONS
            )))
            .await;
            let server = Server::builder(transport.clone(), Target::server(&topic, "s1"))
                .endpoint(Calculator::new("s1"))
                .executor(executor)
                .delivery_mode(mode)
                .build()
                .unwrap();
            server.start().await.unwrap();
            let raw = Raw::connect().await;
            let mut cases = hostile::cases(Codec::MsgPack, &raw.reply_queue, "m");
            cases.extend(hostile::cases(Codec::OsloJson, &raw.reply_queue, "o"));
            for case in &cases {
                raw.publish("openstack", &topic, Some(case.codec.content_type()), &case.body)
                    .await;
            }
            let Raw {
                channel,
                replies: mut consumer,
                connection: _connection,
                ..
            } = raw;
            let replies = Arc::new(Replies::default());
            let collector = {
                let replies = Arc::clone(&replies);
                tokio::spawn(async move {
                    while let Some(Ok(reply)) = consumer.next().await {
                        let codec =
                            Codec::from_content_type(reply.properties.content_type().as_ref().unwrap().as_str())
                                .unwrap();
                        replies.record(codec, &Bytes::from(reply.data));
                    }
                })
            };
            let started = Instant::now();
            loop {
                let stats = server.stats();
                if stats.handled + stats.rejected + stats.duplicates >= cases.len() as u64 && stats.in_flight == 0 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{executor:?} {mode:?}: not all processed: {stats:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            hostile::check(&cases, &replies).await;
            assert_eq!(server.stats().unfinished, 0, "{executor:?} {mode:?}");
            // Nothing requeued.
            assert_eq!(message_count(&channel, &topic).await, 0, "{executor:?} {mode:?}");
            let calc = CalculatorClient::new(Client::new(transport, Target::topic(&topic)));
            assert_eq!(
                calc.add(&Context::new(), 1, 2).await.unwrap(),
                3,
                "{executor:?} {mode:?}"
            );
            server.stop();
            tokio::time::timeout(Duration::from_secs(10), server.wait())
                .await
                .unwrap_or_else(|_| panic!("{executor:?} {mode:?}: wait() did not return"));
            collector.abort();
        }
    }
}

/// An oslo.messaging call of `add(1, 2)` with the message id `msg_id`,
/// answered to the queue `reply_to`, in oslo's JSON.
fn oslo_add(msg_id: &str, reply_to: &str) -> String {
    let request = serde_json::json!({
        "method": "add",
        "args": {"a": 1, "b": 2},
        "_msg_id": msg_id,
        "_reply_q": reply_to,
        "_unique_id": format!("unique_{msg_id}_{reply_to}"),
    });
    serde_json::json!({"oslo.version": "2.0", "oslo.message": request.to_string()}).to_string()
}

/// Calls whose reply queues do not exist (their callers gone, or never
/// there) hold no handler of their server while their replies wait for the
/// queue (for `reply_retry_timeout`, oslo's 60 s): a call from a live
/// caller, behind four of them on a server of two handlers, is answered
/// at once. (Each held its handler for the whole wait.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_waiting_for_their_queue_hold_no_handler() {
    use rpc_core::Executor;

    let topic = unique_topic("missing_reply_queues");
    let server = Server::builder(broker::connect().await, Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .executor(Executor::Concurrent(2))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let raw = Raw::connect().await;
    for i in 0..4 {
        let body = oslo_add(&format!("{i:032x}"), &format!("reply_missing_{i}_{topic}"));
        raw.publish("openstack", &topic, Some("application/json"), body.as_bytes())
            .await;
    }
    let calc = CalculatorClient::new(
        Client::new(broker::connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10)),
    );
    let started = Instant::now();
    assert_eq!(calc.add(&Context::new(), 2, 3).await.unwrap(), 5);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().handled, 5, "{:?}", server.stats());
    server.stop();
    server.wait().await;
}

/// A reply waiting apart for its queue (its caller reconnecting) is not
/// lost when its server stops and its transport closes right after, as in
/// a rolling restart: closing waits for it, within its window, and the
/// caller back gets it. (Closing dropped it at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_transport_waits_for_replies_waiting_for_their_queue() {
    use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;

    let topic = unique_topic("reply_at_close");
    let transport = broker::connect().await;
    let (server, _) = rpc_tests::conformance::start_server(transport.clone(), &topic, "s1").await;
    let raw = Raw::connect().await;
    let queue = format!("reply_back_{topic}");
    let body = oslo_add("0123456789abcdef0123456789abcdef", &queue);
    raw.publish("openstack", &topic, Some("application/json"), body.as_bytes())
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stats().handled == 0 {
        assert!(Instant::now() < deadline, "not handled: {:?}", server.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop();
    server.wait().await;
    let closing = tokio::spawn(async move { transport.close().await });
    // The caller is back: its reply queue again.
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    raw.channel
        .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
        .await
        .unwrap();
    let consume = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut replies = raw
        .channel
        .basic_consume(queue.as_str().into(), "".into(), consume, FieldTable::default())
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), replies.next())
        .await
        .expect("the reply, once its queue is back");
    let reply = String::from_utf8(reply.unwrap().unwrap().data).unwrap();
    assert!(reply.contains("0123456789abcdef0123456789abcdef"), "{reply}");
    tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .expect("closed once the reply is out")
        .unwrap()
        .unwrap();
}
