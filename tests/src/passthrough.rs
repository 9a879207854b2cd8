//! Test drivers that change one or two of a driver's methods (a send held
//! back, a notification published twice, a listen that never ends) and pass
//! the others through to the driver they wrap.

use std::fmt;
use std::sync::Arc;

use rpc_core::transport::{
    Address, Driver, ListenOptions, Listener, NotificationRoute, OutgoingMessage, ReplyQueue, ReplySink, async_trait,
};
use rpc_core::{Transport, TransportError};

/// A driver's methods, each passed through to [`inner`](Passthrough::inner)
/// unless the test driver writes its own.
#[async_trait]
pub trait Passthrough: Send + Sync + fmt::Debug + 'static {
    /// The driver the others go to.
    fn inner(&self) -> &dyn Driver;

    /// [`Driver::send`].
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner().send(address, message).await
    }

    /// [`Driver::reply`].
    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner().reply(reply_to, message).await
    }

    /// [`Driver::listen`].
    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        self.inner().listen(address, options).await
    }

    /// [`Driver::listen_replies`].
    async fn listen_replies(&self, sink: Arc<dyn ReplySink>) -> Result<ReplyQueue, TransportError> {
        self.inner().listen_replies(sink).await
    }

    /// [`Driver::notify`].
    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        self.inner().notify(route, message).await
    }

    /// [`Driver::listen_notifications`].
    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        self.inner().listen_notifications(routes, pool, options).await
    }
}

/// A [`Passthrough`] as a driver.
#[derive(Debug)]
pub struct Passing<P>(pub P);

impl<P: Passthrough> Passing<P> {
    /// A transport on `driver`, with the default codec and control exchange.
    pub fn transport(driver: P) -> Transport {
        Transport::new(Passing(driver))
    }
}

#[async_trait]
impl<P: Passthrough> Driver for Passing<P> {
    async fn send(&self, address: Address<'_>, message: OutgoingMessage) -> Result<(), TransportError> {
        self.0.send(address, message).await
    }

    async fn reply(&self, reply_to: &str, message: OutgoingMessage) -> Result<(), TransportError> {
        self.0.reply(reply_to, message).await
    }

    async fn listen(&self, address: Address<'_>, options: &ListenOptions) -> Result<Box<dyn Listener>, TransportError> {
        self.0.listen(address, options).await
    }

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>) -> Result<ReplyQueue, TransportError> {
        self.0.listen_replies(sink).await
    }

    async fn notify(&self, route: &NotificationRoute, message: OutgoingMessage) -> Result<(), TransportError> {
        self.0.notify(route, message).await
    }

    async fn listen_notifications(
        &self,
        routes: &[NotificationRoute],
        pool: Option<&str>,
        options: &ListenOptions,
    ) -> Result<Box<dyn Listener>, TransportError> {
        self.0.listen_notifications(routes, pool, options).await
    }
}
