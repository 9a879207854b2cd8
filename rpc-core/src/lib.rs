//! Typed RPC between services over a message broker, wire-compatible with
//! OpenStack's oslo.messaging.
//!
//! A [`Server`] listens on a [`Target`] (exchange, topic, server) and exposes
//! **endpoints**: groups of methods with an optional namespace and version.
//! A [`Client`] addresses a target and **calls** a method (waits for its
//! result, with a timeout) or **casts** it (fire and forget). Requests name a
//! method, carry its arguments by name, and a [`Context`].
//!
//! `#[endpoint]` turns an `impl` block, or a trait, into an endpoint and
//! generates a typed client stub for it, so method names and argument types
//! are checked by the compiler:
//!
//! ```
//! use rpc_core::{Client, Context, Server, ServerHandle, Target, Version, endpoint};
//!
//! struct TestEndpoint;
//!
//! #[endpoint]
//! impl TestEndpoint {
//!     async fn test(&self, _ctx: &Context, arg: String) -> String {
//!         arg
//!     }
//! }
//!
//! struct ServerControl {
//!     server: ServerHandle,
//! }
//!
//! #[endpoint(namespace = "control", version = "2.0")]
//! impl ServerControl {
//!     async fn stop(&self, _ctx: &Context) {
//!         self.server.stop();
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rpc_core::Error> {
//! let transport = rpc_core::transport_from_url("memory://").await?;
//!
//! let builder = Server::builder(transport.clone(), Target::server("test", "server1"));
//! let control = ServerControl { server: builder.handle() };
//! let server = builder.endpoint(TestEndpoint).endpoint(control).build()?;
//! server.start().await?;
//!
//! let client = Client::new(transport, Target::topic("test"));
//! let ctx = Context::new();
//! let echoed = TestEndpointClient::new(client.clone()).test(&ctx, "myarg".into()).await?;
//! assert_eq!(echoed, "myarg");
//! ServerControlClient::new(client).cast().stop(&ctx).await?;
//!
//! server.wait().await; // returns once `stop` ran and the server drained
//! # Ok(())
//! # }
//! ```
//!
//! The same program runs on RabbitMQ by changing only the URL given to
//! [`transport_from_url`] (with the `rpc-amqp` crate registered).
//!
//! # Semantics
//!
//! - **Routing**: a plain request goes to one server on the topic (servers
//!   compete); with a server name, to that server; a fanout cast goes to
//!   every server on the topic.
//! - **Selection**: endpoints are tried in registration order; the namespace
//!   must match and the endpoint's version must [support](Version::supports)
//!   the requested one. A compatible endpoint without the method gives
//!   [`ErrorCode::NoSuchMethod`]; no compatible endpoint gives
//!   [`ErrorCode::UnsupportedVersion`]. Which methods are remote is described
//!   on [`Endpoint`].
//! - **Errors**: the server's errors come back as [`Error::Remote`] with a
//!   [`RemoteError`]; a method returning `Result<T, E>` gives its caller `E`
//!   back, typed. A panicking handler answers [`ErrorCode::Internal`], and the
//!   server keeps serving.
//! - **Timeouts**: per call (default 60 s), also sent as the request's
//!   expiration; long calls can ask for call-monitor heartbeats.
//! - **Delivery**: at-most-once by default, as oslo.messaging (a server
//!   acknowledges a request on receipt); [`DeliveryMode::AtLeastOnce`] on a
//!   server and a client acknowledges after the method and republishes
//!   interrupted casts, so a dying server loses nothing. Unreadable input is
//!   rejected and logged, and its caller told when it can be.

pub mod api;
pub mod caller;
mod cancel;
mod client;
mod codec;
mod context;
mod deadline;
mod endpoint;
mod error;
pub mod header;
mod ids;
mod lifecycle;
mod message;
pub mod metrics;
pub mod middleware;
pub mod notify;
#[cfg(feature = "opentelemetry")]
mod otel;
mod progress;
mod recent;
pub mod remote;
mod reply;
mod server;
mod stub;
mod target;
mod trace;
pub mod transport;
mod version;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cancel::Cancellation;
pub use client::{Client, DEFAULT_TIMEOUT};
pub use codec::Codec;
pub use context::Context;
pub use endpoint::{Endpoint, HandlerFuture};
pub use error::{BoxError, CodecError, Error, ErrorClass, ErrorCode, RemoteError, TransportError, TransportErrorKind};
pub use message::{Payload, Request};
pub use progress::CallProgress;
pub use server::{
    DEFAULT_CONCURRENCY, DEFAULT_MAX_MESSAGE_SIZE, Executor, Health, PING_METHOD, QueueHealth, Server, ServerBuilder,
    ServerHandle, ServerStats,
};
pub use stub::{Prepared, Stub};
pub use target::Target;
pub use trace::TraceContext;
pub use transport::{DeliveryMode, Retry, Transport, TransportBuilder, transport_from_url};
pub use version::{Version, VersionError};

pub use serde_json::{Value, json};

#[cfg(feature = "macros")]
#[doc = include_str!("../docs/endpoint.md")]
pub use rpc_macros::endpoint;

#[cfg(feature = "macros")]
#[doc = include_str!("../docs/notifications.md")]
pub use rpc_macros::notifications;

/// The notifications guide (`docs/notifications.md`), whose examples run as doctests.
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../../docs/notifications.md")]
pub struct NotificationsGuide;

/// The middleware, metrics and health guide (`docs/middleware.md`), whose examples run as doctests.
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../../docs/middleware.md")]
pub struct MiddlewareGuide;

/// The request-lifecycle guide (`docs/lifecycle.md`), whose examples run as doctests.
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../../docs/lifecycle.md")]
pub struct LifecycleGuide;
