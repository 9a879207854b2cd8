//! Load on RabbitMQ: 50 client transports with 10,000 calls in flight in
//! total against two server processes. Every call completes, and each
//! server's memory stays bounded by its prefetch, not by the backlog: the
//! bound asserted is derived from the prefetch and the payload.
//!
//! The bound is shown to bite by running the servers without it:
//! `RPC_TEST_LOAD_CONCURRENCY=65535 cargo test -p rpc-tests --test amqp_load`
//! gives them a prefetch as large as the backlog, and the test fails.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rpc_core::{Client, Context, Target};
use rpc_tests::broker::{self, TEST_OPTIONS};
use rpc_tests::conformance::unique_topic;
use rpc_tests::worker::{ServerProcess, WorkerClient};

const SERVER: &str = env!("CARGO_BIN_EXE_rpc-test-server");
const CLIENTS: usize = 50;
const CALLS_PER_CLIENT: usize = 200;
/// Each request carries 4 KiB, so the backlog (40 MiB) dwarfs what a
/// server may hold.
const PAYLOAD: usize = 4096;
/// The servers' concurrency limit, which their prefetch follows.
const CONCURRENCY: usize = 64;

/// The most a server may grow by, in KiB, derived from what it may hold: the
/// deliveries its consumers may have unacknowledged (topic and server
/// queues: the concurrency limit each; fanout queue: an eighth of it), the
/// requests running, and their replies, each about a payload plus 1 KiB of
/// frame and bookkeeping; four times that for the allocator's slack, plus
/// 4 MiB for the runtime's own growth under load.
fn memory_bound_kib() -> u64 {
    let unacknowledged = 2 * CONCURRENCY + CONCURRENCY.div_ceil(8);
    let held = unacknowledged + 2 * CONCURRENCY;
    let bytes = held * (PAYLOAD + 1024) * 4;
    (bytes / 1024) as u64 + 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_with_ten_thousand_calls_in_flight_against_two_servers() {
    let topic = unique_topic("load");
    let url = broker::url_with(TEST_OPTIONS);
    let concurrency = std::env::var("RPC_TEST_LOAD_CONCURRENCY").unwrap_or_else(|_| CONCURRENCY.to_string());
    let servers: Vec<ServerProcess> = ["s1", "s2"]
        .iter()
        .map(|name| {
            ServerProcess::spawn(
                SERVER,
                &[
                    "--url",
                    &url,
                    "--topic",
                    &topic,
                    "--server",
                    name,
                    "--concurrency",
                    &concurrency,
                ],
            )
        })
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
    let bound = memory_bound_kib();
    eprintln!(
        "{calls} calls from {CLIENTS} clients in {elapsed:?} ({:.0} calls/s); server RSS idle {idle_kib:?} KiB, \
         peak {peak_kib:?} KiB; growth bound {bound} KiB",
        calls as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(names.len(), 2, "one server did all the work: {names:?}");
    for (idle, peak) in idle_kib.iter().zip(&peak_kib) {
        assert!(
            peak.saturating_sub(*idle) < bound,
            "a server grew from {idle} KiB to {peak} KiB under load, over the bound of {bound} KiB"
        );
    }
    for server in servers {
        server.stop();
    }
}
