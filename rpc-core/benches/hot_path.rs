//! Micro-benchmarks of the hot path: framing requests and replies in each
//! codec, the dispatch-table lookup, and a whole call on `memory://`.
//!
//! ```text
//! cargo bench -p rpc-core --bench hot_path
//! ```
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rpc_core::__private::wire;
use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Codec, Context, Endpoint, Server, Target, Version, endpoint};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Args {
    name: String,
    count: u32,
    tags: Vec<String>,
}

fn args() -> Args {
    Args {
        name: "instance-0001".to_owned(),
        count: 3,
        tags: vec!["a".to_owned(), "b".to_owned()],
    }
}

fn codecs(c: &mut Criterion) {
    let context = Context::new().with_request_id("req-1a2b3c4d");
    let version = Version::new(2, 1);
    for codec in [Codec::MsgPack, Codec::OsloJson] {
        let mut group = c.benchmark_group(format!("codec/{codec}"));
        group.bench_function("encode_request", |b| {
            b.iter(|| wire::encode_request(codec, black_box("boot"), Some(&version), &context, &args()).unwrap())
        });
        let request = wire::encode_request(codec, "boot", Some(&version), &context, &args()).unwrap();
        group.bench_function("decode_request_and_args", |b| {
            b.iter(|| {
                let request = wire::decode_request(codec, black_box(&request)).unwrap();
                request.decode_args::<Args>().unwrap()
            })
        });
        let result = codec.encode(&vec![1u64, 2, 3]).unwrap();
        group.bench_function("encode_reply", |b| {
            b.iter(|| wire::encode_reply(codec, black_box("0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5"), &result).unwrap())
        });
        let reply = wire::encode_reply(codec, "0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5", &result).unwrap();
        group.bench_function("decode_reply_and_result", |b| {
            b.iter(|| {
                let payload = wire::decode_reply(codec, black_box(&reply)).unwrap().unwrap();
                payload.decode::<Vec<u64>>().unwrap()
            })
        });
        group.finish();
    }
}

/// An endpoint with twenty methods: the dispatch table's lookup cost.
struct Wide;

#[endpoint(namespace = "wide", version = "1.0")]
impl Wide {
    async fn m01(&self, _ctx: &Context) {}
    async fn m02(&self, _ctx: &Context) {}
    async fn m03(&self, _ctx: &Context) {}
    async fn m04(&self, _ctx: &Context) {}
    async fn m05(&self, _ctx: &Context) {}
    async fn m06(&self, _ctx: &Context) {}
    async fn m07(&self, _ctx: &Context) {}
    async fn m08(&self, _ctx: &Context) {}
    async fn m09(&self, _ctx: &Context) {}
    async fn m10(&self, _ctx: &Context) {}
    async fn m11(&self, _ctx: &Context) {}
    async fn m12(&self, _ctx: &Context) {}
    async fn m13(&self, _ctx: &Context) {}
    async fn m14(&self, _ctx: &Context) {}
    async fn m15(&self, _ctx: &Context) {}
    async fn m16(&self, _ctx: &Context) {}
    async fn m17(&self, _ctx: &Context) {}
    async fn m18(&self, _ctx: &Context) {}
    async fn m19(&self, _ctx: &Context) {}
    async fn m20(&self, _ctx: &Context) {}
}

fn dispatch(c: &mut Criterion) {
    let context = Context::new();
    let mut group = c.benchmark_group("dispatch");
    for method in ["m01", "m20", "missing"] {
        let body = wire::encode_request(Codec::MsgPack, method, None, &context, &serde_json::json!({})).unwrap();
        let request = wire::decode_request(Codec::MsgPack, &body).unwrap();
        group.bench_function(format!("lookup_{method}"), |b| {
            b.iter(|| Wide.dispatch(black_box(&request)).is_some())
        });
    }
    group.finish();
}

struct Echo;

#[endpoint]
impl Echo {
    async fn echo(&self, _ctx: &Context, text: String) -> String {
        text
    }
}

fn memory_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let broker = Broker::new();
    let server = Server::builder(broker.transport(), Target::server("echo", "s1"))
        .endpoint(Echo)
        .build()
        .unwrap();
    runtime.block_on(server.start()).unwrap();
    let client = EchoClient::new(Client::new(broker.transport(), Target::topic("echo")));
    let context = Context::new();
    c.bench_function("memory_call/current_thread", |b| {
        b.iter(|| {
            runtime
                .block_on(client.echo(&context, "0123456789abcdef".to_owned()))
                .unwrap()
        })
    });
    server.stop();
    runtime.block_on(server.wait());
}

/// A call makes two ids (`_msg_id`, `_unique_id`), an oslo reply a third:
/// 128 random bits each, from a thread-local ChaCha generator.
fn ids(c: &mut Criterion) {
    c.bench_function("ids/message_id", |b| b.iter(rpc_core::__private::wire::message_id));
}

criterion_group!(benches, codecs, dispatch, memory_call, ids);
criterion_main!(benches);
