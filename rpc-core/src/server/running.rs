//! The calls a server is running, by message id, so that a caller that
//! gives up can cancel its call: the reserved method [`CANCEL_METHOD`], cast
//! to the server's own queue, names the call's message id.

use std::collections::{HashMap, VecDeque};
use std::hash::RandomState;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::Cancellation;
use crate::ids;
use crate::message::Request;

/// The reserved method of a cancel message. Its name starts with `_`, so no
/// endpoint can ever be dispatched under it (oslo's access rule, ours too).
pub(crate) const CANCEL_METHOD: &str = "_rpc_cancel";

/// The arguments of a cancel message: the message id of the call.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelArgs {
    pub(crate) msg_id: String,
}

/// How many cancels of calls not running (yet) are remembered.
const EARLY_CANCELS: usize = 64;

/// The running calls' cancellation tokens.
#[derive(Debug, Default)]
pub(super) struct Running {
    calls: Mutex<Calls>,
}

#[derive(Debug, Default)]
struct Calls {
    /// By the value of their message id (no string kept per call). Callers
    /// choose their message ids: the hash is keyed (SipHash with a random
    /// key), so that ids crafted to share a hash cannot pile up in one
    /// bucket under the lock every request takes.
    running: HashMap<u128, Cancellation, RandomState>,
    /// The latest cancels of calls that were not running: a cancel can be
    /// handled before its call registers (the call's acknowledgement waited
    /// for a flush while the cancel, behind it, was already taken). A call
    /// registering under one of them is cancelled at once. (Most are calls
    /// that finished before their caller gave up; they age out.)
    early: VecDeque<u128>,
}

impl Running {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a call's token until the returned entry drops; `None` for
    /// a message id that is not one of ours (an oslo peer's), which no
    /// cancel can name. A call whose cancel came first is cancelled at once.
    pub(super) fn register(self: &Arc<Running>, msg_id: &str, cancellation: &Cancellation) -> Option<Entry> {
        let key = ids::key_of(msg_id)?;
        let mut calls = self.calls();
        calls.running.insert(key, cancellation.clone());
        let cancelled_first = calls.early.iter().position(|early| *early == key);
        if let Some(at) = cancelled_first {
            calls.early.remove(at);
        }
        drop(calls);
        if cancelled_first.is_some() {
            cancellation.cancel();
        }
        Some(Entry {
            running: Arc::clone(self),
            key,
        })
    }

    /// Cancels the call `msg_id`; whether it was running here. A cancel
    /// of a call not running is remembered, for a while, in case the call
    /// registers after it.
    pub(super) fn cancel(&self, msg_id: &str) -> bool {
        let Some(key) = ids::key_of(msg_id) else {
            return false;
        };
        let mut calls = self.calls();
        let cancellation = calls.running.get(&key).cloned();
        if cancellation.is_none() {
            if calls.early.len() == EARLY_CANCELS {
                calls.early.pop_front();
            }
            calls.early.push_back(key);
        }
        drop(calls);
        cancellation.inspect(Cancellation::cancel).is_some()
    }
}

/// A registered call; dropping it forgets the call.
#[derive(Debug)]
pub(super) struct Entry {
    running: Arc<Running>,
    key: u128,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.running.calls().running.remove(&self.key);
    }
}

/// Whether `request` is a cancel message.
pub(super) fn is_cancel(request: &Request) -> bool {
    request.method() == CANCEL_METHOD && request.namespace().is_none() && request.reply.is_none()
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_cancel_that_came_first_cancels_its_call_as_it_registers() {
        let running = Arc::new(Running::default());
        let (early, late) = (ids::Id::next(), ids::Id::next());
        assert!(!running.cancel(early.as_str()));
        let cancellation = Cancellation::new();
        let entry = running.register(early.as_str(), &cancellation);
        assert!(cancellation.is_cancelled());
        // Remembered once: a call registering later under it again runs.
        let again = Cancellation::new();
        drop(entry);
        let _entry = running.register(early.as_str(), &again);
        assert!(!again.is_cancelled());
        let other = Cancellation::new();
        let _other = running.register(late.as_str(), &other);
        assert!(!other.is_cancelled());
    }

    #[test]
    fn cancels_of_calls_never_seen_are_bounded() {
        let running = Running::default();
        for _ in 0..10 * EARLY_CANCELS {
            assert!(!running.cancel(ids::Id::next().as_str()));
        }
        assert_eq!(running.calls().early.len(), EARLY_CANCELS);
    }

    #[test]
    fn ids_a_caller_crafts_to_collide_do_not_share_a_hash() {
        // The same low 64 bits (all an unkeyed hasher of random ids reads).
        let (a, b) = (
            0x0000_0001_0000_0000_dead_beef_dead_beef_u128,
            0x0000_0002_0000_0000_dead_beef_dead_beef_u128,
        );
        let running = Running::default();
        let hasher = running.calls().running.hasher().clone();
        assert_ne!(hasher.hash_one(a), hasher.hash_one(b));
    }
}
