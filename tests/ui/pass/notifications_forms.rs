//! Both forms of `#[notifications]`, with every return type, `#[cfg]`
//! handlers, docs, raw identifiers and strict lints.
#![deny(missing_docs, unreachable_pub, missing_debug_implementations)]

use rpc_core::notifications;
use rpc_core::notify::{Notification, NotificationResult};
use serde::{Deserialize, Serialize};

/// A payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    /// A field.
    pub id: u64,
}

/// An endpoint.
#[derive(Debug)]
pub struct Audit;

#[notifications]
impl Audit {
    #[on(info, event_type = "compute.instance.create.end")]
    async fn created(&self, _notification: &Notification, _payload: Payload) {}

    #[on(warn, error, event_type = "compute.*")]
    async fn trouble(&self, _notification: &Notification, _payload: rpc_core::Value) -> NotificationResult {
        NotificationResult::Requeue
    }

    #[cfg(any())]
    async fn audit(&self, _notification: &Notification, _payload: rpc_core::Value) {}

    async fn r#sample(&self, _notification: &Notification, _payload: rpc_core::Value) -> Result<(), std::io::Error> {
        Ok(())
    }
}

/// Events.
#[notifications]
pub trait Events {
    /// Created.
    #[on(info, event_type = "compute.instance.create.end")]
    async fn created(&self, notification: &Notification, payload: Payload);

    /// A catch-all: no typed notifier method.
    #[on(debug)]
    async fn debugging(&self, notification: &Notification, payload: rpc_core::Value) -> Result<NotificationResult, String>;
}

/// Handlers that generate no notifier method may take its methods' names,
/// and `where` clauses are the user's.
#[notifications]
pub trait Lifecycle
where
    Self: Sized,
{
    /// Any priority of two: no notifier method.
    #[on(info, warn, event_type = "lifecycle.new")]
    async fn new(&self, notification: &Notification, payload: rpc_core::Value)
    where
        Self: Sync;

    /// A pattern: no notifier method.
    #[on(info, event_type = "lifecycle.*")]
    async fn notifier(&self, notification: &Notification, payload: rpc_core::Value);
}

/// A `where` clause on an impl block.
#[derive(Debug)]
pub struct Bounded;

#[notifications]
impl Bounded
where
    Bounded: Sized,
{
    async fn info(&self, _notification: &Notification, _payload: rpc_core::Value) {}
}

fn main() {
    fn endpoint<E: rpc_core::notify::NotificationEndpoint>(_: E) {}
    endpoint(Bounded);
    endpoint(Audit);
    #[derive(Debug)]
    struct Impl;
    impl Events for Impl {
        async fn created(&self, _notification: &Notification, _payload: Payload) {}
        async fn debugging(&self, _notification: &Notification, _payload: rpc_core::Value) -> Result<NotificationResult, String> {
            Ok(NotificationResult::Handled)
        }
    }
    endpoint(EventsListener::new(Impl));
    let _ = |notifier: rpc_core::notify::Notifier| async move {
        let events = EventsNotifier::new(notifier);
        events.created(&rpc_core::Context::new(), &Payload { id: 1 }).await
    };
}
