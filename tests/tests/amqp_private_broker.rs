//! Tests that need a broker of their own: a RabbitMQ node the test starts on
//! free ports, stops and restarts (never the shared broker), with or
//! without TLS.

use std::path::Path;
use std::time::{Duration, Instant};

use rpc_core::{Client, Context, DeliveryMode, Error, Server, Target};
use rpc_tests::api::CalculatorClient;
use rpc_tests::broker;
use rpc_tests::conformance::{start_server, unique_topic};
use rpc_tests::private_broker::{PrivateBroker, make_certificates};
use rpc_tests::worker::{TempDir, Worker, WorkerClient, read_journal};

use rpc_tests::broker::FAST_RECONNECT as FAST;

/// Calls `add` until it succeeds, for at most `within`; returns how long it took.
async fn until_served(calc: &CalculatorClient, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match calc.add(&Context::new(), 20, 22).await {
            Ok(sum) => {
                assert_eq!(sum, 42);
                return started.elapsed();
            }
            // While the two sides come back, a request may find no queue yet.
            Err(error)
                if started.elapsed() < within
                    && (error.is_connection_error() || matches!(error, Error::NoListener { .. })) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("not served again after {:?}: {error}", started.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_recover_when_the_broker_restarts() {
    let node = PrivateBroker::start(None);
    let url = node.url(FAST);
    let topic = unique_topic("broker_restart");
    let (server, calculator) = start_server(broker::connect_url(&url).await, &topic, "s1").await;
    let client_transport = broker::connect_url(&url).await;
    let calc = CalculatorClient::new(
        Client::new(client_transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(30)),
    );
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);

    let waiting = tokio::spawn({
        let calc = calc.clone();
        async move { calc.sleep(&Context::new(), 20_000).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped_at = Instant::now();
    node.stop();
    let result = waiting.await.unwrap();
    assert!(
        matches!(&result, Err(error) if error.is_connection_error()),
        "a call waiting on the stopped broker: {result:?}"
    );
    // `stop` returns once the node is down, after it closed the connections.
    assert!(
        stopped_at.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopped_at.elapsed()
    );
    assert_eq!(client_transport.pending_calls(), 0);

    node.restart();
    let took = until_served(&calc, Duration::from_secs(20)).await;
    eprintln!("served again {took:?} after the broker came back");
    assert!(server.handle().is_running());
    assert_eq!(calc.whoami(&Context::new()).await.unwrap(), "s1");
    assert!(calculator.observed.handled.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_at_least_once_casts_survive_a_broker_restart() {
    let node = PrivateBroker::start(None);
    let url = node.url(&format!("{FAST}&amqp_durable_queues=true"));
    let topic = unique_topic("durable");
    let dir = TempDir::new("rpc-durable");
    let journal = dir.path().join("journal");
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "worker"))
        .endpoint(Worker::new("worker", Some(&journal), Duration::ZERO).unwrap())
        .delivery_mode(DeliveryMode::AtLeastOnce)
        .build()
        .unwrap();
    // Declare the queues, then stop consuming: casts wait in the queue.
    server.start().await.unwrap();
    server.stop();
    server.wait().await;
    let worker = WorkerClient::new(
        Client::new(broker::connect_url(&url).await, Target::topic(&topic)).delivery_mode(DeliveryMode::AtLeastOnce),
    );
    for value in 0..200 {
        worker.cast().record(&Context::new(), value).await.unwrap();
    }

    node.stop();
    node.restart();
    // The client's transport reconnects by itself; so does the server's.
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(error) = worker.cast().record(&Context::new(), 200).await {
        assert!(Instant::now() < deadline, "the client did not recover: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.start().await.unwrap();
    let recorded = wait_for_journal(&journal, 201, Duration::from_secs(20)).await;
    let mut distinct = recorded.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct, (0..=200).collect::<Vec<u64>>(), "casts lost in the restart");
    server.stop();
    server.wait().await;
}

/// The client's own guarantee, across a crash: at-least-once casts stream
/// while the broker is killed (SIGKILL, nothing closed or flushed) and
/// restarted; casts interrupted before their confirm are published again
/// once reconnected, so every cast returns success and every value is
/// handled (a value may be handled twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_casts_in_flight_survive_a_broker_crash() {
    const CASTS: u64 = 2_000;
    let node = PrivateBroker::start(None);
    let url = node.url(&format!("{FAST}&amqp_durable_queues=true"));
    let topic = unique_topic("crash");
    let dir = TempDir::new("rpc-crash");
    let journal = dir.path().join("journal");
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "worker"))
        .endpoint(Worker::new("worker", Some(&journal), Duration::ZERO).unwrap())
        .delivery_mode(DeliveryMode::AtLeastOnce)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let worker = WorkerClient::new(
        Client::new(broker::connect_url(&url).await, Target::topic(&topic))
            .delivery_mode(DeliveryMode::AtLeastOnce)
            .retry(rpc_core::Retry::Forever),
    );
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let casting = tokio::spawn({
        let sent = std::sync::Arc::clone(&sent);
        async move {
            // 32 in flight at a time.
            let mut failures = Vec::new();
            for chunk in (0..CASTS).collect::<Vec<u64>>().chunks(32) {
                let results = futures_util::future::join_all(
                    chunk
                        .iter()
                        .map(|value| async { (*value, worker.cast().record(&Context::new(), *value).await) }),
                )
                .await;
                for (value, result) in results {
                    if let Err(error) = result {
                        failures.push((value, error.to_string()));
                    }
                }
                sent.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            failures
        }
    });
    while sent.load(std::sync::atomic::Ordering::Relaxed) < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    node.restart();
    let failures = tokio::time::timeout(Duration::from_secs(60), casting)
        .await
        .expect("the casts finish once the broker is back")
        .unwrap();
    assert!(failures.is_empty(), "casts failed across the crash: {failures:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (recorded, distinct) = loop {
        let recorded = read_journal(&journal);
        let mut distinct = recorded.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() as u64 == CASTS || Instant::now() > deadline {
            break (recorded, distinct);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let missing: Vec<u64> = (0..CASTS)
        .filter(|value| distinct.binary_search(value).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} casts lost in the crash: {missing:?}",
        missing.len()
    );
    eprintln!(
        "{} handled, {} distinct, after a broker crash mid-stream",
        recorded.len(),
        distinct.len()
    );
    server.stop();
    server.wait().await;
}

async fn wait_for_journal(journal: &Path, count: usize, within: Duration) -> Vec<u64> {
    let deadline = Instant::now() + within;
    loop {
        let lines = read_journal(journal);
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_with_the_right_authority_and_refuses_a_bad_certificate() {
    let dir = TempDir::new("rpc-tls");
    let good = make_certificates(dir.path(), "good");
    let other = make_certificates(dir.path(), "other");
    let node = PrivateBroker::start(Some(&good));
    let trusted = node.tls_url(&format!("{FAST}&ssl_ca_file={}", good.ca.display()));

    // Server and client both over TLS.
    let topic = unique_topic("tls");
    let (server, _) = start_server(broker::connect_url(&trusted).await, &topic, "s1").await;
    let calc = CalculatorClient::new(Client::new(broker::connect_url(&trusted).await, Target::topic(&topic)));
    assert_eq!(calc.add(&Context::new(), 2, 3).await.unwrap(), 5);

    // A certificate from an authority the client does not trust is refused,
    // at once and with a clear error.
    let secret = "s3cret-tls";
    let with_secret = |url: String| url.replace("guest:guest@", &format!("guest:{secret}@"));
    for (url, case) in [
        (
            node.tls_url(&format!("{FAST}&ssl_ca_file={}", other.ca.display())),
            "another authority",
        ),
        (node.tls_url(FAST), "no authority but the system's"),
    ] {
        let started = Instant::now();
        let error = rpc_amqp::connect(&with_secret(url)).await.expect_err(case);
        let text = format!("{error} / {error:?}");
        eprintln!("{case}: {error}");
        assert!(error.is_connection_error(), "{case}: {error:?}");
        assert!(text.to_lowercase().contains("certificate"), "{case}: {text}");
        assert!(
            !text.contains(&format!(":{secret}@")),
            "{case}: the password shows: {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{case}: took {:?}",
            started.elapsed()
        );
    }
    // TLS spoken to the plain port fails too, without hanging.
    let plain_port = format!("amqps://guest:guest@localhost:{}/%2f?{FAST}", node.port());
    let started = Instant::now();
    let error = rpc_amqp::connect(&plain_port).await.expect_err("TLS to a plain port");
    assert!(error.is_connection_error(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    server.stop();
    server.wait().await;
}

/// A memory alarm blocks publishers: a server still acknowledges what it
/// runs (it consumes on a connection of its own, which the broker keeps
/// reading) and stops cleanly; a cast fails within its time with a typed
/// error instead of hanging; service resumes when the alarm clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_alarm_blocks_publishers_but_not_acknowledgements() {
    use rpc_core::TransportErrorKind;
    use rpc_tests::api::Calculator;

    let node = PrivateBroker::start(None);
    let url = node.url(&format!("{FAST}&publish_timeout=2&reply_retry_timeout=1"));
    let topic = unique_topic("alarm");
    let server_transport = broker::connect_url(&url).await;
    let server = Server::builder(server_transport.clone(), Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .delivery_mode(DeliveryMode::AtLeastOnce)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client_transport = broker::connect_url(&url).await;
    let calc = CalculatorClient::new(
        Client::new(client_transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(5)),
    );
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);

    // A request is running when the alarm goes off.
    let running = tokio::spawn({
        let calc = calc.clone();
        async move { calc.sleep(&Context::new(), 1_500).await }
    });
    rpc_tests::eventually("the request running", Duration::from_secs(10), || {
        let in_flight = server.stats().in_flight;
        if in_flight == 1 { Ok(()) } else { Err(in_flight) }
    })
    .await;
    node.rabbitmqctl(&["set_vm_memory_high_watermark", "absolute", "1"]);

    // A cast now fails within its publish time, with a typed error.
    let started = Instant::now();
    let cast = calc.cast().add(&Context::new(), 2, 2).await;
    let kind = match &cast {
        Err(Error::Transport(error)) => error.kind(),
        other => panic!("a cast during the alarm: {other:?}"),
    };
    assert!(
        matches!(kind, TransportErrorKind::Blocked | TransportErrorKind::Unconfirmed),
        "{cast:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(client_transport.driver_stats().blocked, "the block was not seen");
    // So does a notification to a queue not declared yet: the declaration
    // is within the publish's time too.
    let notifier = rpc_core::notify::Notifier::new(client_transport.clone(), "alarm.host")
        .topics([format!("{topic}_notifications")]);
    let started = Instant::now();
    let notified = tokio::time::timeout(
        Duration::from_secs(10),
        notifier.info(&Context::new(), "during.alarm", &rpc_core::json!({})),
    )
    .await
    .expect("a notification during the alarm gives up in time");
    assert!(
        matches!(&notified, Err(Error::Transport(error)) if error.kind() == TransportErrorKind::Blocked),
        "{notified:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    // The running request finishes (its reply cannot get out) and is
    // acknowledged on the consuming connection: the server drains and stops.
    let _ = running.await.unwrap();
    server.stop();
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the server stops during the alarm");
    let unacknowledged = node.rabbitmqctl(&["list_queues", "name", "messages_unacknowledged", "-q"]);
    let line = unacknowledged
        .lines()
        .find(|line| line.split_whitespace().next() == Some(topic.as_str()))
        .unwrap_or_else(|| panic!("no queue `{topic}`: {unacknowledged}"));
    assert!(line.ends_with("\t0"), "left unacknowledged: {line}");

    // The alarm clears: service resumes.
    node.rabbitmqctl(&["set_vm_memory_high_watermark", "0.4"]);
    server.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match calc.add(&Context::new(), 3, 4).await {
            Ok(sum) => {
                assert_eq!(sum, 7);
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "no service after the alarm: {error}"),
        }
    }
    assert!(!client_transport.driver_stats().blocked);
    server.stop();
    server.wait().await;
}

/// Answers with as many bytes as asked: a small request, a big reply.
struct Blob;

#[rpc_core::endpoint]
impl Blob {
    async fn blob(&self, _ctx: &Context, size: usize) -> String {
        "x".repeat(size)
    }
}

/// A reply the broker refuses for good (over the broker's own
/// `max_message_size`, below this transport's) is not published again for
/// the reply window: it would be refused at every try, each closing a
/// channel and interrupting the publishes in flight on it. Its caller times
/// out; the server serves on. (Every refusal was tried again, as a quorum
/// queue's nack between leaders is.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_broker_refuses_for_good_is_not_sent_again() {
    use rpc_tests::logs::Logs;

    let logs = Logs::global();
    let node = PrivateBroker::start_with(rpc_tests::private_broker::NodeOptions {
        config: "max_message_size = 65536\n".to_owned(),
        ..Default::default()
    });
    let url = node.url(FAST);
    let topic = unique_topic("refused_reply");
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "s1"))
        .endpoint(Blob)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(broker::connect_url(&url).await, Target::topic(&topic)).timeout(Duration::from_secs(3));
    let blobs = BlobClient::new(client);
    let ctx = Context::new();
    assert_eq!(blobs.blob(&ctx, 10).await.unwrap().len(), 10);

    let refused = blobs.blob(&ctx, 100_000).await;
    assert!(matches!(refused, Err(Error::Timeout { .. })), "{refused:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        if let Some(line) = logs.lines_with(&["cannot send a reply", "max size"]).pop() {
            break line;
        }
        assert!(Instant::now() < deadline, "the refused reply was not reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reply_to = failed
        .split_whitespace()
        .find_map(|field| field.strip_prefix("reply_to="))
        .expect("the reply queue is named");
    let again = logs.lines_with(&["publishing a reply again", reply_to]);
    assert!(again.is_empty(), "published again: {again:#?}");
    assert_eq!(blobs.blob(&ctx, 10).await.unwrap().len(), 10);
    server.stop();
    server.wait().await;
}
