//! The `rpc` binary, run as a process, against the seed's Rust endpoints
//! and a Python oslo.messaging server and notifier on the local RabbitMQ,
//! with oslo.config files in the shapes deployment tools write, and with
//! bad command lines.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use rpc_core::notify::Priority;
use rpc_core::{Server, ServerHandle, Target};
use rpc_examples::seed::{ServerControl, TestEndpoint};
use rpc_tests::broker::Declared;
use rpc_tests::interop::{PythonServer, command as python};
use rpc_tests::private_broker::{NodeOptions, PrivateBroker, free_port};
use serde_json::Value;

fn rpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(args)
        .env_remove("RPC_TRANSPORT_URL")
        .output()
        .expect("rpc runs")
}

fn url() -> String {
    rpc_tests::broker::url_with(rpc_tests::broker::TEST_OPTIONS)
}

fn topic(name: &str) -> String {
    format!("cli_{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Starts `rpc listen` as `command` gives it (program and arguments), with
/// its output piped, once it says it listens.
fn start_listening(mut command: Command) -> Child {
    let mut child = command
        .env_remove("RPC_TRANSPORT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rpc listen starts");
    let mut errors = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    errors.read_line(&mut first).unwrap();
    assert!(first.contains("listening on"), "{first}");
    // Kept open: what it says later must not meet a closed pipe.
    child.stderr = Some(errors.into_inner());
    child
}

/// Presses Ctrl-C for `child` (SIGINT).
fn interrupt(child: &Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// `child`'s exit status once it exits, or `None` after `within`.
fn exit_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}\nstderr: {}", stdout(output), stderr(output)))
}

/// The seed's endpoints on `topic`, server `server1`, answering oslo's ping.
async fn seed_server(topic: &str) -> (Server, ServerHandle) {
    let transport = rpc_tests::broker::connect().await;
    let builder = Server::builder(transport, Target::server(topic, "server1")).rpc_ping(true);
    let handle = builder.handle();
    let control = ServerControl { server: handle.clone() };
    let server = builder.endpoint(TestEndpoint).endpoint(control).build().unwrap();
    server.start().await.unwrap();
    (server, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_casts_and_pings_a_rust_server() {
    let topic = topic("rust");
    let (server, handle) = seed_server(&topic).await;
    let url = url();
    let run = |args: &[&str]| {
        let mut all = vec!["--transport-url", &url];
        all.extend_from_slice(args);
        rpc(&all)
    };

    // The issue's example, and the same with --arg, in both codecs.
    let called = run(&["call", &topic, "test", "--args", r#"{"arg":"myarg"}"#]);
    assert!(called.status.success(), "{}", stderr(&called));
    assert_eq!(stdout(&called), "\"myarg\"\n");
    let called = run(&[
        "--codec", "msgpack", "call", &topic, "test", "--arg", "arg=x", "--server", "server1",
    ]);
    assert_eq!(json(&called), "x", "{}", stderr(&called));

    // A server's error: JSON on stdout, exit 1.
    let missing = run(&["call", &topic, "nope"]);
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
    assert_eq!(json(&missing)["error"]["class"], "NoSuchMethod");
    assert_eq!(json(&missing)["error"]["code"], "no_such_method");
    let wrong = run(&["call", &topic, "test", "--arg", "arg:=[1]"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(json(&wrong)["error"]["code"], "invalid_arguments");

    // Ping, with round-trip times and a summary.
    let ping = run(&[
        "ping",
        &topic,
        "--server",
        "server1",
        "--count",
        "3",
        "--interval",
        "0.05",
    ]);
    assert!(ping.status.success(), "{}{}", stdout(&ping), stderr(&ping));
    let out = stdout(&ping);
    assert_eq!(out.matches("pong from").count(), 3, "{out}");
    assert!(out.contains("3 sent, 3 answered, 0 lost"), "{out}");
    assert!(out.contains("round-trip min/avg/max"), "{out}");

    // No server on a topic: exit 4 at once.
    let nobody_topic = format!("{topic}_nobody");
    let nobody = run(&["call", &nobody_topic, "test", "--arg", "arg=x"]);
    assert_eq!(nobody.status.code(), Some(4), "{}", stderr(&nobody));

    // A fanout cast reaches the control endpoint: the server stops.
    let cast = run(&[
        "cast",
        &topic,
        "stop",
        "--namespace",
        "control",
        "--version",
        "2.0",
        "--fanout",
    ]);
    assert!(cast.status.success(), "{}", stderr(&cast));
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the cast stopped the server");
    assert!(!handle.is_running());

    // Its queue stays, with nobody consuming: the call times out, exit 3.
    let timed_out = run(&["call", &topic, "test", "--arg", "arg=x", "--timeout", "0.5"]);
    assert_eq!(timed_out.status.code(), Some(3), "{}", stderr(&timed_out));
    assert!(
        stderr(&timed_out).contains("no reply to `test`"),
        "{}",
        stderr(&timed_out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_a_python_oslo_server() {
    let topic = topic("python");
    let _declared = Declared::queues([topic.clone(), format!("{topic}.py1")]);
    let mut program = python("python_server.py");
    program.args([&topic, "py1"]).env("OSLO_PING", "1");
    let _server = PythonServer::spawn("python_server.py", program).await;
    let url = url();
    let run = |args: &[&str]| {
        let mut all = vec!["--transport-url", &url];
        all.extend_from_slice(args);
        rpc(&all)
    };
    let echoed = run(&["call", &topic, "echo", "--arg", "arg=hello"]);
    assert_eq!(json(&echoed), "hello", "{}", stderr(&echoed));
    let added = run(&[
        "call", &topic, "add", "--arg", "a:=2", "--arg", "b:=40", "--server", "py1",
    ]);
    assert_eq!(json(&added), 42, "{}", stderr(&added));

    // A Python exception: its class, message and traceback.
    let failed = run(&["call", &topic, "fail", "--arg", "message=boom"]);
    assert_eq!(failed.status.code(), Some(1));
    let error = &json(&failed)["error"];
    assert_eq!(error["class"], "ValueError", "{error}");
    assert_eq!(error["message"], "boom", "{error}");
    assert!(
        error["traceback"].as_array().is_some_and(|lines| !lines.is_empty()),
        "{error}"
    );

    // A cast, then the call that reads it; the context reaches the server.
    let cast = run(&["cast", &topic, "record", "--arg", "value=from-cli", "--server", "py1"]);
    assert!(cast.status.success(), "{}", stderr(&cast));
    let records = run(&["call", &topic, "records", "--server", "py1"]);
    assert_eq!(json(&records), serde_json::json!(["from-cli"]), "{}", stderr(&records));
    let context = run(&[
        "call",
        &topic,
        "context",
        "--context",
        r#"{"project_id": "p1", "roles": ["admin"]}"#,
    ]);
    let context = json(&context);
    assert_eq!(context["project_id"], "p1", "{context}");

    // oslo's own ping, answered by oslo's PingEndpoint.
    let ping = run(&["ping", &topic, "--server", "py1", "--count", "2", "--interval", "0.05"]);
    assert!(ping.status.success(), "{}{}", stdout(&ping), stderr(&ping));
    assert!(
        stdout(&ping).contains("2 sent, 2 answered, 0 lost"),
        "{}",
        stdout(&ping)
    );
    // A fanout cast reaches it too.
    let fanout = run(&["cast", &topic, "record", "--arg", "value=fanned", "--fanout"]);
    assert!(fanout.status.success(), "{}", stderr(&fanout));
    let records = run(&["call", &topic, "records", "--server", "py1"]);
    assert_eq!(
        json(&records),
        serde_json::json!(["from-cli", "fanned"]),
        "{}",
        stderr(&records)
    );
    // A slow method past the timeout: exit 3.
    let slow = run(&["call", &topic, "slow", "--arg", "seconds:=3", "--timeout", "0.5"]);
    assert_eq!(slow.status.code(), Some(3), "{}", stderr(&slow));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_to_a_python_notifier() {
    let topic = topic("notify");
    // Durable queues on an exchange of the test's own, as the Python side declares them.
    let exchange = format!("{topic}_exchange");
    let queues = Priority::ALL.map(|priority| format!("{topic}.{}", priority.as_str()));
    let _declared = Declared::queues(queues).and_exchange(&exchange);
    let url = rpc_tests::broker::url_with(&format!("durable=true&control_exchange={exchange}"));
    let mut listen = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["--transport-url", &url, "listen", "--topic", &topic, "--count", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rpc listen starts");
    // Its stderr, line by line, read on a thread of its own.
    let (lines_sender, stderr_lines) = std::sync::mpsc::channel::<String>();
    let errors = BufReader::new(listen.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in errors.lines().map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let first = stderr_lines
        .recv_timeout(Duration::from_secs(30))
        .expect("rpc listen says it listens");
    assert!(first.contains("listening on"), "{first}");

    let sent = python("notify_send.py")
        .args([topic.as_str(), "--anonymous"])
        .env("OSLO_EXCHANGE", &exchange)
        .output()
        .expect("the Python notifier runs");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while listen.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = listen.kill();
            let rest: Vec<String> = stderr_lines.try_iter().collect();
            panic!("rpc listen did not get 16 notifications; stderr: {rest:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = listen.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 16, "{}", stdout(&output));
    let info = lines
        .iter()
        .find(|line| line["event_type"] == "interop.messagingv2.info")
        .expect("the v2 info notification");
    assert_eq!(info["priority"], "info");
    assert_eq!(info["publisher_id"], "compute.py-host");
    assert_eq!(info["payload"]["driver"], "messagingv2");
    assert!(
        lines
            .iter()
            .any(|line| line["event_type"] == "interop.messaging.critical")
    );
    // A notifier that names no publisher sends null, and null is printed, not "".
    let anonymous = lines
        .iter()
        .find(|line| line["event_type"] == "anonymous.event")
        .expect("the anonymous notification");
    assert_eq!(anonymous["publisher_id"], Value::Null, "{anonymous}");
    assert_eq!(anonymous["message_id"].as_str().map(str::len), Some(36), "{anonymous}");
}

/// `rpc listen --pool P --count 2` prints two notifications and leaves the
/// others in its pool's queue; `rpc listen | head -n 1` exits once its
/// reader is gone, and gives back what it could not print; the pool's queue
/// expires once unused (`x-expires`: redeclared without it, the broker
/// refuses), not left to fill up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_takes_no_more_than_it_prints() {
    let topic = topic("listen_count");
    let pool = format!("{topic}_pool");
    let url = rpc_tests::broker::url();
    let listen = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rpc"));
        command
            .args(["--transport-url", &url, "listen", "--topic", &topic, "--pool", &pool])
            .args(extra);
        start_listening(command)
    };
    let exited = |child: &mut Child| {
        exit_within(child, Duration::from_secs(30)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("rpc listen did not exit");
        })
    };
    let raw = rpc_tests::raw::Raw::connect().await;
    // The pool queue's messages, once `enough` says so (or after 10 s).
    let waiting = |enough: fn(u32) -> bool| {
        let (raw, pool) = (&raw, &pool);
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let now = raw.message_count(pool).await;
                if enough(now) || std::time::Instant::now() > deadline {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // The pool's queue, declared by a first listener stopped with Ctrl-C,
    // holds five notifications when the counted one starts.
    let first = listen(&[]);
    interrupt(&first);
    assert!(first.wait_with_output().unwrap().status.success());
    let notifier = rpc_core::notify::Notifier::new(rpc_tests::broker::connect_url(&url).await, "cli-test")
        .topics([topic.as_str()]);
    let ctx = rpc_core::Context::new();
    for i in 0..5 {
        notifier
            .info(&ctx, &format!("e{i}"), &serde_json::json!({}))
            .await
            .unwrap();
    }
    let mut counted = listen(&["--count", "2"]);
    assert!(exited(&mut counted).success());
    let printed = stdout(&counted.wait_with_output().unwrap());
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert_eq!(
        waiting(|count| count == 3).await,
        3,
        "the three not printed stay in the pool's queue"
    );

    // A reader that goes away after one line.
    let mut headed = listen(&[]);
    let mut lines = BufReader::new(headed.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(first.contains("\"event_type\":\"e"), "{first}");
    drop(lines);
    // One more, in case the others all fit in the pipe before it closed.
    notifier.info(&ctx, "e5", &serde_json::json!({})).await.unwrap();
    assert!(exited(&mut headed).success());
    assert!(
        waiting(|count| count >= 1).await >= 1,
        "what it could not print is back in the queue"
    );

    let redeclared = raw.declare_plain(&pool).await;
    assert!(
        redeclared.as_ref().is_err_and(|error| error.contains("x-expires")),
        "{redeclared:?}"
    );
    raw.delete_queue(&pool).await;
}

/// `rpc listen` whose reader does not read (`rpc listen | less`, paused)
/// holds a line it cannot write: a Ctrl-C asks it to stop, which waits for
/// that line, and a second one ends it at once, with 130, on one core too
/// (`taskset`: the runtime then has one thread, which the write must not
/// hold). Until 2026-12-05 the second did nothing, and only SIGKILL ended
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_stuck_on_its_reader_ends_at_a_second_ctrl_c() {
    let topic = topic("listen_stuck");
    let url = rpc_tests::broker::url();
    let mut command = Command::new("taskset");
    command.args(["--cpu-list", "0", env!("CARGO_BIN_EXE_rpc")]).args([
        "--transport-url",
        &url,
        "listen",
        "--topic",
        &topic,
    ]);
    let mut child = start_listening(command);
    // Far more than the pipe holds (64 KiB), and never read.
    let notifier = rpc_core::notify::Notifier::new(rpc_tests::broker::connect_url(&url).await, "cli-test")
        .topics([topic.as_str()]);
    let ctx = rpc_core::Context::new();
    let payload = serde_json::json!({ "padding": "x".repeat(4096) });
    for i in 0..64 {
        notifier.info(&ctx, &format!("e{i}"), &payload).await.unwrap();
    }
    // Until one of its threads waits to write to the full pipe.
    let tasks = format!("/proc/{}/task", child.id());
    let writing = || {
        std::fs::read_dir(&tasks).into_iter().flatten().flatten().any(|task| {
            std::fs::read_to_string(task.path().join("wchan")).is_ok_and(|wchan| wchan.contains("pipe_write"))
        })
    };
    rpc_tests::eventually("rpc listen filling its pipe", Duration::from_secs(20), || {
        if writing() { Ok(()) } else { Err(()) }
    })
    .await;
    interrupt(&child);
    // Stopping, it waits for the line it cannot write.
    let early = exit_within(&mut child, Duration::from_secs(1));
    assert!(
        early.is_none(),
        "it ended at the first Ctrl-C ({early:?}): its pipe was not full"
    );
    interrupt(&child);
    let Some(status) = exit_within(&mut child, Duration::from_secs(10)) else {
        let _ = child.kill();
        panic!("rpc listen did not end at the second Ctrl-C");
    };
    assert_eq!(status.code(), Some(130));
}

/// `rpc servers` against a management API that accepts and never answers
/// gives up at its `--timeout` (exit 3), and never shows a password, even
/// one holding `/` or given without a scheme.
#[test]
fn servers_time_out_and_hide_credentials() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let run = |management: &str, timeout: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rpc"))
            .args(["servers", "topic", "--management-url", management, "--timeout", timeout])
            .env_remove("RPC_TRANSPORT_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rpc servers starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("rpc servers --management-url {management} did not give up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    };
    let started = std::time::Instant::now();
    let silent = run(&format!("http://admin:Qk9Wj@{address}"), "1");
    assert_eq!(silent.status.code(), Some(3), "{}", stderr(&silent));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // Also with an unencoded `/` (the URL does not parse as meant), and
    // without a scheme.
    let mut outputs = vec![(String::new(), silent)];
    for url in [
        format!("http://admin:Qk/Wj@{address}"),
        format!("admin:Qk/Wj@{address}"),
    ] {
        let output = run(&url, "1");
        outputs.push((url, output));
    }
    for (url, output) in &outputs {
        assert_ne!(output.status.code(), Some(0), "{url}");
        for shown in [stdout(output), stderr(output)] {
            assert!(!shown.contains("Qk") && !shown.contains("Wj"), "{url}: {shown}");
        }
    }
}

/// A ping interrupted (Ctrl-C) while it waits for its answer is lost, and
/// the command says so: exit 1, not 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_ping_is_lost() {
    let topic = topic("ping_interrupted");
    let server_queue = format!("{topic}.server1");
    let _declared = Declared::queues([topic.clone(), server_queue.clone()]);
    // The server's queue stays, with nobody consuming it: pings wait there.
    let (server, _) = seed_server(&topic).await;
    server.stop();
    server.wait().await;
    let raw = rpc_tests::raw::Raw::connect().await;
    let url = url();
    let ping = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args([
            "--transport-url",
            &url,
            "ping",
            &topic,
            "--server",
            "server1",
            "--timeout",
            "60",
        ])
        .env_remove("RPC_TRANSPORT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rpc ping starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while raw.message_count(&server_queue).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the ping never reached the queue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    interrupt(&ping);
    let output = ping.wait_with_output().unwrap();
    assert!(
        stdout(&output).contains("1 sent, 0 answered, 1 lost"),
        "{}",
        stdout(&output)
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

/// A scratch directory with files, removed when dropped.
struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("rpc-cli-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_kolla_and_openstack_ansible_config_files() {
    let topic = topic("config");
    let (server, _) = seed_server(&topic).await;
    let files = Files::new("config");
    // kolla-ansible: several hosts (here the one broker twice), oslo's `//` vhost.
    let kolla = files.write(
        "nova.conf",
        "[DEFAULT]\n\
         transport_url = rabbit://guest:guest@127.0.0.1:5672,guest:guest@127.0.0.1:5672//\n\
         rpc_response_timeout = 7\n\
         [oslo_messaging_rabbit]\n\
         heartbeat_in_pthread = false\n\
         heartbeat_timeout_threshold = 30\n\
         rabbit_transient_queues_ttl = 60\n\
         [oslo_messaging_notifications]\n\
         driver = messagingv2\n",
    );
    let called = rpc(&["--config-file", &kolla, "call", &topic, "test", "--arg", "arg=kolla"]);
    assert_eq!(json(&called), "kolla", "{}", stderr(&called));

    // openstack-ansible: a base file, then a directory whose files override it.
    let base = files.write(
        "neutron.conf",
        "[DEFAULT]\n\
         # the broker is set by the override below\n\
         transport_url = rabbit://nobody:wrong@127.0.0.1:1//\n\
         [oslo_messaging_rabbit]\n\
         ssl = False\n\
         amqp_durable_queues = False\n",
    );
    files.write(
        "neutron.conf.d/50-rabbit.conf",
        "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n",
    );
    let dir = files.0.join("neutron.conf.d").display().to_string();
    let called = rpc(&[
        "--config-file",
        &base,
        "--config-dir",
        &dir,
        "call",
        &topic,
        "test",
        "--arg",
        "arg=osa",
    ]);
    assert_eq!(json(&called), "osa", "{}", stderr(&called));

    // A bad file: exit 6, naming the file and line.
    let bad = files.write("bad.conf", "[DEFAULT]\nrpc_response_timeout = soon\n");
    let refused = rpc(&["--config-file", &bad, "call", &topic, "test"]);
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("bad.conf"), "{}", stderr(&refused));
    let missing = rpc(&["--config-file", "/nonexistent/nova.conf", "call", &topic, "test"]);
    assert_eq!(missing.status.code(), Some(6), "{}", stderr(&missing));
    server.stop();
    server.wait().await;
}

/// `--project NAME` reads the service's default file when no
/// `--config-file` is given (here `~/.NAME/NAME.conf`, `HOME` a temporary
/// directory) and uses the exchange the service sets in code, its name,
/// unless the files set one (`rpc --config-file nova.conf` used
/// `openstack`, where nova's processes use `nova`). Files and directories
/// are read in the command line's order, those given before the command
/// and after it alike: until 2026-12-05 directories came after every file,
/// and files given after the command replaced those given before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projects_files_and_exchange_and_the_command_lines_order() {
    let topic = topic("project");
    let project = format!("svc{}", uuid::Uuid::new_v4().simple());
    let server = Server::builder(
        rpc_tests::broker::connect().await,
        Target::server(&topic, "server1").with_exchange(&project),
    )
    .endpoint(TestEndpoint)
    .build()
    .unwrap();
    server.start().await.unwrap();
    let files = Files::new("project");
    let broker = "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n";
    let default_file = files.write(&format!(".{project}/{project}.conf"), broker);
    let home = files.0.display().to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rpc"))
            .args(args)
            .env_remove("RPC_TRANSPORT_URL")
            .env("HOME", &home)
            .output()
            .expect("rpc runs")
    };
    let call = ["call", topic.as_str(), "test", "--arg", "arg=x", "--timeout", "10"];

    let called = run(&[&["--project", project.as_str()][..], &call].concat());
    assert_eq!(json(&called), "x", "{}", stderr(&called));
    // The same file without the project: oslo's default exchange, where nobody listens.
    let unset = run(&[&["--config-file", default_file.as_str()][..], &call].concat());
    assert_eq!(unset.status.code(), Some(4), "{}", stderr(&unset));
    // A file that sets the exchange wins over the project's.
    let elsewhere = files.write("elsewhere.conf", &format!("{broker}control_exchange = elsewhere\n"));
    let set = run(&[
        &["--project", project.as_str(), "--config-file", elsewhere.as_str()][..],
        &call,
    ]
    .concat());
    assert_eq!(set.status.code(), Some(4), "{}", stderr(&set));

    // A file after a directory overrides it.
    let dead = "[DEFAULT]\ntransport_url = rabbit://nobody:wrong@127.0.0.1:1/\n";
    let first = files.write("first.conf", dead);
    files.write("conf.d/50-dead.conf", dead);
    let dir = files.0.join("conf.d").display().to_string();
    let last = files.write("last.conf", broker);
    let files_and_dir = [
        "--project",
        project.as_str(),
        "--config-file",
        first.as_str(),
        "--config-dir",
        dir.as_str(),
        "--config-file",
        last.as_str(),
    ];
    let ordered = run(&[&files_and_dir[..], &call].concat());
    assert_eq!(json(&ordered), "x", "{}", stderr(&ordered));
    // Files before the command and after it are all read: the exchange
    // comes from the first, the broker from the second (the first's is dead).
    let exchange = files.write("exchange.conf", &format!("{dead}control_exchange = {project}\n"));
    let mut split = vec![
        "--config-file",
        exchange.as_str(),
        "call",
        "--config-file",
        last.as_str(),
    ];
    split.extend_from_slice(&call[1..]);
    let both = run(&split);
    assert_eq!(json(&both), "x", "{}", stderr(&both));
    server.stop();
    server.wait().await;
}

/// `$RPC_TRANSPORT_URL` is used when nothing else names a broker, ranks
/// below the configuration files, and stays out of `--help` (clap's `env`
/// printed it there, password and all, and ranked it above the files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environments_url_ranks_below_the_files_and_stays_out_of_help() {
    let topic = topic("environment");
    let (server, _) = seed_server(&topic).await;
    let with_environment = |url: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rpc"))
            .args(args)
            .env("RPC_TRANSPORT_URL", url)
            .output()
            .expect("rpc runs")
    };
    let call = ["call", &topic, "test", "--arg", "arg=x"];
    // Alone, it is used; empty, it is not there (the local broker).
    for url in [url().as_str(), ""] {
        let called = with_environment(url, &call);
        assert_eq!(json(&called), "x", "{url:?}: {}", stderr(&called));
    }
    // Below the files: the files' broker answers, the variable's refuses.
    let dead = "amqp://nobody:env-s3cret@127.0.0.1:1/%2f";
    let files = Files::new("environment");
    let conf = files.write(
        "nova.conf",
        "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n",
    );
    let mut with_files = vec!["--config-file", conf.as_str()];
    with_files.extend_from_slice(&call);
    let called = with_environment(dead, &with_files);
    assert_eq!(json(&called), "x", "{}", stderr(&called));
    // Out of the help.
    let help = with_environment(dead, &["call", "--help"]);
    assert!(help.status.success(), "{}", stderr(&help));
    assert!(stdout(&help).contains("RPC_TRANSPORT_URL"), "{}", stdout(&help));
    assert!(!stdout(&help).contains("env-s3cret"), "{}", stdout(&help));
    server.stop();
    server.wait().await;
}

#[test]
fn bad_command_lines_exit_2_with_a_clear_message() {
    for (args, says) in [
        (&["frobnicate"][..], "unrecognized subcommand"),
        (&["call", "topic"][..], "<METHOD>"),
        (
            &["call", "t", "m", "--arg", "novalue"][..],
            "expected NAME=TEXT or NAME:=JSON",
        ),
        (&["call", "t", "m", "--args", "{not json"][..], "--args is not JSON"),
        (&["call", "t", "m", "--arg", "a:={"][..], "is not JSON"),
        (&["call", "t", "m", "--version", "two"][..], "--version two"),
        (&["listen", "--priority", "loud"][..], "unknown priority `loud`"),
        (&["ping", "t", "--interval=-1"][..], "--interval must be positive"),
        (&["--codec", "xml", "call", "t", "m"][..], "invalid value 'xml'"),
        // Every call would time out before it went out (accepted until 2026-12-05).
        (
            &["call", "t", "m", "--timeout", "0"][..],
            "--timeout must be a positive number",
        ),
        // Fanout has its own exchange, and reaches every server: `--server`
        // and `--exchange` would be ignored (until 2026-12-05, silently).
        (
            &["cast", "t", "m", "--fanout", "--server", "h1"][..],
            "cannot be used with",
        ),
        (
            &["cast", "t", "m", "--fanout", "--exchange", "x"][..],
            "cannot be used with",
        ),
        // Every ping would time out before it went out (exit 3 until 2026-12-05).
        (&["ping", "t", "--timeout", "0"][..], "--timeout must be positive"),
        (
            &["servers", "t", "--management-url", "https://admin:Qk9Wj@h:15671"][..],
            "expected an http:// URL",
        ),
        // A bad URL on the command line is not a bad configuration file (6, until 2026-12-05).
        (
            &["--transport-url", "amqp://h:port/", "call", "t", "m"][..],
            "--transport-url",
        ),
    ] {
        let output = rpc(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(says), "{args:?}: {}", stderr(&output));
    }
    let help = rpc(&["call", "--help"]);
    assert!(help.status.success());
    assert!(stdout(&help).contains("name:=JSON"), "{}", stdout(&help));
    let completions = rpc(&["completions", "bash"]);
    assert!(completions.status.success());
    assert!(stdout(&completions).contains("_rpc()"), "{}", stdout(&completions));
}

/// `rpc notify --driver log` shows the notification it logs, at any
/// priority (it logged below the default level, and showed nothing).
#[test]
fn the_log_driver_shows_what_it_logs() {
    for priority in ["debug", "info", "error"] {
        let logged = rpc(&[
            "--transport-url",
            &url(),
            "notify",
            "--driver",
            "log",
            "--priority",
            priority,
            "--event-type",
            "cli.logged",
            "--payload",
            r#"{"k": 1}"#,
        ]);
        assert!(logged.status.success(), "{}", stderr(&logged));
        assert!(
            stderr(&logged).contains("cli.logged"),
            "{priority}: {}",
            stderr(&logged)
        );
    }
    // With `RUST_LOG` set for other logs (it replaced the whole filter, and
    // the driver's lines went unshown until 2026-12-05).
    let logged = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args([
            "--transport-url",
            &url(),
            "notify",
            "--driver",
            "log",
            "--event-type",
            "cli.logged",
        ])
        .env_remove("RPC_TRANSPORT_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("rpc runs");
    assert!(logged.status.success(), "{}", stderr(&logged));
    assert!(
        stderr(&logged).contains("cli.logged"),
        "RUST_LOG=warn: {}",
        stderr(&logged)
    );
    // Without a broker: the log driver needs none (until 2026-12-05 it
    // waited for one, then failed with 5).
    let started = std::time::Instant::now();
    let logged = rpc(&[
        "--transport-url",
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "notify",
        "--driver",
        "log",
        "--event-type",
        "cli.logged",
    ]);
    assert!(logged.status.success(), "{}", stderr(&logged));
    assert!(stderr(&logged).contains("cli.logged"), "{}", stderr(&logged));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

/// `rpc notify` with files whose only notification driver is one it does
/// not have (oslo's `routing`) says so and exits 2; it sent nothing and
/// exited 0, with a warning. `--driver` still sends.
#[test]
fn notify_refuses_files_whose_drivers_it_does_not_have() {
    let files = Files::new("unknown_driver");
    let conf = files.write(
        "nova.conf",
        "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n\
         [oslo_messaging_notifications]\ndriver = routing\n",
    );
    let notify = ["--config-file", conf.as_str(), "notify", "--event-type", "cli.unknown"];
    let refused = rpc(&notify);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("(routing)"), "{}", stderr(&refused));
    let mut with_driver = notify.to_vec();
    with_driver.extend_from_slice(&["--driver", "log"]);
    let sent = rpc(&with_driver);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(stderr(&sent).contains("cli.unknown"), "{}", stderr(&sent));
}

/// A reader that goes away (`| head -1`) ends the command with 141, as
/// `SIGPIPE` ends other tools, instead of a panic (exit 101).
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let api = format!("{}/../tests/api/inventory-1.2.json", env!("CARGO_MANIFEST_DIR"));
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["describe", &api])
        .stdout(writer)
        .output()
        .expect("rpc runs");
    assert_eq!(output.status.code(), Some(141), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

/// `--timeout` covers reaching the broker: with none answering, `call`
/// and `ping` give up at it (exit 5) instead of retrying for the
/// transport's 30 s `startup_timeout`.
#[test]
fn the_timeout_covers_reaching_the_broker() {
    for command in [
        &["call", "t", "m", "--timeout", "1"][..],
        &["ping", "t", "--timeout", "1"][..],
    ] {
        let started = std::time::Instant::now();
        let mut args = vec!["--transport-url", "amqp://guest:guest@127.0.0.1:1/%2f"];
        args.extend_from_slice(command);
        let output = rpc(&args);
        assert_eq!(output.status.code(), Some(5), "{command:?}: {}", stderr(&output));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{command:?}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn describes_and_compares_endpoint_descriptions() {
    let api = |version: &str| format!("{}/../tests/api/inventory-{version}.json", env!("CARGO_MANIFEST_DIR"));
    let described = rpc(&["describe", &api("1.2")]);
    assert!(described.status.success(), "{}", stderr(&described));
    let text = stdout(&described);
    assert!(
        text.starts_with("Inventory (namespace inventory, version 1.2)"),
        "{text}"
    );
    assert!(
        text.contains("add(item: String, count: u32, location?: Option<String> since 1.2) -> u64 or StockError"),
        "{text}"
    );
    assert!(
        text.contains("  type StockError = NothingToAdd { item: String }\n"),
        "{text}"
    );
    let as_json = rpc(&["describe", "--json", &api("1.1")]);
    assert_eq!(json(&as_json)["version"], "1.1");
    // Several files: one JSON document, an array.
    let both = rpc(&["describe", "--json", &api("1.1"), &api("1.2")]);
    let both = json(&both);
    let versions: Vec<&Value> = both
        .as_array()
        .expect("an array")
        .iter()
        .map(|one| &one["version"])
        .collect();
    assert_eq!(versions, ["1.1", "1.2"]);

    let compatible = rpc(&["compat", &api("1.1"), &api("1.2")]);
    assert!(
        compatible.status.success(),
        "{}{}",
        stdout(&compatible),
        stderr(&compatible)
    );
    assert!(stdout(&compatible).contains("compatible"), "{}", stdout(&compatible));
    let breaking = rpc(&["compat", &api("1.2"), &api("1.1")]);
    assert_eq!(breaking.status.code(), Some(1), "{}", stdout(&breaking));
    assert!(stdout(&breaking).contains("FAIL"), "{}", stdout(&breaking));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_servers_of_a_topic_through_the_management_api() {
    let management = free_port();
    let broker = tokio::task::spawn_blocking(move || {
        PrivateBroker::start_with(NodeOptions {
            plugins: vec!["rabbitmq_management"],
            config: format!(
                "management.tcp.port = {management}\nmanagement.tcp.ip = 127.0.0.1\n\
                 collect_statistics_interval = 500\n"
            ),
            ..NodeOptions::default()
        })
    })
    .await
    .unwrap();
    let url = broker.url("");
    let topic = topic("servers");
    let transport = rpc_tests::broker::connect_url(&url).await;
    let mut servers = Vec::new();
    for name in ["alpha", "beta"] {
        let server = Server::builder(transport.clone(), Target::server(&topic, name))
            .endpoint(TestEndpoint)
            .build()
            .unwrap();
        server.start().await.unwrap();
        servers.push(server);
    }
    let management_url = format!("http://guest:guest@127.0.0.1:{management}");
    // The plugin answers a little after the node, and its statistics lag
    // the consumers: wait until it shows both servers consuming.
    let consumed = |output: &Output| {
        output.status.success()
            && serde_json::from_slice::<Value>(&output.stdout).is_ok_and(|queues| {
                queues.as_array().into_iter().flatten().any(|queue| {
                    queue["kind"] == "shared" && queue["consumers"].as_array().is_some_and(|c| c.len() == 2)
                })
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let listed = rpc(&[
            "--transport-url",
            &url,
            "servers",
            &topic,
            "--management-url",
            &management_url,
            "--json",
        ]);
        if consumed(&listed) || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(listed.status.success(), "{}", stderr(&listed));
    let queues = json(&listed);
    let queues = queues.as_array().unwrap();
    let kinds: Vec<&str> = queues.iter().map(|queue| queue["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|kind| **kind == "server").count(), 2, "{queues:?}");
    assert_eq!(kinds.iter().filter(|kind| **kind == "fanout").count(), 2, "{queues:?}");
    let shared = queues
        .iter()
        .find(|queue| queue["kind"] == "shared")
        .expect("the shared queue");
    assert_eq!(shared["consumers"].as_array().unwrap().len(), 2, "{shared}");
    let names: Vec<&str> = queues.iter().filter_map(|queue| queue["server"].as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    // The table, derived from the transport URL (same host, port 15672
    // there is not this node's): an explicit URL is needed, and a wrong one
    // is a clear error.
    let table = rpc(&[
        "--transport-url",
        &url,
        "servers",
        &topic,
        "--management-url",
        &management_url,
    ]);
    assert!(
        stdout(&table).contains("alpha") && stdout(&table).contains("fanout"),
        "{}",
        stdout(&table)
    );
    // Credentials holding characters a URL encodes, in the management URL
    // or, without any there, in the transport's: sent decoded (until
    // 2026-12-05 they went out encoded, and were refused).
    broker.rabbitmqctl(&["add_user", "ops-1", "p@ss/w:rd"]);
    broker.rabbitmqctl(&["set_user_tags", "ops-1", "management"]);
    broker.rabbitmqctl(&["set_permissions", "-p", "/", "ops-1", ".*", ".*", ".*"]);
    let encoded = "ops-1:p%40ss%2Fw%3Ard";
    let ops_transport = format!("amqp://{encoded}@127.0.0.1:{}/%2f", broker.port());
    for (transport_url, management_url) in [
        (url.clone(), format!("http://{encoded}@127.0.0.1:{management}")),
        (ops_transport, format!("http://127.0.0.1:{management}")),
    ] {
        let listed = rpc(&[
            "--transport-url",
            &transport_url,
            "servers",
            &topic,
            "--management-url",
            &management_url,
            "--json",
        ]);
        assert!(listed.status.success(), "{management_url}: {}", stderr(&listed));
        assert!(
            json(&listed)
                .as_array()
                .unwrap()
                .iter()
                .any(|queue| queue["kind"] == "shared"),
            "{}",
            stdout(&listed)
        );
    }
    let refused = rpc(&[
        "servers",
        &topic,
        "--management-url",
        &format!("http://ops-1:wrong@127.0.0.1:{management}"),
    ]);
    // The broker refused: 7 (6, a bad configuration file, until 2026-12-05).
    assert_eq!(refused.status.code(), Some(7), "{}", stderr(&refused));
    let unreachable = rpc(&["servers", &topic, "--management-url", "http://127.0.0.1:1"]);
    assert_eq!(unreachable.status.code(), Some(5), "{}", stderr(&unreachable));
    assert!(
        stderr(&unreachable).contains("rabbitmq-plugins enable rabbitmq_management"),
        "{}",
        stderr(&unreachable)
    );
    for server in servers {
        server.stop();
        server.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benches_a_live_method() {
    let topic = topic("bench");
    let (server, _) = seed_server(&topic).await;
    let output = rpc(&[
        "--transport-url",
        &url(),
        "bench",
        &topic,
        "test",
        "--arg",
        "arg=x",
        "-n",
        "200",
        "--concurrency",
        "8",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    for row in [
        "calls          200 (8 in flight)",
        "failed         0",
        "calls/s",
        "p50",
        "p99",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    server.stop();
    server.wait().await;
}
