//! The request lifecycle on RabbitMQ, where it needs more than the
//! conformance suite: a server process killed mid-call reads as such in its
//! caller's timeout, and a dropped call is cancelled on the server that
//! sent it a progress notice, in oslo's JSON too.

use std::time::{Duration, Instant};

use rpc_core::{CallProgress, Client, Context, Error, Server, Target};
use rpc_tests::broker::{self, TEST_OPTIONS};
use rpc_tests::conformance::unique_topic;
use rpc_tests::logs::Logs;
use rpc_tests::worker::{ServerProcess, Worker, WorkerClient};

const SERVER: &str = env!("CARGO_BIN_EXE_rpc-test-server");

/// A server process that took a call and sent progress notices, then was
/// killed (SIGKILL): the caller's timeout says the server went silent,
/// names it, and says for how long; not "nobody took it", not "slow".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_call_reads_as_gone_silent() {
    let logs = Logs::global();
    let topic = unique_topic("killed_mid_call");
    let url = broker::url_with(TEST_OPTIONS);
    let mut server = ServerProcess::spawn(SERVER, &["--url", &url, "--topic", &topic, "--server", "doomed"]);
    let client =
        WorkerClient::new(Client::new(broker::connect().await, Target::topic(&topic)).timeout(Duration::from_secs(4)));
    let call = tokio::spawn(async move { client.hold(&Context::new(), 30_000).await });

    // The first notice comes a quarter of the 4 s in: then kill the server.
    wait_for_notice(logs, "doomed").await;
    server.kill();

    let result = call.await.unwrap();
    match &result {
        Err(Error::Timeout {
            progress: CallProgress::WentSilent { server, silent_for },
            ..
        }) => {
            assert_eq!(server, "doomed");
            assert!(*silent_for >= Duration::from_secs(2), "{silent_for:?}");
        }
        other => panic!("expected the server to have gone silent: {other:?}"),
    }
    let message = result.unwrap_err().to_string();
    assert!(message.contains("`doomed` took it, then went silent"), "{message}");
}

/// A call on any server of a topic (not pinned), in oslo's JSON: once its
/// server sent a progress notice, the caller knows it is a Rust server, and
/// dropping the call cancels it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_is_cancelled_on_the_server_it_heard_from() {
    let logs = Logs::global();
    let topic = unique_topic("cancel_heard");
    let server = Server::builder(broker::connect().await, Target::server(&topic, "heard"))
        .endpoint(Worker::new("heard", None, Duration::ZERO).unwrap())
        .build()
        .unwrap();
    server.start().await.unwrap();
    let oslo = broker::connect_url(&broker::url_with(&format!("{TEST_OPTIONS}&codec=oslo"))).await;
    let client = WorkerClient::new(Client::new(oslo, Target::topic(&topic)).timeout(Duration::from_secs(4)));
    let call = tokio::spawn(async move { client.hold(&Context::new(), 30_000).await });
    wait_for_notice(logs, "heard").await;
    call.abort();
    let dropped = Instant::now();
    while server.stats().cancelled == 0 {
        assert!(dropped.elapsed() < Duration::from_secs(2), "{:?}", server.stats());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("cancelled {:?} after the drop", dropped.elapsed());
    assert_eq!(server.stats().interrupted, 0);
    server.stop();
    server.wait().await;
}

/// Waits until this process has heard a progress notice from `server`.
async fn wait_for_notice(logs: &Logs, server: &str) {
    let heard = Instant::now() + Duration::from_secs(10);
    while logs.lines_with(&["a server is working on the call", server]).is_empty() {
        assert!(Instant::now() < heard, "no progress notice from `{server}`");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
