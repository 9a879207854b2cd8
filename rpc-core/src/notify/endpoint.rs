//! What a notification listener dispatches to.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;

use super::{IntoNotificationResult, Notification, NotificationError, NotificationResult, Priority};
use crate::server::delivery::panic_message;

/// A handler's future: what it did with the notification, or why it did
/// not (see [`NotificationError`]).
pub type NotificationFuture<'a> =
    Pin<Box<dyn Future<Output = Result<NotificationResult, NotificationError>> + Send + 'a>>;

/// A group of notification handlers, the listener's counterpart of an RPC
/// [`Endpoint`](crate::Endpoint).
///
/// `#[notifications]` implements it for an `impl` block or a trait whose
/// methods handle priorities and event types; implement it by hand for
/// anything else. A listener consumes the priorities its endpoints handle,
/// and offers each notification to every endpoint that handles its
/// priority, in registration order (oslo's dispatcher): an endpoint that
/// asks for a requeue, or fails, stops the round.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a notification endpoint",
    note = "add `#[notifications]` to an `impl {Self}` block, or register a trait implementation through its generated `<Trait>Listener`"
)]
pub trait NotificationEndpoint: Send + Sync + 'static {
    /// The priorities it handles: the listener consumes these.
    fn priorities(&self) -> &[Priority];

    /// Starts handling `notification`, or `None` when no handler of this
    /// endpoint takes its priority and event type.
    fn dispatch<'a>(&'a self, notification: &'a Notification) -> Option<NotificationFuture<'a>>;

    /// Starts handling a batch (batch listeners), all of one priority. By
    /// default each notification is dispatched in turn, whatever became of
    /// the others: the batch is requeued when any asks for it, and fails
    /// with the first failure (a panic included) once every other
    /// notification was handled; one whose payload does not decode is
    /// logged and skipped.
    fn dispatch_batch<'a>(&'a self, notifications: &'a [Notification]) -> Option<NotificationFuture<'a>> {
        Some(Box::pin(async move {
            let mut result = NotificationResult::Handled;
            let mut failure = None;
            for notification in notifications {
                let started = std::panic::catch_unwind(AssertUnwindSafe(|| self.dispatch(notification)));
                let handled = match started {
                    Ok(None) => continue,
                    Ok(Some(handler)) => AssertUnwindSafe(handler).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                match handled {
                    Ok(Ok(NotificationResult::Handled)) => {}
                    Ok(Ok(NotificationResult::Requeue)) => result = NotificationResult::Requeue,
                    Ok(Err(error)) if error.is_undecodable() => {
                        tracing::error!(event_type = notification.event_type(), message_id = notification.message_id(), %error, "skipping a notification in a batch");
                    }
                    Ok(Err(error)) => {
                        tracing::error!(event_type = notification.event_type(), message_id = notification.message_id(), %error, "a notification's handler failed; handling the rest of its batch");
                        failure.get_or_insert(error);
                    }
                    Err(panic) => {
                        let panic = panic_message(&*panic);
                        tracing::error!(event_type = notification.event_type(), message_id = notification.message_id(), %panic, "a notification's handler panicked; handling the rest of its batch");
                        failure
                            .get_or_insert_with(|| NotificationError::failed(format!("a handler panicked: {panic}")));
                    }
                }
            }
            failure.map_or(Ok(result), Err)
        }))
    }

    /// A name for logs: the type's, by default.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }
}

impl<E: NotificationEndpoint + ?Sized> NotificationEndpoint for Arc<E> {
    fn priorities(&self) -> &[Priority] {
        (**self).priorities()
    }

    fn dispatch<'a>(&'a self, notification: &'a Notification) -> Option<NotificationFuture<'a>> {
        (**self).dispatch(notification)
    }

    fn dispatch_batch<'a>(&'a self, notifications: &'a [Notification]) -> Option<NotificationFuture<'a>> {
        (**self).dispatch_batch(notifications)
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

/// An endpoint made of one closure, for every notification of some
/// priorities: handy for tools and tests.
///
/// ```
/// use rpc_core::notify::{NotificationResult, Priority, handler};
///
/// let printer = handler(Priority::ALL, |notification| async move {
///     println!("{} {}", notification.priority(), notification.event_type());
///     NotificationResult::Handled
/// });
/// # let _ = printer;
/// ```
pub fn handler<F, Fut, R>(priorities: impl IntoIterator<Item = Priority>, handle: F) -> Handler<F>
where
    F: Fn(Notification) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoNotificationResult,
{
    Handler {
        priorities: priorities.into_iter().collect(),
        handle,
    }
}

/// The endpoint [`handler`] makes.
pub struct Handler<F> {
    priorities: Vec<Priority>,
    handle: F,
}

impl<F> std::fmt::Debug for Handler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("priorities", &self.priorities)
            .finish_non_exhaustive()
    }
}

impl<F, Fut, R> NotificationEndpoint for Handler<F>
where
    F: Fn(Notification) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoNotificationResult,
{
    fn priorities(&self) -> &[Priority] {
        &self.priorities
    }

    fn dispatch<'a>(&'a self, notification: &'a Notification) -> Option<NotificationFuture<'a>> {
        if !self.priorities.contains(&notification.priority()) {
            return None;
        }
        let handled = (self.handle)(notification.clone());
        Some(Box::pin(async move { handled.await.into_notification_result() }))
    }

    fn name(&self) -> &str {
        "handler"
    }
}
