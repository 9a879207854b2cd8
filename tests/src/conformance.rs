//! The transport conformance suite: what every transport must do, written
//! once. Each scenario takes a function that opens a fresh transport on the
//! bus under test (one per simulated process) and panics on failure.
//!
//! Scenarios use their own topic names, so they run in parallel on one bus.
//! The notification scenarios are in `conformance/notifications.rs`, the
//! request lifecycle's (deadlines, propagation) in `conformance/lifecycle.rs`,
//! middleware and health in `conformance/middleware.rs`.

mod lifecycle;
mod middleware;
mod notifications;

pub use lifecycle::*;
pub use middleware::*;
pub use notifications::*;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rpc_core::{
    CallProgress, Client, Context, Error, ErrorCode, Executor, PING_METHOD, Server, Target, Transport, Version, json,
};

use crate::api::{
    Calculator, CalculatorClient, ControlClient, ControlDispatcher, ControlImpl, LegacyControlClient,
    LegacyControlDispatcher, MathError, StaleCalculatorClient,
};

/// A topic no other scenario uses.
pub fn unique_topic(scenario: &str) -> String {
    format!(
        "conformance_{scenario}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Starts a server named `name` on `topic` with a calculator and both control endpoints.
pub async fn start_server(transport: Transport, topic: &str, name: &str) -> (Server, Calculator) {
    start_server_with(transport, topic, name, Executor::default()).await
}

/// [`start_server`] with `executor`.
pub async fn start_server_with(
    transport: Transport,
    topic: &str,
    name: &str,
    executor: Executor,
) -> (Server, Calculator) {
    let calculator = Calculator::new(name);
    let server = Server::builder(transport, Target::server(topic, name))
        .endpoint(calculator.clone())
        .endpoint(ControlDispatcher::new(ControlImpl))
        .endpoint(LegacyControlDispatcher::new(ControlImpl))
        .executor(executor)
        .build()
        .expect("valid server");
    server.start().await.expect("server starts");
    (server, calculator)
}

/// One server `s1` and a client (on another transport) for a fresh topic.
struct Fixture {
    topic: String,
    server: Server,
    calculator: Calculator,
    client: Client,
}

impl Fixture {
    async fn new<C, F>(connect: C, scenario: &str) -> Fixture
    where
        C: Fn() -> F,
        F: Future<Output = Transport>,
    {
        let topic = unique_topic(scenario);
        let (server, calculator) = start_server(connect().await, &topic, "s1").await;
        let client = Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10));
        Fixture {
            topic,
            server,
            calculator,
            client,
        }
    }

    fn calc(&self) -> CalculatorClient {
        CalculatorClient::new(self.client.clone())
    }

    async fn shutdown(self) {
        self.server.stop();
        self.server.wait().await;
    }
}

fn remote_code(result: Result<impl std::fmt::Debug, Error>) -> ErrorCode {
    match result {
        Err(Error::Remote(remote)) => remote.code(),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// A call returns the method's result.
pub async fn call_returns_result<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "call").await;
    let ctx = Context::new();
    assert_eq!(fixture.calc().add(&ctx, 2, 40).await.unwrap(), 42);
    assert_eq!(fixture.calc().whoami(&ctx).await.unwrap(), "s1");
    fixture.shutdown().await;
}

/// `Duration::MAX`, the usual "no timeout", is a timeout that never
/// comes, for the call and for its call monitor.
pub async fn a_call_may_wait_forever<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "forever").await;
    let ctx = Context::new();
    let forever = fixture.calc().prepare().timeout(Duration::MAX);
    assert_eq!(forever.add(&ctx, 1, 1).await.unwrap(), 2);
    let monitored = forever.prepare().call_monitor_timeout(Duration::MAX);
    assert_eq!(monitored.add(&ctx, 2, 2).await.unwrap(), 4);
    assert_eq!(monitored.client().transport().pending_calls(), 0);
    fixture.shutdown().await;
}

/// The context reaches the handler intact.
pub async fn call_carries_context<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "context").await;
    let mut ctx = Context::generate_request_id();
    ctx.insert("user", "alice").unwrap();
    ctx.insert("roles", ["admin", "member"]).unwrap();
    ctx.insert("nested", json!({"a": [1, 2, {"b": null}], "f": 1.5}))
        .unwrap();
    let echoed = fixture.calc().echo_context(&ctx).await.unwrap();
    assert_eq!(echoed, ctx);
    assert_eq!(echoed.roles(), ["admin", "member"]);
    fixture.shutdown().await;
}

/// An `Option` argument left out arrives as `None` (a compatible API change).
pub async fn optional_argument_may_be_absent<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "optional").await;
    let ctx = Context::new();
    let plain: String = fixture
        .client
        .call(&ctx, "greet", json!({"name": "bob"}))
        .await
        .unwrap();
    assert_eq!(plain, "hello bob");
    let titled = fixture
        .calc()
        .greet(&ctx, "bob".into(), Some("dr".into()))
        .await
        .unwrap();
    assert_eq!(titled, "hello dr bob");
    fixture.shutdown().await;
}

/// A cast runs the method and returns without a reply.
pub async fn cast_runs_without_reply<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "cast").await;
    fixture.calc().cast().record(&Context::new(), "a".into()).await.unwrap();
    fixture
        .client
        .cast(&Context::new(), "record", json!({"value": "b"}))
        .await
        .unwrap();
    let records = fixture
        .calculator
        .observed
        .wait_for_records(2, Duration::from_secs(10))
        .await;
    let mut sorted = records.clone();
    sorted.sort();
    assert_eq!(sorted, ["s1:a", "s1:b"]);
    assert_eq!(fixture.client.transport().pending_calls(), 0);
    fixture.shutdown().await;
}

/// `prepare()` overrides fields on a copy; the original keeps its own.
pub async fn prepare_overrides_without_touching_original<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "prepare").await;
    let ctx = Context::new();
    let prepared = fixture
        .client
        .prepare()
        .server("s1")
        .namespace("control")
        .version(Version::new(2, 0))
        .timeout(Duration::from_secs(3))
        .version_cap(Version::new(2, 3));
    assert_eq!(fixture.client.target().server_name(), None);
    assert_eq!(fixture.client.target().namespace(), None);
    assert_eq!(fixture.client.call_timeout(), Duration::from_secs(10));
    assert_eq!(prepared.target().server_name(), Some("s1"));
    assert_eq!(prepared.call_timeout(), Duration::from_secs(3));
    assert!(prepared.can_send_version(Some(&Version::new(2, 1))));
    assert!(!prepared.can_send_version(Some(&Version::new(2, 4))));
    assert!(fixture.client.can_send_version(None));
    // The untyped path uses the prepared namespace and version.
    let probe: String = prepared.call(&ctx, "probe", json!({})).await.unwrap();
    assert_eq!(probe, "control 2.3");
    // Another topic, another exchange: nobody listens there.
    let elsewhere = fixture.client.prepare().topic(unique_topic("nobody"));
    assert!(matches!(
        elsewhere.call::<i64>(&ctx, "add", json!({"a": 1, "b": 1})).await,
        Err(Error::NoListener { .. })
    ));
    let other_exchange = fixture.client.prepare().exchange("not-the-control-exchange");
    assert!(matches!(
        other_exchange.call::<i64>(&ctx, "add", json!({"a": 1, "b": 1})).await,
        Err(Error::NoListener { .. })
    ));
    // An empty server name is none, as oslo routes it (`topic.` reached
    // nobody until 2026-12-05), prepared or in the target.
    let unnamed = fixture.client.prepare().server("");
    assert_eq!(unnamed.target().server_name(), None);
    assert_eq!(
        unnamed.call::<i64>(&ctx, "add", json!({"a": 1, "b": 2})).await.unwrap(),
        3
    );
    let target = Target::server(fixture.client.target().topic_name(), "");
    let from_target = Client::new(fixture.client.transport().clone(), target).timeout(Duration::from_secs(10));
    assert_eq!(
        from_target
            .call::<i64>(&ctx, "add", json!({"a": 2, "b": 2}))
            .await
            .unwrap(),
        4
    );
    // The original still reaches the default namespace.
    assert_eq!(fixture.calc().add(&ctx, 1, 1).await.unwrap(), 2);
    fixture.shutdown().await;
}

/// A target with a server name reaches that server only.
pub async fn server_pinning<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("pinning");
    let (first, _) = start_server(connect().await, &topic, "s1").await;
    let (second, _) = start_server(connect().await, &topic, "s2").await;
    let client = Client::new(connect().await, Target::topic(&topic));
    let ctx = Context::new();
    let calc = CalculatorClient::new(client);
    for name in ["s1", "s2"] {
        let pinned = calc.prepare().server(name);
        for _ in 0..10 {
            assert_eq!(pinned.whoami(&ctx).await.unwrap(), name);
        }
    }
    let nobody = calc.prepare().server("s3");
    assert!(matches!(nobody.whoami(&ctx).await, Err(Error::NoListener { .. })));
    for server in [first, second] {
        server.stop();
        server.wait().await;
    }
}

/// A fanout cast reaches every server on the topic; with none, it is not an error.
pub async fn fanout_cast_reaches_every_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("fanout");
    let mut servers = Vec::new();
    for name in ["s1", "s2", "s3"] {
        servers.push(start_server(connect().await, &topic, name).await);
    }
    let client = Client::new(connect().await, Target::topic(&topic));
    CalculatorClient::new(client.prepare().fanout(true))
        .cast()
        .record(&Context::new(), "hello".into())
        .await
        .unwrap();
    for (_, calculator) in &servers {
        let records = calculator.observed.wait_for_records(1, Duration::from_secs(10)).await;
        assert_eq!(records, [format!("{}:hello", calculator.name)]);
    }
    let empty = Client::new(connect().await, Target::topic(unique_topic("empty")).with_fanout(true));
    empty
        .cast(&Context::new(), "record", json!({"value": "x"}))
        .await
        .unwrap();
    for (server, _) in servers {
        server.stop();
        server.wait().await;
    }
}

/// An exchange other than the control exchange, the same on every run (a
/// broker keeps exchanges: a new name per run would pile them up).
pub const OTHER_EXCHANGE: &str = "conformance_other_exchange";

/// A topic's queue is one queue, whatever exchanges bind it (RabbitMQ
/// names a queue once per virtual host): a server listening through
/// another exchange binds the same queue there, and requests sent through
/// either exchange reach the servers of both.
pub async fn a_topic_queue_is_shared_across_exchanges<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("exchanges");
    let (first, _) = start_server(connect().await, &topic, "s1").await;
    let second = Server::builder(
        connect().await,
        Target::server(&topic, "s2").with_exchange(OTHER_EXCHANGE),
    )
    .endpoint(Calculator::new("s2"))
    .build()
    .unwrap();
    second.start().await.unwrap();
    second.stop();
    second.wait().await;
    // Through the other exchange, to the queue s1 consumes.
    let client = Client::new(connect().await, Target::topic(&topic).with_exchange(OTHER_EXCHANGE))
        .timeout(Duration::from_secs(10));
    assert_eq!(
        CalculatorClient::new(client).whoami(&Context::new()).await.unwrap(),
        "s1"
    );
    first.stop();
    first.wait().await;
}

/// Servers on one topic share its requests.
pub async fn load_spreads_across_servers<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("spread");
    // One request at a time per server: neither can take everything.
    let (first, one) = start_server_with(connect().await, &topic, "s1", Executor::Sequential).await;
    let (second, two) = start_server_with(connect().await, &topic, "s2", Executor::Sequential).await;
    let calc = CalculatorClient::new(Client::new(connect().await, Target::topic(&topic)));
    let ctx = Context::new();
    let calls = (0..10).map(|_| calc.sleep(&ctx, 50));
    for result in join_all(calls).await {
        assert_eq!(result.unwrap(), 50);
    }
    let (handled_one, handled_two) = (
        one.observed.handled.load(Ordering::SeqCst),
        two.observed.handled.load(Ordering::SeqCst),
    );
    assert_eq!(handled_one + handled_two, 10);
    assert!(
        handled_one > 0 && handled_two > 0,
        "s1 handled {handled_one}, s2 {handled_two}"
    );
    for server in [first, second] {
        server.stop();
        server.wait().await;
    }
}

/// The namespace picks the endpoint group, the version the compatible endpoint.
pub async fn namespace_and_version_selection<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "selection").await;
    let ctx = Context::new();
    let control = fixture.client.prepare().namespace("control");
    for (version, expected) in [
        (Version::new(2, 3), "control 2.3"),
        (Version::new(2, 0), "control 2.3"),
        (Version::new(1, 2), "control 1.4"),
        (Version::new(1, 4), "control 1.4"),
    ] {
        let answer: String = control
            .prepare()
            .version(version)
            .call(&ctx, "probe", json!({}))
            .await
            .unwrap();
        assert_eq!(answer, expected, "version {version}");
    }
    assert_eq!(
        ControlClient::new(fixture.client.clone()).probe(&ctx).await.unwrap(),
        "control 2.3"
    );
    assert!(ControlClient::new(fixture.client.clone()).newest(&ctx).await.unwrap());
    assert_eq!(
        LegacyControlClient::new(fixture.client.clone())
            .probe(&ctx)
            .await
            .unwrap(),
        "control 1.4"
    );
    fixture.shutdown().await;
}

/// A compatible endpoint without the method: `NoSuchMethod`; no compatible
/// endpoint: `UnsupportedVersion`. Methods outside the `#[endpoint]` block
/// and names starting with `_` are unreachable.
pub async fn no_such_method_and_unsupported_version<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "errors").await;
    let ctx = Context::new();
    let call = |client: Client, method: &'static str| async move {
        client.call::<rpc_core::Value>(&Context::new(), method, json!({})).await
    };
    let error = call(fixture.client.clone(), "nope").await.unwrap_err();
    let remote = error.remote().expect("remote error");
    assert_eq!(remote.code(), ErrorCode::NoSuchMethod);
    assert_eq!(remote.class(), "NoSuchMethod");
    assert!(remote.message().contains("nope"));
    assert_eq!(
        remote_code(call(fixture.client.clone(), "local_only").await),
        ErrorCode::NoSuchMethod
    );
    assert_eq!(
        remote_code(call(fixture.client.clone(), "_private").await),
        ErrorCode::NoSuchMethod
    );
    let control = fixture.client.prepare().namespace("control");
    assert_eq!(
        remote_code(call(control.prepare().version(Version::new(2, 0)), "add").await),
        ErrorCode::NoSuchMethod
    );
    let error = call(control.prepare().version(Version::new(3, 0)), "probe")
        .await
        .unwrap_err();
    let remote = error.remote().expect("remote error");
    assert_eq!(remote.code(), ErrorCode::UnsupportedVersion);
    assert_eq!(remote.class(), "UnsupportedVersion");
    assert_eq!(
        remote_code(call(control.prepare().version(Version::new(2, 4)), "probe").await),
        ErrorCode::UnsupportedVersion
    );
    // A namespace no endpoint serves keeps oslo's class, and says which the server has.
    let error = call(fixture.client.prepare().namespace("contrl"), "probe")
        .await
        .unwrap_err();
    let remote = error.remote().expect("remote error");
    assert_eq!(
        (remote.code(), remote.class()),
        (ErrorCode::UnsupportedVersion, "UnsupportedVersion")
    );
    assert!(
        remote
            .message()
            .ends_with("No endpoint serves namespace `contrl`; this server has the default namespace, `control`"),
        "{}",
        remote.message()
    );
    assert_eq!(
        remote_code(call(fixture.client.prepare().version(Version::new(1, 1)), "add").await),
        ErrorCode::UnsupportedVersion
    );
    // The server keeps serving.
    assert_eq!(fixture.calc().add(&ctx, 1, 2).await.unwrap(), 3);
    fixture.shutdown().await;
}

/// Wrong types, missing and unknown arguments come back as `InvalidArguments`.
pub async fn invalid_arguments_are_typed_errors<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "invalid_args").await;
    let ctx = Context::new();
    for args in [
        json!({"a": "one", "b": 2}),
        json!({"a": 1}),
        json!({"a": 1, "b": 2, "c": 3}),
        json!({}),
    ] {
        let result = fixture.client.call::<i64>(&ctx, "add", &args).await;
        let Err(Error::Remote(remote)) = result else {
            panic!("expected InvalidArguments for {args}, got {result:?}");
        };
        assert_eq!(remote.code(), ErrorCode::InvalidArguments, "{args}: {remote}");
        assert!(remote.message().contains("add"), "{remote}");
    }
    // Arguments that are not a map never leave the client.
    assert!(matches!(
        fixture.client.call::<i64>(&ctx, "add", [1, 2]).await,
        Err(Error::Encode { .. })
    ));
    // A result of the wrong type is the caller's decode error.
    assert!(matches!(
        fixture
            .client
            .call::<Vec<String>>(&ctx, "add", json!({"a": 1, "b": 2}))
            .await,
        Err(Error::Decode { .. })
    ));
    assert_eq!(fixture.calc().add(&ctx, 2, 2).await.unwrap(), 4);
    fixture.shutdown().await;
}

/// The untyped client reaches a generated server with named arguments.
pub async fn untyped_client_reaches_typed_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "untyped").await;
    let ctx = Context::new();
    let sum: i64 = fixture.client.call(&ctx, "add", json!({"b": 2, "a": 1})).await.unwrap();
    assert_eq!(sum, 3);
    let as_value: rpc_core::Value = fixture.client.call(&ctx, "whoami", json!({})).await.unwrap();
    assert_eq!(as_value, json!("s1"));
    let unit: () = fixture
        .client
        .call(&ctx, "record", json!({"value": "v"}))
        .await
        .unwrap();
    assert_eq!(unit, ());
    fixture.shutdown().await;
}

/// A method's own error type comes back to the caller typed.
pub async fn application_errors_are_typed<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "app_errors").await;
    let ctx = Context::new();
    assert_eq!(fixture.calc().divide(&ctx, 6, 3).await.unwrap(), Ok(2));
    assert_eq!(
        fixture.calc().divide(&ctx, 1, 0).await.unwrap(),
        Err(MathError::DivideByZero)
    );
    assert_eq!(
        fixture.calc().divide(&ctx, i64::MIN, -1).await.unwrap(),
        Err(MathError::Overflow {
            operation: "divide".into()
        })
    );
    // Untyped callers see the remote error with its class, message and data.
    let error = fixture
        .client
        .call::<i64>(&ctx, "divide", json!({"a": 1, "b": 0}))
        .await
        .unwrap_err();
    let remote = error.remote().expect("remote error");
    assert_eq!(remote.code(), ErrorCode::Application);
    assert_eq!(remote.class(), "MathError");
    assert_eq!(remote.message(), "division by zero");
    assert_eq!(remote.decode_data::<MathError>().unwrap(), MathError::DivideByZero);
    // A method returning an alias of `Result` is fallible too.
    assert_eq!(fixture.calc().checked_sub(&ctx, 1, 2).await.unwrap(), Ok(-1));
    assert_eq!(
        fixture.calc().checked_sub(&ctx, i64::MIN, 1).await.unwrap(),
        Err(MathError::Overflow {
            operation: "subtract".into()
        })
    );
    // An error that does not decode as the caller's error type is not
    // mistaken for another failure: the server's error is kept.
    let stale = StaleCalculatorClient::new(fixture.client.clone());
    match stale.divide(&ctx, 1, 0).await {
        Err(Error::UndecodableApplicationError { error, .. }) => {
            assert_eq!((error.class(), error.message()), ("MathError", "division by zero"));
        }
        other => panic!("expected an undecodable application error, got {other:?}"),
    }
    fixture.shutdown().await;
}

/// A panic in a handler becomes a remote error; the server keeps serving.
pub async fn panicking_handler_keeps_server_serving<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "panic").await;
    let ctx = Context::new();
    for _ in 0..3 {
        let error = fixture.calc().explode(&ctx).await.unwrap_err();
        let remote = error.remote().expect("remote error");
        assert_eq!(remote.code(), ErrorCode::Internal);
        assert!(remote.message().contains("boom"), "{remote}");
    }
    assert_eq!(fixture.calc().add(&ctx, 1, 1).await.unwrap(), 2);
    assert_eq!(fixture.calculator.observed.running.load(Ordering::SeqCst), 0);
    fixture.shutdown().await;
}

/// oslo's ping, opt-in as in oslo (`rpc_ping_enabled`): `"pong"` whatever
/// the arguments, on any server of the topic or a pinned one; without it,
/// `NoSuchMethod`.
pub async fn ping_answers_pong_when_enabled<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("ping");
    let server = Server::builder(connect().await, Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .rpc_ping(true)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(connect().await, Target::topic(&topic));
    let ctx = Context::new();
    let pong: String = client.call(&ctx, PING_METHOD, json!({})).await.unwrap();
    assert_eq!(pong, "pong");
    let pinned = client.prepare().server("s1");
    let pong: String = pinned
        .call(&ctx, PING_METHOD, json!({"anything": [1, 2]}))
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    // The server's own endpoints still come first.
    assert_eq!(CalculatorClient::new(client.clone()).add(&ctx, 1, 2).await.unwrap(), 3);
    server.stop();
    server.wait().await;

    // A probe carries no credentials and must not be shed: the ping answers
    // before the layers, which still guard every other method (a policy
    // refused it until 2026-12-05).
    let topic = unique_topic("ping_guarded");
    let server = Server::builder(connect().await, Target::server(&topic, "s1"))
        .endpoint(Calculator::new("s1"))
        .layer(rpc_core::middleware::Policy::new(rpc_core::middleware::Rule::role(
            "member",
        )))
        .layer(rpc_core::middleware::RateLimit::new().others(0, Duration::from_secs(3600)))
        .rpc_ping(true)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(connect().await, Target::topic(&topic));
    for _ in 0..3 {
        let pong: String = client.call(&ctx, PING_METHOD, json!({})).await.unwrap();
        assert_eq!(pong, "pong");
    }
    let refused = CalculatorClient::new(client).add(&ctx, 1, 2).await;
    assert_eq!(remote_code(refused), ErrorCode::Forbidden);
    server.stop();
    server.wait().await;

    let plain = Fixture::new(connect, "no_ping").await;
    let refused = plain.client.call::<String>(&ctx, PING_METHOD, json!({})).await;
    assert_eq!(remote_code(refused), ErrorCode::NoSuchMethod);
    plain.shutdown().await;
}

/// A request to a topic no server ever listened on fails at once.
pub async fn call_to_unknown_topic_fails_fast<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let client = Client::new(connect().await, Target::topic(unique_topic("unknown"))).timeout(Duration::from_secs(30));
    let ctx = Context::new();
    let started = Instant::now();
    let result = CalculatorClient::new(client.clone()).add(&ctx, 1, 2).await;
    assert!(matches!(result, Err(Error::NoListener { .. })), "{result:?}");
    let cast = CalculatorClient::new(client.clone()).cast().add(&ctx, 1, 2).await;
    assert!(matches!(cast, Err(Error::NoListener { .. })), "{cast:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(client.transport().pending_calls(), 0);
}

/// Unroutable requests in flight among routable ones each get their own
/// answer: a transport pipelining publishes must attribute the broker's
/// returns to the right request.
pub async fn unroutable_requests_among_routable_ones<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "mixed_routes").await;
    let ctx = Context::new();
    let here = CalculatorClient::new(fixture.client.prepare().server("s1"));
    let nowhere = CalculatorClient::new(fixture.client.prepare().server("nobody"));
    let results = join_all((0..400i64).map(|i| {
        let (here, nowhere, ctx) = (here.clone(), nowhere.clone(), ctx.clone());
        async move {
            if i % 2 == 0 {
                (i, here.add(&ctx, i, 1).await)
            } else {
                (i, nowhere.add(&ctx, i, 1).await)
            }
        }
    }))
    .await;
    for (i, result) in results {
        match result {
            Ok(sum) => assert!(i % 2 == 0 && sum == i + 1, "request {i} answered {sum}"),
            Err(Error::NoListener { .. }) => assert!(i % 2 == 1, "request {i} was routable"),
            Err(error) => panic!("request {i}: {error}"),
        }
    }
    let casts = join_all((0..200).map(|i| {
        let (here, nowhere, ctx) = (here.clone(), nowhere.clone(), ctx.clone());
        async move {
            let value = format!("v{i}");
            let result = if i % 2 == 0 {
                here.cast().record(&ctx, value).await
            } else {
                nowhere.cast().record(&ctx, value).await
            };
            (i, result)
        }
    }))
    .await;
    for (i, result) in casts {
        assert_eq!(result.is_ok(), i % 2 == 0, "cast {i}: {result:?}");
    }
    fixture
        .calculator
        .observed
        .wait_for_records(100, Duration::from_secs(10))
        .await;
    fixture.shutdown().await;
}

/// A request whose servers have all stopped waits in the queue and expires
/// with the call's timeout; a later server does not run the stale request.
pub async fn call_times_out_when_no_server_takes_it<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "timeout").await;
    let topic = fixture.topic.clone();
    let transport = fixture.client.transport().clone();
    fixture.server.stop();
    fixture.server.wait().await;
    let client = fixture.client.prepare().timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = CalculatorClient::new(client).add(&Context::new(), 1, 2).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(
            &result,
            Err(Error::Timeout {
                progress: CallProgress::Unclaimed,
                ..
            })
        ),
        "{result:?}"
    );
    let error = result.unwrap_err();
    assert!(error.is_timeout());
    assert!(
        error.to_string().contains("no server reported working on it"),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(transport.pending_calls(), 0);
    // The expired request is gone: a new server does not run it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (server, calculator) = start_server(fixture.client.transport().clone(), &topic, "s1").await;
    assert_eq!(
        CalculatorClient::new(fixture.client.clone())
            .add(&Context::new(), 2, 2)
            .await
            .unwrap(),
        4
    );
    assert_eq!(calculator.observed.handled.load(Ordering::SeqCst), 1);
    server.stop();
    server.wait().await;
}

/// A method slower than the timeout: the caller gives up, forgets the call,
/// and the late reply is dropped and counted.
pub async fn slow_method_times_out_and_late_reply_is_dropped<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "slow").await;
    let transport = fixture.client.transport().clone();
    // One call through first, so that the 200 ms below are the method's,
    // not the first call's set-up (a reply queue to declare and consume:
    // on a slow host with RabbitMQ 4, once, no late reply came without it).
    assert_eq!(fixture.calc().add(&Context::new(), 1, 1).await.unwrap(), 2);
    let impatient = CalculatorClient::new(fixture.client.prepare().timeout(Duration::from_millis(200)));
    let result = impatient.sleep(&Context::new(), 600).await;
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert_eq!(transport.pending_calls(), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while transport.late_replies() == 0 {
        assert!(Instant::now() < deadline, "the late reply never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(transport.pending_calls(), 0);
    assert_eq!(fixture.calc().add(&Context::new(), 1, 1).await.unwrap(), 2);
    fixture.shutdown().await;
}

/// With a call monitor, heartbeats keep a call alive past the monitor timeout;
/// a monitor of zero is none.
pub async fn call_monitor_keeps_long_call_alive<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "monitor_alive").await;
    let monitored = CalculatorClient::new(fixture.client.prepare().call_monitor_timeout(Duration::from_secs(2)));
    // Heartbeats every second; the method outlives two monitor periods.
    assert_eq!(monitored.sleep(&Context::new(), 4500).await.unwrap(), 4500);
    // Zero is no monitor, as in oslo (it failed every call at once, after
    // sending it).
    let unmonitored = CalculatorClient::new(fixture.client.prepare().call_monitor_timeout(Duration::ZERO));
    assert_eq!(unmonitored.sleep(&Context::new(), 50).await.unwrap(), 50);
    fixture.shutdown().await;
}

/// With a call monitor and a server that sends no heartbeats, the call fails
/// at the monitor timeout, long before the overall one.
pub async fn call_monitor_detects_silent_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "monitor_silent").await;
    // Under 2 s the server sends no heartbeats (oslo's rule), so it looks silent.
    let monitored = CalculatorClient::new(
        fixture
            .client
            .prepare()
            .timeout(Duration::from_secs(20))
            .call_monitor_timeout(Duration::from_millis(1500)),
    );
    let started = Instant::now();
    let result = monitored.sleep(&Context::new(), 6000).await;
    assert!(matches!(result, Err(Error::HeartbeatTimeout { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    fixture.shutdown().await;
}

/// A version cap refuses, before sending, requests above it.
pub async fn version_cap_refuses_locally<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "cap").await;
    let ctx = Context::new();
    let capped = fixture.client.prepare().version_cap(Version::new(2, 2));
    let error = ControlClient::new(capped.clone()).newest(&ctx).await.unwrap_err();
    assert!(
        matches!(&error, Error::VersionCap { method, .. } if method == "newest"),
        "{error:?}"
    );
    assert!(error.to_string().contains("2.2"), "{error}");
    let error = LegacyControlClient::new(capped.clone()).probe(&ctx).await.unwrap_err();
    assert!(matches!(error, Error::VersionCap { .. }));
    // A request without a version does not pass a cap either (oslo's rule).
    assert!(matches!(
        CalculatorClient::new(capped.clone()).add(&ctx, 1, 1).await,
        Err(Error::VersionCap { .. })
    ));
    // Casts are capped too.
    assert!(matches!(
        ControlClient::new(capped.clone()).cast().newest(&ctx).await,
        Err(Error::VersionCap { .. })
    ));
    let allowed: String = capped
        .prepare()
        .namespace("control")
        .version(Version::new(2, 1))
        .call(&ctx, "probe", json!({}))
        .await
        .unwrap();
    assert_eq!(allowed, "control 2.3");
    let raised = fixture.client.prepare().version_cap(Version::new(2, 3));
    assert!(ControlClient::new(raised).newest(&ctx).await.unwrap());
    fixture.shutdown().await;
}

/// Calls cannot fan out.
pub async fn fanout_call_is_refused<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "fanout_call").await;
    let result = CalculatorClient::new(fixture.client.prepare().fanout(true))
        .add(&Context::new(), 1, 1)
        .await;
    assert!(matches!(result, Err(Error::InvalidTarget(_))), "{result:?}");
    let result = Client::new(fixture.client.transport().clone(), Target::topic(""))
        .cast(&Context::new(), "add", json!({}))
        .await;
    assert!(matches!(result, Err(Error::InvalidTarget(_))), "{result:?}");
    fixture.shutdown().await;
}

/// Stopping a server with 500 calls running answers every one of them
/// before `wait` returns.
pub async fn stop_with_500_calls_in_flight_answers_them_all<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    const CALLS: usize = 500;
    let topic = unique_topic("stop_500");
    let (server, calculator) = start_server_with(connect().await, &topic, "s1", Executor::Concurrent(512)).await;
    let calc =
        CalculatorClient::new(Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(60)));
    let calls = tokio::spawn(async move {
        let ctx = Context::new();
        join_all((0..CALLS).map(|_| calc.sleep(&ctx, 2_000))).await
    });
    let observed = calculator.observed.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while observed.running.load(Ordering::SeqCst) < CALLS {
        assert!(
            Instant::now() < deadline,
            "only {} calls started",
            observed.running.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop();
    server.wait().await;
    assert_eq!(
        observed.running.load(Ordering::SeqCst),
        0,
        "wait returned before the work was done"
    );
    let results = calls.await.unwrap();
    assert_eq!(results.len(), CALLS);
    for result in results {
        assert_eq!(result.unwrap(), 2_000);
    }
    assert_eq!(observed.handled.load(Ordering::SeqCst), CALLS);
}

/// `stop` takes no new work; `wait` returns once the work in flight is answered.
pub async fn stop_and_wait_finish_work_in_flight<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "stop_wait").await;
    let calc = fixture.calc();
    let ctx = Context::new();
    let in_flight: Vec<_> = (0..5).map(|_| calc.sleep(&ctx, 400)).collect();
    let calls = tokio::spawn({
        let calc = calc.clone();
        async move {
            let ctx = Context::new();
            join_all((0..5).map(|_| calc.sleep(&ctx, 400))).await
        }
    });
    drop(in_flight);
    let observed = fixture.calculator.observed.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while observed.running.load(Ordering::SeqCst) < 5 {
        assert!(Instant::now() < deadline, "the calls never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let handle = fixture.server.handle();
    fixture.server.stop();
    assert!(handle.is_running(), "still finishing its requests");
    fixture.server.wait().await;
    assert!(!handle.is_running());
    assert_eq!(
        observed.running.load(Ordering::SeqCst),
        0,
        "wait returned before the work was done"
    );
    for result in calls.await.unwrap() {
        assert_eq!(result.unwrap(), 400);
    }
    // Stopping twice, or waiting on a stopped server, is harmless.
    fixture.server.stop();
    fixture.server.wait().await;
}

/// The sequential executor runs one request at a time, in order.
pub async fn sequential_executor_runs_one_at_a_time<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("sequential");
    let (server, calculator) = start_server_with(connect().await, &topic, "s1", Executor::Sequential).await;
    let calc = CalculatorClient::new(Client::new(connect().await, Target::topic(&topic)));
    let ctx = Context::new();
    for value in ["a", "b", "c", "d"] {
        calc.cast().slow_record(&ctx, value.into(), 30).await.unwrap();
    }
    let records = calculator.observed.wait_for_records(4, Duration::from_secs(10)).await;
    assert_eq!(records, ["s1:a", "s1:b", "s1:c", "s1:d"]);
    assert_eq!(calculator.observed.peak.load(Ordering::SeqCst), 1);
    server.stop();
    server.wait().await;
}

/// A stopped server can start again; starting a running one is an error.
pub async fn server_can_restart<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "restart").await;
    let ctx = Context::new();
    assert!(matches!(fixture.server.start().await, Err(Error::ServerState(_))));
    fixture.server.stop();
    fixture.server.wait().await;
    fixture.server.start().await.unwrap();
    assert_eq!(fixture.calc().add(&ctx, 3, 4).await.unwrap(), 7);
    fixture.shutdown().await;
}

/// A server needs a topic, a server name, and an endpoint.
pub async fn server_needs_topic_and_server_name<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let transport = connect().await;
    let without_server = Server::builder(transport.clone(), Target::topic("t"))
        .endpoint(Calculator::new("x"))
        .build();
    assert!(
        matches!(without_server, Err(Error::InvalidTarget(_))),
        "{without_server:?}"
    );
    let without_topic = Server::builder(transport.clone(), Target::server("", "s"))
        .endpoint(Calculator::new("x"))
        .build();
    assert!(matches!(without_topic, Err(Error::InvalidTarget(_))));
    let without_endpoint = Server::builder(transport.clone(), Target::server("t", "s")).build();
    assert!(matches!(without_endpoint, Err(Error::Config(_))));
    let zero = Server::builder(transport, Target::server("t", "s"))
        .endpoint(Calculator::new("x"))
        .executor(Executor::Concurrent(0))
        .build();
    assert!(matches!(zero, Err(Error::Config(_))));
}

/// A thousand calls in flight at once from one client all get their own result.
pub async fn concurrent_calls<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let fixture = Fixture::new(connect, "concurrent").await;
    let calc = fixture.calc();
    let ctx = Context::new();
    let results = join_all((0..1000).map(|i| {
        let calc = calc.clone();
        let ctx = ctx.clone();
        async move { (i, calc.add(&ctx, i, i).await) }
    }))
    .await;
    for (i, result) in results {
        assert_eq!(result.unwrap(), 2 * i);
    }
    assert_eq!(fixture.client.transport().pending_calls(), 0);
    // Calls that take time fill the executor, and no more: `add` returns
    // before another starts on its thread, and could not tell.
    let slow = join_all((0..200).map(|_| calc.sleep(&ctx, 100))).await;
    assert!(slow.iter().all(|result| matches!(result, Ok(100))), "{slow:?}");
    assert_eq!(
        fixture.calculator.observed.peak.load(Ordering::SeqCst),
        rpc_core::DEFAULT_CONCURRENCY
    );
    fixture.shutdown().await;
}
