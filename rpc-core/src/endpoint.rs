//! Endpoints and the dispatcher that picks one for each request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::api::EndpointDescription;
use crate::message::{Payload, Request};
use crate::{RemoteError, Version};

/// What a handler returns: the encoded result, or the error to send back.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Payload, RemoteError>> + Send + 'a>>;

/// A group of remote methods with a namespace and a version: what a server exposes.
///
/// `#[endpoint]` implements it for an `impl` block, or for the generated
/// `<Trait>Dispatcher` of a trait. It can also be implemented by hand, for a
/// proxy or a dynamic API: [`dispatch`](Endpoint::dispatch) returns `None` for
/// a method it does not have.
///
/// # Which methods are remote
///
/// With `#[endpoint]`, exactly the methods written in the annotated block are
/// remote, each under its Rust name (raw identifiers lose their `r#`).
/// Methods in other `impl` blocks of the type are unreachable. Names starting
/// with `_` are never dispatched, whatever the endpoint says, as
/// oslo.messaging's default access policy refuses them: such a request gets
/// [`NoSuchMethod`](crate::ErrorCode::NoSuchMethod).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an RPC endpoint",
    note = "add `#[endpoint]` to an `impl {Self}` block, or register a trait implementation through its generated `<Trait>Dispatcher`"
)]
pub trait Endpoint: Send + Sync + 'static {
    /// The namespace requests must name to reach this endpoint (`None`: the default namespace).
    fn namespace(&self) -> Option<&str> {
        None
    }

    /// The API version the endpoint implements; it serves requests for any
    /// compatible version (see [`Version::supports`]).
    fn version(&self) -> Version {
        Version::DEFAULT
    }

    /// The names of the remote methods, for diagnostics.
    fn methods(&self) -> &[&str];

    /// The endpoint's API, when it has a description (`#[endpoint]` gives one).
    fn describe(&self) -> Option<EndpointDescription> {
        None
    }

    /// Whether the server may drop `method`'s handler when its caller's
    /// deadline passes or the caller cancels (default: every method may be
    /// interrupted). `#[rpc(uninterruptible)]` opts a method out: its
    /// handler runs to the end, and sees the cancellation through
    /// [`Context::is_cancelled`](crate::Context::is_cancelled).
    fn interruptible(&self, method: &str) -> bool {
        let _ = method;
        true
    }

    /// Starts handling `request` if this endpoint has its method.
    fn dispatch<'a>(&'a self, request: &'a Request) -> Option<HandlerFuture<'a>>;
}

impl<E: Endpoint + ?Sized> Endpoint for Arc<E> {
    fn namespace(&self) -> Option<&str> {
        (**self).namespace()
    }

    fn version(&self) -> Version {
        (**self).version()
    }

    fn methods(&self) -> &[&str] {
        (**self).methods()
    }

    fn describe(&self) -> Option<EndpointDescription> {
        (**self).describe()
    }

    fn interruptible(&self, method: &str) -> bool {
        (**self).interruptible(method)
    }

    fn dispatch<'a>(&'a self, request: &'a Request) -> Option<HandlerFuture<'a>> {
        (**self).dispatch(request)
    }
}

impl<E: Endpoint + ?Sized> Endpoint for Box<E> {
    fn namespace(&self) -> Option<&str> {
        (**self).namespace()
    }

    fn version(&self) -> Version {
        (**self).version()
    }

    fn methods(&self) -> &[&str] {
        (**self).methods()
    }

    fn describe(&self) -> Option<EndpointDescription> {
        (**self).describe()
    }

    fn interruptible(&self, method: &str) -> bool {
        (**self).interruptible(method)
    }

    fn dispatch<'a>(&'a self, request: &'a Request) -> Option<HandlerFuture<'a>> {
        (**self).dispatch(request)
    }
}

/// The endpoints of a server, in registration order.
#[derive(Default)]
pub(crate) struct Dispatcher {
    endpoints: Vec<Box<dyn Endpoint>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for endpoint in &self.endpoints {
            list.entry(&format_args!(
                "{}@{} {:?}",
                endpoint.namespace().unwrap_or("(default)"),
                endpoint.version(),
                endpoint.methods()
            ));
        }
        list.finish()
    }
}

impl Dispatcher {
    pub(crate) fn push(&mut self, endpoint: Box<dyn Endpoint>) {
        self.endpoints.push(endpoint);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The descriptions of the endpoints that have one, in order.
    pub(crate) fn describe(&self) -> Vec<EndpointDescription> {
        self.endpoints
            .iter()
            .filter_map(|endpoint| endpoint.describe())
            .collect()
    }

    /// Whether an endpoint in `namespace` has `method`, at any version:
    /// the names a server's series may carry (see [`crate::metrics`]).
    pub(crate) fn serves(&self, namespace: Option<&str>, method: &str) -> bool {
        self.endpoints
            .iter()
            .any(|endpoint| endpoint.namespace() == namespace && endpoint.methods().contains(&method))
    }

    /// Whether the method `request` names may be interrupted: asked of the
    /// endpoint that would run it (see [`dispatch`](Dispatcher::dispatch));
    /// `true` when none would.
    pub(crate) fn interruptible(&self, request: &Request) -> bool {
        let requested = request.version().unwrap_or(&Version::DEFAULT);
        self.endpoints
            .iter()
            .find(|endpoint| {
                endpoint.namespace() == request.namespace()
                    && endpoint.version().supports(requested)
                    && endpoint.methods().contains(&request.method())
            })
            .is_none_or(|endpoint| endpoint.interruptible(request.method()))
    }

    /// Picks the endpoint for `request` by oslo.messaging's rules and runs the method.
    ///
    /// Endpoints are tried in order; one is a candidate when its namespace
    /// equals the request's and its version supports the requested one
    /// (`1.0` when absent). The first candidate with the method runs it. If
    /// candidates existed but none had the method, the answer is
    /// `NoSuchMethod`; if none was a candidate, `UnsupportedVersion`.
    ///
    /// Also says whether the handler may be interrupted (see
    /// [`Endpoint::interruptible`]).
    pub(crate) fn dispatch<'a>(&'a self, request: &'a Request) -> (HandlerFuture<'a>, bool) {
        let requested = request.version().unwrap_or(&Version::DEFAULT);
        let mut compatible = false;
        let mut namespace_known = false;
        for endpoint in &self.endpoints {
            if endpoint.namespace() != request.namespace() {
                continue;
            }
            namespace_known = true;
            if !endpoint.version().supports(requested) {
                continue;
            }
            compatible = true;
            if request.method().starts_with('_') {
                continue;
            }
            if let Some(handler) = endpoint.dispatch(request) {
                return (handler, endpoint.interruptible(request.method()));
            }
        }
        let error = if compatible {
            RemoteError::no_such_method(request.method())
        } else if namespace_known {
            RemoteError::unsupported_version(requested, request.method())
        } else {
            let served = self.endpoints.iter().map(|endpoint| endpoint.namespace());
            RemoteError::unknown_namespace(request.namespace(), requested, request.method(), served)
        };
        (Box::pin(std::future::ready(Err(error))), true)
    }
}
