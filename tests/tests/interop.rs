//! Interoperability with the real oslo.messaging 18.3.1 (in the virtualenv
//! `scripts/python-env.sh` makes), on the test broker, both directions.

use std::time::{Duration, Instant};

use rpc_core::{Client, Context, Error, ErrorCode, Server, Target, Version, json};
use rpc_tests::broker::{self, Declared};
use rpc_tests::conformance::unique_topic;
use rpc_tests::interop::{Interop, PythonApiClient, PythonServer, VersionOne, VersionTwo, command};

async fn rust_server(topic: &str, name: &str) -> Server {
    let server = Server::builder(broker::connect().await, Target::server(topic, name))
        .endpoint(Interop::new(name))
        .endpoint(VersionOne)
        .endpoint(VersionTwo)
        .rpc_ping(true)
        .build()
        .unwrap();
    server.start().await.unwrap();
    server
}

/// Python oslo.messaging clients call and cast to Rust servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_to_rust_servers() {
    let topic = unique_topic("py_to_rust");
    let servers = [rust_server(&topic, "s1").await, rust_server(&topic, "s2").await];
    let output = tokio::task::spawn_blocking(move || command("rust_server_scenarios.py").arg(&topic).output())
        .await
        .unwrap()
        .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "Python scenarios failed:\n{stdout}\n{stderr}");
    for scenario in [
        "call",
        "cast",
        "fanout_cast_reaches_every_server",
        "prepare_server",
        "namespace_and_version_selection",
        "unsupported_version",
        "no_such_method",
        "error_raised_in_the_rust_method",
        "invalid_arguments_are_a_type_error",
        "context_round_trip",
        "slow_method_kept_alive_by_heartbeats",
        "call_that_times_out",
        "non_finite_floats_do_not_crash_the_server",
        "oslo_rpc_server_ping",
    ] {
        assert!(
            stdout.lines().any(|line| line == format!("ok {scenario}")),
            "scenario {scenario} did not pass:\n{stdout}\n{stderr}"
        );
    }
    for server in servers {
        server.stop();
        server.wait().await;
    }
}

/// A Rust client speaking oslo's JSON calls and casts to a Python server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_to_python_server() {
    let topic = unique_topic("rust_to_py");
    let _declared = Declared::queues([topic.clone(), format!("{topic}.py1")]);
    let mut python = PythonServer::start("python_server.py", &[&topic, "py1"]).await;
    let client = Client::new(broker::connect_oslo().await, Target::topic(&topic)).timeout(Duration::from_secs(10));
    let api = PythonApiClient::new(client.clone());
    let ctx = Context::new().with_request_id("req-rust-1");

    // Calls, typed and untyped.
    assert_eq!(api.echo(&ctx, "myarg".into()).await.unwrap(), "myarg");
    assert_eq!(api.add(&ctx, 2, 40).await.unwrap(), 42);
    let unicode: String = client.call(&ctx, "echo", json!({"arg": "héllo ✓"})).await.unwrap();
    assert_eq!(unicode, "héllo ✓");

    // Casts, including fanout.
    api.cast().record(&ctx, "cast-1".into()).await.unwrap();
    PythonApiClient::new(client.prepare().fanout(true))
        .cast()
        .record(&ctx, "fan".into())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = api.records(&ctx).await.unwrap();
        if records.contains(&"cast-1".to_owned()) && records.contains(&"fan".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "casts not recorded: {records:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // prepare() overrides: server, namespace and version.
    assert_eq!(
        PythonApiClient::new(client.prepare().server("py1"))
            .whoami(&ctx)
            .await
            .unwrap(),
        "py1"
    );
    let versioned = client.prepare().namespace("v");
    let which: String = versioned
        .prepare()
        .version(Version::new(1, 1))
        .call(&ctx, "which", json!({}))
        .await
        .unwrap();
    assert_eq!(which, "1.3");
    let which: String = versioned
        .prepare()
        .version(Version::new(2, 0))
        .call(&ctx, "which", json!({}))
        .await
        .unwrap();
    assert_eq!(which, "2.1");
    let error = versioned
        .prepare()
        .version(Version::new(3, 0))
        .call::<String>(&ctx, "which", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.remote().unwrap().code(), ErrorCode::UnsupportedVersion, "{error}");
    let error = client.call::<()>(&ctx, "nope", json!({})).await.unwrap_err();
    assert_eq!(error.remote().unwrap().code(), ErrorCode::NoSuchMethod, "{error}");

    // A Python exception arrives as our remote error, class and message intact.
    let error = api.fail(&ctx, "the disk is full".into()).await.unwrap_err();
    let remote = error.remote().expect("a remote error");
    assert_eq!(remote.class(), "ValueError");
    assert_eq!(remote.module(), "builtins");
    assert_eq!(remote.message(), "the disk is full");
    assert!(
        remote.traceback().iter().any(|line| line.contains("ValueError")),
        "{:?}",
        remote.traceback()
    );

    // The context travels both ways.
    let mut rich = ctx.clone();
    rich.insert("roles", ["admin"]).unwrap();
    rich.insert("nested", json!({"a": [1, 2.5, null]})).unwrap();
    let echoed = api.context(&rich).await.unwrap();
    for (key, value) in rich.iter() {
        assert_eq!(echoed.get_value(key), Some(value), "{key}");
    }

    // A long call kept alive by Python's call-monitor heartbeats.
    let monitored = PythonApiClient::new(client.prepare().call_monitor_timeout(Duration::from_secs(2)));
    assert_eq!(monitored.slow(&ctx, 3.0).await.unwrap(), 3.0);

    // A call that times out.
    let started = Instant::now();
    let result = PythonApiClient::new(client.prepare().timeout(Duration::from_secs(1)))
        .slow(&ctx, 3.0)
        .await;
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    client
        .prepare()
        .namespace("control")
        .version(Version::new(2, 0))
        .cast(&ctx, "stop", json!({}))
        .await
        .unwrap();
    assert!(python.wait_exit(Duration::from_secs(30)).await.success());
}

/// A rolling upgrade across languages: a new Rust client (1.2) against an
/// old Python server (1.1), without and with a version cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_at_1_2_to_python_server_at_1_1() {
    use rpc_tests::upgrade::v1_2::InventoryClient;

    let topic = unique_topic("upgrade_rust_to_py");
    let _declared = Declared::queues([topic.clone(), format!("{topic}.py1")]);
    let _python = PythonServer::start("upgrade_server.py", &[&topic, "py1"]).await;
    let client = Client::new(broker::connect_oslo().await, Target::topic(&topic)).timeout(Duration::from_secs(10));
    let inventory = InventoryClient::new(client);
    let ctx = Context::new();

    // No cap: what the old server has works, `None` for the new argument included.
    assert_eq!(inventory.add(&ctx, "bolt".into(), 2, None).await.unwrap(), Ok(2));
    assert_eq!(inventory.total(&ctx).await.unwrap(), 2);
    let error = inventory.add(&ctx, "nut".into(), 0, None).await.unwrap_err();
    assert_eq!(
        error.remote().map(|remote| remote.class()),
        Some("ValueError"),
        "{error}"
    );
    // What needs 1.2 gets oslo's UnsupportedVersion from the Python dispatcher.
    for error in [
        inventory
            .add(&ctx, "bolt".into(), 1, Some("shelf".into()))
            .await
            .unwrap_err(),
        inventory.locations(&ctx).await.unwrap_err(),
    ] {
        assert_eq!(
            error.remote().map(|remote| remote.code()),
            Some(ErrorCode::UnsupportedVersion),
            "{error}"
        );
    }

    // Capped at 1.1: refused here, before sending.
    let capped = inventory.prepare().version_cap(Version::new(1, 1));
    assert!(matches!(
        capped.add(&ctx, "bolt".into(), 1, Some("shelf".into())).await,
        Err(Error::VersionCap { argument: Some(ref argument), .. }) if argument == "location"
    ));
    assert!(matches!(capped.locations(&ctx).await, Err(Error::VersionCap { .. })));
    assert_eq!(capped.add(&ctx, "bolt".into(), 1, None).await.unwrap(), Ok(3));
}

/// An old Python client capped at 1.1 against a new Rust server (1.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_capped_at_1_1_to_rust_server_at_1_2() {
    use rpc_tests::upgrade::{Store, v1_2::InventoryDispatcher};

    let topic = unique_topic("upgrade_py_to_rust");
    let server = Server::builder(broker::connect().await, Target::server(&topic, "s1"))
        .endpoint(InventoryDispatcher::new(Store::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let output = tokio::task::spawn_blocking(move || command("upgrade_client.py").arg(&topic).output())
        .await
        .unwrap()
        .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "Python scenarios failed:\n{stdout}\n{stderr}");
    for scenario in [
        "the_cap_says_what_can_be_sent",
        "methods_of_1_0_and_1_1_are_served",
        "the_new_method_is_refused_by_the_cap",
        "a_typed_rust_error_reads_as_a_remote_error",
    ] {
        assert!(
            stdout.lines().any(|line| line == format!("ok {scenario}")),
            "scenario {scenario} did not pass:\n{stdout}\n{stderr}"
        );
    }
    server.stop();
    server.wait().await;
}

/// A Python service with `rabbit_quorum_queue` and quorum memory limits
/// declares its topic and server queues with `x-max-in-memory-length` and
/// `x-max-in-memory-bytes`, which RabbitMQ 3 compares: ours carry the same.
/// Until 2026-12-05 the options were ignored, and the Python service's
/// declarations failed with `PRECONDITION_FAILED` (inequivalent arg).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oslo_declarations_with_quorum_memory_limits_match_ours() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};

    let topic = unique_topic("quorum_memory");
    let url = broker::url_with(&format!(
        "{}&rabbit_quorum_queue=true&rabbit_quorum_max_memory_length=100&rabbit_quorum_max_memory_bytes=4096",
        broker::TEST_OPTIONS
    ));
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "s1"))
        .endpoint(Interop::new("s1"))
        .build()
        .unwrap();
    server.start().await.unwrap();
    // What kombu declares for oslo with these options (`_get_queue_arguments`),
    // with the test's queue TTL.
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    arguments.insert("x-max-in-memory-length".into(), AMQPValue::LongInt(100));
    arguments.insert("x-max-in-memory-bytes".into(), AMQPValue::LongInt(4096));
    arguments.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    let raw = rpc_tests::raw::Raw::connect().await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    declare_topic_queues_as_oslo(&raw, &topic, durable, &arguments).await;
    server.stop();
    server.wait().await;
    for queue in [topic.clone(), format!("{topic}.s1")] {
        raw.delete_queue(&queue).await;
    }
}

/// With oslo's `amqp_auto_delete = true` (and the durable queues sharing
/// topics with Python services needs), a Rust server declares its control
/// exchange and its topic and server queues with the flags oslo.messaging
/// declares them with, so a Python service's declarations after it succeed.
/// Until 2026-12-05 the option was ignored, and they failed with
/// `PRECONDITION_FAILED` (inequivalent `auto_delete`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oslo_declarations_with_auto_delete_match_ours() {
    use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;

    let topic = unique_topic("auto_delete");
    let exchange = format!("{topic}_exchange");
    // No test TTLs: oslo declares none (and auto-delete cleans up here).
    let url = broker::url_with(&format!(
        "amqp_durable_queues=true&amqp_auto_delete=true&control_exchange={exchange}"
    ));
    let server = Server::builder(broker::connect_url(&url).await, Target::server(&topic, "s1"))
        .endpoint(Interop::new("s1"))
        .build()
        .unwrap();
    server.start().await.unwrap();
    // What kombu declares for oslo with these options (impl_rabbit's
    // `declare_topic_consumer` and `topic_send`).
    let raw = rpc_tests::raw::Raw::connect().await;
    let (durable, auto_delete) = (true, true);
    raw.channel
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable,
                auto_delete,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("oslo's exchange declaration matches ours");
    let options = QueueDeclareOptions {
        durable,
        auto_delete,
        ..QueueDeclareOptions::default()
    };
    declare_topic_queues_as_oslo(&raw, &topic, options, &FieldTable::default()).await;
    // Once the server leaves, the broker deletes them, as oslo's.
    server.stop();
    server.wait().await;
}

/// Declares the topic and server queues of `topic` (server `s1`) as a
/// Python service would, each on a channel of its own; panics when the
/// broker refuses one (a flag or argument inequivalent to ours).
async fn declare_topic_queues_as_oslo(
    raw: &rpc_tests::raw::Raw,
    topic: &str,
    options: lapin::options::QueueDeclareOptions,
    arguments: &lapin::types::FieldTable,
) {
    for queue in [topic.to_owned(), format!("{topic}.s1")] {
        let channel = raw.connection.create_channel().await.unwrap();
        channel
            .queue_declare(queue.as_str().into(), options, arguments.clone())
            .await
            .unwrap_or_else(|error| panic!("oslo's declaration of `{queue}` matches ours: {error}"));
    }
}
