//! The `ops-server` example on the local RabbitMQ: after a few calls, its
//! Prometheus endpoint, scraped over HTTP, shows the documented series
//! (requests, errors by code, latency histograms, in-flight gauge), and
//! `/healthz` says ready; its policy refuses `stop` to a non-admin and
//! oslo's ping answers `pong`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rpc_core::{Client, Context, ErrorCode, PING_METHOD, Target, json};
use rpc_examples::seed::{ServerControlClient, TestEndpointClient};
use rpc_tests::broker::{TEST_OPTIONS, url_with};
use rpc_tests::prometheus::sample;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The example's process, killed when dropped.
struct OpsServer {
    child: Child,
    address: String,
}

impl OpsServer {
    fn spawn(topic: &str) -> OpsServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ops-server"))
            .args(["--transport-url", &url_with(TEST_OPTIONS)])
            .args(["--topic", topic, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ops-server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("ops-server says where it listens");
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        OpsServer { child, address }
    }

    /// GETs `path`: the status line and the body.
    async fn get(&self, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_are_scraped_over_http() {
    // This process records its client's series.
    let client_metrics = rpc_examples::probe::install_prometheus().unwrap();
    let topic = format!("ops_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let ops = OpsServer::spawn(&topic);
    let (status, health) = ops.get("/healthz").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["ready"], true, "{health}");
    assert_eq!(health["queues"].as_array().unwrap().len(), 3, "{health}");

    let transport = rpc_examples::open_transport(&rpc_tests::broker::url()).await.unwrap();
    let client = Client::new(transport, Target::topic(&topic)).timeout(Duration::from_secs(10));
    let ctx = Context::new();
    let test = TestEndpointClient::new(client.clone());
    for i in 0..3 {
        assert_eq!(test.test(&ctx, format!("arg{i}")).await.unwrap(), format!("arg{i}"));
    }
    let pong: String = client.call(&ctx, PING_METHOD, json!({})).await.unwrap();
    assert_eq!(pong, "pong");
    let missing = client.call::<()>(&ctx, "no_such_thing", json!({})).await.unwrap_err();
    assert_eq!(missing.remote().map(|e| e.code()), Some(ErrorCode::NoSuchMethod));
    let refused = ServerControlClient::new(client.clone()).stop(&ctx).await.unwrap_err();
    assert_eq!(refused.remote().map(|e| e.code()), Some(ErrorCode::Forbidden));

    let (status, metrics) = ops.get("/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let of_topic = format!("topic=\"{topic}\"");
    let test_calls = [of_topic.as_str(), "method=\"test\"", "namespace=\"\"", "kind=\"call\""];
    assert_eq!(
        sample(&metrics, "rpc_server_requests_total", &test_calls),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "rpc_server_requests_total",
            &[&of_topic, "method=\"oslo_rpc_server_ping\"", "kind=\"call\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    // A method no endpoint has is counted, labelled as unknown.
    let unknown = [of_topic.as_str(), "method=\"(unknown)\"", "code=\"no_such_method\""];
    assert_eq!(
        sample(&metrics, "rpc_server_errors_total", &unknown),
        Some(1.0),
        "{metrics}"
    );
    assert!(!metrics.contains("no_such_thing"), "{metrics}");
    let forbidden = [
        of_topic.as_str(),
        "namespace=\"control\"",
        "method=\"stop\"",
        "code=\"forbidden\"",
    ];
    assert_eq!(
        sample(&metrics, "rpc_server_errors_total", &forbidden),
        Some(1.0),
        "{metrics}"
    );
    let latency = [of_topic.as_str(), "method=\"test\""];
    assert_eq!(
        sample(&metrics, "rpc_server_request_duration_seconds_count", &latency),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "rpc_server_request_duration_seconds_bucket",
            &[&of_topic, "method=\"test\"", "le=\"+Inf\""]
        ),
        Some(3.0),
        "{metrics}"
    );
    // A delivery is settled after its reply: the gauge may lag the last
    // answer by a moment.
    let mut in_flight = sample(&metrics, "rpc_server_in_flight", &[&of_topic]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while in_flight != Some(0.0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        in_flight = sample(&ops.get("/metrics").await.1, "rpc_server_in_flight", &[&of_topic]);
    }
    assert_eq!(in_flight, Some(0.0), "{metrics}");

    // The client's side of the same calls.
    let client_side = client_metrics.render();
    let test_calls = [of_topic.as_str(), "method=\"test\"", "kind=\"call\""];
    assert_eq!(
        sample(&client_side, "rpc_client_requests_total", &test_calls),
        Some(3.0),
        "{client_side}"
    );
    let forbidden = [of_topic.as_str(), "method=\"stop\"", "code=\"forbidden\""];
    assert_eq!(
        sample(&client_side, "rpc_client_errors_total", &forbidden),
        Some(1.0),
        "{client_side}"
    );
    assert_eq!(
        sample(
            &client_side,
            "rpc_client_call_duration_seconds_count",
            &[&of_topic, "method=\"test\""]
        ),
        Some(3.0),
        "{client_side}"
    );
    assert_eq!(
        sample(&client_side, "rpc_client_in_flight", &[]),
        Some(0.0),
        "{client_side}"
    );

    let (status, _) = ops.get("/livez").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _) = ops.get("/nothing").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

/// SIGTERM (what Kubernetes, Docker and systemd send) stops the server as
/// Ctrl-C does: it finishes its work in flight and exits 0. Nothing handled
/// it: the process died at once (status 143), its work unfinished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_once_its_work_is_done() {
    let topic = format!("ops_term_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut ops = OpsServer::spawn(&topic);
    let transport = rpc_examples::open_transport(&rpc_tests::broker::url()).await.unwrap();
    let client = Client::new(transport, Target::topic(&topic)).timeout(Duration::from_secs(20));
    let ctx = Context::new();
    let test = TestEndpointClient::new(client.clone());
    assert_eq!(test.test(&ctx, "before".into()).await.unwrap(), "before");
    let terminated = Command::new("kill")
        .args(["-TERM", &ops.child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = ops.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ops-server did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// A probe connection that sends nothing is closed after its timeout, and
/// the probes answer meanwhile: it held a task and a descriptor for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_probe_connection_is_closed() {
    let topic = format!("ops_idle_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let ops = OpsServer::spawn(&topic);
    let mut idle = tokio::net::TcpStream::connect(&ops.address).await.unwrap();
    let (status, _) = ops.get("/livez").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(rpc_examples::probe::CONNECTION_TIMEOUT * 3, idle.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
}

/// `--help` shows that `RPC_TRANSPORT_URL` is read, not its value: the
/// broker's password was printed with it.
#[test]
fn help_hides_the_transport_urls_password() {
    for program in [
        env!("CARGO_BIN_EXE_ops-server"),
        env!("CARGO_BIN_EXE_notify-send"),
        env!("CARGO_BIN_EXE_notify-listen"),
    ] {
        let output = Command::new(program)
            .arg("--help")
            .env("RPC_TRANSPORT_URL", "amqp://ops:s3cr3t@broker:5672/")
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&output.stdout);
        assert!(shown.contains("RPC_TRANSPORT_URL"), "{program}: {shown}");
        assert!(!shown.contains("s3cr3t"), "{program}: {shown}");
    }
}
