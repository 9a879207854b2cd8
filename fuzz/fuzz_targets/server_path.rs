//! The whole path of a delivery through a real server on `memory://`, from
//! the transport to the reply, on every executor and delivery mode.
//!
//! Input: one selector byte (bit 0: sequential executor; bit 1:
//! at-least-once; bits 2..: the content type), then the message body. The
//! target checks what `tests/tests/delivery_properties.rs` checks: the
//! message is handled or rejected, a request whose reply address can be read
//! gets exactly one reply, nothing stays in flight or running, the server
//! then answers a valid call, and `wait()` returns after `stop()`. Any panic
//! is a crash, caught by the server's guard or not: the guard is a safety
//! net, and the fuzzer is here to find what falls into it.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rpc_core::__private::wire;
use rpc_core::transport::memory::Broker;
use rpc_core::transport::{Address, Bytes, Delivery, ReplySink};
use rpc_core::{
    Client, Codec, Context, DeliveryMode, Endpoint, Executor, HandlerFuture, RemoteError, Request, Server, Target,
    TransportError, Value, json,
};

const REPLY_QUEUE: &str = "reply_fuzz";
const CONTENT_TYPES: [Option<&str>; 5] = [
    Some("application/x-msgpack"),
    Some("application/json"),
    Some("text/plain"),
    Some(""),
    None,
];

/// Quick methods, written by hand (the fuzz crate builds without the macro).
struct Quick;

impl Endpoint for Quick {
    fn methods(&self) -> &[&str] {
        &["echo", "fail"]
    }

    fn dispatch<'a>(&'a self, request: &'a Request) -> Option<HandlerFuture<'a>> {
        match request.method() {
            "echo" => Some(Box::pin(async move {
                let args: Value = request.decode_args()?;
                request.encode_result(&args)
            })),
            "fail" => Some(Box::pin(async move {
                Err(RemoteError::application("oops", request.args().codec()))
            })),
            _ => None,
        }
    }
}

/// Final replies received, by message id.
#[derive(Debug, Default)]
struct Finals(Mutex<HashMap<String, usize>>);

impl ReplySink for Finals {
    fn deliver(&self, delivery: Delivery) {
        let codec = delivery.codec().expect("replies have a codec");
        let body = delivery.body();
        let (msg_id, _) = wire::decode_reply_failure(codec, body).expect("the server's reply decodes");
        if wire::decode_reply_ending(codec, body).expect("the server's reply decodes") {
            *self.0.lock().unwrap().entry(msg_id).or_default() += 1;
        }
    }

    fn connection_lost(&self, _error: TransportError) {}
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

async fn run(executor: Executor, mode: DeliveryMode, content_type: Option<&str>, body: Bytes) {
    let broker = Broker::new();
    let server = Server::builder(broker.transport(), Target::server("fuzz", "s1"))
        .endpoint(Quick)
        .executor(executor)
        .delivery_mode(mode)
        .build()
        .expect("a valid server");
    server.start().await.expect("the server starts");
    let finals = Arc::new(Finals::default());
    let _queue = broker
        .listen_replies_named(REPLY_QUEUE, Arc::clone(&finals) as Arc<dyn ReplySink>)
        .expect("a reply queue");
    let expected = content_type
        .and_then(Codec::from_content_type)
        .and_then(|codec| wire::reply_address(codec, &body))
        .filter(|(_, reply_to)| reply_to == REPLY_QUEUE)
        .map(|(msg_id, _)| msg_id);
    broker
        .publish_raw(Address::new("openstack", "fuzz", None, false), body, content_type)
        .expect("routable");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.stats();
        if stats.handled + stats.rejected + stats.duplicates >= 1 && stats.in_flight == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not handled: {stats:?}");
        tokio::task::yield_now().await;
    }
    if let Some(msg_id) = expected {
        let replies = finals.0.lock().unwrap().get(&msg_id).copied().unwrap_or(0);
        assert_eq!(replies, 1, "replies to {msg_id}");
    }
    assert_eq!(server.stats().unfinished, 0);
    let client = Client::new(broker.transport(), Target::topic("fuzz")).timeout(Duration::from_secs(5));
    let echoed: Value = client
        .call(&Context::new(), "echo", json!({"value": 1}))
        .await
        .expect("the server still serves");
    assert_eq!(echoed, json!({"value": 1}));
    server.stop();
    tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("wait() returns after stop()");
    assert_eq!(client.transport().pending_calls(), 0);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let executor = if selector & 1 == 0 {
        Executor::Concurrent(4)
    } else {
        Executor::Sequential
    };
    let mode = if selector & 2 == 0 {
        DeliveryMode::AtMostOnce
    } else {
        DeliveryMode::AtLeastOnce
    };
    let content_type = CONTENT_TYPES[usize::from(selector >> 2) % CONTENT_TYPES.len()];
    runtime().block_on(run(executor, mode, content_type, Bytes::copy_from_slice(body)));
});
