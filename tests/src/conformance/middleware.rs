//! The middleware and health scenarios of the conformance suite: a policy
//! layer refuses with a typed error the caller sees, layers run in the
//! order they were added and may enrich the context, limits per method,
//! and a server's health.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rpc_core::middleware::{ConcurrencyLimit, Middleware, Next, Policy, RateLimit, RequestLog, Rule};
use rpc_core::{Client, Context, Error, ErrorCode, HandlerFuture, Request, Server, Target, Transport, endpoint};

use super::unique_topic;

/// The endpoint behind the layers: says what its context carried.
#[derive(Clone, Debug, Default)]
pub struct Guarded {
    /// What the handlers saw, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

#[endpoint(namespace = "guarded", version = "1.0")]
impl Guarded {
    /// Returns the context's `stamp` entries, as the layers left them.
    async fn stamps(&self, ctx: &Context) -> Vec<String> {
        self.seen.lock().unwrap().push("handler".to_owned());
        ctx.get::<Vec<String>>("stamps").unwrap().unwrap_or_default()
    }

    /// Deletes something: the policy keeps it for admins.
    async fn delete(&self, _ctx: &Context, id: u64) -> u64 {
        id
    }

    /// Holds its slot for `millis`.
    async fn hold(&self, _ctx: &Context, millis: u64) {
        self.seen.lock().unwrap().push(format!("hold {millis}"));
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
}

/// A layer that records when it sees the request and its outcome, and
/// stamps the context with its name.
struct Recorder {
    name: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Middleware for Recorder {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(format!("{} in", self.name));
            let mut stamps: Vec<String> = request.context().get("stamps").unwrap().unwrap_or_default();
            stamps.push(self.name.to_owned());
            request.context_mut().insert("stamps", stamps).unwrap();
            let outcome = next.run(request).await;
            self.seen.lock().unwrap().push(format!("{} out", self.name));
            outcome
        })
    }
}

async fn serve(
    transport: Transport,
    topic: &str,
    build: impl FnOnce(rpc_core::ServerBuilder) -> rpc_core::ServerBuilder,
) -> Server {
    let builder = Server::builder(transport, Target::server(topic, "s1"));
    let server = build(builder).build().expect("valid server");
    server.start().await.expect("server starts");
    server
}

fn member() -> Context {
    let mut ctx = Context::new();
    ctx.insert("roles", ["member"]).unwrap();
    ctx.insert("project_id", "p1").unwrap();
    ctx
}

fn admin() -> Context {
    let mut ctx = member();
    ctx.insert("roles", ["member", "Admin"]).unwrap();
    ctx
}

/// A policy layer refuses a call whose context lacks the role, with
/// `Forbidden` (oslo.policy's `PolicyNotAuthorized`) that the caller sees,
/// before the handler runs; the same call with the role passes, and the
/// server keeps serving.
pub async fn policy_refuses_with_a_typed_error<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("policy");
    let guarded = Guarded::default();
    let policy = Policy::new(Rule::role("member")).rule("guarded:delete", Rule::role("admin"));
    let server = serve(connect().await, &topic, |builder| {
        builder.endpoint(guarded.clone()).layer(RequestLog).layer(policy)
    })
    .await;
    let client =
        GuardedClient::new(Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10)));

    let refused = client.delete(&member(), 7).await.expect_err("a member may not delete");
    let Error::Remote(remote) = &refused else {
        panic!("expected the server's refusal, got {refused:?}");
    };
    assert_eq!(remote.code(), ErrorCode::Forbidden, "{remote:?}");
    assert_eq!(remote.class(), "PolicyNotAuthorized");
    assert_eq!(remote.module(), "oslo_policy.policy");
    assert_eq!(remote.message(), "Policy doesn't allow guarded:delete to be performed.");

    // Roles compare without case, as oslo.policy's do.
    assert_eq!(client.delete(&admin(), 7).await.unwrap(), 7);
    // The default rule: members may read; nobody without a role may.
    assert_eq!(client.stamps(&member()).await.unwrap(), Vec::<String>::new());
    let anonymous = client.stamps(&Context::new()).await.expect_err("no role");
    assert_eq!(
        anonymous.remote().map(|remote| remote.code()),
        Some(ErrorCode::Forbidden)
    );
    // Refused requests never reached the handler.
    assert_eq!(*guarded.seen.lock().unwrap(), vec!["handler".to_owned()]);
    server.stop();
    server.wait().await;
}

/// Layers run in the order they were added: the first sees the request
/// first and the outcome last; each may enrich the context the handler sees.
pub async fn layers_run_in_the_order_added<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("layers");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let guarded = Guarded {
        seen: Arc::clone(&seen),
    };
    let server = serve(connect().await, &topic, |builder| {
        builder
            .endpoint(guarded)
            .layer(Recorder {
                name: "outer",
                seen: Arc::clone(&seen),
            })
            .layer(Recorder {
                name: "inner",
                seen: Arc::clone(&seen),
            })
    })
    .await;
    let client =
        GuardedClient::new(Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10)));
    let stamps = client.stamps(&Context::new()).await.unwrap();
    assert_eq!(stamps, ["outer", "inner"]);
    assert_eq!(
        *seen.lock().unwrap(),
        ["outer in", "inner in", "handler", "inner out", "outer out"]
    );
    server.stop();
    server.wait().await;
}

/// Per-method limits: a rate limit refuses the request over the rate with
/// `Overloaded`, at once; a concurrency limit makes the others wait, and
/// leaves other methods alone.
pub async fn limits_per_method<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("limits");
    let server = serve(connect().await, &topic, |builder| {
        builder
            .endpoint(Guarded::default())
            .layer(RateLimit::new().method("delete", 2, Duration::from_secs(3600)))
            .layer(ConcurrencyLimit::new().method("hold", 1))
    })
    .await;
    let client =
        GuardedClient::new(Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10)));
    let ctx = Context::new();
    assert_eq!(client.delete(&ctx, 1).await.unwrap(), 1);
    assert_eq!(client.delete(&ctx, 2).await.unwrap(), 2);
    let over = client.delete(&ctx, 3).await.expect_err("two per hour");
    assert_eq!(
        over.remote().map(|remote| remote.code()),
        Some(ErrorCode::Overloaded),
        "{over:?}"
    );
    // Other methods are not limited.
    client.stamps(&ctx).await.unwrap();

    // Three holds of 200 ms, one at a time: 600 ms at least, where the
    // server alone would run them at once.
    let started = std::time::Instant::now();
    let holds = futures_util::future::join_all((0..3).map(|_| client.hold(&ctx, 200))).await;
    assert!(holds.iter().all(Result::is_ok), "{holds:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "the holds overlapped: {:?}",
        started.elapsed()
    );
    server.stop();
    server.wait().await;

    // A waiter whose caller's deadline passes leaves without running, on a
    // server that lets handlers run past deadlines too (it took the slot
    // and ran, for nobody, until 2026-12-05).
    let topic = unique_topic("limits_expired");
    let guarded = Guarded::default();
    let server = serve(connect().await, &topic, |builder| {
        builder
            .endpoint(guarded.clone())
            .layer(ConcurrencyLimit::new().method("hold", 1))
            .interrupt_at_deadline(false)
    })
    .await;
    let client = Client::new(connect().await, Target::topic(&topic));
    let holding = tokio::spawn({
        let client = GuardedClient::new(client.clone().timeout(Duration::from_secs(10)));
        async move { client.hold(&Context::new(), 1_000).await }
    });
    crate::eventually("the first hold started", Duration::from_secs(10), || {
        if guarded.seen.lock().unwrap().is_empty() {
            Err(())
        } else {
            Ok(())
        }
    })
    .await;
    let expired = GuardedClient::new(client.timeout(Duration::from_millis(200)))
        .hold(&Context::new(), 1)
        .await;
    assert!(expired.is_err(), "{expired:?}");
    holding.await.unwrap().unwrap();
    // Settled: the expired waiter was answered (or dropped) by now.
    server.stop();
    server.wait().await;
    assert_eq!(*guarded.seen.lock().unwrap(), ["hold 1000"], "the expired waiter ran");
}

/// A server's health: not live before start; ready once consuming every
/// queue; the last delivery moves with traffic; not live once stopped.
pub async fn health_follows_the_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let topic = unique_topic("health");
    let server = Server::builder(connect().await, Target::server(&topic, "s1"))
        .endpoint(Guarded::default())
        .build()
        .unwrap();
    let health = server.health();
    assert!(!health.is_live() && !health.is_ready(), "{health:?}");
    assert!(health.queues.is_empty());

    server.start().await.unwrap();
    let health = server.health();
    assert!(health.is_live() && health.is_ready(), "{health:?}");
    assert_eq!(health.queues.len(), 3, "topic, server and fanout queues: {health:?}");
    assert!(health.queues.iter().all(|queue| queue.consuming), "{health:?}");
    assert!(
        health.queues.iter().any(|queue| queue.name.contains(&topic)),
        "{health:?}"
    );
    assert_eq!(health.last_delivery, None);

    let before = SystemTime::now() - Duration::from_millis(1);
    let client =
        GuardedClient::new(Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10)));
    client.stamps(&Context::new()).await.unwrap();
    let last = server.health().last_delivery.expect("a delivery was taken");
    assert!(last >= before, "{last:?} before {before:?}");

    server.stop();
    server.wait().await;
    let health = server.health();
    assert!(!health.is_live() && !health.is_ready(), "{health:?}");
}
