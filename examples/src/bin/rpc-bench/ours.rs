//! The scenarios on this framework.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rpc_core::middleware::{Middleware, Next};
use rpc_core::{Client, Context, HandlerFuture, Request, Server, Target, Transport, endpoint};
use serde_bytes::ByteBuf;
use tokio::sync::Notify;

/// The benchmark's endpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bench {
    /// Casts handled.
    pub(crate) handled: Arc<AtomicU64>,
    /// Signalled at every cast handled.
    pub(crate) progress: Arc<Notify>,
}

#[endpoint]
impl Bench {
    /// Returns its payload.
    async fn echo(&self, _ctx: &Context, payload: ByteBuf) -> ByteBuf {
        payload
    }

    /// Counts a cast.
    async fn record(&self, _ctx: &Context, payload: ByteBuf) {
        drop(payload);
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.progress.notify_one();
    }
}

/// A server with the benchmark endpoint, and a client on another transport.
pub(crate) struct Pair {
    pub(crate) server: Server,
    pub(crate) bench: Bench,
    pub(crate) client: BenchClient,
    /// The same client, its casts not waiting for the broker's confirm.
    pub(crate) unconfirmed: BenchClient,
}

impl Pair {
    pub(crate) async fn start(server: Transport, client: Transport, topic: &str) -> Result<Pair, rpc_core::Error> {
        Pair::with_layers(server, client, topic, 0).await
    }

    /// A pair whose server has `layers` pass-through middleware layers.
    pub(crate) async fn with_layers(
        server: Transport,
        client: Transport,
        topic: &str,
        layers: usize,
    ) -> Result<Pair, rpc_core::Error> {
        let bench = Bench::default();
        let mut builder = Server::builder(server, Target::server(topic, "bench")).endpoint(bench.clone());
        for _ in 0..layers {
            builder = builder.layer(PassThrough);
        }
        let server = builder.build()?;
        server.start().await?;
        let client = Client::new(client, Target::topic(topic));
        Ok(Pair {
            server,
            bench,
            unconfirmed: BenchClient::new(client.prepare().confirm_casts(false)),
            client: BenchClient::new(client),
        })
    }

    pub(crate) async fn call(&self, payload: &[u8]) -> Result<(), rpc_core::Error> {
        let echoed = self.client.echo(&Context::new(), ByteBuf::from(payload)).await?;
        debug_assert_eq!(echoed.len(), payload.len());
        Ok(())
    }

    pub(crate) async fn cast(&self, payload: &[u8]) -> Result<(), rpc_core::Error> {
        self.client.cast().record(&Context::new(), ByteBuf::from(payload)).await
    }

    /// A cast that returns once written (`confirm_casts(false)`).
    pub(crate) async fn cast_unconfirmed(&self, payload: &[u8]) -> Result<(), rpc_core::Error> {
        self.unconfirmed
            .cast()
            .record(&Context::new(), ByteBuf::from(payload))
            .await
    }

    pub(crate) async fn stop(self) {
        self.server.stop();
        self.server.wait().await;
    }
}

/// A middleware layer that only hands the request on: the cost of a layer.
#[derive(Debug)]
struct PassThrough;

impl Middleware for PassThrough {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        next.run(request)
    }
}

/// Waits until `counter` reaches `target`.
pub(crate) async fn wait_for(counter: &AtomicU64, progress: &Notify, target: u64) {
    loop {
        let notified = progress.notified();
        if counter.load(Ordering::Relaxed) >= target {
            return;
        }
        notified.await;
    }
}

/// A notification listener counting what it handles, and a notifier on
/// another transport.
pub(crate) struct NotifyPair {
    pub(crate) listener: rpc_core::notify::NotificationListener,
    pub(crate) notifier: rpc_core::notify::Notifier,
    /// Notifications handled.
    pub(crate) handled: Arc<AtomicU64>,
    /// Signalled at every notification handled.
    pub(crate) progress: Arc<Notify>,
}

impl NotifyPair {
    /// A listener on `topic`, and a notifier in `codec`.
    pub(crate) async fn start(
        listener: Transport,
        notifier: Transport,
        topic: &str,
        codec: rpc_core::Codec,
    ) -> Result<NotifyPair, rpc_core::Error> {
        use rpc_core::notify::{NotificationListener, Notifier, Priority, handler};
        let handled = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(Notify::new());
        let (counter, notify) = (Arc::clone(&handled), Arc::clone(&progress));
        let listener = NotificationListener::builder(listener, [Target::topic(topic)])
            .endpoint(handler([Priority::Info], move |_| {
                let (counter, notify) = (Arc::clone(&counter), Arc::clone(&notify));
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    notify.notify_one();
                }
            }))
            .build()?;
        listener.start().await?;
        Ok(NotifyPair {
            listener,
            notifier: Notifier::new(notifier, "rpc-bench").topics([topic]).codec(codec),
            handled,
            progress,
        })
    }

    /// Sends one `info` notification with `payload` (as a string).
    pub(crate) async fn notify(&self, payload: &str) -> Result<(), rpc_core::Error> {
        self.notifier
            .info(
                &Context::new(),
                "rpc_bench.event",
                &serde_json::json!({"data": payload}),
            )
            .await
    }

    pub(crate) async fn stop(self) {
        self.listener.stop();
        self.listener.wait().await;
    }
}
