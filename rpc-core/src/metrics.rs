//! Metrics, through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`): the series below, recorded by servers, clients,
//! notifiers, notification listeners and transports, exported by whatever recorder the program installs
//! (Prometheus, StatsD, OpenTelemetry...). Without the feature, or without
//! a recorder, recording costs nothing (no feature) or next to nothing.
//!
//! The `metrics` facade, rather than OpenTelemetry's metrics API: it is a
//! small crate with no SDK to configure, a library records into it without
//! choosing the exporter, and its exporters include OpenTelemetry's
//! (`metrics-exporter-opentelemetry`) beside Prometheus.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `rpc_server_requests_total` | counter | `topic`, `namespace`, `method`, `kind` | requests a server ran (`kind`: `call` or `cast`) |
//! | `rpc_server_errors_total` | counter | `topic`, `namespace`, `method`, `code` | of those, the ones answered with an error ([`ErrorCode`](crate::ErrorCode)'s name), or stopped unanswered because their caller cancelled them (`cancelled`; until 2026-12-05 such requests were left out of the request series) |
//! | `rpc_server_request_duration_seconds` | histogram | `topic`, `namespace`, `method` | from the start of the layers to the outcome |
//! | `rpc_server_in_flight` | gauge | `topic` | deliveries being handled |
//! | `rpc_server_queued` | gauge | | requests waiting for a [`ConcurrencyLimit`](crate::middleware::ConcurrencyLimit) slot |
//! | `rpc_server_dropped_total` | counter | `topic`, `reason` | messages not run: `unreadable`, `duplicate`, `expired`, `left` (to the broker, their connection lost); handlers stopped: `interrupted`, `cancelled` |
//! | `rpc_client_requests_total` | counter | `topic`, `namespace`, `method`, `kind` | calls and casts sent (attempted) |
//! | `rpc_client_errors_total` | counter | `topic`, `namespace`, `method`, `code` | of those, the failed ones: `timeout`, `no_listener`, `transport`, ... or the server's code; `dropped`: given up by their caller before they ended (a `select!`, a timeout around the call) |
//! | `rpc_client_call_duration_seconds` | histogram | `topic`, `namespace`, `method` | a call, from the caller's side |
//! | `rpc_client_in_flight` | gauge | | calls waiting for their reply |
//! | `rpc_client_late_replies_total` | counter | | replies that came after their call gave up |
//! | `rpc_transport_reconnections_total` | counter | `transport` | connections re-established |
//! | `rpc_notifier_notifications_total` | counter | `topic`, `priority` | notifications sent (attempted), on each of a notifier's topics (`noop` and `log` send nothing) |
//! | `rpc_notifier_errors_total` | counter | `topic`, `priority`, `code` | of those, the failed ones: `transport`, `encode`, `invalid_notification` (a notification refused before sending counts on each topic) |
//! | `rpc_listener_notifications_total` | counter | `topic`, `priority`, `result` | what a notification listener did with each notification: `handled` (acknowledged), `requeued`, `rejected` (unreadable, or a payload that does not decode; `priority` is `(unknown)` when the message could not be read at all), `left` (received on a connection lost before it was handled, left to the broker, which delivers it again; `priority` is `(unknown)`: it is not read), `duplicate` (a copy of a notification handled lately or being handled: dropped) |
//! | `rpc_listener_failures_total` | counter | `topic`, `priority` | handlers that failed or panicked (each also a requeue of the notification, or of the batch's notifications of that priority, when the listener allows it) |
//! | `rpc_listener_handle_duration_seconds` | histogram | `topic`, `priority` | from a notification taken (before it is decoded) to settled; a batch: each priority's notifications, from their handling to settled |
//! | `rpc_listener_in_flight` | gauge | `topic` | notifications being handled |
//!
//! A listener's `topic` label is its targets' topics, joined with commas
//! (`notifications,monitor`); its series are registered when it is built
//! for the priorities its endpoints handle, and at their first notification
//! for others (a pool's queue carries the priorities of every listener in
//! the pool).
//!
//! A server labels a request with its method and namespace only when one
//! of its endpoints has them (in its `methods()`), whatever answered: names
//! a peer made up are labelled `(unknown)`, also when a layer refused them
//! before the dispatcher looked, so a peer cannot grow the series without
//! bound.
//!
//! A client labels its requests with the names it sends; past 2048
//! distinct topic, namespace and method triples (a gateway forwarding its
//! callers' names), the rest share one series labelled [`OTHER`].
//!
//! Each series' handle is registered with the recorder once, at its first
//! use, and kept: install the recorder before the first request (at the
//! start of `main`), or the series registered before it go nowhere.

#[cfg(feature = "metrics")]
mod cache;
#[cfg(feature = "metrics")]
mod notify;

#[cfg(feature = "metrics")]
use cache::{Cache, Series};

use crate::notify::Priority;

/// The label value of a method or namespace the server does not serve.
pub const UNKNOWN: &str = "(unknown)";

/// The label value of the names past the most a process labels apart
/// (2048 topic, namespace and method triples, for servers and for clients):
/// a client forwarding names its callers chose cannot grow the series
/// without bound.
pub const OTHER: &str = "(other)";

/// Requests a server ran.
pub const SERVER_REQUESTS: &str = "rpc_server_requests_total";
/// Requests a server answered with an error.
pub const SERVER_ERRORS: &str = "rpc_server_errors_total";
/// How long a server took over a request.
pub const SERVER_DURATION: &str = "rpc_server_request_duration_seconds";
/// Deliveries a server is handling.
pub const SERVER_IN_FLIGHT: &str = "rpc_server_in_flight";
/// Requests waiting for a concurrency-limit slot.
pub const SERVER_QUEUED: &str = "rpc_server_queued";
/// Messages a server did not run, and handlers it stopped.
pub const SERVER_DROPPED: &str = "rpc_server_dropped_total";
/// Calls and casts a client sent.
pub const CLIENT_REQUESTS: &str = "rpc_client_requests_total";
/// Calls and casts that failed.
pub const CLIENT_ERRORS: &str = "rpc_client_errors_total";
/// How long calls took, from the caller's side.
pub const CLIENT_DURATION: &str = "rpc_client_call_duration_seconds";
/// Calls waiting for their reply.
pub const CLIENT_IN_FLIGHT: &str = "rpc_client_in_flight";
/// Replies that came after their call gave up.
pub const CLIENT_LATE_REPLIES: &str = "rpc_client_late_replies_total";
/// Connections a transport re-established.
pub const RECONNECTIONS: &str = "rpc_transport_reconnections_total";
/// Notifications a notifier sent, on each of its topics.
pub const NOTIFIER_NOTIFICATIONS: &str = "rpc_notifier_notifications_total";
/// Notifications a notifier failed to send.
pub const NOTIFIER_ERRORS: &str = "rpc_notifier_errors_total";
/// Notifications a listener settled, by result.
pub const LISTENER_NOTIFICATIONS: &str = "rpc_listener_notifications_total";
/// Notification handlers that failed or panicked.
pub const LISTENER_FAILURES: &str = "rpc_listener_failures_total";
/// How long a listener took over a notification.
pub const LISTENER_DURATION: &str = "rpc_listener_handle_duration_seconds";
/// Notifications a listener is handling.
pub const LISTENER_IN_FLIGHT: &str = "rpc_listener_in_flight";

/// Why a server did not run a message, or stopped its handler.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dropped {
    Unreadable,
    Duplicate,
    Expired,
    /// Received on a connection since lost, and left to the broker.
    Left,
    Interrupted,
    Cancelled,
}

impl Dropped {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [Dropped; 6] = [
        Dropped::Unreadable,
        Dropped::Duplicate,
        Dropped::Expired,
        Dropped::Left,
        Dropped::Interrupted,
        Dropped::Cancelled,
    ];

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Dropped::Unreadable => "unreadable",
            Dropped::Duplicate => "duplicate",
            Dropped::Expired => "expired",
            Dropped::Left => "left",
            Dropped::Interrupted => "interrupted",
            Dropped::Cancelled => "cancelled",
        }
    }
}

// The metrics index their counters by discriminant, in the order of `ALL`.
const _: () = {
    let mut index = 0;
    while index < Dropped::ALL.len() {
        assert!(
            Dropped::ALL[index] as usize == index,
            "Dropped::ALL follows the enum's order"
        );
        index += 1;
    }
};

/// When a timed thing started (nothing, without the feature).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Timer {
    pub(crate) fn start() -> Timer {
        Timer {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }
}

/// A server's series: its gauge and drop counters, registered when it is
/// built, and its methods' series, registered at their first request.
pub(crate) struct ServerMetrics {
    #[cfg(feature = "metrics")]
    topic: String,
    #[cfg(feature = "metrics")]
    in_flight: ::metrics::Gauge,
    #[cfg(feature = "metrics")]
    dropped: [::metrics::Counter; 6],
    #[cfg(feature = "metrics")]
    methods: Cache,
}

impl ServerMetrics {
    pub(crate) fn new(topic: &str) -> ServerMetrics {
        let _ = topic;
        ServerMetrics {
            #[cfg(feature = "metrics")]
            topic: topic.to_owned(),
            #[cfg(feature = "metrics")]
            in_flight: ::metrics::gauge!(SERVER_IN_FLIGHT, "topic" => topic.to_owned()),
            #[cfg(feature = "metrics")]
            dropped: Dropped::ALL.map(
                |reason| ::metrics::counter!(SERVER_DROPPED, "topic" => topic.to_owned(), "reason" => reason.as_str()),
            ),
            #[cfg(feature = "metrics")]
            methods: Cache::default(),
        }
    }

    /// A server ran a request of `method` in `namespace` (as labelled:
    /// [`UNKNOWN`] for names no endpoint has); `code` is `None` when it
    /// succeeded.
    #[inline]
    pub(crate) fn served(
        &self,
        namespace: Option<&str>,
        method: &str,
        is_call: bool,
        code: Option<&'static str>,
        timer: Timer,
    ) {
        #[cfg(feature = "metrics")]
        {
            let series = self.methods.get(&self.topic, namespace, method, Series::server);
            series.record(is_call, code, timer.started.elapsed());
        }
        let _ = (namespace, method, is_call, code, timer);
    }

    /// Deliveries in flight went up or down by one.
    #[inline]
    pub(crate) fn in_flight(&self, up: bool) {
        #[cfg(feature = "metrics")]
        if up {
            self.in_flight.increment(1.0);
        } else {
            self.in_flight.decrement(1.0);
        }
        let _ = up;
    }

    /// The server dropped a message, or stopped a handler.
    #[inline]
    pub(crate) fn dropped(&self, reason: Dropped) {
        #[cfg(feature = "metrics")]
        self.dropped[reason as usize].increment(1);
        let _ = reason;
    }
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics").finish_non_exhaustive()
    }
}

/// One more in a gauge without labels, for as long as it lives: a request
/// waiting for a concurrency-limit slot ([`SERVER_QUEUED`]), a call
/// waiting for its reply ([`CLIENT_IN_FLIGHT`]).
#[derive(Debug)]
pub(crate) struct Counted(#[cfg_attr(not(feature = "metrics"), allow(dead_code))] Gauge);

/// The gauges without labels.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Gauge {
    Queued,
    ClientInFlight,
}

#[cfg(feature = "metrics")]
impl Gauge {
    fn handle(self) -> &'static ::metrics::Gauge {
        static QUEUED: std::sync::OnceLock<::metrics::Gauge> = std::sync::OnceLock::new();
        static CLIENT_IN_FLIGHT_GAUGE: std::sync::OnceLock<::metrics::Gauge> = std::sync::OnceLock::new();
        match self {
            Gauge::Queued => QUEUED.get_or_init(|| ::metrics::gauge!(SERVER_QUEUED)),
            Gauge::ClientInFlight => CLIENT_IN_FLIGHT_GAUGE.get_or_init(|| ::metrics::gauge!(CLIENT_IN_FLIGHT)),
        }
    }
}

impl Counted {
    pub(crate) fn enter(gauge: Gauge) -> Counted {
        #[cfg(feature = "metrics")]
        gauge.handle().increment(1.0);
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        self.0.handle().decrement(1.0);
    }
}

/// A client sent a request to `topic`, which ended with `error` (a code's
/// name, or `None` for success); calls are timed.
#[inline]
pub(crate) fn sent(
    topic: &str,
    namespace: Option<&str>,
    method: &str,
    is_call: bool,
    error: Option<&'static str>,
    timer: Timer,
) {
    #[cfg(feature = "metrics")]
    {
        static CLIENTS: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::default);
        let series = CLIENTS.get(topic, namespace, method, Series::client);
        series.record(is_call, error, timer.started.elapsed());
    }
    let _ = (topic, namespace, method, is_call, error, timer);
}

/// A reply came after its call gave up.
#[inline]
pub(crate) fn late_reply() {
    #[cfg(feature = "metrics")]
    {
        static LATE: std::sync::OnceLock<::metrics::Counter> = std::sync::OnceLock::new();
        LATE.get_or_init(|| ::metrics::counter!(CLIENT_LATE_REPLIES))
            .increment(1);
    }
}

/// Records that a transport re-established its connection to the broker
/// (for transport implementations; `transport` names it, e.g. `amqp`).
#[inline]
pub fn reconnected(transport: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(RECONNECTIONS, "transport" => transport).increment(1);
    let _ = transport;
}

/// What a notification listener did with a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Handled,
    Requeued,
    Rejected,
    /// A copy of a notification handled, or being handled: dropped.
    Duplicate,
}

impl Settled {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [Settled; 4] = [
        Settled::Handled,
        Settled::Requeued,
        Settled::Rejected,
        Settled::Duplicate,
    ];

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Settled::Handled => "handled",
            Settled::Requeued => "requeued",
            Settled::Rejected => "rejected",
            Settled::Duplicate => "duplicate",
        }
    }
}

/// A notification listener's series: those of the priorities its endpoints
/// handle registered when it is built, the others at first use.
pub(crate) struct ListenerMetrics {
    #[cfg(feature = "metrics")]
    series: notify::ListenerSeries,
}

impl ListenerMetrics {
    /// The series of a listener on `topic` (its topics, joined) whose
    /// endpoints handle `priorities`.
    pub(crate) fn new(topic: &str, priorities: &[Priority]) -> ListenerMetrics {
        let _ = (topic, priorities);
        ListenerMetrics {
            #[cfg(feature = "metrics")]
            series: notify::ListenerSeries::new(topic, priorities),
        }
    }

    /// `count` more notifications in flight, or fewer.
    #[inline]
    pub(crate) fn in_flight(&self, up: bool, count: usize) {
        #[cfg(feature = "metrics")]
        if up {
            self.series.in_flight.increment(count as f64);
        } else {
            self.series.in_flight.decrement(count as f64);
        }
        let _ = (up, count);
    }

    /// `count` notifications of `priority` (`None`: not read) were settled.
    #[inline]
    pub(crate) fn settled(&self, priority: Option<Priority>, settled: Settled, count: usize) {
        #[cfg(feature = "metrics")]
        self.series.settled(priority, settled, count as u64);
        let _ = (priority, settled, count);
    }

    /// `count` notifications were left to the broker, unread: the
    /// connection they came on was lost before they were handled.
    #[inline]
    pub(crate) fn left(&self, count: usize) {
        #[cfg(feature = "metrics")]
        self.series.left.increment(count as u64);
        let _ = count;
    }

    /// A handler of a `priority` notification failed or panicked.
    #[inline]
    pub(crate) fn failed(&self, priority: Priority) {
        #[cfg(feature = "metrics")]
        self.series.failed(priority);
        let _ = priority;
    }

    /// A notification (or a batch) of `priority` was handled and settled.
    #[inline]
    pub(crate) fn handled(&self, priority: Priority, timer: Timer) {
        #[cfg(feature = "metrics")]
        self.series.handled_in(priority, timer.started.elapsed());
        let _ = (priority, timer);
    }
}

impl std::fmt::Debug for ListenerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerMetrics").finish_non_exhaustive()
    }
}

/// A notifier's series, one per route (topic and priority), each
/// registered at its first notification. Clones share them.
#[derive(Clone, Default)]
pub(crate) struct NotifierMetrics {
    #[cfg(feature = "metrics")]
    routes: std::sync::Arc<[std::sync::OnceLock<notify::NotifierSeries>]>,
}

impl NotifierMetrics {
    /// Room for `routes` series.
    pub(crate) fn new(routes: usize) -> NotifierMetrics {
        let _ = routes;
        NotifierMetrics {
            #[cfg(feature = "metrics")]
            routes: (0..routes).map(|_| std::sync::OnceLock::new()).collect(),
        }
    }

    /// A notification of `priority` was sent on the route at `route`
    /// (`topic`), or failed with `error` (a code's name).
    #[inline]
    pub(crate) fn sent(&self, route: usize, topic: &str, priority: Priority, error: Option<&'static str>) {
        #[cfg(feature = "metrics")]
        if let Some(slot) = self.routes.get(route) {
            notify::NotifierSeries::record(slot, topic, priority, error);
        }
        let _ = (route, topic, priority, error);
    }
}
