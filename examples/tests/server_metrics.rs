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

    let rendered = metrics.render();
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
