//! A lost connection fails the calls whose requests went out before it (their
//! replies may never come), and only those: a call whose request was still
//! waiting to go out is published once the transport is back, and answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::transport::memory::{Broker, MemoryDriver};
use rpc_core::transport::{Address, Driver, OutgoingMessage, ReplyQueue, ReplySink, Retry, async_trait};
use rpc_core::{Client, Context, Error, Server, Target, TransportError, TransportErrorKind};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::passthrough::{Passing, Passthrough};
use tokio::sync::Notify;

/// A memory driver that holds back requests while `held` is set, and lets
/// the test tell its reply sink the connection was lost.
#[derive(Debug)]
struct Held {
    inner: MemoryDriver,
    sink: Mutex<Option<Arc<dyn ReplySink>>>,
    held: Mutex<bool>,
    holding: Notify,
    released: Notify,
}

impl Held {
    fn new(inner: MemoryDriver) -> Arc<Held> {
        Arc::new(Held {
            inner,
            sink: Mutex::default(),
            held: Mutex::default(),
            holding: Notify::new(),
            released: Notify::new(),
        })
    }

    fn lose_the_connection(&self) {
        let sink = self.sink.lock().unwrap().clone().expect("a reply queue");
        sink.connection_lost(TransportError::new(
            TransportErrorKind::ConnectionLost,
            "the connection was lost (test)",
        ));
    }

    fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.released.notify_waiters();
    }
}

/// The transport's side of [`Held`].
#[derive(Debug)]
struct HeldDriver(Arc<Held>);

impl std::ops::Deref for HeldDriver {
    type Target = Held;

    fn deref(&self) -> &Held {
        &self.0
    }
}

#[async_trait]
impl Passthrough for HeldDriver {
    fn inner(&self) -> &dyn Driver {
        &self.inner
    }

    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        loop {
            let released = self.released.notified();
            if !*self.held.lock().unwrap() {
                break;
            }
            self.holding.notify_one();
            released.await;
        }
        self.inner.send(address, message).await
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError> {
        *self.sink.lock().unwrap() = Some(Arc::clone(&sink));
        self.inner.listen_replies(sink, retry).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_going_out_when_the_connection_is_lost_is_answered() {
    let broker = Broker::new();
    let held = Held::new(broker.driver());
    let server = Server::builder(broker.transport(), Target::server("held", "s1"))
        .endpoint(Calculator::new("s1"))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let calc = CalculatorClient::new(Client::new(
        Passing::transport(HeldDriver(Arc::clone(&held))),
        Target::topic("held"),
    ));
    let ctx = Context::new();

    // Sent before the loss, waiting for its reply: failed at once. Polled
    // here until its server has it: the poll that sent its request (at once,
    // on `memory://`) also marked it sent, before the loss below.
    let mut sent = Box::pin({
        let (calc, ctx) = (calc.clone(), ctx.clone());
        async move { calc.sleep(&ctx, 2_000).await }
    });
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.stats().in_flight == 0 {
            tokio::select! {
                biased;
                answered = &mut sent => panic!("answered before the loss: {answered:?}"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    })
    .await
    .expect("the first call runs");
    let sent = tokio::spawn(sent);

    // Still going out at the loss: answered once it went out.
    *held.held.lock().unwrap() = true;
    let holding = held.holding.notified();
    let going_out = tokio::spawn({
        let (calc, ctx) = (calc.clone(), ctx.clone());
        async move { calc.add(&ctx, 2, 3).await }
    });
    tokio::time::timeout(Duration::from_secs(10), holding)
        .await
        .expect("the second call is going out");
    held.lose_the_connection();

    let failed = tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("the call sent before the loss fails at once")
        .unwrap();
    assert!(
        matches!(&failed, Err(Error::Transport(error)) if error.kind() == TransportErrorKind::ConnectionLost),
        "{failed:?}"
    );
    held.release();
    let answered = tokio::time::timeout(Duration::from_secs(10), going_out)
        .await
        .expect("the call going out at the loss ends")
        .unwrap();
    assert_eq!(answered.ok(), Some(5));
    server.stop();
    server.wait().await;
}
