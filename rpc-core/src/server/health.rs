//! A server's or a notification listener's health, for readiness and
//! liveness probes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::transport::QueueState;

/// What a server (or a notification listener) can tell a probe: whether it
/// runs, whether its transport is connected and consuming each of its
/// queues, and when the last message arrived. See
/// [`Server::health`](super::Server::health) and
/// [`NotificationListener::health`](crate::notify::NotificationListener::health).
///
/// - **live** ([`is_live`](Health::is_live)): the server is running (its
///   loop has not stopped); a process whose servers are not live should
///   be restarted;
/// - **ready** ([`is_ready`](Health::is_ready)): live, connected, and
///   consuming every queue; a server that is not ready does not get
///   requests (the broker is down, or its consumers are being restored).
///
/// The last delivery is for the operator: a server on a quiet topic is
/// healthy without traffic, so no probe should fail on it alone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The server is running: started, and not stopped.
    pub running: bool,
    /// The transport's connections to the broker are up.
    pub connected: bool,
    /// The server's queues, and whether each is being consumed.
    pub queues: Vec<QueueHealth>,
    /// When the server last took a message, if it has.
    pub last_delivery: Option<SystemTime>,
    /// Deliveries being handled right now.
    pub in_flight: u64,
}

/// One of a server's queues.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueHealth {
    /// The queue's name on the broker.
    pub name: String,
    /// Whether the server is consuming it right now.
    pub consuming: bool,
}

impl Health {
    /// Whether the server runs (a liveness probe).
    pub fn is_live(&self) -> bool {
        self.running
    }

    /// Whether the server runs, is connected, and consumes every queue (a
    /// readiness probe).
    pub fn is_ready(&self) -> bool {
        self.running && self.connected && self.queues.iter().all(|queue| queue.consuming)
    }
}

/// What a server or a notification listener keeps for its health: the
/// queues its run loop serves, and when it last took a message.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The listener's queues while the run loop serves them.
    serving: Mutex<Option<Vec<QueueState>>>,
    /// When the last message arrived, in Unix milliseconds (0: never).
    last_delivery: AtomicU64,
}

impl Watch {
    fn serving(&self) -> MutexGuard<'_, Option<Vec<QueueState>>> {
        self.serving.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The run loop serves `queues` (from its start), or no longer serves
    /// (`None`, once it stopped taking messages).
    pub(crate) fn serve(&self, queues: Option<Vec<QueueState>>) {
        *self.serving() = queues;
    }

    /// A message arrived now.
    pub(crate) fn delivered(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let millis = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        self.last_delivery.store(millis, Ordering::Relaxed);
    }

    /// The health of a server or listener whose lifecycle says `running`,
    /// on a transport `connected` or not, with `in_flight` deliveries.
    pub(crate) fn health(&self, running: bool, connected: bool, in_flight: u64) -> Health {
        let serving = self.serving();
        let queues = serving
            .iter()
            .flatten()
            .map(|queue| QueueHealth {
                name: queue.name().to_owned(),
                consuming: queue.is_consuming(),
            })
            .collect();
        let last = self.last_delivery.load(Ordering::Relaxed);
        Health {
            running: serving.is_some() && running,
            connected,
            queues,
            last_delivery: (last > 0).then(|| UNIX_EPOCH + Duration::from_millis(last)),
            in_flight,
        }
    }
}
