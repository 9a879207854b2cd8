//! Metrics, through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`): the series below, recorded by servers, clients and
//! transports, exported by whatever recorder the program installs
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
//! | `rpc_server_errors_total` | counter | `topic`, `namespace`, `method`, `code` | of those, the ones answered with an error ([`ErrorCode`](crate::ErrorCode)'s name) |
//! | `rpc_server_request_duration_seconds` | histogram | `topic`, `namespace`, `method` | from the start of the layers to the outcome |
//! | `rpc_server_in_flight` | gauge | `topic` | deliveries being handled |
//! | `rpc_server_queued` | gauge | | requests waiting for a [`ConcurrencyLimit`](crate::middleware::ConcurrencyLimit) slot |
//! | `rpc_server_dropped_total` | counter | `topic`, `reason` | messages not run: `unreadable`, `duplicate`, `expired`; handlers stopped: `interrupted`, `cancelled` |
//! | `rpc_client_requests_total` | counter | `topic`, `namespace`, `method`, `kind` | calls and casts sent (attempted) |
//! | `rpc_client_errors_total` | counter | `topic`, `namespace`, `method`, `code` | of those, the failed ones: `timeout`, `no_listener`, `transport`, ... or the server's code |
//! | `rpc_client_call_duration_seconds` | histogram | `topic`, `namespace`, `method` | a call, from the caller's side |
//! | `rpc_client_in_flight` | gauge | | calls waiting for their reply |
//! | `rpc_client_late_replies_total` | counter | | replies that came after their call gave up |
//! | `rpc_transport_reconnections_total` | counter | `transport` | connections re-established |
//!
//! A server labels a request with its method and namespace only when one
//! of its endpoints has them: names a peer made up are labelled
//! `(unknown)`, so a peer cannot grow the series without bound.

use std::time::Duration;

#[cfg(feature = "metrics")]
use ::metrics::{counter, gauge, histogram};

/// The label value of a method or namespace the server does not serve.
pub const UNKNOWN: &str = "(unknown)";

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

/// Why a server did not run a message, or stopped its handler.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dropped {
    Unreadable,
    Duplicate,
    Expired,
    Interrupted,
    Cancelled,
}

impl Dropped {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Dropped::Unreadable => "unreadable",
            Dropped::Duplicate => "duplicate",
            Dropped::Expired => "expired",
            Dropped::Interrupted => "interrupted",
            Dropped::Cancelled => "cancelled",
        }
    }
}

/// What a request was, for its series.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Labels<'a> {
    pub(crate) topic: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) method: &'a str,
}

#[cfg(feature = "metrics")]
impl Labels<'_> {
    fn of(&self) -> [(&'static str, String); 3] {
        [
            ("topic", self.topic.to_owned()),
            ("namespace", self.namespace.unwrap_or("").to_owned()),
            ("method", self.method.to_owned()),
        ]
    }

    fn with(&self, key: &'static str, value: &str) -> [(&'static str, String); 4] {
        let [topic, namespace, method] = self.of();
        [topic, namespace, method, (key, value.to_owned())]
    }
}

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

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn elapsed(self) -> Duration {
        #[cfg(feature = "metrics")]
        return self.started.elapsed();
        #[cfg(not(feature = "metrics"))]
        Duration::ZERO
    }
}

/// A server ran a request: `code` is `None` when it succeeded.
#[inline]
pub(crate) fn served(labels: Labels<'_>, is_call: bool, code: Option<crate::ErrorCode>, timer: Timer) {
    #[cfg(feature = "metrics")]
    {
        let kind = if is_call { "call" } else { "cast" };
        counter!(SERVER_REQUESTS, &labels.with("kind", kind)).increment(1);
        if let Some(code) = code {
            counter!(SERVER_ERRORS, &labels.with("code", code.as_str())).increment(1);
        }
        histogram!(SERVER_DURATION, &labels.of()).record(timer.elapsed().as_secs_f64());
    }
    let _ = (labels, is_call, code, timer);
}

/// A server's deliveries in flight went up or down by one.
#[inline]
pub(crate) fn server_in_flight(topic: &str, up: bool) {
    #[cfg(feature = "metrics")]
    {
        let gauge = gauge!(SERVER_IN_FLIGHT, "topic" => topic.to_owned());
        if up { gauge.increment(1.0) } else { gauge.decrement(1.0) }
    }
    let _ = (topic, up);
}

/// A server dropped a message, or stopped a handler.
#[inline]
pub(crate) fn dropped(topic: &str, reason: Dropped) {
    #[cfg(feature = "metrics")]
    counter!(SERVER_DROPPED, "topic" => topic.to_owned(), "reason" => reason.as_str()).increment(1);
    let _ = (topic, reason);
}

/// One more in a gauge, for as long as it lives: a request waiting for a
/// concurrency-limit slot ([`SERVER_QUEUED`]), a call waiting for its
/// reply ([`CLIENT_IN_FLIGHT`]).
#[derive(Debug)]
pub(crate) struct Counted(#[cfg_attr(not(feature = "metrics"), allow(dead_code))] &'static str);

impl Counted {
    pub(crate) fn enter(gauge: &'static str) -> Counted {
        #[cfg(feature = "metrics")]
        gauge!(gauge).increment(1.0);
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        gauge!(self.0).decrement(1.0);
    }
}

/// A client sent a request, which ended with `error` (a code's name, or
/// `None` for success); calls are timed.
#[inline]
pub(crate) fn sent(labels: Labels<'_>, is_call: bool, error: Option<&str>, timer: Timer) {
    #[cfg(feature = "metrics")]
    {
        let kind = if is_call { "call" } else { "cast" };
        counter!(CLIENT_REQUESTS, &labels.with("kind", kind)).increment(1);
        if let Some(code) = error {
            counter!(CLIENT_ERRORS, &labels.with("code", code)).increment(1);
        }
        if is_call {
            histogram!(CLIENT_DURATION, &labels.of()).record(timer.elapsed().as_secs_f64());
        }
    }
    let _ = (labels, is_call, error, timer);
}

/// A reply came after its call gave up.
#[inline]
pub(crate) fn late_reply() {
    #[cfg(feature = "metrics")]
    counter!(CLIENT_LATE_REPLIES).increment(1);
}

/// Records that a transport re-established its connection to the broker
/// (for transport implementations; `transport` names it, e.g. `amqp`).
#[inline]
pub fn reconnected(transport: &'static str) {
    #[cfg(feature = "metrics")]
    counter!(RECONNECTIONS, "transport" => transport).increment(1);
    let _ = transport;
}
