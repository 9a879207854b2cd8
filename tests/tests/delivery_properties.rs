//! The whole per-delivery path under arbitrary input: arbitrary bytes with
//! arbitrary content types, hostile requests with random edits, and requests
//! with random header values, in both codecs, pushed through a real server
//! on `memory://` of every executor and delivery mode. Whatever arrives:
//!
//! - no panic escapes: the server handles every message and keeps serving;
//! - a request whose reply address can be read gets exactly one reply;
//! - nothing stays in flight or running in the duplicate window;
//! - `wait()` returns after `stop()`, and no call is left pending.
//!
//! `fuzz/fuzz_targets/server_path.rs` runs the same checks under libFuzzer.

use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use rpc_core::__private::wire;
use rpc_core::transport::memory::Broker;
use rpc_core::transport::{Address, Bytes};
use rpc_core::{Client, Codec, Context, DeliveryMode, Executor, Server, Target, endpoint};
use rpc_tests::hostile::{self, RecordingSink, Replies};

/// Quick methods only: nothing a random request calls can take long.
struct Quick;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Oops;

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops")
    }
}

#[endpoint]
impl Quick {
    async fn add(&self, _ctx: &Context, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    async fn echo(&self, _ctx: &Context, value: rpc_core::Value) -> rpc_core::Value {
        value
    }

    async fn fail(&self, _ctx: &Context) -> Result<(), Oops> {
        Err(Oops)
    }

    async fn explode(&self, _ctx: &Context) {
        panic!("explode")
    }
}

/// One message: its content type and body.
#[derive(Debug, Clone)]
struct Message {
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

const CONTENT_TYPES: [Option<&str>; 5] = [
    Some("application/x-msgpack"),
    Some("application/json"),
    Some("text/plain"),
    Some(""),
    None,
];

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        4 => Just(CONTENT_TYPES[0]),
        4 => Just(CONTENT_TYPES[1]),
        1 => Just(CONTENT_TYPES[2]),
        1 => Just(CONTENT_TYPES[3]),
        1 => Just(CONTENT_TYPES[4]),
    ]
}

/// Random edits: truncate, flip, insert.
fn edited(mut body: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, kind, byte) in edits {
        if body.is_empty() {
            break;
        }
        let at = at % body.len();
        match kind % 3 {
            0 => body.truncate(at),
            1 => body[at] ^= byte.max(1),
            _ => body.insert(at, byte),
        }
    }
    body
}

/// A request with random header values, written as a client would.
fn structured(codec: Codec, reply_to: String) -> impl Strategy<Value = Message> {
    (
        prop_oneof![
            Just("add"),
            Just("echo"),
            Just("fail"),
            Just("explode"),
            Just("_hidden"),
            Just("nope")
        ],
        proptest::option::of(prop_oneof![Just("control".to_owned()), "\\PC{0,8}"]),
        proptest::option::of(prop_oneof![
            Just("1.0".to_owned()),
            Just("2.1".to_owned()),
            "[0-9.]{0,6}"
        ]),
        any::<u8>(),
    )
        .prop_map(move |(method, namespace, version, flavor)| {
            let version = version.and_then(|version| version.parse().ok());
            let msg_id = wire::message_id();
            let args = match (method, flavor % 3) {
                ("add", 0) => rpc_core::json!({"a": 1, "b": 2}),
                ("add", 1) => rpc_core::json!({"a": "one"}),
                ("echo", _) => rpc_core::json!({"value": [flavor, {"x": null}]}),
                _ => rpc_core::json!({}),
            };
            let body = wire::encode_unique_call(
                codec,
                method,
                namespace.as_deref(),
                version.as_ref(),
                msg_id.as_ref(),
                &reply_to,
                msg_id.as_ref(),
                &Context::new(),
                &args,
            )
            .expect("encodable");
            Message {
                content_type: Some(codec.content_type()),
                body: body.to_vec(),
            }
        })
}

fn message(reply_to: String) -> impl Strategy<Value = Message> {
    let codec = prop_oneof![Just(Codec::MsgPack), Just(Codec::OsloJson)];
    let hostile_cases = {
        let reply_to = reply_to.clone();
        (
            codec.clone(),
            any::<prop::sample::Index>(),
            vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..3),
        )
            .prop_map(move |(codec, index, edits)| {
                let cases = hostile::cases(codec, &reply_to, wire::message_id().as_ref());
                let case = index.get(&cases);
                Message {
                    content_type: Some(codec.content_type()),
                    body: edited(case.body.to_vec(), &edits),
                }
            })
    };
    let structured = codec.prop_flat_map(move |codec| structured(codec, reply_to.clone()));
    prop_oneof![
        1 => (content_type(), vec(any::<u8>(), 0..256)).prop_map(|(content_type, body)| Message { content_type, body }),
        3 => hostile_cases,
        3 => structured,
    ]
}

/// Runs `messages` through a fresh server of `executor` and `mode`, and
/// checks the properties of this file.
async fn run(
    messages: Vec<Message>,
    executor: Executor,
    mode: DeliveryMode,
    reply_to_name: &str,
) -> Result<(), TestCaseError> {
    let broker = Broker::new();
    let server = Server::builder(broker.transport(), Target::server("prop", "s1"))
        .endpoint(Quick)
        .executor(executor)
        .delivery_mode(mode)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let replies = Arc::new(Replies::default());
    let queue = broker
        .listen_replies_named(reply_to_name, Arc::new(RecordingSink(Arc::clone(&replies))))
        .unwrap();
    let mut expected = Vec::new();
    for message in &messages {
        let body = Bytes::from(message.body.clone());
        if let Some(codec) = message.content_type.and_then(Codec::from_content_type) {
            if let Some((msg_id, reply_to)) = wire::reply_address(codec, &body) {
                if reply_to == queue.address {
                    expected.push(msg_id);
                }
            }
        }
        broker
            .publish_raw(
                Address::new("openstack", "prop", None, false),
                body,
                message.content_type,
            )
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.stats();
        if stats.handled + stats.rejected + stats.duplicates >= messages.len() as u64 && stats.in_flight == 0 {
            break;
        }
        prop_assert!(tokio::time::Instant::now() < deadline, "not all handled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // A copy of a message already taken (the same `_unique_id`, which random
    // edits may produce) is dropped without a reply, as oslo.messaging does.
    let duplicates = server.stats().duplicates;
    for msg_id in &expected {
        let finals = replies.to(msg_id).iter().filter(|(ending, _)| *ending).count();
        let sent = expected.iter().filter(|other| *other == msg_id).count();
        if duplicates == 0 {
            prop_assert_eq!(finals, sent, "replies to {}: {:?}", msg_id, replies.to(msg_id));
        } else {
            prop_assert!(finals <= sent, "replies to {}: {:?}", msg_id, replies.to(msg_id));
        }
    }
    prop_assert_eq!(server.stats().unfinished, 0);
    let client = Client::new(broker.transport(), Target::topic("prop")).timeout(Duration::from_secs(5));
    prop_assert_eq!(
        QuickClient::new(client.clone())
            .add(&Context::new(), 2, 3)
            .await
            .unwrap(),
        5
    );
    server.stop();
    prop_assert!(
        tokio::time::timeout(Duration::from_secs(5), server.wait())
            .await
            .is_ok(),
        "wait() did not return"
    );
    prop_assert_eq!(client.transport().pending_calls(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_input_is_answered_or_dropped_and_the_server_lives_on(
        messages in vec(message("reply_prop".to_owned()), 1..12),
        executor in prop_oneof![Just(Executor::Concurrent(4)), Just(Executor::Sequential)],
        mode in prop_oneof![Just(DeliveryMode::AtMostOnce), Just(DeliveryMode::AtLeastOnce)],
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run(messages, executor, mode, "reply_prop"))?;
    }
}
