//! The request-lifecycle scenarios of the conformance suite: deadlines that
//! reach the server and stop its handlers, requests that expired on their
//! way never started, and a chain of calls sharing one deadline, one
//! `global_request_id` and one trace.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rpc_core::transport::{
    Address, Driver, ListenOptions, Listener, OutgoingMessage, ReplyQueue, ReplySink, Retry, async_trait, headers,
};
use rpc_core::{
    CallProgress, Client, Codec, Context, Error, ErrorCode, Prepared, Server, Target, TraceContext, Transport,
    TransportError, endpoint,
};
use serde::{Deserialize, Serialize};

use super::unique_topic;

/// What one hop of a chain saw of its request's lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// The server's name.
    pub server: String,
    /// The deadline it was given, in milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
    /// The request id it was given.
    pub request_id: Option<String>,
    /// The global request id it was given.
    pub global_request_id: Option<String>,
    /// The trace id of its span.
    pub trace_id: Option<String>,
    /// osprofiler's `trace_info` context entry, as it arrived.
    pub trace_info: Option<rpc_core::Value>,
}

/// A server of the lifecycle scenarios: relays a call down a chain, and
/// runs long handlers, interruptible or not.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct Relay {
    name: String,
    next: Option<RelayClient>,
    /// Handlers running now.
    running: Arc<AtomicUsize>,
    /// Handlers that ran to their end.
    finished: Arc<AtomicUsize>,
    /// What `commit` saw of its cancellation when it finished.
    saw_cancelled: Arc<Mutex<Vec<bool>>>,
}

impl Relay {
    fn new(name: &str, next: Option<RelayClient>) -> Relay {
        Relay {
            name: name.to_owned(),
            next,
            running: Arc::default(),
            finished: Arc::default(),
            saw_cancelled: Arc::default(),
        }
    }
}

struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The lifecycle test API.
#[endpoint(namespace = "lifecycle")]
impl Relay {
    /// Records what this hop saw, then calls the next hop with the same
    /// context, as a handler calling another service does.
    async fn relay(&self, ctx: &Context) -> Vec<Hop> {
        let mut hops = vec![Hop {
            server: self.name.clone(),
            deadline_ms: ctx
                .deadline()
                .map(|deadline| deadline.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64),
            request_id: ctx.request_id().map(str::to_owned),
            global_request_id: ctx.global_request_id().map(str::to_owned),
            trace_id: ctx.trace().map(TraceContext::trace_id),
            trace_info: ctx.get_value("trace_info").cloned(),
        }];
        if let Some(next) = &self.next {
            hops.extend(next.relay(ctx).await.expect("the next hop answers"));
        }
        hops
    }

    /// Sleeps for `millis`, counted as running while it does.
    async fn linger(&self, _ctx: &Context, millis: u64) -> u64 {
        self.running.fetch_add(1, Ordering::SeqCst);
        let _running = Running(Arc::clone(&self.running));
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        millis
    }

    /// Sleeps for `millis` and is never interrupted: records whether it
    /// was told its request was cancelled.
    #[rpc(uninterruptible)]
    async fn commit(&self, ctx: &Context, millis: u64) -> bool {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        let cancelled = ctx.is_cancelled();
        self.saw_cancelled.lock().unwrap().push(cancelled);
        self.finished.fetch_add(1, Ordering::SeqCst);
        cancelled
    }
}

async fn start_relay(transport: Transport, topic: &str, relay: Relay) -> Server {
    let server = Server::builder(transport, Target::server(topic, relay.name.as_str()))
        .endpoint(relay)
        .build()
        .expect("valid server");
    server.start().await.expect("server starts");
    server
}

async fn stop(server: Server) {
    server.stop();
    server.wait().await;
}

/// A relay server `s1` on a new topic, and a client pinned to it with a
/// 30 s timeout; `None` (the server stopped) unless the client speaks
/// MessagePack: only pinned MessagePack calls send cancels.
async fn pinned_cancellable<C: Fn() -> F, F: Future<Output = Transport>>(
    connect: C,
    scenario: &str,
) -> Option<(Server, Relay, Prepared<RelayClient>)> {
    let topic = unique_topic(scenario);
    let relay = Relay::new("s1", None);
    let server = start_relay(connect().await, &topic, relay.clone()).await;
    let transport = connect().await;
    if transport.codec() != Codec::MsgPack {
        stop(server).await;
        return None;
    }
    let pinned = RelayClient::new(Client::new(transport, Target::topic(&topic)))
        .prepare()
        .server("s1")
        .timeout(Duration::from_secs(30));
    Some((server, relay, pinned))
}

/// One call through, before a test's timed ones: the client's reply queue
/// and both sides' connections are then up, so a short deadline is spent on
/// the handler, not on the first call's set-up. (Without it, on a slow host
/// with quorum queues on RabbitMQ 4, a first call with a 200 ms deadline
/// once never reached its handler.)
async fn warm_up(client: &RelayClient) {
    client.relay(&Context::new()).await.expect("the warm-up call");
}

/// Waits (at most `within`) until `condition` holds.
async fn until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A handler still running at its caller's deadline is dropped then, and
/// counted; one marked `#[rpc(uninterruptible)]` runs to its end and sees
/// its request cancelled.
pub async fn handler_stops_at_the_callers_deadline<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("deadline_stop");
    let relay = Relay::new("s1", None);
    let server = start_relay(connect().await, &topic, relay.clone()).await;
    let client = RelayClient::new(Client::new(connect().await, Target::topic(&topic)));
    let ctx = Context::new();
    warm_up(&client).await;

    let started = Instant::now();
    let result = client
        .prepare()
        .timeout(Duration::from_millis(400))
        .linger(&ctx, 30_000)
        .await;
    assert!(result.as_ref().is_err_and(Error::is_timeout), "{result:?}");
    until(Duration::from_secs(5), "the handler stopped", || {
        server.stats().interrupted == 1 && relay.running.load(Ordering::SeqCst) == 0
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(relay.finished.load(Ordering::SeqCst), 0, "the handler ran to its end");

    let result = client
        .prepare()
        .timeout(Duration::from_millis(300))
        .commit(&ctx, 600)
        .await;
    assert!(result.as_ref().is_err_and(Error::is_timeout), "{result:?}");
    until(Duration::from_secs(5), "the uninterruptible handler finished", || {
        relay.finished.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(*relay.saw_cancelled.lock().unwrap(), [true]);
    assert_eq!(server.stats().interrupted, 1);

    // The server serves on, and handlers within their deadline finish.
    assert_eq!(client.linger(&ctx, 1).await.unwrap(), 1);
    assert!(!client.commit(&ctx, 1).await.unwrap());
    stop(server).await;
}

/// A server whose handlers must not be interrupted lets them finish.
pub async fn servers_may_let_handlers_finish<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("deadline_finish");
    let relay = Relay::new("s1", None);
    let server = Server::builder(connect().await, Target::server(&topic, "s1"))
        .endpoint(relay.clone())
        .interrupt_at_deadline(false)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = RelayClient::new(Client::new(connect().await, Target::topic(&topic)));
    warm_up(&client).await;
    let result = client
        .prepare()
        .timeout(Duration::from_millis(400))
        .linger(&Context::new(), 800)
        .await;
    assert!(result.is_err_and(|error| error.is_timeout()));
    until(Duration::from_secs(5), "the handler finished", || {
        relay.finished.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(server.stats().interrupted, 0);
    stop(server).await;
}

/// A request whose caller's deadline passed before the server took it (a
/// peer's clock ahead, a long wait in a queue) is never started, nor
/// answered; it is counted, and the server serves on.
pub async fn expired_requests_never_start<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("deadline_expired");
    let relay = Relay::new("s1", None);
    let server = start_relay(connect().await, &topic, relay.clone()).await;
    let late = tampered(connect().await, Tamper::Deadline(Shift::Past(Duration::from_secs(1))));
    let client = RelayClient::new(Client::new(late, Target::topic(&topic)).timeout(Duration::from_millis(500)));
    let result = client.linger(&Context::new(), 1).await;
    assert!(result.as_ref().is_err_and(Error::is_timeout), "{result:?}");
    until(Duration::from_secs(5), "the request counted", || {
        server.stats().expired == 1
    })
    .await;
    assert_eq!(relay.finished.load(Ordering::SeqCst), 0, "an expired request ran");
    assert_eq!(server.stats().handled, 0);

    let client = RelayClient::new(Client::new(connect().await, Target::topic(&topic)));
    assert_eq!(client.linger(&Context::new(), 1).await.unwrap(), 1);
    stop(server).await;
}

/// A chain of calls (the test calls B, whose handler calls C) shares one
/// deadline, one `global_request_id` and one trace id, though B's own
/// client to C has a longer timeout; osprofiler's `trace_info` travels
/// untouched.
pub async fn a_call_chain_shares_deadline_ids_and_trace<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic_b = unique_topic("chain_b");
    let topic_c = unique_topic("chain_c");
    let server_c = start_relay(connect().await, &topic_c, Relay::new("c", None)).await;
    let to_c = RelayClient::new(Client::new(connect().await, Target::topic(&topic_c)).timeout(Duration::from_secs(60)));
    let server_b = start_relay(connect().await, &topic_b, Relay::new("b", Some(to_c))).await;
    let to_b = RelayClient::new(Client::new(connect().await, Target::topic(&topic_b)).timeout(Duration::from_secs(5)));

    let root = TraceContext::new_root();
    let mut ctx = Context::new().with_request_id("req-a").with_trace(root.clone());
    ctx.insert("global_request_id", "req-global").unwrap();
    // osprofiler's entry, for Python peers: passed on untouched.
    let trace_info = rpc_core::json!({"hmac_key": "secret-ish", "base_id": "b1", "parent_id": "p1"});
    ctx.insert_value("trace_info", trace_info.clone());
    let sent = SystemTime::now();
    let hops = to_b.relay(&ctx).await.unwrap();

    let servers: Vec<&str> = hops.iter().map(|hop| hop.server.as_str()).collect();
    assert_eq!(servers, ["b", "c"]);
    let expected = sent + Duration::from_secs(5);
    let expected_ms = expected.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    for hop in &hops {
        let deadline = hop.deadline_ms.expect("a deadline") as i64;
        assert!(
            (deadline - expected_ms).abs() < 1_000,
            "{hop:?}: expected about {expected_ms}"
        );
        assert_eq!(hop.request_id.as_deref(), Some("req-a"), "{hop:?}");
        assert_eq!(hop.global_request_id.as_deref(), Some("req-global"), "{hop:?}");
        assert_eq!(hop.trace_id.as_deref(), Some(root.trace_id().as_str()), "{hop:?}");
        assert_eq!(hop.trace_info.as_ref(), Some(&trace_info), "{hop:?}");
    }
    let (b, c) = (hops[0].deadline_ms.unwrap(), hops[1].deadline_ms.unwrap());
    assert!(b.abs_diff(c) <= 2, "one deadline down the chain: b {b}, c {c}");

    // A context's own deadline bounds a call with a longer timeout.
    let short = Context::new().with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = to_b
        .prepare()
        .timeout(Duration::from_secs(30))
        .linger(&short, 5_000)
        .await;
    assert!(result.as_ref().is_err_and(Error::is_timeout), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let expired = Context::new().with_deadline(SystemTime::now() - Duration::from_secs(1));
    assert!(to_b.linger(&expired, 1).await.is_err_and(|error| error.is_timeout()));
    stop(server_b).await;
    stop(server_c).await;
}

/// A handler stopped at its deadline answers `DeadlineExceeded` to a caller
/// still listening: one whose own wait outlasts the deadline it sent.
pub async fn a_stopped_handler_answers_deadline_exceeded<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("deadline_answer");
    let relay = Relay::new("s1", None);
    let server = start_relay(connect().await, &topic, relay.clone()).await;
    let early = tampered(
        connect().await,
        Tamper::Deadline(Shift::Ahead(Duration::from_millis(300))),
    );
    let client = RelayClient::new(Client::new(early, Target::topic(&topic)).timeout(Duration::from_secs(10)));
    let error = client.linger(&Context::new(), 30_000).await.unwrap_err();
    let remote = error.remote().unwrap_or_else(|| panic!("a remote error: {error:?}"));
    assert_eq!(remote.code(), ErrorCode::DeadlineExceeded, "{remote}");
    assert_eq!(server.stats().interrupted, 1);
    stop(server).await;
}

/// A timeout says what the caller knew: a server still working on the call
/// reads differently from one that took it and went silent (here, a server
/// whose replies stop reaching the caller after its first notice, as when
/// it dies; `amqp_delivery` kills a real one). Nobody taking the call at all
/// is `conformance::call_times_out_when_no_server_takes_it`.
pub async fn timeouts_tell_what_happened<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("timeout_stories");
    let relay = Relay::new("s1", None);
    let server = start_relay(connect().await, &topic, relay.clone()).await;
    let client = RelayClient::new(Client::new(connect().await, Target::topic(&topic)));

    // Slow: notices every second (a quarter of 4 s) until the caller gives
    // up; a notice late by up to a second on a busy host still reads as
    // working (the story's rule: heard within two intervals).
    let slow = client
        .prepare()
        .timeout(Duration::from_secs(4))
        .commit(&Context::new(), 5_000)
        .await;
    match &slow {
        Err(Error::Timeout {
            progress: CallProgress::Working { server, .. },
            ..
        }) => {
            assert_eq!(server, "s1");
        }
        other => panic!("expected a timeout while the server worked: {other:?}"),
    }
    assert!(slow.unwrap_err().to_string().contains("still working on it"));

    // Silent: a server whose first notice arrives, then nothing.
    let muted_topic = unique_topic("timeout_silent");
    let muted = Relay::new("s2", None);
    let transport = tampered(connect().await, Tamper::RepliesAfter(AtomicUsize::new(1)));
    let silent_server = start_relay(transport, &muted_topic, muted.clone()).await;
    let to_muted = RelayClient::new(Client::new(connect().await, Target::topic(&muted_topic)));
    let silent = to_muted
        .prepare()
        .timeout(Duration::from_secs(2))
        .commit(&Context::new(), 2_500)
        .await;
    match &silent {
        Err(Error::Timeout {
            progress: CallProgress::WentSilent { server, .. },
            ..
        }) => {
            assert_eq!(server, "s2");
        }
        other => panic!("expected a timeout after the server went silent: {other:?}"),
    }
    assert!(silent.unwrap_err().to_string().contains("may have died mid-call"));
    stop(server).await;
    stop(silent_server).await;
}

/// A call dropped by its caller (its future dropped) while pinned to a
/// server is cancelled there: the handler stops at once, is counted, and
/// nothing is answered. Only Rust servers understand cancels, so a client
/// sends one only when it knows the server is one: pinned in MessagePack
/// (which Python peers do not speak), or heard from. A pinned call in
/// oslo's JSON is left to its deadline.
pub async fn a_dropped_call_cancels_its_handler<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("cancel_dropped");
    let relay = Relay::new("s1", None);
    let server = start_relay(connect().await, &topic, relay.clone()).await;
    let transport = connect().await;
    let msgpack = transport.codec() == Codec::MsgPack;
    let pinned = RelayClient::new(Client::new(transport, Target::topic(&topic)))
        .prepare()
        .server("s1")
        .timeout(Duration::from_millis(if msgpack { 30_000 } else { 800 }));
    let started = Instant::now();
    let call = tokio::spawn(async move { pinned.linger(&Context::new(), 30_000).await });
    until(Duration::from_secs(5), "the handler started", || {
        relay.running.load(Ordering::SeqCst) == 1
    })
    .await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let dropped = Instant::now();
    until(Duration::from_secs(5), "the handler stopped", || {
        relay.running.load(Ordering::SeqCst) == 0
    })
    .await;
    let stopped_after = dropped.elapsed();
    let stats = server.stats();
    if msgpack {
        eprintln!("a dropped call's handler stopped {stopped_after:?} after the drop");
        assert!(stopped_after < Duration::from_secs(2), "{stopped_after:?}");
        assert_eq!((stats.cancelled, stats.interrupted), (1, 0), "{stats:?}");
    } else {
        assert!(
            started.elapsed() >= Duration::from_millis(790),
            "stopped before its deadline"
        );
        assert_eq!((stats.cancelled, stats.interrupted), (0, 1), "{stats:?}");
    }
    assert_eq!(relay.finished.load(Ordering::SeqCst), 0);
    stop(server).await;
}

/// A call given up because its server went silent (no call-monitor
/// heartbeat in time) is cancelled there, as a dropped call is: a server
/// alive all the same (its heartbeats late) stops a handler nobody waits
/// for, instead of running it to the call's deadline.
pub async fn a_call_given_up_on_a_silent_server_is_cancelled<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let Some((server, relay, pinned)) = pinned_cancellable(connect, "cancel_silent").await else {
        return;
    };
    // Under 2 s the server sends no heartbeats (oslo's rule): it looks silent.
    let pinned = pinned.call_monitor_timeout(Duration::from_millis(1500));
    let call = tokio::spawn(async move { pinned.linger(&Context::new(), 30_000).await });
    until(Duration::from_secs(5), "the handler started", || {
        relay.running.load(Ordering::SeqCst) == 1
    })
    .await;
    let result = call.await.unwrap();
    assert!(matches!(result, Err(Error::HeartbeatTimeout { .. })), "{result:?}");
    let given_up = Instant::now();
    until(Duration::from_secs(5), "the handler stopped", || {
        relay.running.load(Ordering::SeqCst) == 0
    })
    .await;
    eprintln!(
        "the handler stopped {:?} after its call was given up",
        given_up.elapsed()
    );
    let stats = server.stats();
    assert_eq!((stats.cancelled, stats.interrupted), (1, 0), "{stats:?}");
    assert_eq!(relay.finished.load(Ordering::SeqCst), 0);
    stop(server).await;
}

/// A call dropped as soon as it is sent is cancelled too. Its cancel may
/// be handled before the call is registered as running (on RabbitMQ the
/// request's acknowledgement waits for a flush while the cancel, right
/// behind it, is outstanding): the server remembers such a cancel, and
/// stops the call once it registers. Where a request waits for the
/// broker's confirm (quorum queues), the call is dropped while it goes
/// out: it may arrive all the same, and is cancelled all the same.
pub async fn a_call_dropped_as_it_is_sent_is_cancelled<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    use futures_util::FutureExt;

    let Some((server, relay, pinned)) = pinned_cancellable(connect, "cancel_sent").await else {
        return;
    };
    warm_up(&pinned).await;
    let start = server.stats();
    // Rounds of 20 until one of them reached the server: a request that
    // waits for its confirm is not published once its caller is gone, so
    // on quorum queues most never do (on a loaded host, once, none in 10
    // rounds: up to 100).
    for round in 1..=100 {
        let before = server.stats();
        for _ in 0..20 {
            let ctx = Context::new();
            let mut call = std::pin::pin!(pinned.linger(&ctx, 30_000));
            // Sent on its first poll (or going out), then dropped.
            assert!(call.as_mut().now_or_never().is_none());
        }
        // Behind every request and cancel on the server's queue: once it is
        // answered, they were all taken.
        warm_up(&pinned).await;
        until(Duration::from_secs(10), "every dropped call's handler stopped", || {
            let stats = server.stats();
            relay.running.load(Ordering::SeqCst) == 0
                && stats.handled - before.handled - 1 == stats.cancelled - before.cancelled
        })
        .await;
        let cancelled = server.stats().cancelled - start.cancelled;
        if cancelled > 0 {
            eprintln!("{cancelled} dropped calls reached the server in {round} rounds, and were cancelled");
            break;
        }
    }
    assert!(
        server.stats().cancelled > start.cancelled,
        "no dropped call reached the server"
    );
    assert_eq!(relay.finished.load(Ordering::SeqCst), 0);
    stop(server).await;
}

/// A transport on `inner` that tampers with what it carries, as the fault
/// under test would.
fn tampered(inner: Transport, tamper: Tamper) -> Transport {
    let (codec, exchange) = (inner.codec(), inner.control_exchange().to_owned());
    Transport::builder(Tampered { inner, tamper })
        .codec(codec)
        .control_exchange(exchange)
        .build()
}

#[derive(Debug)]
enum Tamper {
    /// Calls carry a forged deadline: in the past, as a peer whose clock is
    /// ahead (or a request that waited long) would deliver it, or sooner
    /// than the caller's own wait. The messages carry no expiration, so only
    /// the server's own check stands in the way.
    Deadline(Shift),
    /// Replies pass until this many went, then are dropped (as by a server
    /// that died).
    RepliesAfter(AtomicUsize),
}

/// Where a forged deadline is.
#[derive(Clone, Copy, Debug)]
enum Shift {
    Past(Duration),
    Ahead(Duration),
}

#[derive(Debug)]
struct Tampered {
    inner: Transport,
    tamper: Tamper,
}

#[async_trait]
impl Driver for Tampered {
    async fn send(&self, address: Address<'_>, mut message: OutgoingMessage) -> Result<(), TransportError> {
        if let Tamper::Deadline(shift) = self.tamper {
            if message.headers.get(headers::DEADLINE).is_some() {
                let deadline = match shift {
                    Shift::Past(by) => SystemTime::now() - by,
                    Shift::Ahead(by) => SystemTime::now() + by,
                };
                let millis = deadline.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
                message.headers.insert(headers::DEADLINE, millis.to_string());
                message.deadline = None;
            }
        }
        self.inner.driver().send(address, message).await
    }

    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        if let Tamper::RepliesAfter(left) = &self.tamper {
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
                .is_err()
            {
                return Ok(());
            }
        }
        self.inner.driver().reply(reply_to, message).await
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        self.inner.driver().listen(address, options).await
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError> {
        self.inner.driver().listen_replies(sink, retry).await
    }
}
