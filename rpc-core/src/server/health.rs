//! A server's health, for readiness and liveness probes.

use std::time::SystemTime;

/// What a server can tell a probe: whether it runs, whether its transport
/// is connected and consuming each of its queues, and when the last request
/// arrived. See [`Server::health`](super::Server::health).
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
