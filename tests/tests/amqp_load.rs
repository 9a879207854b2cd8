//! Load on RabbitMQ: 50 client transports with 10,000 calls in flight in
//! total against two server processes. Every call completes, and each
//! server's memory stays bounded by its prefetch, not by the backlog.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rpc_core::{Client, Context, Target};
use rpc_tests::broker::{self, TEST_OPTIONS};
use rpc_tests::conformance::unique_topic;
use rpc_tests::worker::{ServerProcess, WorkerClient};

const SERVER: &str = env!("CARGO_BIN_EXE_rpc-test-server");
const CLIENTS: usize = 50;
const CALLS_PER_CLIENT: usize = 200;
/// Each request carries 1 KiB, so the backlog (10 MiB) dwarfs what a
/// server may hold (its prefetch of 64).
const PAYLOAD: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_with_ten_thousand_calls_in_flight_against_two_servers() {
    let topic = unique_topic("load");
    let url = broker::url_with(TEST_OPTIONS);
    let servers: Vec<ServerProcess> = ["s1", "s2"]
        .iter()
        .map(|name| ServerProcess::spawn(SERVER, &["--url", &url, "--topic", &topic, "--server", name]))
        .collect();
    let idle_kib: Vec<u64> = servers.iter().map(ServerProcess::peak_rss_kib).collect();

    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let client = Client::new(broker::connect().await, Target::topic(&topic)).timeout(Duration::from_secs(120));
        clients.push(WorkerClient::new(client));
    }
    let text = "x".repeat(PAYLOAD);
    let started = Instant::now();
    let results = join_all(clients.iter().enumerate().map(|(client_index, worker)| {
        let text = &text;
        join_all((0..CALLS_PER_CLIENT).map(move |call| async move {
            let text = format!("{client_index}/{call}/{text}");
            let echoed = worker.echo(&Context::new(), text.clone()).await;
            (text, echoed)
        }))
    }))
    .await;
    let elapsed = started.elapsed();

    let mut calls = 0;
    for (text, echoed) in results.into_iter().flatten() {
        assert_eq!(echoed.expect("every call completes"), text);
        calls += 1;
    }
    assert_eq!(calls, CLIENTS * CALLS_PER_CLIENT);
    for worker in &clients {
        assert_eq!(worker.client().transport().pending_calls(), 0);
    }
    // Both servers took a share.
    let mut names = std::collections::BTreeSet::new();
    for worker in clients.iter().take(10) {
        for _ in 0..10 {
            names.insert(worker.whoami(&Context::new()).await.unwrap());
        }
    }
    let peak_kib: Vec<u64> = servers.iter().map(ServerProcess::peak_rss_kib).collect();
    eprintln!(
        "{calls} calls from {CLIENTS} clients in {elapsed:?} ({:.0} calls/s); server RSS idle {idle_kib:?} KiB, peak {peak_kib:?} KiB",
        calls as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(names.len(), 2, "one server did all the work: {names:?}");
    // Bounded by prefetch (64 requests of about 1 KiB each, plus their
    // replies): a generous bound, far below the 10 MiB backlog the broker holds.
    for (idle, peak) in idle_kib.iter().zip(&peak_kib) {
        assert!(
            peak - idle < 24 * 1024,
            "a server grew from {idle} KiB to {peak} KiB under load"
        );
        assert!(*peak < 96 * 1024, "a server peaked at {peak} KiB");
    }
    for server in servers {
        server.stop();
    }
}
