//! [`TimeoutLayer`]: per-method call timeouts.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tower_layer::Layer;

use super::{Caller, Invocation};
use crate::{Context, Error, Payload};

/// Gives some methods' calls a timeout of their own, in place of the
/// client's (longer or shorter); the context's deadline still applies.
///
/// ```
/// use std::time::Duration;
/// use rpc_core::caller::TimeoutLayer;
///
/// let timeouts = TimeoutLayer::new()
///     .method("status", Duration::from_secs(2))
///     .method("migrate", Duration::from_secs(600));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TimeoutLayer {
    methods: Arc<HashMap<String, Duration>>,
}

impl TimeoutLayer {
    /// No timeout of its own for any method yet.
    pub fn new() -> TimeoutLayer {
        TimeoutLayer::default()
    }

    /// Calls of `method` wait `timeout`.
    pub fn method(mut self, method: impl Into<String>, timeout: Duration) -> TimeoutLayer {
        Arc::make_mut(&mut self.methods).insert(method.into(), timeout);
        self
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeouts<S>;

    fn layer(&self, inner: S) -> Timeouts<S> {
        Timeouts {
            inner,
            methods: Arc::clone(&self.methods),
        }
    }
}

/// A caller with per-method timeouts; see [`TimeoutLayer`].
#[derive(Clone, Debug)]
pub struct Timeouts<S> {
    inner: S,
    methods: Arc<HashMap<String, Duration>>,
}

impl<S: Caller> Caller for Timeouts<S> {
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        let invocation = match self.methods.get(invocation.method()) {
            Some(timeout) => invocation.with_timeout(*timeout),
            None => invocation,
        };
        self.inner.call(ctx, invocation)
    }

    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        self.inner.cast(ctx, invocation)
    }
}
