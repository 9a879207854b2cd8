//! The request lifecycle on RabbitMQ, where it needs more than the
//! conformance suite: a server process killed mid-call reads as such in its
//! caller's timeout, and a dropped call is cancelled on the server that
//! sent it a progress notice, in oslo's JSON too; a transport closed while
//! it reconnects stays closed.

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
            // Since its last notice, within the call's 4 s.
            assert!(*silent_for <= Duration::from_secs(4), "{silent_for:?}");
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
    // Without the cancel, it would run its 30 s (interrupted at the
    // caller's 4 s deadline at the earliest).
    while server.stats().cancelled == 0 {
        assert!(dropped.elapsed() < Duration::from_secs(10), "{:?}", server.stats());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("cancelled {:?} after the drop", dropped.elapsed());
    assert_eq!(server.stats().interrupted, 0);
    server.stop();
    server.wait().await;
}

/// A transport closed while it reconnects (an attempt hanging on a host
/// that accepts and says nothing, until `connect_timeout`) stays closed
/// once the attempt ends: its server stops, and calls fail as closed, at
/// once (the attempt's end used to reopen the link as down, and calls then
/// waited for a broker until their deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_closed_while_it_reconnects_stays_closed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rpc_core::TransportErrorKind;
    use rpc_tests::api::{Calculator, CalculatorClient};
    use rpc_tests::proxy::{Proxy, through, upstream_of};

    let logs = Logs::global();
    // The second host: accepts, says nothing, counts its connections.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_at = silent.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let accepted = Arc::clone(&accepted);
        async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("closed_reconnecting");
    let url = through(
        &broker::url(),
        &[proxy.port(), silent_at.port()],
        &format!("{TEST_OPTIONS}&{}&single_connection=true", broker::FAST_RECONNECT),
    );
    let transport = broker::connect_url(&url).await;
    let server = Server::builder(transport.clone(), Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .build()
        .unwrap();
    server.start().await.unwrap();

    // Cut: the next attempt goes to the silent host, and hangs there.
    proxy.cut().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no attempt on the silent host");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    transport.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("the server stops once its transport is closed");
    // The attempt ends, after the close.
    let failed = format!("connecting to {silent_at}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while logs.lines_with(&["reconnection failed", &failed]).is_empty() {
        assert!(Instant::now() < deadline, "the attempt did not end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calc = CalculatorClient::new(Client::new(transport, Target::topic(&topic)).timeout(Duration::from_secs(5)));
    let refused = calc.add(&Context::new(), 1, 1).await;
    assert!(
        matches!(&refused, Err(Error::Transport(error)) if error.kind() == TransportErrorKind::Closed),
        "{refused:?}"
    );
    proxy.restore();
}

/// Waits until this process has heard a progress notice from `server`.
async fn wait_for_notice(logs: &Logs, server: &str) {
    let heard = Instant::now() + Duration::from_secs(10);
    while logs.lines_with(&["a server is working on the call", server]).is_empty() {
        assert!(Instant::now() < heard, "no progress notice from `{server}`");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
