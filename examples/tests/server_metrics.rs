//! A server's series on `memory://`, read back as Prometheus renders them:
//! only the names its endpoints have label them, so a peer that makes
//! names up cannot grow the series, even when a layer answers before the
//! dispatcher looks.

use std::time::Duration;

use rpc_core::middleware::{Policy, Rule};
use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, ErrorCode, Server, Target, json};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::prometheus::sample;

/// Sleeps as long as asked, unless cancelled.
struct Waits;

#[rpc_core::endpoint]
impl Waits {
    async fn sleep(&self, _ctx: &Context, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_names_refused_by_a_layer_are_labelled_unknown() {
    let metrics = rpc_examples::probe::install_prometheus().unwrap();
    let broker = Broker::new();
    // Refuses every caller without the role: before the dispatcher looks.
    let server = Server::builder(broker.transport(), Target::server("made_up", "s1"))
        .endpoint(Calculator::new("s1"))
        .layer(Policy::new(Rule::role("member")))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(broker.transport(), Target::topic("made_up")).timeout(Duration::from_secs(10));
    let ctx = Context::new();
    for i in 0..5 {
        let refused = client
            .call::<()>(&ctx, &format!("made_up_{i}"), json!({}))
            .await
            .unwrap_err();
        assert_eq!(
            refused.remote().map(|e| e.code()),
            Some(ErrorCode::Forbidden),
            "{refused}"
        );
    }
    let refused = CalculatorClient::new(client).add(&ctx, 1, 2).await.unwrap_err();
    assert_eq!(
        refused.remote().map(|e| e.code()),
        Some(ErrorCode::Forbidden),
        "{refused}"
    );
    server.stop();
    server.wait().await;

    // A call its caller drops while it runs is cancelled on its server, and
    // counted (until 2026-12-05 it was left out of the request series).
    let server = Server::builder(broker.transport(), Target::server("cancelled", "s1"))
        .endpoint(Waits)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let waits = WaitsClient::new(Client::new(broker.transport(), Target::topic("cancelled")));
    // Pinned: a cancel goes to the server that runs the call.
    let pinned = waits.prepare().server("s1");
    let dropped = tokio::time::timeout(Duration::from_millis(200), pinned.sleep(&ctx, 60_000)).await;
    assert!(dropped.is_err(), "{dropped:?}");
    rpc_tests::eventually("the handler cancelled", Duration::from_secs(10), || {
        (server.stats().cancelled == 1).then_some(()).ok_or(server.stats())
    })
    .await;
    server.stop();
    server.wait().await;

    let rendered = metrics.render();
    let sleep = ["topic=\"cancelled\"", "method=\"sleep\"", "kind=\"call\""];
    assert_eq!(
        sample(&rendered, "rpc_server_requests_total", &sleep),
        Some(1.0),
        "{rendered}"
    );
    let cancelled = ["topic=\"cancelled\"", "method=\"sleep\"", "code=\"cancelled\""];
    assert_eq!(
        sample(&rendered, "rpc_server_errors_total", &cancelled),
        Some(1.0),
        "{rendered}"
    );

    let topic = "topic=\"made_up\"";
    let unknown = [topic, "method=\"(unknown)\"", "code=\"forbidden\""];
    assert_eq!(
        sample(&rendered, "rpc_server_errors_total", &unknown),
        Some(5.0),
        "{rendered}"
    );
    // (The client's series carry them: its names are its program's own.)
    let server_lines = rendered.lines().filter(|line| line.starts_with("rpc_server_"));
    assert!(
        server_lines.clone().any(|line| line.contains("(unknown)")),
        "{rendered}"
    );
    assert!(
        !server_lines.clone().any(|line| line.contains("made_up_")),
        "{rendered}"
    );
    // A name the server has keeps its label.
    let add = [topic, "method=\"add\"", "code=\"forbidden\""];
    assert_eq!(
        sample(&rendered, "rpc_server_errors_total", &add),
        Some(1.0),
        "{rendered}"
    );
}
