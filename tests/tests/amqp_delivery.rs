//! Delivery modes on RabbitMQ, with servers in processes of their own that
//! the tests kill: at-least-once loses nothing, at-most-once (the default,
//! oslo.messaging's) loses what the dead server had taken and runs nothing twice.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rpc_core::{Client, Context, DeliveryMode, Error, Server, Target};
use rpc_tests::broker::{self, FAST_RECONNECT, TEST_OPTIONS};
use rpc_tests::conformance::unique_topic;
use rpc_tests::eventually;
use rpc_tests::proxy::{Proxy, through, upstream_of};
use rpc_tests::worker::{ServerProcess, TempDir, Worker, WorkerClient, read_journal};

const SERVER: &str = env!("CARGO_BIN_EXE_rpc-test-server");

/// A server killed mid-way through a stream of casts.
#[derive(Clone, Copy, Debug)]
struct Kill {
    delivery: DeliveryMode,
    /// Casts sent in all.
    casts: u64,
    /// Records the first server makes before it is killed.
    kill_after: usize,
    /// How long each record takes.
    delay_ms: u64,
    /// The servers' concurrency (and so prefetch).
    concurrency: usize,
    /// Whether the kill must come while casts are still being sent.
    while_sending: bool,
}

/// Starts a test server process for `kill` on `topic` recording into `journal`.
fn spawn_server(kill: Kill, topic: &str, journal: &Path) -> ServerProcess {
    let url = broker::url_with(TEST_OPTIONS);
    let journal = journal.to_str().expect("a UTF-8 path");
    let (delay, concurrency) = (kill.delay_ms.to_string(), kill.concurrency.to_string());
    let mut args = vec![
        "--url",
        &url,
        "--topic",
        topic,
        "--server",
        "worker",
        "--journal",
        journal,
        "--delay-ms",
        &delay,
        "--concurrency",
        &concurrency,
    ];
    if kill.delivery == DeliveryMode::AtLeastOnce {
        args.push("--at-least-once");
    }
    ServerProcess::spawn(SERVER, &args)
}

/// How casts are sent: how many, how many in flight, how fast.
#[derive(Clone, Copy, Debug)]
struct Casting {
    count: u64,
    in_flight: usize,
    /// At most this many casts start per millisecond.
    per_ms: Option<u64>,
}

/// Casts `0..count` to `record` as `casting` says, counting the casts done
/// in `done`; returns the casts that failed.
async fn cast_all(client: Client, casting: Casting, done: Arc<AtomicU64>) -> Vec<(u64, Error)> {
    let worker = WorkerClient::new(client);
    futures_util::stream::iter(0..casting.count)
        .then(|value| async move {
            if casting.per_ms.is_some_and(|per_ms| value % per_ms == 0) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            value
        })
        .map(|value| {
            let worker = worker.clone();
            async move { (value, worker.cast().record(&Context::new(), value).await) }
        })
        .buffer_unordered(casting.in_flight)
        .filter_map(|(value, result)| {
            done.fetch_add(1, Ordering::SeqCst);
            async move { result.err().map(|error| (value, error)) }
        })
        .collect()
        .await
}

/// Waits until `journals` together hold `count` distinct values, or stop growing for a second and a
/// half, or `within` passes; returns every line.
async fn wait_for_lines(journals: &[&Path], count: usize, within: Duration) -> Vec<u64> {
    wait_for(journals, |distinct| distinct.len() >= count, within).await
}

/// Waits until the distinct values in `journals` satisfy `done`, or stop
/// growing for a second and a half, or `within` passes; returns every line.
async fn wait_for(journals: &[&Path], done: impl Fn(&BTreeSet<u64>) -> bool, within: Duration) -> Vec<u64> {
    let deadline = Instant::now() + within;
    let (mut last_len, mut last_change) = (0, Instant::now());
    loop {
        let lines: Vec<u64> = journals.iter().flat_map(|journal| read_journal(journal)).collect();
        if lines.len() != last_len {
            (last_len, last_change) = (lines.len(), Instant::now());
        }
        let stalled = !lines.is_empty() && last_change.elapsed() > Duration::from_millis(1_500);
        if stalled || done(&lines.iter().copied().collect()) || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills the first server once it has recorded `kill_after` values while
/// casts are still being sent, starts a second one, and returns every value
/// recorded (with repeats) once the casts are sent and the queue drained.
async fn kill_and_restart(kill: Kill) -> Vec<u64> {
    let topic = unique_topic("kill");
    let dir = TempDir::new("rpc-kill");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let mut server = spawn_server(kill, &topic, &first);
    let client = Client::new(broker::connect().await, Target::topic(&topic)).delivery_mode(kill.delivery);
    let casting = Casting {
        count: kill.casts,
        in_flight: 64,
        per_ms: Some(4),
    };
    let sending = tokio::spawn(cast_all(client.clone(), casting, Arc::default()));

    let before_kill = wait_for_lines(&[&first], kill.kill_after, Duration::from_secs(60)).await;
    assert!(
        before_kill.len() >= kill.kill_after,
        "the first server recorded only {}",
        before_kill.len()
    );
    server.kill();
    assert!(
        !(kill.while_sending && sending.is_finished()),
        "the casts were all sent before the kill; the test proves nothing"
    );
    let restarted = spawn_server(kill, &topic, &second);
    let failed = sending.await.unwrap();
    assert!(failed.is_empty(), "casts failed: {:?}", &failed[..failed.len().min(5)]);

    let expected = usize::try_from(kill.casts).unwrap();
    wait_for_lines(&[&first, &second], expected, Duration::from_secs(60)).await;
    // Let anything still in flight land, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    restarted.stop();
    [&first, &second]
        .iter()
        .flat_map(|journal| read_journal(journal))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_loses_no_cast_when_the_server_is_killed() {
    let kill = Kill {
        delivery: DeliveryMode::AtLeastOnce,
        casts: 10_000,
        kill_after: 2_000,
        delay_ms: 2,
        concurrency: 16,
        while_sending: true,
    };
    let recorded = kill_and_restart(kill).await;
    let distinct: BTreeSet<u64> = recorded.iter().copied().collect();
    let missing: Vec<u64> = (0..kill.casts).filter(|value| !distinct.contains(value)).collect();
    let duplicates = recorded.len() - distinct.len();
    eprintln!(
        "at-least-once: {} records, {} distinct, {duplicates} duplicates, {} missing",
        recorded.len(),
        distinct.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "lost casts: {:?}",
        &missing[..missing.len().min(20)]
    );
    assert!(distinct.iter().all(|value| *value < kill.casts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_loses_what_the_killed_server_took_and_runs_nothing_twice() {
    // Slow records: the killed server's acknowledgements are surely on the
    // wire when it dies.
    let kill = Kill {
        delivery: DeliveryMode::AtMostOnce,
        casts: 1_500,
        kill_after: 200,
        delay_ms: 100,
        concurrency: 32,
        while_sending: false,
    };
    let recorded = kill_and_restart(kill).await;
    let distinct: BTreeSet<u64> = recorded.iter().copied().collect();
    let lost = usize::try_from(kill.casts).unwrap() - distinct.len();
    eprintln!("at-most-once: {} records, {lost} lost", recorded.len());
    assert_eq!(recorded.len(), distinct.len(), "a request ran twice");
    // The killed server had acknowledged its running requests, at most 32.
    assert!(
        (1..=kill.concurrency).contains(&lost),
        "expected the killed server's running requests (1 to 32) lost, got {lost}"
    );
}

/// Casts 3,000 values through a proxy that is cut a quarter of the way;
/// returns the casts that failed and the values recorded.
async fn cut_while_casting(delivery: DeliveryMode) -> (Vec<(u64, Error)>, Vec<u64>) {
    let topic = unique_topic("cut_casts");
    let dir = TempDir::new("rpc-cut-casts");
    let journal = dir.path().join("journal");
    let server = Server::builder(broker::connect().await, Target::server(&topic, "worker"))
        .endpoint(Worker::new("worker", Some(&journal), Duration::ZERO).unwrap())
        .delivery_mode(delivery)
        .build()
        .unwrap();
    server.start().await.unwrap();

    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let url = through(
        &broker::url(),
        &[proxy.port()],
        &format!("{TEST_OPTIONS}&{FAST_RECONNECT}"),
    );
    let client = Client::new(broker::connect_url(&url).await, Target::topic(&topic)).delivery_mode(delivery);
    let done = Arc::new(AtomicU64::new(0));
    let casting = Casting {
        count: CUT_CASTS,
        in_flight: 32,
        per_ms: None,
    };
    let sending = tokio::spawn(cast_all(client, casting, Arc::clone(&done)));
    while done.load(Ordering::SeqCst) < CUT_CASTS / 4 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    proxy.cut().await;
    assert!(
        !sending.is_finished(),
        "the casts were all sent before the cut; the test proves nothing"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    let failed = sending.await.unwrap();
    let unsure: BTreeSet<u64> = failed.iter().map(|(value, _)| *value).collect();
    let all_sent =
        |distinct: &BTreeSet<u64>| (0..CUT_CASTS).all(|value| unsure.contains(&value) || distinct.contains(&value));
    let recorded = wait_for(&[&journal], all_sent, Duration::from_secs(30)).await;
    server.stop();
    server.wait().await;
    (failed, recorded)
}

const CUT_CASTS: u64 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_casts_survive_a_cut_client_connection() {
    let (failed, recorded) = cut_while_casting(DeliveryMode::AtLeastOnce).await;
    assert!(failed.is_empty(), "casts failed: {:?}", &failed[..failed.len().min(5)]);
    let distinct: BTreeSet<u64> = recorded.iter().copied().collect();
    eprintln!(
        "at-least-once, cut client: {} records, {} duplicates",
        recorded.len(),
        recorded.len() - distinct.len()
    );
    assert_eq!(distinct, (0..CUT_CASTS).collect(), "lost casts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_casts_cut_off_fail_with_a_connection_error() {
    let (failed, recorded) = cut_while_casting(DeliveryMode::AtMostOnce).await;
    eprintln!(
        "at-most-once, cut client: {} casts failed, {} recorded",
        failed.len(),
        recorded.len()
    );
    assert!(!failed.is_empty(), "the cut interrupted no cast");
    for (value, error) in &failed {
        assert!(error.is_connection_error(), "cast {value}: {error:?}");
    }
    // Every cast reported sent was delivered, once.
    let distinct: BTreeSet<u64> = recorded.iter().copied().collect();
    assert_eq!(recorded.len(), distinct.len(), "a cast ran twice");
    let failed: BTreeSet<u64> = failed.iter().map(|(value, _)| *value).collect();
    let missing: Vec<u64> = (0..CUT_CASTS)
        .filter(|value| !failed.contains(value) && !distinct.contains(value))
        .collect();
    assert!(missing.is_empty(), "casts reported sent but lost: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_at_least_once_server_settles_its_running_requests() {
    let topic = unique_topic("stop_settles");
    let dir = TempDir::new("rpc-stop-settles");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let server = Server::builder(broker::connect().await, Target::server(&topic, "worker"))
        .endpoint(Worker::new("worker", Some(&first), Duration::from_secs(1)).unwrap())
        .delivery_mode(DeliveryMode::AtLeastOnce)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let worker = WorkerClient::new(Client::new(broker::connect().await, Target::topic(&topic)));
    for value in 0..50 {
        worker.cast().record(&Context::new(), value).await.unwrap();
    }
    // All 50 are running (a second each) when the server stops.
    eventually("the 50 casts running", Duration::from_secs(10), || {
        let in_flight = server.stats().in_flight;
        if in_flight == 50 { Ok(()) } else { Err(in_flight) }
    })
    .await;
    server.stop();
    server.wait().await;
    assert_eq!(read_journal(&first).len(), 50, "wait returned before the work was done");

    // They were acknowledged: a new server gets none of them again.
    let next = Server::builder(broker::connect().await, Target::server(&topic, "worker"))
        .endpoint(Worker::new("worker", Some(&second), Duration::ZERO).unwrap())
        .delivery_mode(DeliveryMode::AtLeastOnce)
        .build()
        .unwrap();
    next.start().await.unwrap();
    worker.cast().record(&Context::new(), 50).await.unwrap();
    wait_for_lines(&[&second], 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(read_journal(&second), [50], "requests ran again after a graceful stop");
    next.stop();
    next.wait().await;
}

/// Records each request it runs; `block` waits at the gate.
#[derive(Clone)]
struct Gated {
    name: &'static str,
    gate: Arc<tokio::sync::Semaphore>,
    ran: tokio::sync::mpsc::UnboundedSender<String>,
}

#[rpc_core::endpoint]
impl Gated {
    /// Records `label`; for `block`, then waits for the gate.
    async fn work(&self, _ctx: &Context, label: String) {
        let _ = self.ran.send(format!("{}:{label}", self.name));
        if label == "block" {
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
        }
    }
}

/// The next request a [`Gated`] server ran (20 s at most).
async fn next_ran(ran: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), ran.recv())
        .await
        .expect("a request ran within 20 s")
        .expect("the servers are alive")
}

/// At-least-once: a request a server took, but had not started when its
/// connection was lost, is the broker's again (which delivers it to another
/// server); the server leaves it, and it runs once. (Run from the lost
/// connection as well, it would run on both servers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_requests_taken_on_a_lost_connection_run_once() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("alo_gone");
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (ran_tx, mut ran) = tokio::sync::mpsc::unbounded_channel();
    let server = |transport, name| {
        let endpoint = Gated {
            name,
            gate: Arc::clone(&gate),
            ran: ran_tx.clone(),
        };
        Server::builder(transport, Target::server(&topic, name))
            .endpoint(endpoint)
            .executor(rpc_core::Executor::Sequential)
            .delivery_mode(DeliveryMode::AtLeastOnce)
            .build()
            .unwrap()
    };
    let options = format!("{TEST_OPTIONS}&{FAST_RECONNECT}");
    let a_transport = broker::connect_url(&through(&broker::url(), &[proxy.port()], &options)).await;
    let a = server(a_transport.clone(), "a");
    a.start().await.unwrap();
    let client = Client::new(broker::connect().await, Target::topic(&topic));
    let to_a = GatedClient::new(client.prepare().server("a"));
    let any = GatedClient::new(client);
    let ctx = Context::new();

    // `a` runs `block` (from its own queue) and takes `second` (from the
    // topic's), which waits for `block` to finish: a sequential server.
    to_a.cast().work(&ctx, "block".to_owned()).await.unwrap();
    assert_eq!(next_ran(&mut ran).await, "a:block");
    any.cast().work(&ctx, "second".to_owned()).await.unwrap();
    let raw = rpc_tests::raw::Raw::connect().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw.message_count(&topic).await > 0 {
        assert!(Instant::now() < deadline, "`a` never took `second`");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // `a` loses its connection: the broker gives `second` to `b`.
    let b = server(broker::connect().await, "b");
    b.start().await.unwrap();
    proxy.cut().await;
    assert_eq!(next_ran(&mut ran).await, "b:second");
    // The broker saw the loss; `a` sees it too (it may lag: each
    // connection's I/O thread reads the closed socket when it gets to it).
    // The connection that consumes is the one that matters, and the
    // transport reads as disconnected as soon as either is lost: wait
    // until `a` consumes none of its queues.
    eventually(
        "`a` to see its consuming connection lost",
        Duration::from_secs(10),
        || {
            let queues = a.health().queues;
            if queues.iter().any(|queue| queue.consuming) {
                Err(queues)
            } else {
                Ok(())
            }
        },
    )
    .await;
    // `block` ends on `a`, which turns to the `second` it had taken.
    gate.add_permits(10);
    proxy.restore();
    to_a.cast().work(&ctx, "marker".to_owned()).await.unwrap();
    let mut seen = vec!["a:block".to_owned(), "b:second".to_owned()];
    while seen.last().map(String::as_str) != Some("a:marker") {
        seen.push(next_ran(&mut ran).await);
    }
    let second = seen.iter().filter(|label| label.ends_with(":second")).count();
    assert_eq!(second, 1, "`second` ran {second} times: {seen:?}");
    // Counted where an operator looks.
    assert_eq!((a.stats().left_to_broker, b.stats().left_to_broker), (1, 0));
    a.stop();
    b.stop();
    a.wait().await;
    b.wait().await;
}
