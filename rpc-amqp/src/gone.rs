//! Reply queues found gone: a reply to one is dropped at once for a while,
//! as oslo.messaging's `ObsoleteReplyQueuesCache` drops it, instead of being
//! published (and returned) again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How many reply queues found gone are remembered (oslo keeps 200).
const REMEMBERED: usize = 200;

/// Reply queues found gone, and until when to believe it.
#[derive(Debug)]
pub(crate) struct GoneQueues {
    until: Mutex<HashMap<String, Instant>>,
    /// How long a queue found gone is believed gone, unless told otherwise.
    window: Duration,
}

impl GoneQueues {
    /// Believes a queue gone for `window` after it was found so.
    pub(crate) fn new(window: Duration) -> GoneQueues {
        GoneQueues {
            until: Mutex::default(),
            window,
        }
    }

    fn until(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `queue` was found gone recently.
    pub(crate) fn is_gone(&self, queue: &str) -> bool {
        let mut until = self.until();
        match until.get(queue) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                until.remove(queue);
                false
            }
            None => false,
        }
    }

    /// Remembers `queue` as gone for the usual window.
    pub(crate) fn mark(&self, queue: &str) {
        self.mark_for(queue, self.window);
    }

    /// Remembers `queue` as gone for `window`; the oldest is forgotten
    /// when too many are remembered.
    pub(crate) fn mark_for(&self, queue: &str, window: Duration) {
        let now = Instant::now();
        let mut until = self.until();
        until.retain(|_, until| *until > now);
        if until.len() >= REMEMBERED {
            if let Some(oldest) = until
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(name, _)| name.clone())
            {
                until.remove(&oldest);
            }
        }
        until.insert(queue.to_owned(), now + window);
    }
}
