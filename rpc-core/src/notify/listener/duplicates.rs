//! A listener's duplicate window: a copy of a notification it handled (the
//! same `_unique_id`) is acknowledged and dropped, as oslo's listeners drop
//! a copy of one they acknowledged; a copy of one it is handling waits for
//! it, and is settled as it is. Copies come from a notifier that published
//! again after losing its connection, and from a broker delivering again
//! what it was not told was settled (the connection was lost first).

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
/// meanwhile are settled then, as it is (given back, when given up).
pub(super) struct Taken {
    shared: Arc<Shared>,
    /// Its `_unique_id`, until settled; `None` for a notification sent
    /// without an id.
    entry: Option<String>,
}

/// Admits `delivery`, which holds `notification`, to the window: `None`
/// when it is a copy, then acknowledged at once (a copy of one handled), or
/// settled with the one being handled.
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
        settle_copy(&mut copy, Fate::Ack).await;
    }
    None
}

impl Taken {
    /// Ends the entry as the notification is about to be settled as `fate`
    /// says: forgotten when it goes back to the broker, else done. Called
    /// before the notification is settled, since a requeued one may be
    /// delivered again at once, and must then be taken as new. Returns the
    /// copies that waited for it, to settle as it is settled.
    pub(super) fn settling(mut self, fate: Fate) -> Copies {
        Copies {
            copies: self.end(fate == Fate::Requeue),
            fate,
        }
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

/// How a notification, and the copies that waited for it, are settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Handled (or not to be requeued): acknowledged.
    Ack,
    /// Given back to the broker for another try.
    Requeue,
    /// Unreadable by its handlers: rejected without requeue.
    Reject,
}

/// The copies that waited for a notification to be settled. They are
/// settled as it is: a copy may be the broker's own delivery of it again
/// (its connection was lost while it was handled), which is then the only
/// one left when a requeue or a reject cannot reach the broker any more.
/// Requeued, a plain copy comes back once more and is dropped then.
#[must_use = "copies are settled by `settle`"]
pub(super) struct Copies {
    copies: Vec<Delivery>,
    fate: Fate,
}

impl Copies {
    /// Settles every copy as the notification was settled.
    pub(super) async fn settle(self) {
        for mut copy in self.copies {
            settle_copy(&mut copy, self.fate).await;
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // Given up half-way (the runtime is shutting down, say): the
        // notification is not settled, and its copies go back to the broker
        // from a task of their own when a runtime is still there; otherwise
        // the broker delivers them again once the channel closes.
        let copies = self.end(true);
        if copies.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for mut copy in copies {
                    settle_copy(&mut copy, Fate::Requeue).await;
                }
            });
        }
    }
}

/// Settles a copy as `fate` says.
async fn settle_copy(copy: &mut Delivery, fate: Fate) {
    let settled = match fate {
        Fate::Ack => copy.ack().await,
        Fate::Requeue => copy.reject(true).await,
        Fate::Reject => copy.reject(false).await,
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "settling a copy of a notification");
    }
}
