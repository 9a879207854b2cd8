//! A listener's duplicate window: a copy of a notification it handled, or
//! is handling (the same `_unique_id`), is acknowledged and dropped, as
//! oslo's listeners drop a copy of one they acknowledged. Copies come from a
//! notifier that published again after losing its connection, and from a
//! broker delivering again what it was not told was acknowledged (the
//! connection was lost with the acknowledgement).

use std::sync::Arc;

use super::Shared;
use crate::metrics::Settled;
use crate::notify::Notification;
use crate::recent::Admission;
use crate::transport::Delivery;

/// A notification's entry in the window while its handlers run: marked done
/// once the notification is settled for good (acknowledged or rejected),
/// forgotten when it went back to the broker (its next delivery is handled)
/// or when the listener gave it up half-way. The copies that arrived
/// meanwhile are dropped then.
pub(super) struct Taken {
    shared: Arc<Shared>,
    /// Its `_unique_id`, until settled; `None` for a notification sent
    /// without an id.
    entry: Option<String>,
}

/// Admits `delivery`, which holds `notification`, to the window: `None`
/// when it is a copy, then acknowledged at once (a copy of one handled) or
/// when the one being handled is settled.
pub(super) async fn admit(
    shared: &Arc<Shared>,
    notification: &Notification,
    delivery: Delivery,
) -> Option<(Delivery, Taken)> {
    let taken = |entry| Taken {
        shared: Arc::clone(shared),
        entry,
    };
    let Some(id) = notification.unique_id() else {
        return Some((delivery, taken(None)));
    };
    let admission = shared.recent().admit(id, delivery, true);
    let copy = match admission {
        Admission::Fresh(delivery) => {
            return Some((delivery, taken(Some(id.to_owned()))));
        }
        Admission::Duplicate(copy) => Some(copy),
        Admission::Parked => None,
    };
    shared.counters.add(&shared.counters.duplicates, 1);
    shared
        .metrics
        .settled(Some(notification.priority()), Settled::Duplicate, 1);
    tracing::warn!(
        unique_id = id,
        event_type = notification.event_type(),
        message_id = notification.message_id(),
        "dropping a copy of a notification handled lately, or being handled"
    );
    if let Some(mut copy) = copy {
        drop_copy(&mut copy).await;
    }
    None
}

impl Taken {
    /// Ends the entry as the notification is about to be settled: given
    /// back to the broker when `requeued` (forgotten), else for good (done).
    /// Called before the notification is settled, since a requeued one may
    /// be delivered again at once, and must then be taken as new. Returns
    /// the copies that waited for it, to drop once it is settled.
    pub(super) fn settling(mut self, requeued: bool) -> Copies {
        Copies(self.end(requeued))
    }

    /// Marks the entry done, or forgets it; returns the copies parked there.
    fn end(&mut self, forget: bool) -> Vec<Delivery> {
        let Some(id) = self.entry.take() else {
            return Vec::new();
        };
        let mut recent = self.shared.recent();
        if forget { recent.forget(&id) } else { recent.finish(&id) }
    }
}

/// The copies that waited for a notification to be settled.
#[must_use = "copies are dropped by `drop_all`"]
pub(super) struct Copies(Vec<Delivery>);

impl Copies {
    /// Acknowledges every copy.
    pub(super) async fn drop_all(self) {
        for mut copy in self.0 {
            drop_copy(&mut copy).await;
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // Given up half-way (the runtime is shutting down, say): the
        // notification is not settled, and its copies are dropped from a
        // task of their own when a runtime is still there; otherwise the
        // broker delivers them again once the channel closes.
        let copies = self.end(true);
        if copies.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for mut copy in copies {
                    drop_copy(&mut copy).await;
                }
            });
        }
    }
}

/// Acknowledges a copy: the notification it copies is handled, or back
/// with the broker.
async fn drop_copy(copy: &mut Delivery) {
    if let Err(error) = copy.ack().await {
        tracing::warn!(%error, "acknowledging a copy of a notification");
    }
}
