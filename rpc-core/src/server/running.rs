//! The calls a server is running, by message id, so that a caller that
//! gives up can cancel its call: the reserved method [`CANCEL_METHOD`], cast
//! to the server's own queue, names the call's message id.

use std::collections::HashMap;
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

/// The running calls' cancellation tokens.
#[derive(Debug, Default)]
pub(super) struct Running {
    /// By the value of their message id (no string kept per call). Callers
    /// choose their message ids: the hash is keyed (SipHash with a random
    /// key), so that ids crafted to share a hash cannot pile up in one
    /// bucket under the lock every request takes.
    calls: Mutex<HashMap<u128, Cancellation, RandomState>>,
}

impl Running {
    fn calls(&self) -> MutexGuard<'_, HashMap<u128, Cancellation, RandomState>> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a call's token until the returned entry drops; `None` for
    /// a message id that is not one of ours (an oslo peer's), which no
    /// cancel can name.
    pub(super) fn register(self: &Arc<Running>, msg_id: &str, cancellation: &Cancellation) -> Option<Entry> {
        let key = ids::key_of(msg_id)?;
        self.calls().insert(key, cancellation.clone());
        Some(Entry {
            running: Arc::clone(self),
            key,
        })
    }

    /// Cancels the call `msg_id`; whether it was running here.
    pub(super) fn cancel(&self, msg_id: &str) -> bool {
        let Some(key) = ids::key_of(msg_id) else {
            return false;
        };
        let cancellation = self.calls().get(&key).cloned();
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
        self.running.calls().remove(&self.key);
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
    fn ids_a_caller_crafts_to_collide_do_not_share_a_hash() {
        // The same low 64 bits (all an unkeyed hasher of random ids reads).
        let (a, b) = (
            0x0000_0001_0000_0000_dead_beef_dead_beef_u128,
            0x0000_0002_0000_0000_dead_beef_dead_beef_u128,
        );
        let running = Running::default();
        let hasher = running.calls().hasher().clone();
        assert_ne!(hasher.hash_one(a), hasher.hash_one(b));
    }
}
