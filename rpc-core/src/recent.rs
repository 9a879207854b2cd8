//! The duplicate window: the message ids a server or a notification
//! listener took recently, so that a copy of a message it already handled,
//! or is handling, is not handled again.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use crate::ids::RandomKeys;
use crate::transport::Delivery;

/// How many recent message ids are remembered at least (oslo keeps 16).
const AT_LEAST: usize = 16;

/// The message ids taken recently (oslo's `_MsgIdCache`, kept as 64-bit
/// hashes), to drop copies of a message already handled or being handled.
pub(crate) struct RecentIds {
    /// Keyed per server: a peer cannot choose ids that collide.
    hasher: RandomState,
    capacity: usize,
    order: VecDeque<u64>,
    /// By hash: keyed already, so not hashed again.
    seen: HashMap<u64, Seen, RandomKeys>,
}

enum Seen {
    /// Being handled (at-least-once); copies that arrived meanwhile wait
    /// here, unacknowledged, to be settled when it is done.
    Running(Vec<Delivery>),
    Done,
}

/// What to do with a request, given the ids seen before.
pub(crate) enum Admission {
    /// A new id: run it.
    Fresh(Delivery),
    /// A copy of a finished request: drop it (acknowledging it).
    Duplicate(Delivery),
    /// A copy of a request still running: kept until that one finishes.
    Parked,
}

impl RecentIds {
    pub(crate) fn new(capacity: usize) -> RecentIds {
        RecentIds {
            hasher: RandomState::new(),
            capacity,
            order: VecDeque::with_capacity(capacity + 1),
            seen: HashMap::with_capacity_and_hasher(capacity + 1, RandomKeys::default()),
        }
    }

    /// A window for a server or listener that holds up to `at_once`
    /// messages at a time: it remembers twice that many finished ids, and
    /// at least oslo's 16.
    pub(crate) fn holding(at_once: usize) -> RecentIds {
        RecentIds::new(AT_LEAST.max(at_once.saturating_mul(2)))
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Records `id`, as running when `running` (else as done at once).
    pub(crate) fn admit(&mut self, id: &str, delivery: Delivery, running: bool) -> Admission {
        let hash = self.hash(id);
        match self.seen.get_mut(&hash) {
            Some(Seen::Done) => return Admission::Duplicate(delivery),
            Some(Seen::Running(parked)) => {
                parked.push(delivery);
                return Admission::Parked;
            }
            None => {}
        }
        self.seen
            .insert(hash, if running { Seen::Running(Vec::new()) } else { Seen::Done });
        self.order.push_back(hash);
        // Forget the oldest finished id; running ones stay (at most one per slot).
        for _ in 0..self.order.len() {
            if self.order.len() <= self.capacity {
                break;
            }
            let Some(oldest) = self.order.pop_front() else { break };
            if matches!(self.seen.get(&oldest), Some(Seen::Running(_))) {
                self.order.push_back(oldest);
            } else {
                self.seen.remove(&oldest);
            }
        }
        Admission::Fresh(delivery)
    }

    /// Marks `id` done; returns the copies that arrived while it ran.
    pub(crate) fn finish(&mut self, id: &str) -> Vec<Delivery> {
        match self.seen.get_mut(&self.hash(id)) {
            Some(seen @ Seen::Running(_)) => match std::mem::replace(seen, Seen::Done) {
                Seen::Running(parked) => parked,
                Seen::Done => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Forgets `id`, which was not handled after all (given back to the
    /// broker, which delivers it again): the next copy is fresh. Returns the
    /// copies that arrived while it ran.
    pub(crate) fn forget(&mut self, id: &str) -> Vec<Delivery> {
        let hash = self.hash(id);
        let Some(seen) = self.seen.remove(&hash) else {
            return Vec::new();
        };
        self.order.retain(|kept| *kept != hash);
        match seen {
            Seen::Running(parked) => parked,
            Seen::Done => Vec::new(),
        }
    }

    /// How many requests of the window are still running.
    pub(crate) fn running(&self) -> usize {
        self.seen
            .values()
            .filter(|seen| matches!(seen, Seen::Running(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    fn delivery() -> Delivery {
        Delivery::with_codec(bytes::Bytes::new(), Codec::MsgPack)
    }

    #[test]
    fn copies_of_a_finished_request_are_duplicates() {
        let mut recent = RecentIds::new(4);
        assert!(matches!(recent.admit("a", delivery(), false), Admission::Fresh(_)));
        assert!(matches!(recent.admit("a", delivery(), false), Admission::Duplicate(_)));
        assert!(matches!(recent.admit("b", delivery(), false), Admission::Fresh(_)));
    }

    #[test]
    fn copies_of_a_running_request_wait_for_it() {
        let mut recent = RecentIds::new(4);
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Fresh(_)));
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Parked));
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Parked));
        assert_eq!(recent.finish("a").len(), 2);
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Duplicate(_)));
        assert!(recent.finish("a").is_empty());
    }

    #[test]
    fn a_forgotten_id_is_fresh_again_and_hands_back_its_copies() {
        let mut recent = RecentIds::new(4);
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Fresh(_)));
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Parked));
        assert_eq!(recent.forget("a").len(), 1);
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Fresh(_)));
        assert_eq!(recent.order.len(), 1);
        assert!(recent.finish("a").is_empty());
        assert!(matches!(recent.admit("a", delivery(), true), Admission::Duplicate(_)));
        assert!(recent.forget("unknown").is_empty());
    }

    #[test]
    fn the_oldest_finished_ids_are_forgotten_and_running_ones_kept() {
        let mut recent = RecentIds::new(2);
        assert!(matches!(recent.admit("running", delivery(), true), Admission::Fresh(_)));
        for id in ["b", "c", "d"] {
            assert!(matches!(recent.admit(id, delivery(), false), Admission::Fresh(_)));
        }
        assert!(recent.seen.len() <= 2, "{} ids kept", recent.seen.len());
        assert!(matches!(recent.admit("running", delivery(), true), Admission::Parked));
        assert!(matches!(recent.admit("b", delivery(), false), Admission::Fresh(_)));
        assert_eq!(recent.finish("running").len(), 1);
    }
}
