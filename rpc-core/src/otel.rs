//! The bridge to OpenTelemetry (feature `opentelemetry`): with a
//! `tracing-opentelemetry` layer installed, the server's `rpc.request` span
//! is exported as a child of the caller's span, and a call's `traceparent`
//! names the caller's exported `rpc.call` span, so the spans of one call
//! across processes share one trace id. Without such a layer, nothing
//! changes: spans have no OpenTelemetry context, and the crate's own trace
//! context is used.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::TraceContext;

/// Makes `span` a child of the remote span `parent`.
pub(crate) fn set_parent(span: &tracing::Span, parent: &TraceContext) {
    let (trace_id, span_id) = parent.ids();
    let state = parent
        .state()
        .and_then(|state| TraceState::from_str(state).ok())
        .unwrap_or_default();
    let remote = SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(span_id),
        TraceFlags::new(parent.flags()),
        true,
        state,
    );
    let context = opentelemetry::Context::new().with_remote_span_context(remote);
    if let Err(error) = span.set_parent(context) {
        tracing::debug!(%error, "cannot set the parent of an OpenTelemetry span");
    }
}

/// The trace context of `span` as OpenTelemetry exports it, when a layer
/// tracks it.
pub(crate) fn trace_of(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let state = span_context.trace_state().header();
    TraceContext::from_parts(
        u128::from_be_bytes(span_context.trace_id().to_bytes()),
        u64::from_be_bytes(span_context.span_id().to_bytes()),
        span_context.trace_flags().to_u8(),
        Some(state),
    )
}
