//! A client's series on `memory://`, read back as Prometheus renders them:
//! a call its caller gave up on (a timeout around it, a `select!`) is
//! counted, as `dropped`, not left out.

use std::time::Duration;

use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, Server, Target};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::prometheus::sample;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_given_up_by_its_caller_is_counted_as_dropped() {
    let metrics = rpc_examples::probe::install_prometheus().unwrap();
    let broker = Broker::new();
    let server = Server::builder(broker.transport(), Target::server("given_up_calls", "s1"))
        .endpoint(Calculator::new("s1"))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let calc = CalculatorClient::new(Client::new(broker.transport(), Target::topic("given_up_calls")));
    let ctx = Context::new();
    for _ in 0..3 {
        let given_up = tokio::time::timeout(Duration::from_millis(20), calc.sleep(&ctx, 2_000)).await;
        assert!(given_up.is_err(), "{given_up:?}");
    }
    assert_eq!(calc.add(&ctx, 1, 2).await.unwrap(), 3);
    server.stop();
    server.wait().await;

    let rendered = metrics.render();
    let topic = "topic=\"given_up_calls\"";
    let sleep = [topic, "method=\"sleep\""];
    assert_eq!(
        sample(
            &rendered,
            "rpc_client_requests_total",
            &[sleep[0], sleep[1], "kind=\"call\""]
        ),
        Some(3.0),
        "{rendered}"
    );
    assert_eq!(
        sample(
            &rendered,
            "rpc_client_errors_total",
            &[sleep[0], sleep[1], "code=\"dropped\""]
        ),
        Some(3.0),
        "{rendered}"
    );
    // A call that ended is counted once, without an error.
    let add = [topic, "method=\"add\""];
    assert_eq!(
        sample(
            &rendered,
            "rpc_client_requests_total",
            &[add[0], add[1], "kind=\"call\""]
        ),
        Some(1.0),
        "{rendered}"
    );
    assert!(
        !rendered
            .lines()
            .any(|line| line.starts_with("rpc_client_errors_total") && line.contains("method=\"add\"")),
        "{rendered}"
    );
}
