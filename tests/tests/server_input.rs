//! What a server does with input it cannot or should not run: it answers
//! or drops it, and keeps serving.

use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rpc_core::transport::memory::{Broker, MemoryDriver};
use rpc_core::transport::{
    Address, Bytes, Driver, ListenOptions, Listener, OutgoingMessage, ReplyQueue, ReplySink, Retry, async_trait,
};
use rpc_core::{Client, Codec, Context, DeliveryMode, Error, ErrorCode, Server, Target, Transport, TransportError};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::passthrough::{Losing, Passing, Passthrough};

async fn serve(transport: Transport, topic: &str, max_message_size: usize) -> (Server, Calculator) {
    let calculator = Calculator::new("s1");
    let server = Server::builder(transport, Target::server(topic, "s1"))
        .endpoint(calculator.clone())
        .max_message_size(max_message_size)
        .build()
        .unwrap();
    server.start().await.unwrap();
    (server, calculator)
}

#[tokio::test]
async fn undecodable_bytes_are_dropped_and_the_server_keeps_serving() {
    let broker = Broker::new();
    let (server, calculator) = serve(broker.transport(), "garbage", 1 << 20).await;
    let driver = broker.driver();
    let to_topic = Address::new("openstack", "garbage", None, false);
    for body in [
        &b""[..],
        b"\xc1",
        b"\x92\x01\x02",
        b"\x81\xa1v\x01",
        b"not msgpack at all",
    ] {
        let message = OutgoingMessage::new(Bytes::copy_from_slice(body), Codec::MsgPack, None, Retry::Never);
        driver.send(to_topic, message).await.unwrap();
    }
    let calc = CalculatorClient::new(Client::new(broker.transport(), Target::topic("garbage")));
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);
    assert_eq!(calculator.observed.handled.load(Ordering::SeqCst), 1);
    assert_eq!(server.stats().rejected, 5);
    server.stop();
    server.wait().await;
}

#[tokio::test]
async fn an_oversized_call_is_refused_at_once() {
    let broker = Broker::new();
    let (server, calculator) = serve(broker.transport(), "oversized", 1024).await;
    let client = Client::new(broker.transport(), Target::topic("oversized")).timeout(Duration::from_secs(30));
    let started = Instant::now();
    let result = CalculatorClient::new(client.clone())
        .greet(&Context::new(), "x".repeat(4096), None)
        .await;
    let Err(Error::Remote(remote)) = result else {
        panic!("expected a BadRequest, got {result:?}");
    };
    assert_eq!(remote.code(), ErrorCode::BadRequest);
    assert!(remote.message().contains("over the limit of 1024 bytes"), "{remote}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Small requests still go through; the big one never ran.
    assert_eq!(
        CalculatorClient::new(client).add(&Context::new(), 2, 2).await.unwrap(),
        4
    );
    assert_eq!(calculator.observed.handled.load(Ordering::SeqCst), 1);
    server.stop();
    server.wait().await;
}

async fn duplicates_run_once(delivery: DeliveryMode) {
    let broker = Broker::new();
    let calculator = Calculator::new("s1");
    let server = Server::builder(broker.transport(), Target::server("duplicates", "s1"))
        .endpoint(calculator.clone())
        .delivery_mode(delivery)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(
        Passing::transport(Duplicating(broker.driver())),
        Target::topic("duplicates"),
    );
    let calc = CalculatorClient::new(client);
    for value in ["a", "b", "c"] {
        calc.cast().record(&Context::new(), value.into()).await.unwrap();
    }
    // A call's duplicate is dropped too: exactly one reply comes back.
    assert_eq!(calc.add(&Context::new(), 1, 1).await.unwrap(), 2);
    // Four requests and their four copies.
    processed(&server, 8).await;
    let mut records = calculator.observed.records();
    records.sort();
    assert_eq!(records, ["s1:a", "s1:b", "s1:c"]);
    assert_eq!(calculator.observed.handled.load(Ordering::SeqCst), 4);
    let stats = server.stats();
    assert_eq!(
        (stats.handled, stats.duplicates, stats.rejected),
        (4, 4, 0),
        "{stats:?}"
    );
    server.stop();
    server.wait().await;
}

#[tokio::test]
async fn duplicate_deliveries_run_once() {
    duplicates_run_once(DeliveryMode::AtMostOnce).await;
}

#[tokio::test]
async fn duplicate_deliveries_run_once_at_least_once() {
    duplicates_run_once(DeliveryMode::AtLeastOnce).await;
}

/// A driver that publishes every request twice, as a redelivering broker might.
#[derive(Debug)]
struct Duplicating(MemoryDriver);

#[async_trait]
impl Passthrough for Duplicating {
    fn inner(&self) -> &dyn Driver {
        &self.0
    }

    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.0.send(address, message.clone()).await?;
        self.0.send(address, message).await
    }
}

/// Waits until the server has dealt with `count` messages and has nothing
/// in flight.
async fn processed(server: &Server, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = server.stats();
        if stats.handled + stats.rejected + stats.duplicates >= count && stats.in_flight == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "not all processed: {stats:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Hostile but well-formed requests in both codecs, on every executor and
/// delivery mode: each is answered or dropped as documented
/// (`docs/reliability.md`), nothing is left running, and the server keeps
/// serving and stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_on_every_executor_and_delivery_mode() {
    use rpc_core::Executor;
    use rpc_tests::hostile::{self, RecordingSink, Replies};

    for executor in [Executor::Concurrent(8), Executor::Sequential] {
        for mode in [DeliveryMode::AtMostOnce, DeliveryMode::AtLeastOnce] {
            let broker = Broker::new();
            let topic = format!("hostile_{executor:?}_{mode:?}").replace(['(', ')'], "");
            let server = Server::builder(broker.transport(), Target::server(&topic, "s1"))
                .endpoint(Calculator::new("s1"))
                .executor(executor)
                .delivery_mode(mode)
                .build()
                .unwrap();
            server.start().await.unwrap();
            let replies = Arc::new(Replies::default());
            let queue = broker
                .driver()
                .listen_replies(Arc::new(RecordingSink(Arc::clone(&replies))), Retry::Never)
                .await
                .unwrap();
            let mut cases = hostile::cases(Codec::MsgPack, &queue.address, "m");
            cases.extend(hostile::cases(Codec::OsloJson, &queue.address, "o"));
            for case in &cases {
                broker
                    .publish_raw(
                        Address::new("openstack", &topic, None, false),
                        case.body.clone(),
                        Some(case.codec.content_type()),
                    )
                    .unwrap();
            }
            processed(&server, cases.len() as u64).await;
            hostile::check(&cases, &replies).await;
            assert_eq!(server.stats().unfinished, 0, "{executor:?} {mode:?}");
            let calc = CalculatorClient::new(Client::new(broker.transport(), Target::topic(&topic)));
            assert_eq!(
                calc.add(&Context::new(), 1, 2).await.unwrap(),
                3,
                "{executor:?} {mode:?}"
            );
            server.stop();
            tokio::time::timeout(Duration::from_secs(10), server.wait())
                .await
                .unwrap_or_else(|_| panic!("{executor:?} {mode:?}: wait() did not return"));
        }
    }
}

/// A driver whose heartbeats take `delay` to publish; it records when each
/// final reply and each heartbeat was handed over.
#[derive(Debug)]
struct SlowHeartbeats {
    inner: rpc_core::transport::memory::MemoryDriver,
    delay: Duration,
    events: Arc<std::sync::Mutex<Vec<(&'static str, Instant)>>>,
}

#[async_trait]
impl Driver for SlowHeartbeats {
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner.send(address, message).await
    }

    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        let ending = rpc_core::__private::wire::decode_reply_ending(message.codec, &message.body).unwrap();
        if !ending {
            tokio::time::sleep(self.delay).await;
        }
        self.events
            .lock()
            .unwrap()
            .push((if ending { "reply" } else { "heartbeat" }, Instant::now()));
        self.inner.reply(reply_to, message).await
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        self.inner.listen(address, options).await
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError> {
        self.inner.listen_replies(sink, retry).await
    }
}

/// Heartbeats run beside the handler: one that takes long to publish never
/// holds the method back, and none is handed over after the final reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heartbeats_never_delay_the_method_nor_follow_its_reply() {
    use rpc_core::Executor;

    async fn check(executor: Executor, mode: DeliveryMode) {
        let broker = Broker::new();
        let events = Arc::default();
        let server_side = Transport::new(SlowHeartbeats {
            inner: broker.driver(),
            delay: Duration::from_millis(1500),
            events: Arc::clone(&events),
        });
        let topic = format!("slow_heartbeats_{executor:?}_{mode:?}").replace(['(', ')'], "");
        let server = Server::builder(server_side, Target::server(&topic, "s1"))
            .endpoint(Calculator::new("s1"))
            .executor(executor)
            .delivery_mode(mode)
            .build()
            .unwrap();
        server.start().await.unwrap();
        // Heartbeats every second, each 1.5 s to publish; the method takes 1.5 s.
        let client = Client::new(broker.transport(), Target::topic(&topic))
            .timeout(Duration::from_secs(20))
            .call_monitor_timeout(Duration::from_secs(2));
        let started = Instant::now();
        assert_eq!(
            CalculatorClient::new(client)
                .sleep(&Context::new(), 1500)
                .await
                .unwrap(),
            1500,
            "{executor:?} {mode:?}"
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2200),
            "{executor:?} {mode:?}: the call took {took:?}: a heartbeat held the method back"
        );
        // The heartbeat still publishing when the method finished is dropped.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events.iter().map(|(kind, _)| *kind).collect::<Vec<_>>(),
            ["reply"],
            "{executor:?} {mode:?}"
        );
        server.stop();
        server.wait().await;
    }

    let mut checks = Vec::new();
    for executor in [Executor::Concurrent(4), Executor::Sequential] {
        for mode in [DeliveryMode::AtMostOnce, DeliveryMode::AtLeastOnce] {
            checks.push(check(executor, mode));
        }
    }
    futures_util::future::join_all(checks).await;
}

/// A memory driver whose server deliveries cannot be acknowledged, as on a
/// connection lost between their delivery and their acknowledgement.
#[derive(Debug)]
struct AcksFail {
    inner: MemoryDriver,
}

#[async_trait]
impl Passthrough for AcksFail {
    fn inner(&self) -> &dyn Driver {
        &self.inner
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        Ok(Losing::first(
            self.inner.listen(address, options).await?,
            usize::MAX,
            false,
        ))
    }
}

/// An at-most-once request that cannot be acknowledged before it runs (its
/// connection lost meanwhile) is not run, and is counted as left to the
/// broker, which delivers it again: `left_to_broker` said nothing of it, and
/// the stats did not add up.
#[tokio::test]
async fn a_request_that_cannot_be_acknowledged_is_left_to_the_broker() {
    let broker = Broker::new();
    let topic = "unacknowledged";
    let (server, calculator) = serve(Passing::transport(AcksFail { inner: broker.driver() }), topic, 1 << 20).await;
    let client = CalculatorClient::new(Client::new(broker.transport(), Target::topic(topic)));
    client.cast().record(&Context::new(), "lost".to_owned()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().left_to_broker == 0 {
        assert!(
            Instant::now() < deadline,
            "not left to the broker: {:?}",
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(calculator.observed.handled.load(Ordering::SeqCst), 0);
    server.stop();
    server.wait().await;
}

/// Answers `add` with a result encoded in a codec of its own, as a layer
/// forwarding another server's answer or serving a cached one would, and
/// `divide` with an error whose data JSON cannot hold.
struct Forwarding(Codec);

impl rpc_core::middleware::Middleware for Forwarding {
    fn call<'a>(
        &'a self,
        request: &'a mut rpc_core::Request,
        next: rpc_core::middleware::Next<'a>,
    ) -> rpc_core::HandlerFuture<'a> {
        let codec = self.0;
        match request.method() {
            "add" => Box::pin(async move { Ok(codec.encode(&5u32).unwrap()) }),
            "whoami" => Box::pin(async move { Ok(Codec::MsgPack.encode(&numbered()).unwrap()) }),
            "divide" => Box::pin(async move {
                let data = Codec::MsgPack.encode(&numbered()).unwrap();
                Err(
                    rpc_core::RemoteError::new(ErrorCode::Application, "Forwarded", "from elsewhere")
                        .with_payload(data),
                )
            }),
            _ => next.run(request),
        }
    }
}

/// A map keyed by numbers, which JSON cannot hold.
fn numbered() -> std::collections::BTreeMap<u32, &'static str> {
    std::collections::BTreeMap::from([(1, "x")])
}

#[tokio::test]
async fn results_and_errors_from_another_codec_reach_their_callers() {
    for (caller, forwarded) in [(Codec::MsgPack, Codec::OsloJson), (Codec::OsloJson, Codec::MsgPack)] {
        let transport = Broker::new().transport();
        let server = Server::builder(transport.clone(), Target::server("forwarding", "s1"))
            .endpoint(Calculator::new("s1"))
            .layer(Forwarding(forwarded))
            .build()
            .unwrap();
        server.start().await.unwrap();
        let client = CalculatorClient::new(
            Client::new(transport, Target::topic("forwarding"))
                .codec(caller)
                .timeout(Duration::from_secs(5)),
        );
        let ctx = Context::new();
        // MessagePack would read the JSON text `5` as the number 53; JSON
        // cannot hold MessagePack's bytes, and the caller waited out its timeout.
        assert_eq!(client.add(&ctx, 1, 1).await.unwrap(), 5, "{caller:?} caller");
        // JSON cannot hold a map keyed by numbers: the error comes without it.
        match client.divide(&ctx, 1, 1).await {
            // The data is not a `MathError`: the error comes as it was sent.
            Err(Error::Remote(error) | Error::UndecodableApplicationError { error, .. }) => {
                assert_eq!(error.class(), "Forwarded", "{caller:?} caller");
                assert_eq!(error.data().is_some(), caller == Codec::MsgPack, "{caller:?} caller");
            }
            other => panic!("{caller:?} caller: {other:?}"),
        }
        if caller == Codec::OsloJson {
            // A result that cannot be sent at all is answered with why.
            match client.whoami(&ctx).await {
                Err(Error::Remote(error)) => assert_eq!(error.class(), "EncodeError"),
                other => panic!("{other:?}"),
            }
        }
        server.stop();
        server.wait().await;
    }
}

/// An endpoint with oslo's ping method of its own.
struct OwnPing;

#[rpc_core::endpoint]
impl OwnPing {
    async fn oslo_rpc_server_ping(&self, _ctx: &Context) -> String {
        "own".to_owned()
    }
}

#[tokio::test]
async fn an_endpoints_own_ping_goes_through_the_layers() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("own_ping", "s1"))
        .endpoint(OwnPing)
        .layer(rpc_core::middleware::Policy::new(rpc_core::middleware::Rule::role(
            "admin",
        )))
        .rpc_ping(true)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(transport, Target::topic("own_ping")).timeout(Duration::from_secs(5));
    // The built-in ping skips the layers; a method of the user's does not,
    // whatever its name (as oslo, which then adds no ping of its own).
    let refused = client
        .call::<String>(&Context::new(), rpc_core::PING_METHOD, serde_json::json!({}))
        .await;
    match refused {
        Err(Error::Remote(error)) => assert_eq!(error.code(), ErrorCode::Forbidden),
        other => panic!("{other:?}"),
    }
    let mut admin = Context::new();
    admin.insert("roles", ["admin"]).unwrap();
    let own: String = client
        .call(&admin, rpc_core::PING_METHOD, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(own, "own");
    server.stop();
    server.wait().await;
}

/// A hand-written endpoint of `commit`, as a proxy's may be: it lists
/// `listed` (a proxy's may list none), may or may not be interrupted in
/// `commit`, and runs it for `runs` (`None`: never, an endpoint before it
/// does), setting `started` and `finished`.
#[derive(Default)]
struct Commits {
    listed: &'static [&'static str],
    interruptible: bool,
    runs: Option<Duration>,
    started: Arc<std::sync::atomic::AtomicBool>,
    finished: Arc<std::sync::atomic::AtomicBool>,
}

impl rpc_core::Endpoint for Commits {
    fn namespace(&self) -> Option<&str> {
        None
    }

    fn version(&self) -> rpc_core::Version {
        rpc_core::Version::new(1, 0)
    }

    fn methods(&self) -> &[&str] {
        self.listed
    }

    fn interruptible(&self, method: &str) -> bool {
        method != "commit" || self.interruptible
    }

    fn dispatch<'a>(&'a self, request: &'a rpc_core::Request) -> Option<rpc_core::HandlerFuture<'a>> {
        let runs = self.runs.filter(|_| request.method() == "commit")?;
        Some(Box::pin(async move {
            self.started.store(true, Ordering::SeqCst);
            tokio::time::sleep(runs).await;
            self.finished.store(true, Ordering::SeqCst);
            request.encode_result(&true)
        }))
    }
}

#[tokio::test]
async fn a_layer_does_not_make_an_uninterruptible_handler_interruptible() {
    // Listing nothing, uninterruptible in `commit`, which takes 300 ms.
    let commits = Commits {
        runs: Some(Duration::from_millis(300)),
        ..Commits::default()
    };
    let committed = Arc::clone(&commits.finished);
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("commits", "s1"))
        .endpoint(commits)
        .layer(rpc_core::middleware::RequestLog)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(transport, Target::topic("commits")).timeout(Duration::from_millis(100));
    let gave_up = client
        .call::<bool>(&Context::new(), "commit", serde_json::json!({}))
        .await;
    assert!(matches!(gave_up, Err(Error::Timeout { .. })), "{gave_up:?}");
    // The endpoint running it said no: it ran to the end past the deadline.
    rpc_tests::eventually("the commit to finish", Duration::from_secs(5), || {
        committed.load(Ordering::SeqCst).then_some(()).ok_or("not yet")
    })
    .await;
    assert_eq!(server.stats().interrupted, 0);
    server.stop();
    server.wait().await;
}

/// Tells what trace a request came in, and the `traceparent` its context carries.
struct Traces;

#[rpc_core::endpoint]
impl Traces {
    async fn trace_id(&self, ctx: &Context) -> String {
        ctx.trace().map(rpc_core::TraceContext::trace_id).unwrap_or_default()
    }

    async fn context_traceparent(&self, ctx: &Context) -> Option<String> {
        ctx.get_str("traceparent").map(str::to_owned)
    }
}

#[tokio::test]
async fn the_trace_travels_in_the_context_as_oslo_18_3_carries_it() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("traces", "s1"))
        .endpoint(Traces)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = TracesClient::new(
        Client::new(transport, Target::topic("traces"))
            .codec(Codec::OsloJson)
            .timeout(Duration::from_secs(5)),
    );
    // A Python caller with tracing on: the trace only in the context.
    let upstream = rpc_core::TraceContext::new_root();
    let mut from_python = Context::new();
    from_python.insert("traceparent", upstream.traceparent()).unwrap();
    assert_eq!(client.trace_id(&from_python).await.unwrap(), upstream.trace_id());
    // A Rust handler passing its context on: the request's own span
    // replaces the one the context came with, for a Python server to follow.
    let passed_on = from_python.clone().with_trace(rpc_core::TraceContext::new_root());
    let sent = client
        .context_traceparent(&passed_on)
        .await
        .unwrap()
        .expect("a traceparent");
    let sent = rpc_core::TraceContext::parse(&sent, None).expect("a valid traceparent");
    assert_eq!(sent.trace_id(), passed_on.trace().unwrap().trace_id());
    assert_ne!(sent.trace_id(), upstream.trace_id());
    server.stop();
    server.wait().await;
}

#[tokio::test]
async fn a_layer_does_not_make_an_interruptible_handler_deaf_to_cancels() {
    // Listing nothing, it runs `commit` for 5 s and may be interrupted; the
    // endpoint after it lists `commit`, uninterruptible, and never runs it.
    let everything = Commits {
        interruptible: true,
        runs: Some(Duration::from_secs(5)),
        ..Commits::default()
    };
    let started = Arc::clone(&everything.started);
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("cancels", "s1"))
        .endpoint(everything)
        .endpoint(Commits {
            listed: &["commit"],
            ..Commits::default()
        })
        .layer(rpc_core::middleware::RequestLog)
        .build()
        .unwrap();
    server.start().await.unwrap();
    // Pinned, so the caller knows whom to tell it gave up.
    let client = Client::new(transport, Target::topic("cancels"))
        .timeout(Duration::from_secs(30))
        .prepare()
        .server("s1");
    let call = tokio::spawn(async move {
        client
            .call::<bool>(&Context::new(), "commit", serde_json::json!({}))
            .await
    });
    rpc_tests::eventually("the commit to start", Duration::from_secs(5), || {
        started.load(Ordering::SeqCst).then_some(()).ok_or("not yet")
    })
    .await;
    call.abort();
    // The endpoint that runs it may be interrupted: the cancel stops it,
    // long before its 5 s (the first guess, from the endpoint listing the
    // method, said no).
    rpc_tests::eventually("the cancel to stop the handler", Duration::from_secs(3), || {
        let stats = server.stats();
        if stats.cancelled == 1 { Ok(()) } else { Err(stats) }
    })
    .await;
    server.stop();
    server.wait().await;
}

/// Sleeps as long as asked, or panics.
struct Stopping;

#[rpc_core::endpoint]
impl Stopping {
    async fn sleep(&self, _ctx: &Context, ms: u64) -> bool {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        true
    }

    async fn explode(&self, _ctx: &Context) -> bool {
        panic!("boom")
    }
}

/// `RequestLog` writes its line for requests the server stopped at their
/// deadline, or whose handler panicked: it wrote none (its future was
/// dropped or unwound before its line), for the requests operators most
/// want to see.
#[tokio::test]
async fn the_request_log_tells_of_requests_stopped_or_panicked() {
    let logs = rpc_tests::logs::Logs::default();
    let _capture = logs.capture_thread("info");
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("stopping", "s1"))
        .endpoint(Stopping)
        .layer(rpc_core::middleware::RequestLog)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = StoppingClient::new(Client::new(transport, Target::topic("stopping")));
    let stopped = client
        .prepare()
        .timeout(Duration::from_millis(100))
        .sleep(&Context::new(), 10_000)
        .await;
    assert!(matches!(stopped, Err(Error::Timeout { .. })), "{stopped:?}");
    rpc_tests::eventually("the handler stopped", Duration::from_secs(5), || {
        (server.stats().interrupted == 1).then_some(()).ok_or(server.stats())
    })
    .await;
    let exploded = client.explode(&Context::new()).await;
    assert!(exploded.is_err(), "{exploded:?}");
    assert!(client.sleep(&Context::new(), 0).await.unwrap());
    for outcome in ["deadline_exceeded", "panicked", "ok"] {
        let lines = logs.lines_with(&["rpc_core::request", &format!("outcome=\"{outcome}\"")]);
        assert_eq!(lines.len(), 1, "{outcome}: {}", logs.text());
    }
    server.stop();
    server.wait().await;
}

/// A handler kept past its caller's deadline (it may not be interrupted)
/// sends no more notices that it runs: its caller has gone. They went on
/// every interval until the handler returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_notices_follow_the_deadline_of_a_handler_that_runs_on() {
    let broker = Broker::new();
    let events = Arc::default();
    let server_side = Transport::new(SlowHeartbeats {
        inner: broker.driver(),
        delay: Duration::ZERO,
        events: Arc::clone(&events),
    });
    // Uninterruptible in `commit`, which takes 4 s.
    let commits = Commits {
        runs: Some(Duration::from_secs(4)),
        ..Commits::default()
    };
    let committed = Arc::clone(&commits.finished);
    let server = Server::builder(server_side, Target::server("notices", "s1"))
        .endpoint(commits)
        .build()
        .unwrap();
    server.start().await.unwrap();
    // Notices a few times a second; the caller gives up after 1.5 s.
    let client = Client::new(broker.transport(), Target::topic("notices"))
        .timeout(Duration::from_millis(1500))
        .call_monitor_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let gave_up = client
        .call::<bool>(&Context::new(), "commit", serde_json::json!({}))
        .await;
    assert!(matches!(gave_up, Err(Error::Timeout { .. })), "{gave_up:?}");
    rpc_tests::eventually("the commit to finish", Duration::from_secs(10), || {
        committed.load(Ordering::SeqCst).then_some(()).ok_or("not yet")
    })
    .await;
    let deadline = started + Duration::from_millis(1500);
    let events = events.lock().unwrap().clone();
    let late: Vec<_> = events
        .iter()
        // A notice due at the deadline itself may race the stop by a
        // scheduling delay: none comes a whole interval (375 ms) after it.
        .filter(|(kind, at)| *kind == "heartbeat" && *at > deadline + Duration::from_millis(600))
        .collect();
    assert!(late.is_empty(), "notices after the deadline: {late:?} of {events:?}");
    assert!(events.iter().any(|(kind, _)| *kind == "heartbeat"), "{events:?}");
    server.stop();
    server.wait().await;
}

/// Returns at once, leaving a task that waits for the request's cancellation.
#[derive(Clone, Default)]
struct Spawner {
    heard: Arc<std::sync::atomic::AtomicBool>,
}

#[rpc_core::endpoint]
impl Spawner {
    async fn spawn_watcher(&self, ctx: &Context) {
        let (ctx, heard) = (ctx.clone(), Arc::clone(&self.heard));
        tokio::spawn(async move {
            ctx.cancelled().await;
            heard.store(true, Ordering::SeqCst);
        });
    }
}

/// Work a handler spawned with its context hears the caller's deadline
/// after the handler returned: the token was cancelled only while the
/// handler ran, and such a task waited for ever.
#[tokio::test]
async fn work_a_handler_spawned_hears_the_deadline_after_it_returned() {
    let spawner = Spawner::default();
    let heard = Arc::clone(&spawner.heard);
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("spawner", "s1"))
        .endpoint(spawner)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client =
        SpawnerClient::new(Client::new(transport, Target::topic("spawner")).timeout(Duration::from_millis(300)));
    client.spawn_watcher(&Context::new()).await.unwrap();
    assert!(!heard.load(Ordering::SeqCst), "cancelled before the deadline");
    rpc_tests::eventually("the spawned task to hear the deadline", Duration::from_secs(5), || {
        heard.load(Ordering::SeqCst).then_some(()).ok_or("not yet")
    })
    .await;
    server.stop();
    server.wait().await;
}

/// A call made with a context whose request was cancelled (a nested call,
/// from an uninterruptible handler or work it spawned) gives up with it:
/// not sent once cancelled, and waiting no more, its server told, when
/// cancelled while it waits. Calls went on regardless of the token.
#[tokio::test]
async fn calls_give_up_with_the_request_they_were_made_for() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("nested", "s1"))
        .endpoint(Stopping)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = StoppingClient::new(Client::new(transport, Target::topic("nested")))
        .prepare()
        .server("s1");
    let cancelled = rpc_core::Cancellation::new();
    cancelled.cancel();
    let refused = client.sleep(&Context::new().with_cancellation(cancelled), 0).await;
    assert!(matches!(refused, Err(Error::Cancelled { .. })), "{refused:?}");
    assert_eq!(server.stats().handled, 0, "sent all the same");

    let token = rpc_core::Cancellation::new();
    let ctx = Context::new().with_cancellation(token.clone());
    let started = Instant::now();
    let waiting = tokio::spawn(async move { client.sleep(&ctx, 30_000).await });
    rpc_tests::eventually("the call to run", Duration::from_secs(5), || {
        (server.stats().in_flight == 1).then_some(()).ok_or(server.stats())
    })
    .await;
    token.cancel();
    let gave_up = waiting.await.unwrap();
    assert!(matches!(gave_up, Err(Error::Cancelled { .. })), "{gave_up:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    rpc_tests::eventually("its server to be told", Duration::from_secs(5), || {
        (server.stats().cancelled == 1).then_some(()).ok_or(server.stats())
    })
    .await;
    server.stop();
    server.wait().await;
}

/// A proxy's endpoint: lists no method, and answers every one.
struct AnswersAll;

impl rpc_core::Endpoint for AnswersAll {
    fn namespace(&self) -> Option<&str> {
        None
    }

    fn version(&self) -> rpc_core::Version {
        rpc_core::Version::new(1, 0)
    }

    fn methods(&self) -> &[&str] {
        &[]
    }

    fn dispatch<'a>(&'a self, request: &'a rpc_core::Request) -> Option<rpc_core::HandlerFuture<'a>> {
        Some(Box::pin(std::future::ready(request.encode_result("proxied"))))
    }
}

/// The built-in ping answers its pings itself: it came after a proxy's
/// endpoint that takes any method, which got them (with their arguments,
/// past every layer).
#[tokio::test]
async fn the_built_in_ping_answers_before_an_endpoint_taking_every_method() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("proxy", "s1"))
        .endpoint(AnswersAll)
        .rpc_ping(true)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(transport, Target::topic("proxy"));
    let ctx = Context::new();
    let pong: String = client
        .call(&ctx, rpc_core::PING_METHOD, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    let other: String = client.call(&ctx, "anything", serde_json::json!({})).await.unwrap();
    assert_eq!(other, "proxied");
    // oslo's ping endpoint is at 1.0: a ping asking 2.0 is refused, as oslo refuses it.
    let newer = client.prepare().version(rpc_core::Version::new(2, 0));
    let refused = newer
        .call::<String>(&ctx, rpc_core::PING_METHOD, serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        refused.remote().map(|e| e.code()),
        Some(ErrorCode::UnsupportedVersion),
        "{refused:?}"
    );
    server.stop();
    server.wait().await;
}

/// A driver whose sends wait, while `held`, until the test lets them go;
/// `waiting` is told of each send held.
#[derive(Debug)]
struct HeldSends {
    inner: MemoryDriver,
    held: Arc<std::sync::atomic::AtomicBool>,
    waiting: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl rpc_tests::passthrough::Passthrough for HeldSends {
    fn inner(&self) -> &dyn Driver {
        &self.inner
    }

    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        if self.held.load(Ordering::SeqCst) {
            self.waiting.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.send(address, message).await
    }
}

/// A call still going out (a publish waiting out an outage or an alarm)
/// gives up when the request it was made for is cancelled, and is not
/// sent: it went out whenever the broker took it, cancelled or not. A cast
/// goes out whatever the token says (a cleanup after a cancel is one).
#[tokio::test]
async fn a_call_still_going_out_gives_up_with_its_cancelled_request() {
    let broker = Broker::new();
    let server = Server::builder(broker.transport(), Target::server("held", "s1"))
        .endpoint(Stopping)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let held = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let waiting = Arc::new(tokio::sync::Notify::new());
    let transport = Passing::transport(HeldSends {
        inner: broker.driver(),
        held: Arc::clone(&held),
        waiting: Arc::clone(&waiting),
    });
    let client = StoppingClient::new(Client::new(transport, Target::topic("held")));
    let token = rpc_core::Cancellation::new();
    let ctx = Context::new().with_cancellation(token.clone());
    let sending = tokio::spawn({
        let client = client.clone();
        async move { client.sleep(&ctx, 0).await }
    });
    waiting.notified().await;
    token.cancel();
    let gave_up = tokio::time::timeout(Duration::from_secs(5), sending).await;
    let gave_up = gave_up.expect("it gave up").unwrap();
    assert!(matches!(gave_up, Err(Error::Cancelled { .. })), "{gave_up:?}");
    // It did not go out: the next call is the first the server runs.
    held.store(false, Ordering::SeqCst);
    assert!(client.sleep(&Context::new(), 0).await.unwrap());
    assert_eq!(server.stats().handled, 1);
    // A cast made with the cancelled context goes out.
    let cancelled = Context::new().with_cancellation(token);
    client.cast().sleep(&cancelled, 0).await.unwrap();
    rpc_tests::eventually("the cast handled", Duration::from_secs(5), || {
        (server.stats().handled == 2).then_some(()).ok_or(server.stats())
    })
    .await;
    server.stop();
    server.wait().await;
}
