//! [`Local`]: a caller that runs requests through a dispatcher in the same
//! process, with no transport.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use serde::Serialize;

use super::{Caller, Invocation};
use crate::endpoint::Dispatcher;
use crate::message::{ReplyAddress, Request};
use crate::middleware::{Middleware, Stack};
use crate::server::delivery::panic_message;
use crate::{CallProgress, Cancellation, Codec, Context, Endpoint, Error, Payload, RemoteError, TraceContext};

/// A caller that hands each request to endpoints in this process, through
/// the same layers and dispatcher a [`Server`](crate::Server) uses: the
/// arguments and result are encoded and decoded in its codec as on the wire,
/// the namespace and version select the endpoint, a panic answers
/// [`Internal`](crate::ErrorCode::Internal), and the context's deadline (or
/// a layer's timeout) stops the handler. No transport, no task, no broker:
/// for unit tests of a server's endpoints through their typed client.
///
/// ```
/// use rpc_core::caller::Local;
/// use rpc_core::{Context, endpoint};
///
/// struct Echo;
///
/// #[endpoint]
/// impl Echo {
///     async fn echo(&self, _ctx: &Context, text: String) -> String {
///         text
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_core::Error> {
/// let echo = EchoClient::new(Local::builder().endpoint(Echo).build());
/// assert_eq!(echo.echo(&Context::new(), "hi".into()).await?, "hi");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Local {
    inner: Arc<Inner>,
}

struct Inner {
    dispatcher: Dispatcher,
    layers: Stack,
    codec: Codec,
}

/// Builds a [`Local`] caller; see [`Local::builder`].
#[must_use = "a builder does nothing until built"]
pub struct LocalBuilder {
    dispatcher: Dispatcher,
    layers: Stack,
    codec: Codec,
}

impl Local {
    /// Starts building a local caller (MessagePack, no endpoint yet).
    pub fn builder() -> LocalBuilder {
        LocalBuilder {
            dispatcher: Dispatcher::default(),
            layers: Stack::default(),
            codec: Codec::MsgPack,
        }
    }

    async fn run<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
        is_call: bool,
    ) -> Result<Option<Payload>, Error>
    where
        A: Serialize + Sync + ?Sized,
    {
        let inner = &*self.inner;
        let args = inner.codec.encode(invocation.args()).map_err(|source| Error::Encode {
            what: "the arguments",
            source,
        })?;
        let timeout = invocation.timeout();
        let deadline = match (ctx.deadline(), timeout) {
            (Some(deadline), Some(timeout)) => Some(deadline.min(crate::deadline::system_after(timeout))),
            (deadline, timeout) => deadline.or_else(|| timeout.map(crate::deadline::system_after)),
        };
        let mut context = ctx.clone();
        let trace = ctx.trace().map_or_else(TraceContext::new_root, TraceContext::child);
        let cancellation = Cancellation::new();
        context.set_lifecycle(deadline, trace, cancellation.clone());
        let mut request = Request {
            method: invocation.method().to_owned(),
            namespace: invocation.namespace().map(str::to_owned),
            version: invocation.version().copied(),
            context,
            args,
            // A call has somewhere to answer, as far as the layers can tell.
            reply: is_call.then(|| ReplyAddress {
                msg_id: String::new(),
                reply_to: String::new(),
            }),
            call_monitor: None,
            unique_id: None,
        };
        let method = invocation.method();
        // As a client does: a call already past its deadline is not sent
        // (and as a server does, it would not start), nor one whose own
        // request was cancelled; casts go out whatever the token says.
        if is_call && deadline.is_some_and(|deadline| deadline <= SystemTime::now()) {
            return Err(Error::Timeout {
                method: method.to_owned(),
                target: "local".to_owned(),
                timeout: Duration::ZERO,
                progress: CallProgress::NotSent,
            });
        }
        if is_call && ctx.is_cancelled() {
            return Err(Error::Cancelled {
                method: method.to_owned(),
                target: "local".to_owned(),
            });
        }
        let (handler, interruptible) = inner.layers.dispatch(&inner.dispatcher, &mut request);
        let run = AssertUnwindSafe(handler).catch_unwind();
        let ran = match deadline {
            None => run.await,
            Some(deadline) => {
                let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
                tokio::pin!(run);
                match tokio::time::timeout(left, &mut run).await {
                    Ok(ran) => ran,
                    Err(_) => {
                        // As a server does at the deadline: what the handler
                        // spawned, waiting on `ctx.cancelled()`, stops too;
                        // a handler that may not be interrupted runs to its
                        // end first (it was dropped).
                        cancellation.cancel();
                        if !interruptible.get() {
                            let _ = run.await;
                        }
                        return Err(Error::Timeout {
                            method: method.to_owned(),
                            target: "local".to_owned(),
                            timeout: left,
                            progress: CallProgress::Working {
                                server: "local".to_owned(),
                                last_heard: Duration::ZERO,
                            },
                        });
                    }
                }
            }
        };
        match ran {
            Ok(Ok(result)) => Ok(Some(result)),
            Ok(Err(remote)) => Err(Error::Remote(remote)),
            Err(panic) => Err(Error::Remote(RemoteError::panicked(method, &panic_message(&*panic)))),
        }
    }
}

impl LocalBuilder {
    /// Adds an endpoint; requests try them in the order they were added.
    pub fn endpoint(mut self, endpoint: impl Endpoint) -> LocalBuilder {
        self.dispatcher.push(Box::new(endpoint));
        self
    }

    /// Adds a server layer, as [`ServerBuilder::layer`](crate::ServerBuilder::layer) does.
    pub fn layer(mut self, layer: impl Middleware) -> LocalBuilder {
        self.layers.push(Arc::new(layer));
        self
    }

    /// The codec arguments and results go through (default MessagePack).
    pub fn codec(mut self, codec: Codec) -> LocalBuilder {
        self.codec = codec;
        self
    }

    /// The caller.
    pub fn build(self) -> Local {
        Local {
            inner: Arc::new(Inner {
                dispatcher: self.dispatcher,
                layers: self.layers,
                codec: self.codec,
            }),
        }
    }
}

impl Caller for Local {
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        self.run(ctx, invocation, true)
    }

    async fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> Result<(), Error>
    where
        A: Serialize + Sync + ?Sized,
    {
        // Run to the end, so a test sees the cast's effects once it returns;
        // its outcome goes nowhere, as a server's would.
        if let Err(error) = self.run(ctx, invocation, false).await {
            tracing::debug!(method = invocation.method(), %error, "a local cast failed");
        }
        Ok(())
    }
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("endpoints", &self.inner.dispatcher)
            .field("layers", &self.inner.layers.len())
            .field("codec", &self.inner.codec)
            .finish()
    }
}

impl fmt::Debug for LocalBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBuilder")
            .field("endpoints", &self.dispatcher)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}
