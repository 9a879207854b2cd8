//! Server middleware: layers a request goes through before the dispatcher.
//!
//! A [`Middleware`] sees each request that a server (or a
//! [`Local`](crate::caller::Local) caller) has read and admitted, with its method,
//! namespace, version, context (deadline included) and still-encoded
//! arguments. It may refuse it with a typed [`RemoteError`], read or enrich
//! its context, time it, or wrap its result, then hands it on through
//! [`Next`]. Layers run in the order they were added: the first added is the
//! outermost, sees the request first and the result last.
//!
//! ```
//! use rpc_core::middleware::{Middleware, Next};
//! use rpc_core::{HandlerFuture, Request};
//!
//! /// Stamps every request's context with the server's region.
//! struct Region(&'static str);
//!
//! impl Middleware for Region {
//!     fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
//!         request.context_mut().insert_value("region", self.0.into());
//!         next.run(request)
//!     }
//! }
//! ```
//!
//! Ready-made layers: [`Policy`] (oslo.policy's use: roles, admin, project),
//! [`ConcurrencyLimit`] and [`RateLimit`] per method, and [`RequestLog`], a
//! log line per request. `docs/middleware.md` tells how to write one and in
//! what order to stack them.
//!
//! # Why not `tower::Service`
//!
//! A handler decodes its arguments straight from the received message,
//! borrowing the request; tower's `Service::call` takes its request by value
//! and `&mut self`, so a stack shared by 64 concurrent requests would be
//! cloned (every layer's `Arc`s) or locked per request, and each layer's
//! future boxed to be `'static`. With no layer, this path costs nothing (the
//! dispatcher is called directly); each layer costs one boxed future.
//! tower's own limits keep their state per clone, which a shared per-method
//! limit cannot use. The client side, whose layers wrap values rather than
//! borrow them, uses tower's [`Layer`](tower_layer::Layer) (see
//! [`crate::caller`]).

mod by_method;
mod limit;
mod log;
mod policy;
mod throttle;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use limit::{ConcurrencyLimit, RateLimit};
pub use log::RequestLog;
pub use policy::{Policy, Rule};

#[cfg(doc)]
use crate::RemoteError;
use crate::endpoint::{Dispatcher, HandlerFuture};
use crate::message::Request;

/// A layer around the dispatcher; see the [module documentation](self).
///
/// [`call`](Middleware::call) returns the request's outcome: most layers
/// return `next.run(request)`, wrapped in an `async move` block when they
/// act on the result. Returning an error without calling `next` refuses the
/// request: the handler never runs, and the caller gets the error.
pub trait Middleware: Send + Sync + 'static {
    /// Handles `request`, handing it on through `next`.
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a>;
}

impl<M: Middleware + ?Sized> Middleware for Arc<M> {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        (**self).call(request, next)
    }
}

impl<M: Middleware + ?Sized> Middleware for Box<M> {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        (**self).call(request, next)
    }
}

/// The rest of the stack after a layer: the layers below it, then the
/// dispatcher.
pub struct Next<'a> {
    rest: &'a [Arc<dyn Middleware>],
    dispatcher: &'a Dispatcher,
    /// Set by the endpoint that runs the request, once it is picked.
    interruptible: Interruptible,
}

impl<'a> Next<'a> {
    /// Hands `request` to the next layer, or to its method.
    pub fn run(self, request: &'a mut Request) -> HandlerFuture<'a> {
        match self.rest.split_first() {
            Some((layer, rest)) => layer.call(
                request,
                Next {
                    rest,
                    dispatcher: self.dispatcher,
                    interruptible: self.interruptible,
                },
            ),
            None => {
                let (handler, interruptible) = self.dispatcher.dispatch(request);
                self.interruptible.set(interruptible);
                handler
            }
        }
    }
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("layers", &self.rest.len())
            .finish_non_exhaustive()
    }
}

/// A server's layers, outermost first.
#[derive(Clone, Default)]
pub(crate) struct Stack {
    layers: Vec<Arc<dyn Middleware>>,
}

impl Stack {
    pub(crate) fn push(&mut self, layer: Arc<dyn Middleware>) {
        self.layers.push(layer);
    }

    pub(crate) fn len(&self) -> usize {
        self.layers.len()
    }

    /// Runs `request` through the layers and the dispatcher, and says
    /// whether its handler may be interrupted. With no layer, the
    /// dispatcher is called directly.
    pub(crate) fn dispatch<'a>(
        &'a self,
        dispatcher: &'a Dispatcher,
        request: &'a mut Request,
    ) -> (HandlerFuture<'a>, Interruptible) {
        if self.layers.is_empty() {
            let (handler, interruptible) = dispatcher.dispatch(request);
            return (handler, Interruptible::Known(interruptible));
        }
        // Until an endpoint is picked (a layer may pick it late, or a
        // method other than the one requested), that of the endpoint
        // listing the method; then that of the endpoint running it.
        let interruptible = Interruptible::Later(Arc::new(AtomicBool::new(dispatcher.interruptible(request))));
        let next = Next {
            rest: &self.layers,
            dispatcher,
            interruptible: interruptible.clone(),
        };
        (next.run(request), interruptible)
    }
}

/// Whether a request's handler may be interrupted, as the endpoint
/// running it says: known at once without layers (no allocation on that
/// path), set once a layer hands the request on otherwise.
#[derive(Clone, Debug)]
pub(crate) enum Interruptible {
    Known(bool),
    Later(Arc<AtomicBool>),
}

impl Interruptible {
    pub(crate) fn get(&self) -> bool {
        match self {
            Interruptible::Known(interruptible) => *interruptible,
            Interruptible::Later(shared) => shared.load(Ordering::Relaxed),
        }
    }

    fn set(&self, interruptible: bool) {
        if let Interruptible::Later(shared) = self {
            shared.store(interruptible, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack").field("layers", &self.layers.len()).finish()
    }
}
