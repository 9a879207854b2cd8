//! Transports: the [`Transport`] handle, the [`Driver`] seam that broker
//! crates implement, the in-memory transport, and [`transport_from_url`].

mod driver;
pub mod headers;
pub mod memory;
mod registry;

use std::fmt;
use std::sync::Arc;

/// The attribute `Driver`, `Listener` and `Acker` implementations use.
pub use async_trait::async_trait;
/// The byte buffer of message bodies.
pub use bytes::Bytes;
pub use driver::{
    Acker, Address, Delivery, DeliveryMode, Driver, DriverStats, ListenOptions, Listener, NotificationRoute,
    OutgoingMessage, QueueState, ReplyName, ReplyQueue, ReplySink, Retry,
};
pub use headers::Headers;
pub use registry::{ConnectFuture, Connector, redact_url, register, transport_from_url};

use crate::reply::ReplyRouter;
use crate::{Codec, Error};

/// The control exchange when none is configured, as in oslo.messaging.
pub const DEFAULT_CONTROL_EXCHANGE: &str = "openstack";

/// A connection to a message bus, shared by clients and servers.
///
/// Cheap to clone: clones share the driver's connections and the one reply
/// queue that all calls made through this transport use. Get one from
/// [`transport_from_url`] (`memory://`, or a broker URL once its transport
/// crate is registered), or build one around a driver with
/// [`Transport::builder`].
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    driver: Box<dyn Driver>,
    codec: Codec,
    control_exchange: String,
    replies: tokio::sync::OnceCell<ReplyRouter>,
}

impl Transport {
    /// A transport on `driver` with the default settings.
    pub fn new(driver: impl Driver) -> Transport {
        Transport::builder(driver).build()
    }

    /// Starts building a transport on `driver`.
    pub fn builder(driver: impl Driver) -> TransportBuilder {
        TransportBuilder {
            driver: Box::new(driver),
            codec: Codec::default(),
            control_exchange: DEFAULT_CONTROL_EXCHANGE.to_owned(),
        }
    }

    /// The codec clients of this transport send with (servers answer in the caller's).
    pub fn codec(&self) -> Codec {
        self.inner.codec
    }

    /// The exchange used by targets that name none (oslo's `control_exchange`).
    pub fn control_exchange(&self) -> &str {
        &self.inner.control_exchange
    }

    /// The driver.
    pub fn driver(&self) -> &dyn Driver {
        &*self.inner.driver
    }

    /// How many calls are waiting for a reply right now.
    pub fn pending_calls(&self) -> usize {
        self.inner.replies.get().map_or(0, ReplyRouter::pending_calls)
    }

    /// How many replies arrived for calls that had already given up.
    pub fn late_replies(&self) -> u64 {
        self.inner.replies.get().map_or(0, ReplyRouter::late_replies)
    }

    /// What the driver counts about its connections: reconnections,
    /// consumers the broker cancelled, whether publishers are blocked.
    pub fn driver_stats(&self) -> DriverStats {
        self.inner.driver.stats()
    }

    /// Releases the driver's connections. Calls and servers using this
    /// transport fail afterwards (a `memory://` transport holds no
    /// connection: it has nothing to release, and goes on working).
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.driver.close().await.map_err(Error::from)
    }

    /// The reply queue, created on the first call.
    pub(crate) async fn replies(&self, retry: Retry) -> Result<&ReplyRouter, Error> {
        self.inner
            .replies
            .get_or_try_init(|| async {
                let router = ReplyRouter::start(&*self.inner.driver, retry).await?;
                tracing::debug!(reply_queue = %router.address(), "listening for replies");
                Ok(router)
            })
            .await
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("driver", &self.inner.driver)
            .field("codec", &self.inner.codec)
            .field("control_exchange", &self.inner.control_exchange)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Transport`]; see [`Transport::builder`].
#[derive(Debug)]
pub struct TransportBuilder {
    driver: Box<dyn Driver>,
    codec: Codec,
    control_exchange: String,
}

impl TransportBuilder {
    /// The codec clients send with (default [`Codec::MsgPack`]).
    pub fn codec(mut self, codec: Codec) -> TransportBuilder {
        self.codec = codec;
        self
    }

    /// The exchange for targets that name none (default `openstack`; OpenStack
    /// services set their own, e.g. `nova`).
    pub fn control_exchange(mut self, exchange: impl Into<String>) -> TransportBuilder {
        self.control_exchange = exchange.into();
        self
    }

    /// Builds the transport.
    pub fn build(self) -> Transport {
        Transport {
            inner: Arc::new(Inner {
                driver: self.driver,
                codec: self.codec,
                control_exchange: self.control_exchange,
                replies: tokio::sync::OnceCell::new(),
            }),
        }
    }
}
