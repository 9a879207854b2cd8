//! Test drivers that change one or two of a driver's methods (a send held
//! back, a notification published twice, a listen that never ends) and pass
//! the others through to the driver they wrap; and listeners whose
//! deliveries come as a lost connection leaves them.

use std::fmt;
use std::sync::Arc;

use rpc_core::transport::{
    Acker, Address, Delivery, Driver, ListenOptions, Listener, NotificationRoute, OutgoingMessage, QueueState,
    ReplyQueue, ReplySink, Retry, async_trait,
};
use rpc_core::{Transport, TransportError, TransportErrorKind};

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
    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError> {
        self.inner().listen_replies(sink, retry).await
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

    async fn listen_replies(&self, sink: Arc<dyn ReplySink>, retry: Retry) -> Result<ReplyQueue, TransportError> {
        self.0.listen_replies(sink, retry).await
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

/// A listener whose first `left` deliveries come as a lost connection
/// leaves them (see [`lost`]); the others pass through.
#[derive(Debug)]
pub struct Losing {
    inner: Box<dyn Listener>,
    left: usize,
    seen_gone: bool,
}

impl Losing {
    /// `inner`, its first `left` deliveries lost (`usize::MAX`: all of them).
    pub fn first(inner: Box<dyn Listener>, left: usize, seen_gone: bool) -> Box<dyn Listener> {
        Box::new(Losing { inner, left, seen_gone })
    }
}

#[async_trait]
impl Listener for Losing {
    async fn next(&mut self) -> Option<Result<Delivery, TransportError>> {
        let delivery = match self.inner.next().await? {
            Ok(delivery) if self.left > 0 => delivery,
            other => return Some(other),
        };
        self.left -= 1;
        Some(Ok(lost(delivery, self.seen_gone)))
    }

    async fn close(self: Box<Self>) -> Result<(), TransportError> {
        self.inner.close().await
    }

    fn queues(&self) -> Vec<QueueState> {
        self.inner.queues()
    }
}

/// `delivery` as a lost connection leaves it: settling it fails, and the
/// original, held unsettled, goes back to its queue once dropped. With
/// `seen_gone`, the loss is known before a handler starts
/// ([`Acker::is_gone`]); without, it shows only as the settlement fails.
pub fn lost(delivery: Delivery, seen_gone: bool) -> Delivery {
    let codec = delivery.codec().expect("a delivery in a known codec");
    Delivery::with_codec(delivery.body().clone(), codec)
        .with_headers(delivery.headers().clone())
        .with_acker(Box::new(Lost {
            _unsettled: delivery,
            seen_gone,
        }))
}

/// The acker of a delivery whose connection is gone.
#[derive(Debug)]
struct Lost {
    _unsettled: Delivery,
    seen_gone: bool,
}

#[async_trait]
impl Acker for Lost {
    async fn ack(&self) -> Result<(), TransportError> {
        Err(connection_gone())
    }

    async fn reject(&self, _requeue: bool) -> Result<(), TransportError> {
        Err(connection_gone())
    }

    fn is_gone(&self) -> bool {
        self.seen_gone
    }
}

/// What settling a delivery of a lost connection fails with.
fn connection_gone() -> TransportError {
    TransportError::new(TransportErrorKind::ConnectionLost, "the connection is gone (test)")
}
