//! W3C trace context (`traceparent`, `tracestate`): the trace a request
//! belongs to, carried across processes so that the spans of one call chain
//! share a trace id.

use std::fmt;

use crate::ids;
use crate::transport::{Headers, headers};

/// Where a request stands in a distributed trace: the trace's id, the id of
/// the span that sent it, and W3C's flags and vendor state.
///
/// A server reads it from the request's `traceparent`, opens its
/// `rpc.request` span as a child (recording `trace_id`, `span_id` and
/// `parent_span_id`), and hands the handler a context whose trace is that
/// span; calls made with that context carry the same trace id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
    state: Option<String>,
}

impl TraceContext {
    /// A new trace, with a span of its own (sampled).
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: nonzero(rand::random::<u128>()),
            span_id: nonzero(rand::random::<u64>()),
            flags: 1,
            state: None,
        }
    }

    /// A new span in the same trace, a child of this one.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: nonzero(rand::random::<u64>()),
            ..self.clone()
        }
    }

    /// A trace context from its parts; `None` when an id is zero (invalid).
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn from_parts(trace_id: u128, span_id: u64, flags: u8, state: Option<String>) -> Option<TraceContext> {
        (trace_id != 0 && span_id != 0).then(|| TraceContext {
            trace_id,
            span_id,
            flags,
            state: state.filter(|state| !state.is_empty()),
        })
    }

    /// The trace id and span id, as numbers.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn ids(&self) -> (u128, u64) {
        (self.trace_id, self.span_id)
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        ascii(&ids::hex::<32>(self.trace_id))
    }

    /// The span id, 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        ascii(&ids::hex::<16>(u128::from(self.span_id)))
    }

    /// The trace flags (`01`: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The vendor trace state (`tracestate`), passed on untouched.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// Parses a `traceparent` (and its `tracestate`); `None` when it is not
    /// a valid version-00 value (W3C: then start a new trace).
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let mut parts = traceparent.split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| {
            if text.len() == len {
                ids::parse_hex(text.as_bytes())
            } else {
                None
            }
        };
        // Version 00 has exactly four fields; later versions may add some.
        if hex(version, 2).is_none() || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id = hex(trace_id, 32).filter(|id| *id != 0)?;
        let span_id = hex(span_id, 16).filter(|id| *id != 0)?;
        Some(TraceContext {
            trace_id,
            span_id: u64::try_from(span_id).ok()?,
            flags: u8::try_from(hex(flags, 2)?).ok()?,
            state: tracestate.filter(|state| !state.is_empty()).map(str::to_owned),
        })
    }

    /// The trace context a message's headers carry (`traceparent`,
    /// `tracestate`), if a valid one.
    pub fn from_headers(headers: &Headers) -> Option<TraceContext> {
        let parent = headers.get(headers::TRACEPARENT)?;
        TraceContext::parse(parent, headers.get(headers::TRACESTATE))
    }

    /// The `traceparent` value naming this span as the parent.
    pub fn traceparent(&self) -> String {
        let mut text = Vec::with_capacity(55);
        text.extend_from_slice(b"00-");
        text.extend_from_slice(&ids::hex::<32>(self.trace_id));
        text.push(b'-');
        text.extend_from_slice(&ids::hex::<16>(u128::from(self.span_id)));
        text.push(b'-');
        text.extend_from_slice(&ids::hex::<2>(u128::from(self.flags)));
        String::from_utf8(text).unwrap_or_default()
    }
}

/// Hex digits (ASCII) as text.
fn ascii(digits: &[u8]) -> String {
    String::from_utf8(digits.to_vec()).unwrap_or_default()
}

fn nonzero<T: PartialEq + From<u8>>(id: T) -> T {
    if id == T::from(0) { T::from(1) } else { id }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_examples() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::parse(parent, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(trace.traceparent(), parent);
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.state(), Some("congo=t61rcWkgMzE"));
        let child = trace.child();
        assert_eq!(child.trace_id(), trace.trace_id());
        assert_ne!(child.span_id(), trace.span_id());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
            "",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad}");
        }
        // A later version with more fields is read as version 00.
        assert!(TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", None).is_some());
        let root = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&root.traceparent(), None), Some(root));
    }
}
