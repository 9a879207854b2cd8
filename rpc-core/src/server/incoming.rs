//! What a request's headers say about its lifecycle: its caller's deadline,
//! the trace it belongs to. Read once, bounded, never trusted further than
//! that: a deadline in the past means the caller gave up, a malformed one
//! is ignored (as oslo peers send none).

use std::time::SystemTime;

use crate::transport::{Headers, headers};
use crate::{Context, TraceContext, deadline};

/// The lifecycle of one incoming request, from its headers.
#[derive(Debug, Default)]
pub(super) struct Incoming {
    /// When the caller stops waiting. Only our callers send one, and they
    /// read progress notices on a call that runs long.
    pub(super) deadline: Option<SystemTime>,
    /// The caller's span.
    pub(super) parent: Option<TraceContext>,
}

impl Incoming {
    pub(super) fn read(headers: &Headers) -> Incoming {
        if headers.is_empty() {
            return Incoming::default();
        }
        Incoming {
            deadline: headers.get(headers::DEADLINE).and_then(deadline::from_unix_millis),
            parent: TraceContext::from_headers(headers),
        }
    }

    /// Without a `traceparent` header (an oslo peer), the trace oslo 18.3
    /// carries in the request's context (`_context_traceparent`, with
    /// `[oslo_messaging_tracing] tracing_enabled`).
    pub(super) fn or_trace_of(mut self, context: &Context) -> Incoming {
        if self.parent.is_none() {
            self.parent = context
                .get_str(headers::TRACEPARENT)
                .and_then(|parent| TraceContext::parse(parent, context.get_str(headers::TRACESTATE)));
        }
        self
    }

    /// Whether the caller's deadline has passed: nobody waits for the result.
    pub(super) fn expired(&self) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= SystemTime::now())
    }

    /// The span of this request's handling: a child of the caller's, or the
    /// root of a new trace when the caller sent none (an oslo peer).
    pub(super) fn span(&self) -> TraceContext {
        self.parent
            .as_ref()
            .map_or_else(TraceContext::new_root, TraceContext::child)
    }
}
