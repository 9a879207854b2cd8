//! What sends a typed stub's requests: the [`Caller`] seam, client layers,
//! and test doubles.
//!
//! A generated stub is generic over its caller (`<Name>Client<S = Client>`):
//! the [`Client`] sends over a transport; [`Local`] runs the request
//! through a dispatcher in the same process, with no transport at all (for
//! unit tests of a server's endpoints through their typed client); [`Mock`]
//! answers what the test told it to, and records what it was asked. Client
//! layers wrap any caller, as tower's [`Layer`]s do:
//!
//! ```
//! # use rpc_core::{Client, Context, Target, endpoint, transport::memory::Broker};
//! # struct Compute;
//! #[endpoint(namespace = "compute", version = "1.0")]
//! impl Compute {
//!     #[rpc(idempotent)]
//!     async fn status(&self, _ctx: &Context, id: u64) -> String {
//!         "ACTIVE".into()
//!     }
//! }
//!
//! # async fn demo() -> Result<(), rpc_core::Error> {
//! # let transport = Broker::new().transport();
//! use std::time::Duration;
//! use rpc_core::caller::{Caller, LogLayer, RetryLayer, TimeoutLayer};
//!
//! let caller = Client::new(transport, Target::topic("compute"))
//!     .layer(TimeoutLayer::new().method("status", Duration::from_secs(2)))
//!     .layer(RetryLayer::new(3))
//!     .layer(LogLayer);
//! let compute = ComputeClient::new(caller);
//! let status = compute.status(&Context::new(), 42).await?;
//! # Ok(()) }
//! ```
//!
//! The last layer added is the outermost: above, a call is logged once,
//! retried up to three times, and each attempt has its own 2 s timeout.

mod local;
mod log;
mod mock;
mod retry;
mod timeouts;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;
pub use tower_layer::Layer;

pub use local::{Local, LocalBuilder};
pub use log::{LogLayer, Logged};
pub use mock::{Mock, MockCall};
pub use retry::{RetryLayer, Retrying};
pub use timeouts::{TimeoutLayer, Timeouts};

use crate::client::Method;
use crate::{Client, Context, Error, Payload, Version};

/// Sends the requests of a typed stub: a [`Client`], a [`Local`]
/// dispatcher, a [`Mock`], or a layer around one of them.
///
/// Both methods take the request with its arguments still typed; a caller
/// encodes them as it needs (the client in its codec, the mock as JSON).
pub trait Caller: Send + Sync {
    /// Calls the method and returns its result, still encoded (`None`: the
    /// peer sent no result, as oslo peers may for `None`).
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized;

    /// Casts the method: returns once it was handed over, without a result.
    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized;

    /// Wraps this caller in `layer` (the last layer added is the outermost).
    fn layer<L: Layer<Self>>(self, layer: L) -> L::Service
    where
        Self: Sized,
    {
        layer.layer(self)
    }
}

impl Caller for Client {
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        self.invoke_payload(ctx, invocation.as_method(), invocation.args)
    }

    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        self.send_cast(ctx, invocation.as_method(), invocation.args)
    }
}

impl<C: Caller + ?Sized> Caller for &C {
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        (**self).call(ctx, invocation)
    }

    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        (**self).cast(ctx, invocation)
    }
}

impl<C: Caller + ?Sized> Caller for std::sync::Arc<C> {
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        (**self).call(ctx, invocation)
    }

    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        (**self).cast(ctx, invocation)
    }
}

/// One request, as a caller sees it: the method, its namespace and
/// version, its arguments (typed, a map of name to value), whether it is
/// idempotent, and a timeout of its own if a layer gave it one.
pub struct Invocation<'a, A: ?Sized> {
    method: &'a str,
    namespace: Option<&'a str>,
    version: Option<&'a Version>,
    raised_by: Option<&'a str>,
    idempotent: bool,
    timeout: Option<Duration>,
    args: &'a A,
}

impl<'a, A: ?Sized> Invocation<'a, A> {
    /// A request for `method` with `args`, in the default namespace, without version.
    pub fn new(method: &'a str, args: &'a A) -> Invocation<'a, A> {
        Invocation {
            method,
            namespace: None,
            version: None,
            raised_by: None,
            idempotent: false,
            timeout: None,
            args,
        }
    }

    pub(crate) fn from_method(method: Method<'a>, idempotent: bool, args: &'a A) -> Invocation<'a, A> {
        Invocation {
            method: method.name,
            namespace: method.namespace,
            version: method.version,
            raised_by: method.argument,
            idempotent,
            timeout: method.timeout,
            args,
        }
    }

    /// In `namespace`.
    pub fn with_namespace(mut self, namespace: Option<&'a str>) -> Invocation<'a, A> {
        self.namespace = namespace;
        self
    }

    /// Asking for `version`.
    pub fn with_version(mut self, version: Option<&'a Version>) -> Invocation<'a, A> {
        self.version = version;
        self
    }

    /// Marked idempotent: running it twice does no more than running it
    /// once (`#[rpc(idempotent)]`), so it may be retried.
    pub fn with_idempotent(mut self, idempotent: bool) -> Invocation<'a, A> {
        self.idempotent = idempotent;
        self
    }

    /// With a timeout of its own, instead of the client's.
    pub fn with_timeout(mut self, timeout: Duration) -> Invocation<'a, A> {
        self.timeout = Some(timeout);
        self
    }

    /// The method's name.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The namespace (`None`: the default one).
    pub fn namespace(&self) -> Option<&'a str> {
        self.namespace
    }

    /// The version the request asks for.
    pub fn version(&self) -> Option<&'a Version> {
        self.version
    }

    /// Whether the method may be retried.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The request's own timeout, if a layer set one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The arguments.
    pub fn args(&self) -> &'a A {
        self.args
    }

    pub(crate) fn as_method(&self) -> Method<'a> {
        Method {
            name: self.method,
            namespace: self.namespace,
            version: self.version,
            argument: self.raised_by,
            timeout: self.timeout,
        }
    }
}

impl<A: ?Sized> Clone for Invocation<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: ?Sized> Copy for Invocation<'_, A> {}

impl<A: ?Sized> fmt::Debug for Invocation<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation")
            .field("method", &self.method)
            .field("namespace", &self.namespace)
            .field("version", &self.version)
            .field("idempotent", &self.idempotent)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
