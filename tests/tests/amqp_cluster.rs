//! A real three-node RabbitMQ cluster of the test's own (private nodes on
//! free ports, one cookie, `join_cluster`): what survives the loss of a
//! node, with quorum queues and with classic ones.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use rpc_core::{Client, Context, DeliveryMode, Retry, Server, Target};
use rpc_tests::broker::{self, FAST_RECONNECT as FAST};
use rpc_tests::conformance::unique_topic;
use rpc_tests::private_broker::{PrivateBroker, PrivateCluster, Release};
use rpc_tests::worker::{TempDir, Worker, WorkerClient, read_journal};

/// The node that leads quorum queue `queue`.
fn leader(cluster: &PrivateCluster, queue: &str) -> usize {
    let listing = cluster.nodes[0].rabbitmqctl(&["list_queues", "name", "leader", "--formatter", "json", "-q"]);
    let queues: serde_json::Value = serde_json::from_str(&listing).expect("rabbitmqctl's JSON");
    let leader = queues
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["name"] == queue)
        .and_then(|entry| entry["leader"].as_str())
        .unwrap_or_else(|| panic!("no leader for `{queue}` in {listing}"))
        .to_owned();
    cluster
        .nodes
        .iter()
        .position(|node| node.name() == leader)
        .unwrap_or_else(|| panic!("the leader {leader} is not a node of the cluster"))
}

/// One call of the steady load: when it started, how long it took, whether
/// it succeeded.
#[derive(Debug, Clone, Copy)]
struct Call {
    started: Instant,
    took: Duration,
    ok: bool,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls and at-least-once casts, without pause, until `stop`.
fn steady_load(
    worker: WorkerClient,
    caster: WorkerClient,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<Vec<Call>>, tokio::task::JoinHandle<Vec<u64>>) {
    let calls = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut calls = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = worker.echo(&Context::new(), "ping".into()).await.is_ok();
                let took = started.elapsed();
                calls.push(Call { started, took, ok });
                if !ok {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            calls
        }
    });
    let casts = tokio::spawn(async move {
        let mut confirmed = Vec::new();
        let mut next = 0u64;
        while !stop.load(Ordering::Relaxed) {
            // Eight at a time: each returns once the broker confirmed it.
            let batch: Vec<u64> = (next..next + 8).collect();
            next += 8;
            let ctx = Context::new();
            let results = futures_util::future::join_all(batch.iter().map(|value| {
                let caster = &caster;
                let ctx = &ctx;
                async move { caster.cast().record(ctx, *value).await }
            }))
            .await;
            for (value, result) in batch.into_iter().zip(results) {
                if result.is_ok() {
                    confirmed.push(value);
                }
            }
        }
        confirmed
    });
    (calls, casts)
}

/// Waits until every value of `confirmed` is in the journal, at most `within`.
async fn all_recorded(journal: &std::path::Path, confirmed: &[u64], within: Duration) -> BTreeSet<u64> {
    let deadline = Instant::now() + within;
    loop {
        let recorded: BTreeSet<u64> = read_journal(journal).into_iter().collect();
        let missing: Vec<u64> = confirmed
            .iter()
            .filter(|value| !recorded.contains(value))
            .copied()
            .collect();
        if missing.is_empty() {
            return recorded;
        }
        assert!(
            Instant::now() < deadline,
            "{} confirmed casts never handled, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Quorum queues, a server and a client on the cluster, calls and
/// at-least-once casts streaming; the node leading the queues is killed
/// (SIGKILL). No confirmed cast is lost; every call succeeds or fails fast
/// (none waits for its timeout); both sides move to surviving nodes, and
/// service resumes within five seconds (measured: 0.2 to 0.6 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_survive_the_loss_of_their_leader() {
    let cluster = PrivateCluster::start(3, Release::Installed);
    let url = cluster.url(&format!(
        "{FAST}&rabbit_quorum_queue=true&rabbit_transient_quorum_queue=true"
    ));
    let topic = unique_topic("cluster_quorum");
    let dir = TempDir::new("rpc-cluster");
    let journal = dir.path().join("journal");
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "s1"))
        .endpoint(Worker::new("s1", Some(&journal), Duration::ZERO).unwrap())
        .delivery_mode(DeliveryMode::AtLeastOnce)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(broker::connect_url(&url).await, Target::topic(&topic)).timeout(CALL_TIMEOUT);
    let worker = WorkerClient::new(client.clone());
    let caster = WorkerClient::new(
        client
            .prepare()
            .delivery_mode(DeliveryMode::AtLeastOnce)
            .retry(Retry::Forever),
    );
    assert_eq!(worker.echo(&Context::new(), "up".into()).await.unwrap(), "up");

    let stop = Arc::new(AtomicBool::new(false));
    let (calls, casts) = steady_load(worker.clone(), caster, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = leader(&cluster, &topic);
    let killed_at = Instant::now();
    cluster.nodes[victim].kill();
    eprintln!("killed {} (leader of `{topic}`)", cluster.nodes[victim].name());
    // Until a call that started after the kill succeeds: the recovery time.
    let recovery = loop {
        let started = Instant::now();
        match worker.echo(&Context::new(), "back?".into()).await {
            Ok(_) => break started.duration_since(killed_at),
            Err(error) => {
                eprintln!("{:?} after the kill: {error}", killed_at.elapsed());
                assert!(
                    started.elapsed() < CALL_TIMEOUT - Duration::from_secs(1),
                    "a call failed slowly: {error}"
                );
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "no service 60 s after the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let calls = calls.await.unwrap();
    let confirmed = casts.await.unwrap();

    eprintln!(
        "service resumed {recovery:?} after the kill; {} calls ({} failed), {} casts confirmed",
        calls.len(),
        calls.iter().filter(|call| !call.ok).count(),
        confirmed.len()
    );
    assert!(recovery < Duration::from_secs(5), "recovery took {recovery:?}");
    // A request is taken again from the queue if its server lost it, and a
    // reply lost with a connection or refused by the reply queue between
    // leaders is published again: no call waits for its timeout.
    for call in &calls {
        assert!(
            call.ok || call.took < CALL_TIMEOUT - Duration::from_secs(1),
            "a call failed slowly: {call:?}"
        );
    }
    assert!(
        calls.iter().any(|call| call.ok && call.started > killed_at),
        "no call succeeded after the kill"
    );
    // Every confirmed cast was handled (some maybe twice: at-least-once).
    all_recorded(&journal, &confirmed, Duration::from_secs(30)).await;
    assert!(
        confirmed.len() > 16,
        "too few casts to mean anything: {}",
        confirmed.len()
    );
    eprintln!("client transport: {:?}", client.transport().driver_stats());
    server.stop();
    server.wait().await;
}

/// A classic queue lives on one node: when that node goes, the consumers of
/// the queue (connected elsewhere) are cancelled by the broker. The server
/// counts it, keeps trying, and consumes the queue again once its node is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_queue_on_a_lost_node_is_consumed_again_when_it_returns() {
    let cluster = PrivateCluster::start(2, Release::Installed);
    let topic = unique_topic("cluster_classic");
    // The queue's home is the second node: declared there first, with the
    // flags our servers use.
    let home = &cluster.nodes[1];
    let connection = Connection::connect(&home.url(""), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            topic.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    drop(connection);
    // The server and the client are connected to the first node only.
    let first = &cluster.nodes[0];
    let server_transport = broker::connect_url(&first.url(FAST)).await;
    let server = Server::builder(server_transport.clone(), Target::server(&topic, "s1"))
        .endpoint(Worker::new("s1", None, Duration::ZERO).unwrap())
        .build()
        .unwrap();
    server.start().await.unwrap();
    let worker = WorkerClient::new(
        Client::new(broker::connect_url(&first.url(FAST)).await, Target::topic(&topic)).timeout(CALL_TIMEOUT),
    );
    assert_eq!(worker.echo(&Context::new(), "up".into()).await.unwrap(), "up");

    home.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server_transport.driver_stats().consumer_cancels == 0 {
        assert!(Instant::now() < deadline, "the cancel was not noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The queue is gone with its node: calls to the topic are not served.
    assert!(worker.echo(&Context::new(), "gone?".into()).await.is_err());
    home.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match worker.echo(&Context::new(), "back".into()).await {
            Ok(echoed) => {
                assert_eq!(echoed, "back");
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "not consumed again: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server_transport.driver_stats().consumer_cancels >= 1);
    server.stop();
    server.wait().await;
}

/// Two separate nodes (not a cluster) in one URL: when the first dies
/// (SIGKILL), both sides move to the second and are served there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_node_url_fails_over_to_the_second_node() {
    let (first, second) = (PrivateBroker::start(None), PrivateBroker::start(None));
    let url = format!(
        "amqp://guest:guest@127.0.0.1:{},guest:guest@127.0.0.1:{}/%2f?{FAST}",
        first.port(),
        second.port()
    );
    let topic = unique_topic("two_nodes");
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "s1"))
        .endpoint(Worker::new("s1", None, Duration::ZERO).unwrap())
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client_transport = broker::connect_url(&url).await;
    let worker = WorkerClient::new(Client::new(client_transport.clone(), Target::topic(&topic)).timeout(CALL_TIMEOUT));
    assert_eq!(worker.whoami(&Context::new()).await.unwrap(), "s1");
    let killed_at = Instant::now();
    first.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match worker.whoami(&Context::new()).await {
            Ok(name) => {
                assert_eq!(name, "s1");
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "no failover: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "served by the second node {:?} after the first died",
        killed_at.elapsed()
    );
    assert!(client_transport.driver_stats().reconnections >= 1);
    server.stop();
    server.wait().await;
}
