//! The request context: a string-keyed map that travels with every request.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Cancellation, TraceContext};

/// Keys whose values [`Context`]'s `Debug` output hides.
const SECRET_MARKERS: [&str; 4] = ["token", "password", "secret", "credential"];

/// The context of a request: a string-keyed map of JSON-like values that the
/// caller sends with every call and cast, and that the handler receives first.
///
/// It plays the role of oslo.messaging's `ctxt` dict and is carried the same
/// way (in the oslo codec each key travels as `_context_<key>`), so the keys
/// of `oslo_context.RequestContext` (`request_id`, `global_request_id`, `user`,
/// `project`, `roles`, `is_admin`, `auth_token`...) have typed accessors here.
/// Any other key can be read and written with [`get`](Context::get) and
/// [`insert`](Context::insert).
///
/// `Debug` output hides the values of keys that look secret (containing
/// `token`, `password`, `secret` or `credential`), at any depth (an object
/// inside an entry, or inside an array, is searched too), so contexts can
/// be logged.
///
/// # The request's lifecycle
///
/// Beside its entries, a context carries what the request lifecycle needs,
/// which travels in message headers rather than in the map (so Python peers
/// ignore it): the caller's [`deadline`](Context::deadline), the
/// [`trace`](Context::trace) the request belongs to, and on a server, the
/// request's [`Cancellation`]. A handler that calls another service passes
/// its own context on, and the nested call inherits all three with the ids
/// of the map (`request_id`, `global_request_id`): the nested call's
/// deadline is the sooner of its own timeout and the caller's deadline, its
/// trace is a child of the handler's span, and it gives up with
/// [`Error::Cancelled`](crate::Error::Cancelled) when the request is
/// cancelled. See `docs/lifecycle.md`.
///
/// ```
/// use rpc_core::Context;
///
/// let mut ctx = Context::new().with_request_id("req-42");
/// ctx.insert("retries", 3)?;
/// assert_eq!(ctx.request_id(), Some("req-42"));
/// assert_eq!(ctx.get::<u32>("retries")?, Some(3));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Context {
    values: Map<String, Value>,
    #[serde(skip)]
    deadline: Option<SystemTime>,
    #[serde(skip)]
    trace: Option<TraceContext>,
    #[serde(skip)]
    cancellation: Option<Cancellation>,
}

/// Contexts are equal when their entries are: the lifecycle is not data.
impl PartialEq for Context {
    fn eq(&self, other: &Context) -> bool {
        self.values == other.values
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// A context with a fresh request id `req-<uuid>`, as oslo.context makes them.
    pub fn generate_request_id() -> Context {
        Context::new().with_request_id(format!("req-{}", uuid::Uuid::new_v4()))
    }

    /// The value under `key`, deserialized as `T`; `Ok(None)` when absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.values.get(key).map(|value| T::deserialize(value)).transpose()
    }

    /// The raw value under `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The string under `key`; `None` when absent or not a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(Value::as_str)
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// Fails only when `value` cannot be represented as JSON (a map with
    /// non-string keys, for example).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Serialize) -> Result<(), serde_json::Error> {
        self.values.insert(key.into(), serde_json::to_value(value)?);
        Ok(())
    }

    /// Stores a raw value under `key`, replacing any previous value.
    pub fn insert_value(&mut self, key: impl Into<String>, value: Value) {
        self.values.insert(key.into(), value);
    }

    /// Removes the value under `key` and returns it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(key, value)| (key.as_str(), value))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the context has no entries.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The request id (`request_id`), which ties log lines of one request together.
    pub fn request_id(&self) -> Option<&str> {
        self.get_str("request_id")
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Context {
        self.insert_value("request_id", Value::String(request_id.into()));
        self
    }

    /// The id shared by every request of one user action across services (`global_request_id`).
    pub fn global_request_id(&self) -> Option<&str> {
        self.get_str("global_request_id")
    }

    /// The user id (`user`, as in `oslo_context.RequestContext.to_dict()`).
    pub fn user(&self) -> Option<&str> {
        self.get_str("user")
    }

    /// The project id: `project_id`, as oslo.policy's credentials read it,
    /// else `project` (oslo.context's `to_dict()` sends both; a Rust caller
    /// that set only `project_id` was not recognised until 2026-12-05).
    pub fn project(&self) -> Option<&str> {
        self.get_str("project_id").or_else(|| self.get_str("project"))
    }

    /// The role names (`roles`); empty when absent.
    pub fn roles(&self) -> Vec<&str> {
        self.role_names().collect()
    }

    /// The role names, read in place.
    pub(crate) fn role_names(&self) -> impl Iterator<Item = &str> {
        let roles = match self.values.get("roles") {
            Some(Value::Array(roles)) => roles.as_slice(),
            _ => &[],
        };
        roles.iter().filter_map(Value::as_str)
    }

    /// Whether the caller is an administrator (`is_admin`); `false` when absent.
    pub fn is_admin(&self) -> bool {
        self.values.get("is_admin").and_then(Value::as_bool).unwrap_or(false)
    }

    /// The caller's authentication token (`auth_token`). Never logged by `Debug`.
    pub fn auth_token(&self) -> Option<&str> {
        self.get_str("auth_token")
    }

    /// The caller's deadline: when it stops waiting for the result. Set on
    /// a server from the request; calls made with this context inherit it.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.deadline
    }

    /// The time left before the [`deadline`](Context::deadline): `None`
    /// without one, zero once it passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.duration_since(SystemTime::now()).unwrap_or_default())
    }

    /// Sets the deadline: calls made with this context give up then, even
    /// when their own timeout is longer, and their servers know it.
    pub fn with_deadline(mut self, deadline: SystemTime) -> Context {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the deadline `timeout` from now (see [`with_deadline`](Context::with_deadline)).
    pub fn with_timeout(self, timeout: Duration) -> Context {
        self.with_deadline(crate::deadline::system_after(timeout))
    }

    /// The trace the request belongs to: on a server, the span of the
    /// request's handling, a child of the caller's span.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// Sets the trace: calls made with this context carry a child of it.
    pub fn with_trace(mut self, trace: TraceContext) -> Context {
        self.trace = Some(trace);
        self
    }

    /// Whether the request being handled was cancelled (its caller's
    /// deadline passed, or the caller gave up); always `false` outside a server.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.as_ref().is_some_and(Cancellation::is_cancelled)
    }

    /// Completes when the request being handled is cancelled; never outside
    /// a server. For handlers that must clean up, and work they spawned.
    pub async fn cancelled(&self) {
        match &self.cancellation {
            Some(cancellation) => cancellation.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// The request's cancellation token, on a server.
    pub fn cancellation(&self) -> Option<&Cancellation> {
        self.cancellation.as_ref()
    }

    /// Sets the cancellation token (servers do, for each request).
    pub fn with_cancellation(mut self, cancellation: Cancellation) -> Context {
        self.cancellation = Some(cancellation);
        self
    }

    /// The underlying map.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.values
    }

    /// A copy without the entries whose keys look secret (containing
    /// `token`, `password`, `secret` or `credential`), at any depth: what a
    /// notification carries, as oslo.context's `redacted_copy` keeps only
    /// identities.
    pub fn redacted(&self) -> Context {
        let values = without_secrets(&self.values);
        Context {
            values,
            deadline: self.deadline,
            trace: self.trace.clone(),
            cancellation: self.cancellation.clone(),
        }
    }

    /// Sets the lifecycle of a request being handled, in place.
    pub(crate) fn set_lifecycle(
        &mut self,
        deadline: Option<SystemTime>,
        trace: TraceContext,
        cancellation: Cancellation,
    ) {
        self.deadline = deadline;
        self.trace = Some(trace);
        self.cancellation = Some(cancellation);
    }

    /// Consumes the context and returns the underlying map.
    pub fn into_map(self) -> Map<String, Value> {
        self.values
    }
}

impl From<Map<String, Value>> for Context {
    fn from(values: Map<String, Value>) -> Context {
        Context {
            values,
            ..Context::default()
        }
    }
}

impl FromIterator<(String, Value)> for Context {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Context {
        Context::from(iter.into_iter().collect::<Map<String, Value>>())
    }
}

fn is_secret(key: &str) -> bool {
    // Without a lowercased copy: nested keys are searched on every notification.
    SECRET_MARKERS.iter().any(|marker| {
        key.as_bytes()
            .windows(marker.len())
            .any(|window| window.eq_ignore_ascii_case(marker.as_bytes()))
    })
}

/// `entries` without those whose keys look secret, searched at any depth.
fn without_secrets(entries: &Map<String, Value>) -> Map<String, Value> {
    fn cleaned(value: &Value) -> Value {
        match value {
            Value::Object(entries) => Value::Object(without_secrets(entries)),
            Value::Array(items) => Value::Array(items.iter().map(cleaned).collect()),
            other => other.clone(),
        }
    }
    entries
        .iter()
        .filter(|(key, _)| !is_secret(key))
        .map(|(key, value)| (key.clone(), cleaned(value)))
        .collect()
}

/// A map shown with the values of secret-looking keys hidden, at any depth.
struct Shown<'a>(&'a Map<String, Value>);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Hidden;
        impl fmt::Debug for Hidden {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"***\"")
            }
        }
        struct Entry<'a>(&'a Value);
        impl fmt::Debug for Entry<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Value::Object(entries) => Shown(entries).fmt(f),
                    Value::Array(items) => f.debug_list().entries(items.iter().map(Entry)).finish(),
                    other => other.fmt(f),
                }
            }
        }
        let mut map = f.debug_map();
        for (key, value) in self.0 {
            if is_secret(key) {
                map.entry(key, &Hidden);
            } else {
                map.entry(key, &Entry(value));
            }
        }
        map.finish()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shown(&self.values).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_accessors() {
        let ctx: Context = serde_json::from_value(serde_json::json!({
            "request_id": "req-1",
            "global_request_id": "req-g",
            "user": "alice",
            "project": "demo",
            "roles": ["admin", "member", 3],
            "is_admin": true,
        }))
        .unwrap();
        assert_eq!(ctx.request_id(), Some("req-1"));
        assert_eq!(ctx.global_request_id(), Some("req-g"));
        assert_eq!(ctx.user(), Some("alice"));
        assert_eq!(ctx.project(), Some("demo"));
        assert_eq!(ctx.roles(), ["admin", "member"]);
        assert!(ctx.is_admin());
        assert!(!Context::new().is_admin());
        // oslo.policy's key first: a context with only `project_id` has a project.
        let mut scoped = Context::new();
        scoped.insert("project_id", "p1").unwrap();
        assert_eq!(scoped.project(), Some("p1"));
        scoped.insert("project", "old").unwrap();
        assert_eq!(scoped.project(), Some("p1"));
    }

    #[test]
    fn get_reports_type_mismatch() {
        let mut ctx = Context::new();
        ctx.insert("n", "not a number").unwrap();
        assert!(ctx.get::<u32>("n").is_err());
        assert_eq!(ctx.get::<u32>("missing").unwrap(), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let mut ctx = Context::new().with_request_id("req-1");
        ctx.insert("auth_token", "s3cr3t-token").unwrap();
        ctx.insert("db_Password", "hunter2").unwrap();
        let shown = format!("{ctx:?}");
        assert!(shown.contains("req-1"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    /// A context with secrets nested in an object and in an array.
    fn nested_secrets() -> Context {
        let mut ctx = Context::new().with_request_id("req-1");
        ctx.insert(
            "session",
            serde_json::json!({
                "user": "alice",
                "db": {"password": "hunter2", "host": "db1"},
                "keys": [{"name": "k1", "secret": "s3cr3t"}],
            }),
        )
        .unwrap();
        ctx
    }

    #[test]
    fn debug_hides_nested_secrets() {
        let shown = format!("{:?}", nested_secrets());
        for kept in ["req-1", "alice", "db1", "k1"] {
            assert!(shown.contains(kept), "{kept}: {shown}");
        }
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_redacted_copy_drops_nested_secrets() {
        let redacted = nested_secrets().redacted();
        let session = redacted.as_map()["session"].clone();
        assert_eq!(
            session,
            serde_json::json!({"user": "alice", "db": {"host": "db1"}, "keys": [{"name": "k1"}]})
        );
        assert_eq!(redacted.request_id(), Some("req-1"));
    }

    #[test]
    fn generated_request_ids_are_unique() {
        let a = Context::generate_request_id();
        let b = Context::generate_request_id();
        assert!(a.request_id().unwrap().starts_with("req-"));
        assert_ne!(a.request_id(), b.request_id());
    }
}
