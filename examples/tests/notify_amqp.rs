//! `notify-send` and `notify-listen` over the local RabbitMQ
//! (`RPC_TEST_AMQP_URL`): two listeners in different pools each print every
//! notification sent, whichever starts first; `notify-send` refuses bad input.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use rpc_tests::process::KillOnDrop;
use std::time::{Duration, Instant};

/// The test broker, with queues that expire once unused.
fn broker_url() -> String {
    rpc_tests::broker::url_with(rpc_tests::broker::TEST_OPTIONS)
}

/// Starts `notify-listen` and waits until it says it listens.
fn listen(topic: &str, pool: &str, count: u32) -> KillOnDrop {
    let mut child = Command::new(env!("CARGO_BIN_EXE_notify-listen"))
        .args(["--transport-url", &broker_url(), "--topic", topic, "--pool", pool])
        .args(["--count", &count.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("notify-listen starts");
    let stderr = child.stderr.take().expect("stderr");
    let child = KillOnDrop::new(child);
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines.any(|line| line.is_ok_and(|line| line.contains("listening on")));
    assert!(listening, "notify-listen did not start listening");
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn send(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_notify-send"))
        .args(["--transport-url", &broker_url()])
        .args(args)
        .output()
        .expect("notify-send runs")
}

fn printed(mut child: KillOnDrop) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.get_mut().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "notify-listen did not exit after --count");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.into_inner().wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON line per notification"))
        .collect()
}

#[test]
fn notify_send_reaches_notify_listen_in_every_pool() {
    let topic = rpc_tests::conformance::unique_topic("notify_examples");
    let first = listen(&topic, &format!("{topic}-a"), 2);
    let second = listen(&topic, &format!("{topic}-b"), 2);
    let sent = send(&[
        "--topic",
        &topic,
        "--priority",
        "error",
        "--event-type",
        "compute.instance.error",
        "--publisher-id",
        "compute.host-1",
        "--payload",
        r#"{"reason": "no host"}"#,
    ]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let sent = send(&["--topic", &topic, "--event-type", "v1.event", "--driver", "messaging"]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    for listener in [first, second] {
        let lines = printed(listener);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let error = lines
            .iter()
            .find(|line| line["event_type"] == "compute.instance.error")
            .expect("the error");
        assert_eq!(error["priority"], "error");
        assert_eq!(error["publisher_id"], "compute.host-1");
        assert_eq!(error["payload"]["reason"], "no host");
        assert_eq!(error["message_id"].as_str().map(str::len), Some(36));
        let v1 = lines
            .iter()
            .find(|line| line["event_type"] == "v1.event")
            .expect("the 1.0 one");
        assert_eq!(v1["priority"], "info");
    }
}

/// `--count 1` takes one notification of those waiting and leaves the
/// others in the pool's queue, for the next listener of the pool: none is
/// taken and lost.
#[test]
fn notify_listen_leaves_what_it_does_not_print() {
    let topic = rpc_tests::conformance::unique_topic("notify_examples_count");
    let pool = format!("{topic}-pool");
    let send_event = |name: &str| {
        let sent = send(&["--topic", &topic, "--event-type", name]);
        assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    };
    // The pool's queue is made, then three notifications wait in it.
    let first = listen(&topic, &pool, 1);
    send_event("first");
    assert_eq!(printed(first).len(), 1);
    for n in 0..3 {
        send_event(&format!("event.{n}"));
    }
    let one = printed(listen(&topic, &pool, 1));
    assert_eq!(one.len(), 1, "{one:?}");
    let rest = printed(listen(&topic, &pool, 2));
    let mut events: Vec<&str> = one
        .iter()
        .chain(&rest)
        .filter_map(|line| line["event_type"].as_str())
        .collect();
    events.sort_unstable();
    assert_eq!(events, ["event.0", "event.1", "event.2"]);
}

#[test]
fn notify_send_refuses_bad_input() {
    for args in [
        vec!["--event-type", "x", "--priority", "loud"],
        vec!["--event-type", "x", "--payload", "{not json"],
        vec!["--event-type", "x", "--driver", "kafka"],
        vec!["--priority", "info"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_notify-send"))
            .args(["--transport-url", "memory://"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
