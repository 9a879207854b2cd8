//! The client seam: typed stubs over any caller; the retry, timeout and log
//! layers; the in-process `Local` caller (with server layers) and the `Mock`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rpc_core::caller::{Caller, Local, LogLayer, Mock, RetryLayer, TimeoutLayer};
use rpc_core::middleware::{Policy, Rule};
use rpc_core::{Client, Context, Error, ErrorCode, RemoteError, Server, Target, endpoint, json};
use rpc_tests::logs::Logs;

/// An inventory: reads are idempotent, `reserve` is not.
#[derive(Clone, Debug, Default)]
struct Inventory {
    reserved: Arc<AtomicUsize>,
    /// Told when work a `watch` call spawned saw its request cancelled.
    cancelled: Arc<tokio::sync::Notify>,
    /// Commits finished.
    committed: Arc<AtomicUsize>,
}

#[endpoint(namespace = "inventory", version = "1.2")]
impl Inventory {
    /// How many of `item` there are.
    #[rpc(idempotent)]
    async fn count(&self, _ctx: &Context, item: String) -> u64 {
        item.len() as u64
    }

    /// Takes one; not safe to repeat.
    async fn reserve(&self, _ctx: &Context, _item: String) -> u64 {
        self.reserved.fetch_add(1, Ordering::SeqCst) as u64 + 1
    }

    /// Takes `millis` to commit, and is never stopped halfway.
    #[rpc(uninterruptible)]
    async fn commit(&self, _ctx: &Context, millis: u64) {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.committed.fetch_add(1, Ordering::SeqCst);
    }

    /// Sleeps for `millis`.
    #[rpc(idempotent)]
    async fn slow(&self, _ctx: &Context, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    /// Spawns work that stops when the request is cancelled, then waits.
    async fn watch(&self, ctx: &Context) {
        let (ctx, cancelled) = (ctx.clone(), Arc::clone(&self.cancelled));
        tokio::spawn(async move {
            ctx.cancelled().await;
            cancelled.notify_one();
        });
        std::future::pending::<()>().await;
    }

    /// The shelves, by number.
    async fn shelves(&self, _ctx: &Context) -> std::collections::HashMap<u32, String> {
        std::collections::HashMap::from([(1, "bolts".to_owned())])
    }

    /// Fails as its caller asks.
    async fn fail(&self, _ctx: &Context, panic: bool) -> Result<(), String> {
        if panic {
            panic!("asked to");
        }
        Err("refused".to_owned())
    }
}

fn overloaded() -> RemoteError {
    RemoteError::new(ErrorCode::Overloaded, "RateLimitExceeded", "slow down")
}

/// A mock whose `method` is overloaded `failures` times, then answers `value`.
fn flaky(method: &str, failures: usize, value: u64) -> (Mock, Arc<AtomicUsize>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let mock = Mock::new().on(method, move |_, _| {
        if counted.fetch_add(1, Ordering::SeqCst) < failures {
            Err(overloaded())
        } else {
            Ok(json!(value))
        }
    });
    (mock, attempts)
}

#[tokio::test]
async fn retries_only_idempotent_methods() {
    let fast = RetryLayer::new(3).backoff(Duration::from_millis(1), Duration::from_millis(2));
    let ctx = Context::new();

    let (mock, attempts) = flaky("count", 2, 9);
    let inventory = InventoryClient::new(mock.clone().layer(fast));
    assert_eq!(inventory.count(&ctx, "bolts".into()).await.unwrap(), 9);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "two failures, then the answer");
    assert_eq!(mock.calls_to("count")[0].args, json!({"item": "bolts"}));

    // Three attempts in all: the third failure is the caller's.
    let (mock, attempts) = flaky("count", 5, 9);
    let inventory = InventoryClient::new(mock.layer(fast));
    let error = inventory.count(&ctx, "bolts".into()).await.unwrap_err();
    assert_eq!(error.remote().map(RemoteError::code), Some(ErrorCode::Overloaded));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);

    // Not idempotent: tried once.
    let (mock, attempts) = flaky("reserve", 2, 1);
    let inventory = InventoryClient::new(mock.layer(fast));
    let error = inventory.reserve(&ctx, "bolts".into()).await.unwrap_err();
    assert_eq!(error.remote().map(RemoteError::code), Some(ErrorCode::Overloaded));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn errors_a_retry_cannot_fix_are_not_retried() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let mock = Mock::new().on("count", move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        Err(RemoteError::new(ErrorCode::Forbidden, "PolicyNotAuthorized", "no"))
    });
    let inventory = InventoryClient::new(mock.layer(RetryLayer::new(5)));
    let error = inventory.count(&Context::new(), "x".into()).await.unwrap_err();
    assert_eq!(error.remote().map(RemoteError::code), Some(ErrorCode::Forbidden));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_method_timeouts_replace_the_clients() {
    let transport = rpc_core::transport_from_url("memory://caller_timeouts").await.unwrap();
    let server = Server::builder(transport.clone(), Target::server("inventory", "s1"))
        .endpoint(Inventory::default())
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = Client::new(transport, Target::topic("inventory")).timeout(Duration::from_millis(100));
    let layered = client.clone().layer(
        TimeoutLayer::new()
            .method("slow", Duration::from_secs(5))
            .method("count", Duration::from_millis(50)),
    );
    let ctx = Context::new();
    // Longer than the client's 100 ms: allowed for `slow`.
    let inventory = InventoryClient::new(layered);
    assert_eq!(inventory.slow(&ctx, 300).await.unwrap(), 300);
    // `Duration::MAX` is no timeout at all, on the layer as on the client.
    let unbounded = InventoryClient::new(
        client
            .clone()
            .timeout(Duration::MAX)
            .layer(TimeoutLayer::new().method("count", Duration::MAX)),
    );
    assert_eq!(unbounded.count(&ctx, "four".into()).await.unwrap(), 4);
    // Without the layer, the client's timeout applies: the 300 ms call
    // fails. Either side may tell first: the client's timer, or the server
    // stopping the method at the deadline the request carried (to the
    // millisecond, so a little sooner) and answering `DeadlineExceeded`.
    let plain = InventoryClient::new(client);
    let error = plain.slow(&ctx, 300).await.unwrap_err();
    assert!(error.is_timeout(), "expected the client's timeout, got {error:?}");
    if let Error::Timeout { timeout, .. } = error {
        assert!(
            timeout <= Duration::from_millis(100) && timeout > Duration::from_millis(90),
            "{timeout:?}"
        );
    }
    // The context's deadline still bounds a longer per-method timeout.
    let short = Context::new().with_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let error = inventory.slow(&short, 2_000).await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_log_layer_writes_one_line_per_request() {
    let logs = Logs::default();
    let _guard = logs.capture_thread("rpc_core::call=info");
    let mock = Mock::new().returns("count", 4);
    let inventory = InventoryClient::new(mock.layer(LogLayer));
    inventory.count(&Context::new(), "nuts".into()).await.unwrap();
    let _ = inventory.reserve(&Context::new(), "nuts".into()).await;
    let ok = logs.lines_with(&["method=\"count\"", "kind=\"call\"", "outcome=\"ok\""]);
    assert_eq!(ok.len(), 1, "{}", logs.text());
    let failed = logs.lines_with(&["method=\"reserve\"", "outcome=\"no_such_method\""]);
    assert_eq!(failed.len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn a_mock_records_calls_and_refuses_unknown_methods() {
    let mock = Mock::new().returns("count", 3);
    let inventory = InventoryClient::new(mock.clone());
    let ctx = Context::new();
    assert_eq!(inventory.count(&ctx, "a".into()).await.unwrap(), 3);
    inventory.cast().reserve(&ctx, "b".into()).await.unwrap();
    let unknown = inventory.reserve(&ctx, "c".into()).await.unwrap_err();
    assert_eq!(unknown.remote().map(RemoteError::code), Some(ErrorCode::NoSuchMethod));
    let calls = mock.calls();
    assert_eq!(calls.len(), 3);
    // A result as a server sends it, whatever JSON could hold: keys that are numbers.
    let shelves = std::collections::HashMap::from([(7_u32, "nuts".to_owned())]);
    let stocked = InventoryClient::new(Mock::new().returns("shelves", shelves.clone()));
    assert_eq!(stocked.shelves(&ctx).await.unwrap(), shelves);
    assert_eq!(calls[0].namespace.as_deref(), Some("inventory"));
    assert_eq!(
        calls[0].version.map(|version| version.to_string()).as_deref(),
        Some("1.0")
    );
    assert!(calls[0].is_call);
    assert!(!calls[1].is_call);
    assert_eq!(calls[1].args, json!({"_item": "b"}));
}

#[tokio::test]
async fn local_runs_endpoints_with_their_layers_and_no_transport() {
    let inventory = Inventory::default();
    let local = Local::builder()
        .endpoint(inventory.clone())
        .layer(Policy::new(Rule::allow()).rule("inventory:reserve", Rule::role("clerk")))
        .build();
    let client = InventoryClient::new(local.clone());
    let ctx = Context::new();
    assert_eq!(client.count(&ctx, "four".into()).await.unwrap(), 4);

    // Server layers apply.
    let refused = client.reserve(&ctx, "x".into()).await.unwrap_err();
    assert_eq!(refused.remote().map(RemoteError::code), Some(ErrorCode::Forbidden));
    let mut clerk = Context::new();
    clerk.insert("roles", ["clerk"]).unwrap();
    assert_eq!(client.reserve(&clerk, "x".into()).await.unwrap(), 1);
    // A cast runs to its end before returning.
    client.cast().reserve(&clerk, "y".into()).await.unwrap();
    assert_eq!(inventory.reserved.load(Ordering::SeqCst), 2);

    // Typed application errors, panics, deadlines: as from a server.
    assert_eq!(client.fail(&ctx, false).await.unwrap(), Err("refused".to_owned()));
    let panicked = client.fail(&ctx, true).await.unwrap_err();
    assert_eq!(panicked.remote().map(RemoteError::code), Some(ErrorCode::Internal));
    let short = Context::new().with_timeout(Duration::from_millis(50));
    assert!(client.slow(&short, 5_000).await.unwrap_err().is_timeout());
    // At the deadline the request is cancelled, as on a server: what its
    // handler spawned stops too (until 2026-12-05 it ran on for ever).
    let short = Context::new().with_timeout(Duration::from_millis(50));
    let cancelled = inventory.cancelled.notified();
    assert!(client.watch(&short).await.unwrap_err().is_timeout());
    tokio::time::timeout(Duration::from_secs(10), cancelled)
        .await
        .expect("the spawned work saw its request cancelled");

    // A handler that may not be interrupted runs to its end, as on a
    // server; the call still fails at its deadline (until 2026-12-05 the
    // handler was dropped halfway).
    let short = Context::new().with_timeout(Duration::from_millis(50));
    assert!(client.commit(&short, 300).await.unwrap_err().is_timeout());
    assert_eq!(inventory.committed.load(Ordering::SeqCst), 1);
    // A request past its deadline is not run (it started, until 2026-12-05).
    let late = clerk
        .clone()
        .with_deadline(std::time::SystemTime::now() - Duration::from_secs(1));
    assert!(client.reserve(&late, "z".into()).await.unwrap_err().is_timeout());
    assert_eq!(inventory.reserved.load(Ordering::SeqCst), 2);
    // Nor a call whose own request was cancelled, as a client gives it up.
    let token = rpc_core::Cancellation::new();
    token.cancel();
    let cancelled = clerk.clone().with_cancellation(token);
    let refused = client.reserve(&cancelled, "z".into()).await.unwrap_err();
    assert!(matches!(refused, rpc_core::Error::Cancelled { .. }), "{refused:?}");
    assert_eq!(inventory.reserved.load(Ordering::SeqCst), 2);

    // A timeout of `Duration::MAX` (the usual "no timeout") is "never", not an overflow.
    let unbounded = InventoryClient::new(local.clone().layer(TimeoutLayer::new().method("count", Duration::MAX)));
    assert_eq!(unbounded.count(&ctx, "four".into()).await.unwrap(), 4);

    // Namespace and version selection too: an untyped request for 2.0 is refused.
    let newer = Local::builder().endpoint(Inventory::default()).build();
    let version = rpc_core::Version::new(2, 0);
    let request = json!({"item": "x"});
    let invocation = rpc_core::caller::Invocation::new("count", &request)
        .with_namespace(Some("inventory"))
        .with_version(Some(&version));
    let unsupported = newer.call(&ctx, invocation).await.unwrap_err();
    assert_eq!(
        unsupported.remote().map(RemoteError::code),
        Some(ErrorCode::UnsupportedVersion)
    );
}

/// A flood of refused requests is logged once a second at most, with how
/// many went unlogged, and a refused caller's fields are cut: a line per
/// refusal turned a flood into one of logs, and a message holding 100,000
/// roles into a line of megabytes.
#[tokio::test(flavor = "current_thread")]
async fn refusals_are_logged_once_a_second_at_most() {
    use rpc_core::middleware::RateLimit;

    let logs = Logs::default();
    let _capture = logs.capture_thread("warn");
    let guarded = InventoryClient::new(
        Local::builder()
            .endpoint(Inventory::default())
            .layer(Policy::new(Rule::role("admin")))
            .build(),
    );
    let mut ctx = Context::new();
    let roles: Vec<String> = (0..20_000).map(|n| format!("role-{n}")).collect();
    ctx.insert("roles", roles).unwrap();
    let limited = InventoryClient::new(
        Local::builder()
            .endpoint(Inventory::default())
            .layer(RateLimit::new().others(1, Duration::from_secs(3600)))
            .build(),
    );
    let started = std::time::Instant::now();
    for _ in 0..500 {
        let refused = guarded.count(&ctx, "x".into()).await.unwrap_err();
        assert_eq!(refused.remote().map(RemoteError::code), Some(ErrorCode::Forbidden));
        let _ = limited.count(&Context::new(), "x".into()).await;
    }
    let policy = logs.lines_with(&["the policy refuses a request"]);
    let limit = logs.lines_with(&["refusing a request over its rate limit"]);
    // One a second at most, the first at once.
    let most = usize::try_from(started.elapsed().as_secs()).unwrap() + 1;
    assert!(
        (1..=most).contains(&policy.len()),
        "{} in {:?}",
        policy.len(),
        started.elapsed()
    );
    assert!(
        (1..=most).contains(&limit.len()),
        "{} in {:?}",
        limit.len(),
        started.elapsed()
    );
    assert!(policy[0].len() < 8 * 1024, "a line of {} bytes", policy[0].len());
    assert!(policy[0].contains("role_count=20000"), "{}", policy[0]);
}

/// Limits name methods as `Policy` does: `namespace:method` limits that
/// namespace's method only (it limited nothing: the name was looked up as
/// a method's).
#[tokio::test]
async fn limits_take_a_namespace_as_policy_does() {
    use rpc_core::middleware::RateLimit;

    let limited = |name: &str| {
        InventoryClient::new(
            Local::builder()
                .endpoint(Inventory::default())
                .layer(RateLimit::new().method(name, 1, Duration::from_secs(3600)))
                .build(),
        )
    };
    let ctx = Context::new();
    for (name, second_refused) in [("inventory:count", true), ("count", true), ("warehouse:count", false)] {
        let client = limited(name);
        client.count(&ctx, "x".into()).await.unwrap();
        let second = client.count(&ctx, "x".into()).await;
        assert_eq!(second.is_err(), second_refused, "{name}: {second:?}");
    }
}
