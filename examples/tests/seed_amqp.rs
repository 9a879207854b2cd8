//! The seed's programs over the local RabbitMQ (`RPC_TEST_AMQP_URL`), with
//! each other and with Python equivalents of the blog's programs
//! (`tests/python/seed_*.py`, real oslo.messaging 18.3.1), in both pairings.
//!
//! Every scenario uses the seed's topic `test`, so they run one at a time.

use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lapin::options::QueueDeleteOptions;
use rpc_tests::interop::{PythonServer, command};
use rpc_tests::process::KillOnDrop;

static SEED_TOPIC: Mutex<()> = Mutex::new(());

fn broker_url() -> String {
    rpc_tests::broker::url()
}

/// Deletes the seed's queues: a `stop` cast left by an earlier run would stop
/// a new server at once (casts do not expire), and the Python seed server
/// declares them as oslo does by default (not durable), which a queue left
/// by a Rust server (durable, safe on RabbitMQ 4) refuses.
fn purge_seed_queues() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connection = lapin::Connection::connect(&broker_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap_or_else(|error| {
                panic!("cannot reach the test broker: {error}; start RabbitMQ or run scripts/test.sh")
            });
        for queue in ["test", "test.server1"] {
            let channel = connection.create_channel().await.unwrap();
            // A queue that does not exist yet is fine.
            let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        }
        let _ = connection.close(200, "done".into()).await;
    });
}

/// Runs a client until it finds the server listening (it fails at once with
/// "no server is listening" while the server declares its queues).
fn run_client(mut client: impl FnMut() -> Output) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = client();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let not_yet = stderr.contains("no server is listening") || stderr.contains("MessagingTimeout");
        if output.status.success() || !not_yet || Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_exit(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} did not exit after `stop`");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The seed's server, killed if its test fails before it exits.
fn rpc_server() -> KillOnDrop {
    KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_rpc-server"))
            .args(["--transport-url", &broker_url()])
            .stderr(Stdio::null())
            .spawn()
            .expect("rpc-server starts"),
    )
}

fn assert_printed_myarg(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "myarg\n", "{what}");
}

#[test]
fn rust_client_and_rust_server() {
    let _topic = SEED_TOPIC.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    purge_seed_queues();
    let mut server = rpc_server();
    let output = run_client(|| {
        Command::new(env!("CARGO_BIN_EXE_rpc-client"))
            .args(["--transport-url", &broker_url()])
            .output()
            .expect("rpc-client runs")
    });
    assert_printed_myarg(&output, "rpc-client");
    assert!(wait_exit(server.get_mut(), "rpc-server").success());
}

#[test]
fn quickstart_on_rabbitmq_by_url_alone() {
    let _topic = SEED_TOPIC.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    purge_seed_queues();
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(["--transport-url", &broker_url()])
        .output()
        .expect("quickstart runs");
    assert_printed_myarg(&output, "quickstart");
}

#[test]
fn python_seed_client_and_rust_server() {
    let _topic = SEED_TOPIC.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    purge_seed_queues();
    let mut server = rpc_server();
    let output = run_client(|| command("seed_client.py").output().expect("the Python seed client runs"));
    assert_printed_myarg(&output, "seed_client.py");
    assert!(wait_exit(server.get_mut(), "rpc-server").success());
}

#[test]
fn rust_client_and_python_seed_server() {
    let _topic = SEED_TOPIC.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    purge_seed_queues();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut server = runtime.block_on(PythonServer::start("seed_server.py", &[]));
    let url = format!("{}?codec=oslo", broker_url());
    let output = run_client(|| {
        Command::new(env!("CARGO_BIN_EXE_rpc-client"))
            .args(["--transport-url", &url])
            .output()
            .expect("rpc-client runs")
    });
    assert_printed_myarg(&output, "rpc-client ?codec=oslo");
    let status = runtime.block_on(server.wait_exit(Duration::from_secs(15)));
    assert!(status.success(), "seed_server.py exited with {status}");
}
