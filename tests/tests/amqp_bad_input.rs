//! Bad input published raw onto a server's queues on RabbitMQ: every
//! message is rejected without requeue and logged once with its reason; a
//! caller whose address can be read gets a typed error at once; the server
//! keeps serving. And a reply to an unknown call is dropped and counted.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use rpc_core::__private::wire;
use rpc_core::transport::Bytes;
use rpc_core::{Client, Codec, Context, Error, ErrorCode, Server, Target, Version, json};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::broker;
use rpc_tests::conformance::unique_topic;
use rpc_tests::logs::Logs;
use rpc_tests::raw::Raw;

/// A message a server cannot read: its content type, body, and whether its
/// reply address can be read (then the caller gets `BadRequest`).
struct Bad {
    case: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    answered: Option<&'static str>,
    reason: &'static str,
}

/// Pseudo-random bytes (a fixed xorshift sequence: the test is repeatable).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn oslo_envelope(version: &str, message: &rpc_core::Value) -> Vec<u8> {
    json!({"oslo.version": version, "oslo.message": message.to_string()})
        .to_string()
        .into_bytes()
}

const MAX_MESSAGE_SIZE: usize = 64 * 1024;

#[tokio::test]
async fn unreadable_messages_are_rejected_once_logged_and_answered_when_possible() {
    let logs = Logs::default();
    let _capture = logs.capture_thread("info");
    let topic = unique_topic("bad_input");
    let transport = broker::connect().await;
    let server = Server::builder(transport.clone(), Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .max_message_size(MAX_MESSAGE_SIZE)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let mut raw = Raw::connect().await;
    let reply_to = raw.reply_queue.clone();
    let ctx = Context::new();
    let valid_msgpack = wire::encode_call(
        Codec::MsgPack,
        "add",
        None,
        None,
        "truncated-msgpack",
        &reply_to,
        &ctx,
        &json!({"a": 1, "b": 2}),
    )
    .unwrap();
    let oversized = wire::encode_call(
        Codec::MsgPack,
        "greet",
        None,
        None,
        "oversized",
        &reply_to,
        &ctx,
        &json!({"name": "x".repeat(MAX_MESSAGE_SIZE)}),
    )
    .unwrap();
    let oslo_call = |msg_id: &str, extra: rpc_core::Value| {
        let mut message = json!({"_msg_id": msg_id, "_reply_q": reply_to, "_unique_id": msg_id});
        if let (Some(message), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
            message.extend(extra.clone());
        }
        message
    };
    let cases = vec![
        Bad {
            case: "random bytes as MessagePack",
            content_type: Some("application/x-msgpack"),
            body: noise(256, 1),
            answered: None,
            reason: "not a request frame",
        },
        Bad {
            case: "random bytes as JSON",
            content_type: Some("application/json"),
            body: noise(256, 2),
            answered: None,
            reason: "not UTF-8",
        },
        Bad {
            case: "an unknown content type",
            content_type: Some("text/plain"),
            body: valid_msgpack.to_vec(),
            answered: None,
            reason: "unsupported content type `text/plain`",
        },
        Bad {
            case: "no content type",
            content_type: None,
            body: valid_msgpack.to_vec(),
            answered: None,
            reason: "no content type",
        },
        Bad {
            case: "truncated MessagePack",
            content_type: Some("application/x-msgpack"),
            body: valid_msgpack[..valid_msgpack.len() - 8].to_vec(),
            answered: Some("truncated-msgpack"),
            reason: "`args`",
        },
        Bad {
            case: "JSON that is not an object",
            content_type: Some("application/json"),
            body: b"[1, 2, 3]".to_vec(),
            answered: None,
            reason: "not a JSON object",
        },
        Bad {
            case: "an envelope of an unknown version",
            content_type: Some("application/json"),
            body: oslo_envelope("3.0", &oslo_call("future", json!({"method": "add", "args": {}}))),
            answered: None,
            reason: "3.0",
        },
        Bad {
            case: "a request without a method",
            content_type: Some("application/json"),
            body: oslo_envelope("2.0", &oslo_call("no-method", json!({"args": {}}))),
            answered: Some("no-method"),
            reason: "no `method`",
        },
        Bad {
            case: "a body over the size limit",
            content_type: Some("application/x-msgpack"),
            body: oversized.to_vec(),
            answered: Some("oversized"),
            reason: "over the limit",
        },
    ];

    for (index, bad) in cases.iter().enumerate() {
        let rejected = server.stats().rejected;
        raw.publish("openstack", &topic, bad.content_type, &bad.body).await;
        let started = Instant::now();
        while server.stats().rejected == rejected {
            assert!(started.elapsed() < Duration::from_secs(5), "{}: not rejected", bad.case);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.stats().rejected, rejected + 1, "{}", bad.case);
        if let Some(msg_id) = bad.answered {
            let reply = raw.next_reply(Duration::from_secs(2)).await;
            let codec = Codec::from_content_type(reply.properties.content_type().as_ref().unwrap().as_str()).unwrap();
            let (replied_to, failure) = wire::decode_reply_failure(codec, &Bytes::from(reply.data)).unwrap();
            assert_eq!(replied_to, msg_id, "{}", bad.case);
            let failure = failure.unwrap_or_else(|| panic!("{}: a reply without an error", bad.case));
            assert_eq!(failure.code(), ErrorCode::BadRequest, "{}: {failure:?}", bad.case);
        }
        // Logged once, with its reason.
        let rejections = logs.lines_with(&["rejecting a message the server cannot read"]);
        assert_eq!(rejections.len(), index + 1, "{}: {rejections:#?}", bad.case);
        let line = rejections.last().unwrap();
        assert!(line.contains(bad.reason), "{}: {line}", bad.case);
    }

    // Nothing was requeued: no rejection twice, nothing left in the queues,
    // no reply for the unanswerable ones.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.stats().rejected, cases.len() as u64);
    assert_eq!(raw.message_count(&topic).await, 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), raw.replies.next())
            .await
            .is_err(),
        "an unexpected reply"
    );

    // And the server keeps serving.
    let calc = CalculatorClient::new(Client::new(transport, Target::topic(&topic)));
    assert_eq!(calc.add(&ctx, 1, 2).await.unwrap(), 3);
    assert_eq!(server.stats().handled, 1);
    server.stop();
    server.wait().await;
}

#[tokio::test]
async fn invalid_requests_get_typed_errors_at_once_and_are_logged_once() {
    let logs = Logs::default();
    let _capture = logs.capture_thread("info");
    let topic = unique_topic("invalid_requests");
    let transport = broker::connect().await;
    let server = Server::builder(transport.clone(), Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(transport, Target::topic(&topic)).timeout(Duration::from_secs(30));
    let ctx = Context::new();
    let cases = [
        ("a missing method", "launch", json!({}), ErrorCode::NoSuchMethod, None),
        ("a private method", "_secret", json!({}), ErrorCode::NoSuchMethod, None),
        (
            "wrong argument types",
            "add",
            json!({"a": "one", "b": 2}),
            ErrorCode::InvalidArguments,
            None,
        ),
        (
            "a missing argument",
            "add",
            json!({"a": 1}),
            ErrorCode::InvalidArguments,
            None,
        ),
        (
            "an unknown argument",
            "add",
            json!({"a": 1, "b": 2, "c": 3}),
            ErrorCode::InvalidArguments,
            None,
        ),
        (
            "an unsupported version",
            "add",
            json!({"a": 1, "b": 2}),
            ErrorCode::UnsupportedVersion,
            Some(Version::new(7, 0)),
        ),
    ];
    for (case, method, args, code, version) in cases.clone() {
        let client = match version {
            Some(version) => client.prepare().version(version),
            None => client.clone(),
        };
        let started = Instant::now();
        let result: Result<i64, Error> = client.call(&ctx, method, args).await;
        let Err(Error::Remote(error)) = result else {
            panic!("{case}: expected a remote error, got {result:?}");
        };
        assert_eq!(error.code(), code, "{case}: {error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: took {:?}",
            started.elapsed()
        );
        let logged = logs.lines_with(&["refusing a call", &format!("method={method}")]);
        assert!(!logged.is_empty(), "{case}: not logged");
    }
    // Once each: one line per refusal.
    assert_eq!(logs.lines_with(&["refusing a call"]).len(), cases.len());
    let calc = CalculatorClient::new(client);
    assert_eq!(calc.add(&ctx, 2, 2).await.unwrap(), 4);
    server.stop();
    server.wait().await;
}

#[tokio::test]
async fn a_reply_to_an_unknown_call_is_dropped_counted_and_logged() {
    let logs = Logs::default();
    let _capture = logs.capture_thread("info");
    let topic = unique_topic("unknown_reply");
    let raw = Raw::connect().await;
    // The test plays the server: a queue on the topic, read raw.
    raw.channel
        .queue_declare(
            topic.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    raw.channel
        .exchange_declare(
            "openstack".into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    raw.channel
        .queue_bind(
            topic.as_str().into(),
            "openstack".into(),
            topic.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut requests = raw
        .channel
        .basic_consume(
            topic.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let transport = broker::connect().await;
    let client = Client::new(transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(10));
    let call = tokio::spawn(async move {
        client
            .call::<i64>(&Context::new(), "add", json!({"a": 1, "b": 2}))
            .await
    });

    let request = tokio::time::timeout(Duration::from_secs(5), requests.next())
        .await
        .expect("the request")
        .unwrap()
        .unwrap();
    let body = Bytes::from(request.data);
    let (msg_id, reply_to) = wire::reply_address(Codec::MsgPack, &body).expect("a call");
    let reply =
        |id: &str, value: i64| wire::encode_reply(Codec::MsgPack, id, &Codec::MsgPack.encode(&value).unwrap()).unwrap();
    // A reply nobody waits for (oslo-style id, and one of ours but long gone), then the real one.
    for (id, value) in [
        ("0123456789abcdef0123456789abcdef", 100),
        (&msg_id[..16], 200),
        (msg_id.as_str(), 3),
    ] {
        raw.publish("", &reply_to, Some(Codec::MsgPack.content_type()), &reply(id, value))
            .await;
    }
    assert_eq!(call.await.unwrap().unwrap(), 3);
    assert_eq!(transport.late_replies(), 2);
    assert_eq!(transport.pending_calls(), 0);
    let dropped = logs.lines_with(&["dropping a reply nobody waits for"]);
    assert_eq!(dropped.len(), 2, "{dropped:#?}");
    assert!(
        dropped[0].contains("0123456789abcdef0123456789abcdef"),
        "{}",
        dropped[0]
    );
}
