//! A `start` given up on (its future dropped while the transport was still
//! listening, as a timeout around it does) leaves the server or listener
//! stopped, startable again, not marked running with nothing running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rpc_core::notify::{NotificationListener, NotificationResult, Notifier, handler};
use rpc_core::transport::memory::{Broker, MemoryDriver};
use rpc_core::transport::{Address, Driver, ListenOptions, Listener, NotificationRoute, async_trait};
use rpc_core::{Client, Context, Server, Target, Transport, TransportError, json};
use rpc_tests::api::{Calculator, CalculatorClient};
use rpc_tests::passthrough::{Passing, Passthrough};

/// A memory driver whose first `listen` and first `listen_notifications`
/// never finish, as over a broker that stopped answering.
#[derive(Debug)]
struct FirstListenHangs {
    inner: MemoryDriver,
    listened: AtomicBool,
    listened_notifications: AtomicBool,
}

impl FirstListenHangs {
    fn transport(broker: &Broker) -> Transport {
        Passing::transport(FirstListenHangs {
            inner: broker.driver(),
            listened: AtomicBool::new(false),
            listened_notifications: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl Passthrough for FirstListenHangs {
    fn inner(&self) -> &dyn Driver {
        &self.inner
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        if !self.listened.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.listen(address, options).await
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        if !self.listened_notifications.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.listen_notifications(routes, pool, options).await
    }
}

const GIVE_UP: Duration = Duration::from_millis(50);

#[tokio::test]
async fn a_server_whose_start_was_given_up_on_can_start_again() {
    let broker = Broker::new();
    let server = Server::builder(FirstListenHangs::transport(&broker), Target::server("given_up", "s1"))
        .endpoint(Calculator::new("s1"))
        .build()
        .unwrap();
    assert!(tokio::time::timeout(GIVE_UP, server.start()).await.is_err());
    assert!(
        !server.handle().is_running(),
        "nothing runs after the start was dropped"
    );
    // Nothing to wait for.
    tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("wait() returns at once");

    server.start().await.expect("a second start");
    let calc = CalculatorClient::new(Client::new(broker.transport(), Target::topic("given_up")));
    assert_eq!(calc.add(&Context::new(), 2, 3).await.unwrap(), 5);
    server.stop();
    server.wait().await;
    assert!(!server.handle().is_running());
}

#[tokio::test]
async fn a_listener_whose_start_was_given_up_on_can_start_again() {
    let broker = Broker::new();
    let (seen, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = NotificationListener::builder(FirstListenHangs::transport(&broker), [Target::topic("given_up")])
        .endpoint(handler([rpc_core::notify::Priority::Info], move |notification| {
            let seen = seen.clone();
            async move {
                let _ = seen.send(notification.event_type().to_owned());
                Ok::<_, &str>(NotificationResult::Handled)
            }
        }))
        .build()
        .unwrap();
    assert!(tokio::time::timeout(GIVE_UP, listener.start()).await.is_err());
    assert!(
        !listener.handle().is_running(),
        "nothing runs after the start was dropped"
    );
    tokio::time::timeout(Duration::from_secs(5), listener.wait())
        .await
        .expect("wait() returns at once");

    listener.start().await.expect("a second start");
    let notifier = Notifier::new(broker.transport(), "test.host").topics(["given_up"]);
    notifier.info(&Context::new(), "after", &json!({})).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .unwrap();
    assert_eq!(event.as_deref(), Some("after"));
    listener.stop();
    listener.wait().await;
}
