//! Connection faults on RabbitMQ, through a TCP proxy the test owns, which
//! cuts connections (closed sockets) or stalls them (open sockets, no bytes:
//! only heartbeats tell): calls waiting on a failed connection fail at once
//! with a connection error, no call hangs past its timeout, the next calls
//! succeed after reconnection, a server under steady load serves again
//! within seconds, a two-host URL fails over. The shared broker itself is
//! never touched.

use std::time::{Duration, Instant};

use rpc_core::notify::{NotificationListener, NotificationListenerBuilder, Notifier, Priority, handler};
use rpc_core::transport::Retry;
use rpc_core::{Client, Context, Error, Executor, Target, TransportErrorKind, json};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::broker::{self, TEST_OPTIONS};
use rpc_tests::conformance::{start_server, unique_topic};
use rpc_tests::eventually;
use rpc_tests::proxy::{Proxy, through, upstream_of};
use rpc_tests::raw::Raw;

use rpc_tests::broker::FAST_RECONNECT as FAST;

async fn proxied(ports: &[u16]) -> rpc_core::Transport {
    proxied_with(ports, "").await
}

/// [`proxied`], with `options` added to the URL.
async fn proxied_with(ports: &[u16], options: &str) -> rpc_core::Transport {
    broker::connect_url(&through(
        &broker::url(),
        ports,
        &format!("{TEST_OPTIONS}&{FAST}&{options}"),
    ))
    .await
}

/// A server of `topic` on a direct connection, and through `proxy` a
/// client whose reply queue outlives its connection (`transient_quorum`),
/// its first call answered.
async fn lasting_replies(
    proxy: &Proxy,
    topic: &str,
) -> (rpc_core::Server, Calculator, rpc_core::Transport, CalculatorClient) {
    let (server, calculator) = start_server(broker::connect().await, topic, "s1").await;
    let transport = proxied_with(&[proxy.port()], "transient_quorum=true").await;
    let calc =
        CalculatorClient::new(Client::new(transport.clone(), Target::topic(topic)).timeout(Duration::from_secs(30)));
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);
    (server, calculator, transport, calc)
}

/// Waits until `count` requests run on `calculator`'s server.
async fn until_running(calculator: &Calculator, count: usize) {
    eventually("the calls running on their server", Duration::from_secs(10), || {
        let now = calculator.observed.running.load(std::sync::atomic::Ordering::SeqCst);
        if now == count { Ok(()) } else { Err(now) }
    })
    .await;
}

/// Waits until `transport` sees the broker away.
async fn until_disconnected(transport: &rpc_core::Transport) {
    eventually("the transport seeing the broker away", Duration::from_secs(10), || {
        if transport.driver().is_connected() {
            Err(())
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_on_a_cut_connection_fails_fast_and_the_next_call_succeeds() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("cut_client");
    let (server, calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let transport = proxied(&[proxy.port()]).await;
    let calc =
        CalculatorClient::new(Client::new(transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(30)));
    let ctx = Context::new();
    assert_eq!(calc.add(&ctx, 1, 2).await.unwrap(), 3);

    let waiting = tokio::spawn({
        let calc = calc.clone();
        async move { calc.sleep(&Context::new(), 5_000).await }
    });
    until_running(&calculator, 1).await;
    let cut_at = Instant::now();
    proxy.cut().await;
    let result = waiting.await.unwrap();
    assert!(
        matches!(&result, Err(error) if error.is_connection_error()),
        "expected a connection error, got {result:?}"
    );
    assert!(
        cut_at.elapsed() < Duration::from_secs(3),
        "failed after {:?}",
        cut_at.elapsed()
    );
    assert_eq!(transport.pending_calls(), 0);

    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    // A call made while reconnecting waits for the connection, then succeeds.
    let restored_at = Instant::now();
    assert_eq!(calc.add(&ctx, 2, 2).await.unwrap(), 4);
    assert!(
        restored_at.elapsed() < Duration::from_secs(10),
        "took {:?}",
        restored_at.elapsed()
    );
    assert!(proxy.connections() > 0, "the client reconnected through the proxy");
    server.stop();
    server.wait().await;
}

/// A balancer failing over closes the clients' side of their connections
/// and keeps the broker's open: the broker holds the old connections, and
/// their exclusive reply and fanout queues, until its heartbeat timeout
/// (30 s or more here). Both sides connect again at once, and declaring those
/// queues again was refused (`RESOURCE_LOCKED`) until then, while calls
/// named the locked reply queue and their replies were lost: the queues
/// take new names, and calls and fanout casts get through within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_the_broker_still_holds_for_a_dropped_connection_take_new_names() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("dropped_clients");
    let (server, calculator) = start_server(proxied_with(&[proxy.port()], "heartbeat=30").await, &topic, "s1").await;
    let transport = proxied_with(&[proxy.port()], "heartbeat=30").await;
    let client = Client::new(transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(2));
    let calc = CalculatorClient::new(client.clone());
    let ctx = Context::new();
    assert_eq!(calc.add(&ctx, 1, 2).await.unwrap(), 3);
    proxy.drop_clients();
    let dropped = Instant::now();
    loop {
        // Each call waits 2 s at most; the broker holds the old queues for 30 s or more.
        match calc.add(&ctx, 2, 3).await {
            Ok(sum) => {
                assert_eq!(sum, 5);
                break;
            }
            Err(error) => assert!(
                dropped.elapsed() < Duration::from_secs(20),
                "no call answered in {:?}: {error}",
                dropped.elapsed()
            ),
        }
    }
    let fanout = CalculatorClient::new(client.prepare().fanout(true));
    fanout.cast().record(&ctx, "to all".to_owned()).await.unwrap();
    calculator.observed.wait_for_records(1, Duration::from_secs(10)).await;
    assert!(dropped.elapsed() < Duration::from_secs(25), "{:?}", dropped.elapsed());
    server.stop();
    server.wait().await;
}

/// With a reply queue that outlives its connection, a call whose request
/// was lost with the connection (written, never read by the broker) fails
/// at once: such calls' requests wait for the broker's confirm, the only
/// sign of their loss once a lost connection fails no waiting call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lost_with_a_lasting_reply_queue_fails_at_once() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("lost_request_lasting_replies");
    let (server, calculator, _transport, calc) = lasting_replies(&proxy, &topic).await;

    proxy.stall();
    let held = proxy.held();
    let calling = tokio::spawn(async move { calc.add(&Context::new(), 2, 2).await });
    eventually("the request written", Duration::from_secs(10), || {
        if proxy.held() == held { Err(held) } else { Ok(()) }
    })
    .await;
    // Written, held by the proxy: the broker never sees it.
    let cut_at = Instant::now();
    proxy.cut().await;
    let called = tokio::time::timeout(Duration::from_secs(10), calling).await;
    assert!(
        matches!(&called, Ok(Ok(Err(error))) if error.is_connection_error()),
        "{called:?}"
    );
    assert!(
        cut_at.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        cut_at.elapsed()
    );
    assert_eq!(calculator.observed.handled.load(std::sync::atomic::Ordering::SeqCst), 1);
    proxy.restore();
    server.stop();
    server.wait().await;
}

/// A transport's first call, which starts its reply queue, made while the
/// broker is away waits for it as its retry allows, within its timeout, as
/// every later call does: for ever by default, not with `Retry::Never`.
/// Until 2026-12-05 it failed at once, after one reconnection attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_during_an_outage_waits_for_the_broker() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("first_call_outage");
    let (server, _) = start_server(broker::connect().await, &topic, "s1").await;
    let transport = proxied(&[proxy.port()]).await;
    proxy.cut().await;
    until_disconnected(&transport).await;
    let client = Client::new(transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(30));
    let never = CalculatorClient::new(client.prepare().retry(Retry::Never));
    let started = Instant::now();
    let refused = never.add(&Context::new(), 1, 1).await;
    assert!(
        matches!(&refused, Err(error) if error.is_connection_error()),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let calc = CalculatorClient::new(client);
    let calling = tokio::spawn(async move { calc.add(&Context::new(), 2, 3).await });
    // Long enough for several reconnection attempts (`FAST`): still waiting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!calling.is_finished(), "the call gave up: {:?}", calling.await);
    proxy.restore();
    let called = tokio::time::timeout(Duration::from_secs(20), calling).await;
    assert!(matches!(called, Ok(Ok(Ok(5)))), "{called:?}");
    server.stop();
    server.wait().await;
}

/// A reply queue that outlives its connection (`transient_quorum`: a
/// durable quorum queue) keeps the replies sent while its caller
/// reconnects: a call waiting when the connection was cut gets its reply
/// once the queue is consumed again, as oslo's callers do. Until
/// 2026-12-05 it failed at once with a connection error, and its reply,
/// delivered later, was counted late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_queue_that_outlives_its_connection_keeps_its_calls_waiting() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("cut_lasting_replies");
    let (server, calculator, transport, calc) = lasting_replies(&proxy, &topic).await;

    let waiting = tokio::spawn(async move { calc.sleep(&Context::new(), 1_000).await });
    let running = |count| {
        let now = calculator.observed.running.load(std::sync::atomic::Ordering::SeqCst);
        if now == count { Ok(()) } else { Err(now) }
    };
    eventually("the call running on its server", Duration::from_secs(10), || running(1)).await;
    proxy.cut().await;
    // The reply goes out while the caller is away.
    eventually("the call ended on its server", Duration::from_secs(10), || running(0)).await;
    assert!(
        !waiting.is_finished(),
        "the call ended while its caller was away: {:?}",
        waiting.await
    );
    proxy.restore();
    assert_eq!(waiting.await.unwrap().unwrap(), 1_000);
    assert_eq!(transport.pending_calls(), 0);
    assert_eq!(transport.late_replies(), 0);
    server.stop();
    server.wait().await;
}

/// Closing a transport fails its calls waiting for replies at once, with
/// `Closed`, also when its reply queue outlives the connection: no
/// connection will bring their replies (they waited out their timeouts
/// until 2026-12-05).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_transport_fails_its_waiting_calls_at_once() {
    closing_fails_waiting_calls("closed_lasting_replies", false).await;
}

/// The same while the transport reconnects: the calls its lasting reply
/// queue kept waiting fail at once when it is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_reconnecting_transport_fails_its_waiting_calls_at_once() {
    closing_fails_waiting_calls("closed_reconnecting_replies", true).await;
}

/// Closes a transport with a lasting reply queue while a call waits, its
/// connection first `cut` or not: the call fails with `Closed` at once.
async fn closing_fails_waiting_calls(scenario: &str, cut: bool) {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic(scenario);
    let (server, calculator, transport, calc) = lasting_replies(&proxy, &topic).await;
    let waiting = tokio::spawn(async move { calc.sleep(&Context::new(), 3_000).await });
    until_running(&calculator, 1).await;
    if cut {
        proxy.cut().await;
        until_disconnected(&transport).await;
        assert!(!waiting.is_finished(), "{:?}", waiting.await);
    }
    let closed_at = Instant::now();
    transport.close().await.unwrap();
    let called = tokio::time::timeout(Duration::from_secs(10), waiting).await;
    assert!(
        matches!(&called, Ok(Ok(Err(rpc_core::Error::Transport(error)))) if error.kind() == rpc_core::TransportErrorKind::Closed),
        "{called:?}"
    );
    assert!(
        closed_at.elapsed() < Duration::from_secs(2),
        "failed after {:?}",
        closed_at.elapsed()
    );
    proxy.restore();
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_reconnects_and_serves_again() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("cut_server");
    let (server, calculator) = start_server(proxied(&[proxy.port()]).await, &topic, "s1").await;
    let calc = CalculatorClient::new(
        Client::new(broker::connect().await, Target::topic(&topic)).timeout(Duration::from_secs(20)),
    );
    let ctx = Context::new();
    assert_eq!(calc.add(&ctx, 1, 1).await.unwrap(), 2);

    proxy.cut().await;
    wait_for_health(|| server.health(), |health| !health.is_ready()).await;
    // Requests sent while the server is away wait in its queue.
    let during = tokio::spawn({
        let calc = calc.clone();
        async move { calc.add(&Context::new(), 20, 1).await }
    });
    let raw = Raw::connect().await;
    let waiting = Instant::now() + Duration::from_secs(10);
    while raw.message_count(&topic).await == 0 {
        assert!(Instant::now() < waiting, "the request never reached the queue");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.restore();
    let restored_at = Instant::now();
    assert_eq!(during.await.unwrap().unwrap(), 21);
    assert!(
        restored_at.elapsed() < Duration::from_secs(10),
        "took {:?}",
        restored_at.elapsed()
    );
    assert_eq!(calc.whoami(&ctx).await.unwrap(), "s1");
    assert!(server.handle().is_running());
    assert!(calculator.observed.handled.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_while_reconnecting_comes_up_with_the_broker() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("start_reconnecting");
    let transport = proxied(&[proxy.port()]).await;
    let calculator = rpc_tests::api::Calculator::new("s1");
    let server = rpc_core::Server::builder(transport.clone(), Target::server(&topic, "s1"))
        .endpoint(calculator.clone())
        .build()
        .unwrap();

    // The broker stays away: start fails with a connection error, promptly.
    proxy.cut().await;
    until_disconnected(&transport).await;
    let started = Instant::now();
    let error = server.start().await.unwrap_err();
    assert!(error.is_connection_error(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // The broker is back while the transport waits out its backoff: start
    // waits for that reconnection instead of failing.
    proxy.restore();
    server.start().await.expect("starts once reconnected");
    let calc = CalculatorClient::new(
        Client::new(broker::connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10)),
    );
    assert_eq!(calc.add(&Context::new(), 2, 3).await.unwrap(), 5);
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_error_does_not_cost_the_connection() {
    // The broker closes a channel (not the connection) when a publish or a
    // declaration names an exchange that does not exist; calls in flight on
    // the same connection must not notice.
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("channel_error");
    let (server, calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let client = Client::new(proxied(&[proxy.port()]).await, Target::topic(&topic)).timeout(Duration::from_secs(10));
    let calc = CalculatorClient::new(client.clone());
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);

    let waiting = tokio::spawn({
        let calc = calc.clone();
        async move { calc.sleep(&Context::new(), 1_000).await }
    });
    until_running(&calculator, 1).await;
    for _ in 0..3 {
        let nowhere = client.prepare().exchange(unique_topic("no_such_exchange"));
        let result = nowhere
            .call::<i64>(&Context::new(), "add", json!({"a": 1, "b": 1}))
            .await;
        assert!(matches!(result, Err(Error::NoListener { .. })), "{result:?}");
    }
    waiting.await.unwrap().expect("the call in flight is answered");
    assert_eq!(calc.add(&Context::new(), 2, 2).await.unwrap(), 4);
    assert_eq!(proxy.connections(), 1, "the client kept its connection");
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_host_url_fails_over_to_the_second_host() {
    let upstream = upstream_of(&broker::url());
    let (first, second) = (Proxy::start(upstream).await, Proxy::start(upstream).await);
    let topic = unique_topic("failover");
    let server_transport = proxied(&[first.port(), second.port()]).await;
    let (server, _) = start_server(server_transport, &topic, "s1").await;
    let client_transport = proxied(&[first.port(), second.port()]).await;
    let calc =
        CalculatorClient::new(Client::new(client_transport, Target::topic(&topic)).timeout(Duration::from_secs(20)));
    let ctx = Context::new();
    assert_eq!(calc.add(&ctx, 1, 1).await.unwrap(), 2);
    assert_eq!(
        first.connections(),
        3,
        "both transports (the server's two connections, the client's one) start on the first host"
    );
    assert_eq!(second.connections(), 0);

    // The first host dies for good: both sides move to the second.
    first.cut().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match calc.add(&ctx, 2, 3).await {
            Ok(sum) => {
                assert_eq!(sum, 5);
                break;
            }
            Err(error) if error.is_connection_error() && Instant::now() < deadline => continue,
            Err(error) => panic!("no failover: {error}"),
        }
    }
    assert_eq!(second.connections(), 3, "both transports moved to the second host");
    server.stop();
    server.wait().await;
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    // The first connection keeps trying for `startup_timeout`, then fails.
    let url =
        format!("amqp://guest:s3cret@127.0.0.1:{port}/%2f?connect_timeout=2&startup_timeout=1&retry_interval=0.2");
    let error = rpc_amqp::connect(&url).await.unwrap_err();
    assert!(
        matches!(&error, Error::Transport(_)) && error.is_connection_error(),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// What a proxy does to its connections for a while.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Closes them, and refuses new ones, for a second.
    Cut,
    /// Moves no byte for five seconds (a partition): only heartbeats tell.
    Stall,
}

impl Fault {
    /// Inflicts the fault, lifts it, and returns when it took effect.
    async fn inflict(self, proxy: &Proxy) -> Instant {
        let (effective, lasting) = match self {
            Fault::Cut => {
                proxy.cut().await;
                (Instant::now(), Duration::from_secs(1))
            }
            Fault::Stall => {
                proxy.stall();
                (Instant::now(), Duration::from_secs(5))
            }
        };
        tokio::time::sleep(lasting).await;
        proxy.restore();
        effective
    }
}

/// One call of a load run: when it started and ended, and how it went.
#[derive(Debug)]
struct Outcome {
    started: Instant,
    ended: Instant,
    result: Result<i64, Error>,
}

/// Calls `add` from `workers` tasks back to back until `until`.
async fn steady_load(calc: CalculatorClient, workers: usize, until: Instant) -> Vec<Outcome> {
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let calc = calc.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut i = 0;
                while Instant::now() < until {
                    let started = Instant::now();
                    let result = calc.add(&Context::new(), worker as i64, i).await;
                    outcomes.push(Outcome {
                        started,
                        ended: Instant::now(),
                        result,
                    });
                    i += 1;
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    outcomes
}

/// The server's connection fails under steady load; the clients' does not.
async fn server_fault_under_steady_load(fault: Fault) {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("steady_server");
    let (server, _) = start_server(proxied(&[proxy.port()]).await, &topic, "s1").await;
    let timeout = Duration::from_secs(3);
    let calc = CalculatorClient::new(Client::new(broker::connect().await, Target::topic(&topic)).timeout(timeout));
    let start = Instant::now();
    let until = start + Duration::from_secs(if matches!(fault, Fault::Stall) { 14 } else { 8 });
    let load = tokio::spawn(steady_load(calc, 8, until));
    tokio::time::sleep(Duration::from_secs(1)).await;
    fault.inflict(&proxy).await;
    let restored = Instant::now();
    let outcomes = load.await.unwrap();

    let longest = outcomes.iter().map(|o| o.ended - o.started).max().unwrap();
    assert!(
        longest < timeout + Duration::from_secs(1),
        "a call hung for {longest:?}"
    );
    for outcome in &outcomes {
        if let Err(error) = &outcome.result {
            // The server lost what it had taken (at-most-once): its callers time out.
            assert!(error.is_timeout(), "{error:?}");
        }
    }
    let recovered = outcomes
        .iter()
        .filter(|o| o.started >= restored && o.result.is_ok())
        .map(|o| o.ended - restored)
        .min()
        .expect("no call succeeded after the fault");
    let (ok, failed) = outcomes.iter().partition::<Vec<_>, _>(|o| o.result.is_ok());
    eprintln!(
        "{fault:?} on the server: {} calls ok, {} failed, served again {recovered:?} after the fault ended",
        ok.len(),
        failed.len()
    );
    assert!(
        recovered < Duration::from_secs(5),
        "served again only after {recovered:?}"
    );
    assert!(server.handle().is_running());
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cut_under_steady_load_serves_again_within_seconds() {
    server_fault_under_steady_load(Fault::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stalled_under_steady_load_serves_again_within_seconds() {
    server_fault_under_steady_load(Fault::Stall).await;
}

/// A client's connection fails mid-stream: the calls it was waiting on
/// fail at once with a connection error, none hangs, the next ones succeed.
async fn client_fault_mid_stream(fault: Fault) {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("steady_client");
    let (server, calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let transport = proxied(&[proxy.port()]).await;
    let timeout = Duration::from_secs(30);
    let calc = CalculatorClient::new(Client::new(transport.clone(), Target::topic(&topic)).timeout(timeout));
    // Calls the server answers only after the fault struck: they cannot
    // complete before it, whatever the machine's scheduling. All four run
    // on the server before the load starts.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let calc = calc.clone();
            tokio::spawn(async move { (calc.sleep(&Context::new(), 3_000).await, Instant::now()) })
        })
        .collect();
    until_running(&calculator, 4).await;
    let until = Instant::now() + Duration::from_secs(if matches!(fault, Fault::Stall) { 14 } else { 6 });
    let load = tokio::spawn(steady_load(calc.clone(), 16, until));
    // The load runs a while before the fault (a window, not a condition).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fault_at = Instant::now();
    let effective = fault.inflict(&proxy).await;
    let restored = Instant::now();
    let outcomes = load.await.unwrap();

    // Heartbeats (2 s) notice a stall within two intervals, plus a margin.
    let notice = match fault {
        Fault::Cut => Duration::from_secs(2),
        Fault::Stall => Duration::from_secs(7),
    };
    for call in slow {
        let (result, ended) = call.await.unwrap();
        assert!(
            matches!(&result, Err(error) if error.is_connection_error()),
            "a call waiting at the fault: {result:?}"
        );
        assert!(ended < effective + notice, "failed only after {:?}", ended - effective);
    }
    let interrupted: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started <= fault_at && o.ended > fault_at)
        .collect();
    for outcome in &interrupted {
        match &outcome.result {
            // A reply already on its way when the fault took effect.
            Ok(_) => assert!(
                outcome.ended < effective + Duration::from_millis(500),
                "succeeded {:?} into the fault",
                outcome.ended - effective
            ),
            Err(error) => {
                assert!(error.is_connection_error(), "{error:?}");
                assert!(
                    outcome.ended < effective + notice,
                    "failed only after {:?}",
                    outcome.ended - effective
                );
            }
        }
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let longest = outcomes.iter().map(|o| o.ended - o.started).max().unwrap();
    assert!(longest < Duration::from_secs(12), "a call hung for {longest:?}");
    let recovered = outcomes
        .iter()
        .filter(|o| o.ended >= restored && o.result.is_ok())
        .map(|o| o.ended - restored)
        .min()
        .expect("no call succeeded after the fault");
    eprintln!("{fault:?} on the client: {failed} calls failed, served again {recovered:?} after the fault ended");
    assert!(
        recovered < Duration::from_secs(5),
        "served again only after {recovered:?}"
    );
    assert_eq!(transport.pending_calls(), 0);
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_mid_stream_fails_its_calls_at_once_and_recovers() {
    client_fault_mid_stream(Fault::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_mid_stream_notices_by_heartbeat_and_recovers() {
    client_fault_mid_stream(Fault::Stall).await;
}

/// The first connection tries again, with the reconnection backoff, for
/// `startup_timeout`: a service that starts before its broker comes up
/// with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_connection_waits_for_a_broker_coming_up() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    proxy.cut().await;
    let url = through(
        &broker::url(),
        &[proxy.port()],
        &format!("{TEST_OPTIONS}&{FAST}&startup_timeout=20"),
    );
    let started = Instant::now();
    let connecting = tokio::spawn(async move { rpc_amqp::connect(&url).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!connecting.is_finished(), "gave up while the broker was away");
    proxy.restore();
    let transport = connecting.await.unwrap().expect("connects once the broker is there");
    assert!(started.elapsed() < Duration::from_secs(10));
    let topic = unique_topic("late_broker");
    let (server, _) = start_server(transport.clone(), &topic, "s1").await;
    let calc = CalculatorClient::new(Client::new(transport, Target::topic(&topic)));
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);
    server.stop();
    server.wait().await;
}

/// An operator deletes a server's topic queue (`rabbitmqctl delete_queue`,
/// here through AMQP): the broker cancels the server's consumer, and the
/// server declares the queue and consumes it again, counting the cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_queue_is_declared_and_consumed_again() {
    let topic = unique_topic("deleted_queue");
    let server_transport = broker::connect_url(&broker::url_with(&format!("{TEST_OPTIONS}&{FAST}"))).await;
    let (server, _) = start_server(server_transport.clone(), &topic, "s1").await;
    let calc = CalculatorClient::new(
        Client::new(broker::connect().await, Target::topic(&topic)).timeout(Duration::from_secs(5)),
    );
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);

    let raw = rpc_tests::raw::Raw::connect().await;
    raw.channel
        .queue_delete(topic.as_str().into(), lapin::options::QueueDeleteOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_transport.driver_stats().consumer_cancels == 0 {
        assert!(Instant::now() < deadline, "the cancel went unnoticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match calc.add(&Context::new(), 2, 3).await {
            Ok(sum) => {
                assert_eq!(sum, 5);
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "not consumed again: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server_transport.driver_stats().consumer_cancels, 1);
    server.stop();
    server.wait().await;
}

/// A publish that makes the broker close the publishing channel (its
/// exchange was deleted after the client checked it) fails alone: the
/// publishes in flight beside it on the same channel go through, published
/// again on a fresh channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_error_fails_only_the_publish_that_caused_it() {
    let topic = unique_topic("isolated");
    let (server, client, doomed) = an_exchange_deleted_after_use(&topic).await;
    let calc = CalculatorClient::new(client.clone());
    let to_doomed = CalculatorClient::new(client.prepare().exchange(&doomed));
    // The doomed publish goes out among 64 good calls.
    let ctx = Context::new();
    let good = futures_util::future::join_all((0..64).map(|i| calc.add(&ctx, i, 1)));
    let bad = async {
        tokio::task::yield_now().await;
        to_doomed.cast().add(&ctx, 1, 1).await
    };
    let (good, bad) = tokio::join!(good, bad);
    // The client works on, and tells whether the connection survived: lapin
    // 4.12 may send channel.close-ok ahead of publish frames already queued
    // on that channel, and RabbitMQ then closes the connection. The
    // publishes in flight then fail as a connection loss, the only way they
    // may fail.
    assert_eq!(calc.add(&ctx, 2, 3).await.unwrap(), 5);
    let reconnected = client.transport().driver_stats().reconnections > 0;
    let lost = |error: &Error| {
        reconnected
            && matches!(error, Error::Transport(error) if error.kind() == rpc_core::TransportErrorKind::ConnectionLost)
    };
    match bad {
        Err(Error::NoListener { .. }) => {}
        Err(ref error) if lost(error) => {}
        other => panic!("the publish to a deleted exchange: {other:?}"),
    }
    for (i, result) in good.into_iter().enumerate() {
        match result {
            Ok(sum) => assert_eq!(sum, i as i64 + 1),
            Err(ref error) if lost(error) => {}
            Err(error) => panic!("call {i} failed while the connection stood: {error}"),
        }
    }
    server.stop();
    server.wait().await;
}

/// A server `s1` on `topic`, and a client that called through a second
/// exchange (so it knows that one exists), which is then deleted; its name.
async fn an_exchange_deleted_after_use(topic: &str) -> (rpc_core::Server, Client, String) {
    let (server, _) = start_server(broker::connect().await, topic, "s1").await;
    let doomed = unique_topic("doomed_exchange");
    let doomed_server = rpc_core::Server::builder(
        broker::connect().await,
        Target::server(topic, "s2").with_exchange(&doomed),
    )
    .endpoint(rpc_tests::api::Calculator::new("s2"))
    .build()
    .unwrap();
    doomed_server.start().await.unwrap();
    let client = Client::new(broker::connect().await, Target::topic(topic)).timeout(Duration::from_secs(10));
    let to_doomed = CalculatorClient::new(client.prepare().exchange(&doomed));
    assert_eq!(to_doomed.add(&Context::new(), 1, 1).await.unwrap(), 2);
    doomed_server.stop();
    doomed_server.wait().await;
    let raw = Raw::connect().await;
    raw.channel
        .exchange_delete(doomed.as_str().into(), lapin::options::ExchangeDeleteOptions::default())
        .await
        .unwrap();
    (server, client, doomed)
}

/// A call to an exchange deleted since the client checked it closes the
/// channel of unconfirmed publishes, and waits for its timeout; the next
/// calls to it check the exchange again and fail at once with
/// `NoListener`, and other calls go on. (The exchange stayed known until
/// the connection was lost: every call to it closed the channel again and
/// waited for its timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_an_exchange_deleted_since_checked_fail_fast_after_the_first() {
    let topic = unique_topic("deleted_since");
    let (server, client, doomed) = an_exchange_deleted_after_use(&topic).await;
    let to_doomed = CalculatorClient::new(client.prepare().exchange(&doomed).timeout(Duration::from_secs(2)));
    let ctx = Context::new();
    let first = to_doomed.add(&ctx, 1, 1).await;
    assert!(first.is_err(), "{first:?}");
    for _ in 0..2 {
        let started = Instant::now();
        let next = to_doomed.add(&ctx, 1, 1).await;
        assert!(matches!(next, Err(Error::NoListener { .. })), "{next:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }
    assert_eq!(CalculatorClient::new(client).add(&ctx, 2, 3).await.unwrap(), 5);
    server.stop();
    server.wait().await;
}

/// A body over `max_message_size` is refused before it reaches the broker
/// (which would close the channel), with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_is_refused_before_sending() {
    let topic = unique_topic("size_limit");
    let (server, calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let url = broker::url_with(&format!("{TEST_OPTIONS}&max_message_size=65536"));
    let calc = CalculatorClient::new(Client::new(broker::connect_url(&url).await, Target::topic(&topic)));
    let ctx = Context::new();
    let result = calc.cast().record(&ctx, "x".repeat(100_000)).await;
    match &result {
        Err(Error::Transport(error)) => {
            assert_eq!(error.kind(), rpc_core::TransportErrorKind::Refused);
            assert!(error.message().contains("max_message_size"), "{error}");
        }
        other => panic!("an oversized cast: {other:?}"),
    }
    assert_eq!(calc.add(&ctx, 2, 3).await.unwrap(), 5);
    assert!(calculator.observed.records().is_empty());
    server.stop();
    server.wait().await;
}

/// A server's health follows its connection: not ready (not connected,
/// not consuming) while the broker is out of reach, though still live;
/// ready again once it consumes every queue after reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_ready_while_the_connection_is_down() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("health_cut");
    let (server, _) = start_server(proxied(&[proxy.port()]).await, &topic, "s1").await;
    assert!(server.health().is_ready(), "{:?}", server.health());

    proxy.cut().await;
    let down = wait_for_health(|| server.health(), |health| !health.is_ready()).await;
    assert!(down.is_live(), "a server reconnecting is still live: {down:?}");
    let down = wait_for_health(
        || server.health(),
        |health| !health.connected && health.queues.iter().all(|queue| !queue.consuming),
    )
    .await;
    assert!(!down.is_ready(), "{down:?}");

    proxy.restore();
    let up = wait_for_health(|| server.health(), |health| health.is_ready()).await;
    assert!(up.connected && up.queues.iter().all(|queue| queue.consuming), "{up:?}");
    // And it serves again.
    let calc = CalculatorClient::new(Client::new(broker::connect().await, Target::topic(&topic)));
    assert_eq!(calc.add(&Context::new(), 1, 1).await.unwrap(), 2);
    server.stop();
    server.wait().await;
}

/// A server whose one handler is busy, with a delivery of each of its
/// queues waiting for it, consumes again as soon as its connection is back:
/// until 2026-12-05 the loss notice waited for room among those deliveries,
/// so no queue was consumed again (and its fanout queue did not exist) until
/// the handler finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_server_consumes_again_once_reconnected() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("busy_reconnect");
    // Its fanout queue a quorum one, not exclusive: the test can count its messages.
    let transport = proxied_with(&[proxy.port()], "transient_quorum=true").await;
    let (server, _) = rpc_tests::conformance::start_server_with(transport, &topic, "s1", Executor::Sequential).await;
    let client = Client::new(broker::connect().await, Target::topic(&topic));
    let ctx = Context::new();
    // The one handler is busy for 15 s; each queue then delivers one cast,
    // which waits for it, and holds one more.
    CalculatorClient::new(client.clone())
        .cast()
        .sleep(&ctx, 15_000)
        .await
        .unwrap();
    for target in [
        client.clone(),
        client.prepare().server("s1"),
        client.prepare().fanout(true),
    ] {
        let calc = CalculatorClient::new(target);
        for value in [1, 2] {
            calc.cast().add(&ctx, value, value).await.unwrap();
        }
    }
    let raw = Raw::connect().await;
    let queues: Vec<String> = server.health().queues.iter().map(|queue| queue.name.clone()).collect();
    assert_eq!(queues.len(), 3, "{queues:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    for queue in &queues {
        while raw.message_count(queue).await != 1 {
            assert!(Instant::now() < deadline, "`{queue}` did not deliver its first cast");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    proxy.cut().await;
    wait_for_health(|| server.health(), |health| !health.connected).await;
    // The first casts, not settled, go back to their queues.
    let deadline = Instant::now() + Duration::from_secs(10);
    for queue in &queues {
        while raw.message_count(queue).await != 2 {
            assert!(Instant::now() < deadline, "`{queue}` did not get its cast back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    proxy.restore();
    wait_for_health(|| server.health(), |health| health.is_ready()).await;

    // Each queue delivers one again on the new connection, which waits for
    // room behind the stale ones: a second loss meanwhile is still noticed.
    let deadline = Instant::now() + Duration::from_secs(10);
    for queue in &queues {
        while raw.message_count(queue).await != 1 {
            assert!(Instant::now() < deadline, "`{queue}` did not deliver again");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    proxy.cut().await;
    wait_for_health(
        || server.health(),
        |health| health.queues.iter().all(|queue| !queue.consuming),
    )
    .await;
    proxy.restore();
    wait_for_health(|| server.health(), |health| health.is_ready()).await;
    server.stop();
    server.wait().await;
}

/// A notification listener on a cut connection: live but not ready, not
/// consuming, until the connection is back; then it consumes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_listener_is_not_ready_while_the_connection_is_down() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("notify_health_cut");
    let (listener, mut received) = info_listener(proxied(&[proxy.port()]).await, &topic).await;
    assert!(listener.health().is_ready(), "{:?}", listener.health());

    proxy.cut().await;
    let down = wait_for_health(
        || listener.health(),
        |health| !health.connected && health.queues.iter().all(|queue| !queue.consuming),
    )
    .await;
    // One queue (one priority, no pool), live throughout.
    assert!(down.is_live() && down.queues.len() == 1, "{down:?}");

    proxy.restore();
    let up = wait_for_health(|| listener.health(), |health| health.is_ready()).await;
    assert_eq!(up.queues.len(), 1, "{up:?}");
    // And it takes notifications again.
    Notifier::new(broker::connect().await, "compute.host-1")
        .topics([&topic])
        .info(&Context::new(), "after.restore", &json!({}))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(event.ok().flatten().as_deref(), Some("after.restore"));
    listener.stop();
    listener.wait().await;
}

/// A notification whose publish is cut off with its connection before the
/// broker has it goes out again once reconnected: the notifier's `retry`
/// covers the send, as oslo's does, not only the wait for a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_cut_off_before_the_broker_has_it_is_published_again() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("notify_republish");
    let (listener, mut received) = info_listener(broker::connect().await, &topic).await;
    let notifier = Notifier::new(proxied(&[proxy.port()]).await, "compute.host-1").topics([&topic]);
    notifier.info(&Context::new(), "before", &json!({})).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(event.ok().flatten().as_deref(), Some("before"));

    proxy.stall();
    let held = proxy.held();
    let sending = tokio::spawn(async move { notifier.info(&Context::new(), "cut.off", &json!({})).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.held() == held {
        assert!(Instant::now() < deadline, "the notifier never wrote its publish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The publish is written, held by the proxy: the broker never sees it.
    proxy.cut().await;
    proxy.restore();
    let sent = tokio::time::timeout(Duration::from_secs(20), sending)
        .await
        .expect("the notification is sent once reconnected")
        .unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    let event = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(event.ok().flatten().as_deref(), Some("cut.off"));
    listener.stop();
    listener.wait().await;
}

/// A notification and a cast sent with the default retry (for ever, as
/// oslo's `retry=None`) while the broker is unreachable wait for it, for
/// longer than `publish_timeout`, and go out once it is back. Until
/// 2026-12-05 both failed with `Unreachable` once `publish_timeout` had
/// passed, and were never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_and_casts_wait_through_an_outage_longer_than_publish_timeout() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("notify_outage");
    let (listener, mut received) = info_listener(broker::connect().await, &topic).await;
    let (server, calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let transport = proxied_with(&[proxy.port()], "publish_timeout=1").await;
    let notifier = Notifier::new(transport.clone(), "compute.host-1").topics([&topic]);
    let calc = CalculatorClient::new(Client::new(transport.clone(), Target::topic(&topic)));
    let ctx = Context::new();
    notifier.info(&ctx, "before", &json!({})).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(event.ok().flatten().as_deref(), Some("before"));

    proxy.cut().await;
    // Once the transport knows the broker is away: a publish cut off as the
    // connection goes fails as lost (it may have reached the broker).
    let probe = CalculatorClient::new(Client::new(transport.clone(), Target::topic(&topic)).retry(Retry::Never));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = probe.cast().record(&ctx, "probe".into()).await;
        match probe {
            Err(Error::Transport(error)) if error.kind() == TransportErrorKind::Unreachable => break,
            other => assert!(
                Instant::now() < deadline,
                "the transport never saw the broker away: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let notifying = tokio::spawn(async move { notifier.info(&Context::new(), "during", &json!({})).await });
    let casting = tokio::spawn(async move { calc.cast().record(&Context::new(), "during".into()).await });
    // Three times `publish_timeout`: both still wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !notifying.is_finished(),
        "the notification gave up: {:?}",
        notifying.await
    );
    assert!(!casting.is_finished(), "the cast gave up: {:?}", casting.await);
    proxy.restore();
    let notified = tokio::time::timeout(Duration::from_secs(20), notifying).await;
    assert!(matches!(notified, Ok(Ok(Ok(())))), "{notified:?}");
    let cast = tokio::time::timeout(Duration::from_secs(20), casting).await;
    assert!(matches!(cast, Ok(Ok(Ok(())))), "{cast:?}");
    let event = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(event.ok().flatten().as_deref(), Some("during"));
    let records = calculator.observed.wait_for_records(1, Duration::from_secs(10)).await;
    assert_eq!(records, ["s1:during"]);
    // A transport closed meanwhile ends the wait.
    proxy.cut().await;
    let notifier = Notifier::new(transport.clone(), "compute.host-1").topics([&topic]);
    let waiting = tokio::spawn(async move { notifier.info(&Context::new(), "closed", &json!({})).await });
    // Past `publish_timeout`: it waits, and only the close ends it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "it gave up before the close: {:?}",
        waiting.await
    );
    transport.close().await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), waiting).await;
    assert!(matches!(closed, Ok(Ok(Err(_)))), "{closed:?}");
    listener.stop();
    listener.wait().await;
    server.stop();
    server.wait().await;
}

/// Notifications a batch gathered from a connection that is then lost are
/// not handled from it: the broker delivers them again, and each is handled
/// once, from the new connection. (Handled from the lost one as well, each
/// would be handled twice, its acknowledgement failing the first time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_gathered_on_a_lost_connection_are_handled_once() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("notify_gone");
    // Seven: the three taken before the cut, their three copies delivered
    // again, and the marker. The batch is handed over full, never at its
    // timeout: not before the cut, however slow the host.
    let (listener, mut received) = info_listener_with(proxied(&[proxy.port()]).await, &topic, |builder| {
        builder.batch(7, Duration::from_secs(60))
    })
    .await;
    let notifier = Notifier::new(broker::connect().await, "compute.host-1").topics([&topic]);
    let ctx = Context::new();
    for event in ["one", "two", "three"] {
        notifier.info(&ctx, event, &json!({})).await.unwrap();
    }
    // All three are with the listener, gathering its batch: none waits in the queue.
    let raw = Raw::connect().await;
    let queue = format!("{topic}.info");
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw.message_count(&queue).await > 0 {
        assert!(Instant::now() < deadline, "the listener never took its notifications");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    proxy.cut().await;
    assert!(received.try_recv().is_err(), "the batch was handed over before the cut");
    proxy.restore();
    wait_for_health(|| listener.health(), |health| health.is_ready()).await;
    notifier.info(&ctx, "marker", &json!({})).await.unwrap();
    let mut events = Vec::new();
    while events.last().map(String::as_str) != Some("marker") {
        let event = tokio::time::timeout(Duration::from_secs(20), received.recv())
            .await
            .unwrap_or_else(|_| panic!("the marker never came; seen {events:?}"));
        events.push(event.unwrap());
    }
    for event in ["one", "two", "three"] {
        let times = events.iter().filter(|seen| *seen == event).count();
        assert_eq!(times, 1, "`{event}` handled {times} times: {events:?}");
    }
    // Counted as the batch is handed over, before its handlers run.
    let stats = listener.stats();
    assert_eq!(stats.left_to_broker, 3, "{stats:?}");
    listener.stop();
    listener.wait().await;
}

/// A started listener of `topic`'s `info` notifications, and the event
/// types it receives.
async fn info_listener(
    transport: rpc_core::Transport,
    topic: &str,
) -> (NotificationListener, tokio::sync::mpsc::UnboundedReceiver<String>) {
    info_listener_with(transport, topic, |builder| builder).await
}

/// [`info_listener`], its builder set up by `configure` too.
async fn info_listener_with(
    transport: rpc_core::Transport,
    topic: &str,
    configure: impl FnOnce(NotificationListenerBuilder) -> NotificationListenerBuilder,
) -> (NotificationListener, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (seen, received) = tokio::sync::mpsc::unbounded_channel();
    let builder = NotificationListener::builder(transport, [Target::topic(topic)]).endpoint(handler(
        [Priority::Info],
        move |notification| {
            let seen = seen.clone();
            async move {
                let _ = seen.send(notification.event_type().to_owned());
            }
        },
    ));
    let listener = configure(builder).build().unwrap();
    listener.start().await.unwrap();
    (listener, received)
}

/// Polls a server's or a listener's health until `condition` holds (10 s at most).
async fn wait_for_health(
    health: impl Fn() -> rpc_core::Health,
    condition: impl Fn(&rpc_core::Health) -> bool,
) -> rpc_core::Health {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = health();
        if condition(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "the health never changed: {health:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connection attempt given up leaves nothing behind: its socket is shut
/// at once (lapin's handshake went on holding it, on its own thread, for as
/// long as the host said nothing), in plain and over TLS, whether the
/// attempt ran out of `connect_timeout` or its caller gave up on it (a
/// timeout around the transport's connection).
#[tokio::test]
async fn an_attempt_given_up_shuts_its_socket() {
    use tokio::io::AsyncReadExt;

    for (scheme, caller_gives_up) in [("amqp", false), ("amqps", false), ("amqp", true)] {
        let case = format!("{scheme}, given up by its caller: {caller_gives_up}");
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let connect_timeout = if caller_gives_up { 30.0 } else { 0.5 };
        let url =
            format!("{scheme}://guest:guest@127.0.0.1:{port}/%2f?connect_timeout={connect_timeout}&startup_timeout=0");
        // The caller gives up before `connect_timeout`; else it waits
        // well past it (loading the system's certificates for TLS takes time).
        let patience = Duration::from_millis(if caller_gives_up { 500 } else { 10_000 });
        let connecting = tokio::time::timeout(patience, rpc_amqp::connect(&url));
        let (connecting, accepted) = tokio::join!(connecting, silent.accept());
        match connecting {
            Err(_) => assert!(caller_gives_up, "{case}: still connecting"),
            Ok(Err(error)) => assert!(error.to_string().contains("no answer within"), "{case}: {error}"),
            Ok(Ok(_)) => panic!("{case}: connected to a host that says nothing"),
        }
        let (mut socket, _) = accepted.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            let mut read = [0; 512];
            // The protocol header (or TLS's hello), then the end.
            while matches!(socket.read(&mut read).await, Ok(length) if length > 0) {}
        })
        .await;
        assert!(
            ended.is_ok(),
            "{case}: the attempt given up still holds its socket 5 s later"
        );
    }
}

/// A connection lost soon after it came up (a broker, or something in front
/// of it, that accepts and then drops it) is not taken again at once every
/// time: the delays keep growing until a connection lasts longer than the
/// next delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_connection_is_retried_with_growing_delays() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let options = format!(
        "{TEST_OPTIONS}&retry_interval=3&max_retry_interval=30&heartbeat=2&connect_timeout=2&single_connection=true"
    );
    let transport = broker::connect_url(&through(&broker::url(), &[proxy.port()], &options)).await;
    let reconnected = async |count: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while transport.driver_stats().reconnections < count || !transport.driver().is_connected() {
            assert!(Instant::now() < deadline, "no reconnection {count}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    // The first connection is lost: it lasted, and is taken again at once.
    proxy.cut().await;
    proxy.restore();
    reconnected(1).await;
    // Its replacement is lost at once: it flapped, and the next waits.
    proxy.cut().await;
    let cut = Instant::now();
    proxy.restore();
    reconnected(2).await;
    assert!(
        cut.elapsed() >= Duration::from_millis(1500),
        "reconnected {:?} after a connection that flapped",
        cut.elapsed()
    );
}
