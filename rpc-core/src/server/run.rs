//! The run loop: takes deliveries from the listener as executor slots free
//! up, hands each to the per-delivery path, and drains on stop.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{Shared, delivery};
use crate::lifecycle::{Started, next_delivery};
use crate::transport::Listener;

/// Serves until stopped (or until the transport closes the queues for
/// good); then stops consuming, waits for every request taken to be
/// answered and settled, and says so on `done`.
pub(super) async fn run(shared: Arc<Shared>, mut listener: Box<dyn Listener>, started: Started) {
    let Started { mut stop, done } = started;
    let permits = Arc::new(Semaphore::new(shared.limit));
    while let Some((permit, next)) = next_delivery(&mut stop, &permits, &mut *listener).await {
        if matches!(next, Some(Ok(_))) {
            shared.watch.delivered();
        }
        match next {
            // One at a time: run it here, sparing a task and a thread hop.
            Some(Ok(delivery)) if shared.limit == 1 => delivery::handle(Arc::clone(&shared), delivery, permit).await,
            Some(Ok(delivery)) => {
                tokio::spawn(delivery::handle(Arc::clone(&shared), delivery, permit));
            }
            Some(Err(error)) => {
                tracing::warn!(target = %shared.target, %error, "listening failed; waiting for the transport to recover");
            }
            None => {
                tracing::error!(target = %shared.target, "the transport closed the server's queues; stopping");
                break;
            }
        }
    }
    shared.watch.serve(None);
    if let Err(error) = listener.close().await {
        tracing::warn!(target = %shared.target, %error, "closing the server's queues");
    }
    // Every handler holds a slot: all slots back means all requests answered.
    let all = u32::try_from(shared.limit).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    done.finish();
    tracing::info!(target = %shared.target, "server stopped");
}
