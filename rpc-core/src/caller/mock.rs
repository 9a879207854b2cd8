//! [`Mock`]: a caller that answers what a test told it to.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use super::{Caller, Invocation};
use crate::{Codec, Context, Error, Payload, RemoteError, Version};

/// An answer, encoded as the stub decodes it.
type Handler = dyn Fn(&Context, Value) -> Result<Payload, Error> + Send + Sync;

/// A caller for tests of code that uses a typed client: each method
/// answers as the test said ([`returns`](Mock::returns),
/// [`fails`](Mock::fails), [`on`](Mock::on)), a method it was not told
/// about answers [`NoSuchMethod`](crate::ErrorCode::NoSuchMethod), and
/// every request is recorded, arguments as JSON ([`calls`](Mock::calls)).
/// Clones share their answers and records.
///
/// ```
/// use rpc_core::caller::Mock;
/// use rpc_core::{Context, endpoint, json};
///
/// struct Compute;
///
/// #[endpoint]
/// impl Compute {
///     async fn status(&self, _ctx: &Context, id: u64) -> String {
///         format!("instance {id}: ACTIVE") // the real server asks the hypervisor
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_core::Error> {
/// let mock = Mock::new().returns("status", "ACTIVE");
/// let compute = ComputeClient::new(mock.clone());
/// assert_eq!(compute.status(&Context::new(), 42).await?, "ACTIVE");
/// assert_eq!(mock.calls()[0].args, json!({"id": 42}));
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Mock {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    answers: Mutex<HashMap<String, Arc<Handler>>>,
    calls: Mutex<Vec<MockCall>>,
}

/// A request a [`Mock`] received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MockCall {
    /// The method.
    pub method: String,
    /// The namespace.
    pub namespace: Option<String>,
    /// The version the request asked for.
    pub version: Option<Version>,
    /// The arguments, as JSON.
    pub args: Value,
    /// A call (`true`) or a cast.
    pub is_call: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Mock {
    /// A mock that knows no method yet.
    pub fn new() -> Mock {
        Mock::default()
    }

    /// `method` answers `handler(context, arguments as JSON)`.
    pub fn on(
        self,
        method: impl Into<String>,
        handler: impl Fn(&Context, Value) -> Result<Value, RemoteError> + Send + Sync + 'static,
    ) -> Mock {
        self.answer_with(method, move |ctx, args| {
            let value = handler(ctx, args).map_err(Error::Remote)?;
            Codec::MsgPack.encode(&value).map_err(|source| Error::Encode {
                what: "the mock's answer",
                source,
            })
        })
    }

    /// `method` returns `value`, encoded as a server encodes a result (a
    /// map keyed by numbers stays so: it went through JSON, whose keys are
    /// strings, until 2026-12-05, and the typed stub could not decode it).
    ///
    /// # Panics
    ///
    /// When `value` does not serialize (a test's mistake).
    pub fn returns(self, method: impl Into<String>, value: impl Serialize) -> Mock {
        let payload = Codec::MsgPack.encode(&value).expect("a mock's answer serializes");
        self.answer_with(method, move |_, _| Ok(payload.clone()))
    }

    fn answer_with(
        self,
        method: impl Into<String>,
        handler: impl Fn(&Context, Value) -> Result<Payload, Error> + Send + Sync + 'static,
    ) -> Mock {
        lock(&self.inner.answers).insert(method.into(), Arc::new(handler));
        self
    }

    /// `method` fails with `error`.
    pub fn fails(self, method: impl Into<String>, error: RemoteError) -> Mock {
        self.on(method, move |_, _| Err(error.clone()))
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<MockCall> {
        lock(&self.inner.calls).clone()
    }

    /// The requests received so far for `method`.
    pub fn calls_to(&self, method: &str) -> Vec<MockCall> {
        lock(&self.inner.calls)
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    fn answer<A>(&self, ctx: &Context, invocation: Invocation<'_, A>, is_call: bool) -> Result<Option<Payload>, Error>
    where
        A: Serialize + ?Sized,
    {
        let args = serde_json::to_value(invocation.args()).map_err(|error| Error::Encode {
            what: "the arguments",
            source: crate::CodecError::new(error),
        })?;
        lock(&self.inner.calls).push(MockCall {
            method: invocation.method().to_owned(),
            namespace: invocation.namespace().map(str::to_owned),
            version: invocation.version().copied(),
            args: args.clone(),
            is_call,
        });
        let handler = lock(&self.inner.answers).get(invocation.method()).cloned();
        let Some(handler) = handler else {
            return Err(Error::Remote(RemoteError::no_such_method(invocation.method())));
        };
        handler(ctx, args).map(Some)
    }
}

impl Caller for Mock {
    fn call<A>(
        &self,
        ctx: &Context,
        invocation: Invocation<'_, A>,
    ) -> impl Future<Output = Result<Option<Payload>, Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        std::future::ready(self.answer(ctx, invocation, true))
    }

    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        let answered = self.answer(ctx, invocation, false);
        // A cast has no answer; a mock that was not told about it still records it.
        std::future::ready(match answered {
            Err(Error::Remote(_)) | Ok(_) => Ok(()),
            Err(error) => Err(error),
        })
    }
}

impl fmt::Debug for Mock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut methods: Vec<_> = lock(&self.inner.answers).keys().cloned().collect();
        methods.sort();
        f.debug_struct("Mock")
            .field("methods", &methods)
            .field("calls", &lock(&self.inner.calls).len())
            .finish()
    }
}
