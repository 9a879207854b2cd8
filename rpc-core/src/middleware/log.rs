//! [`RequestLog`]: one log line per request.

use std::time::Instant;

use super::{Middleware, Next};
use crate::endpoint::HandlerFuture;
use crate::message::Request;

/// Logs one line per request once it is answered (`tracing` target
/// `rpc_core::request`, level info): method, namespace, version, call or
/// cast, request id, outcome (`ok` or the error code) and how long it took.
/// Refusals by layers added before this one are not seen; add it first to
/// log every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestLog;

impl Middleware for RequestLog {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        let started = Instant::now();
        let method = request.method().to_owned();
        let namespace = request.namespace().unwrap_or("").to_owned();
        let version = request.version().map(ToString::to_string).unwrap_or_default();
        let kind = if request.is_call() { "call" } else { "cast" };
        let request_id = request.context().request_id().unwrap_or("").to_owned();
        Box::pin(async move {
            let outcome = next.run(request).await;
            let code = match &outcome {
                Ok(_) => "ok",
                Err(error) => error.code().as_str(),
            };
            tracing::info!(
                target: "rpc_core::request",
                %method,
                %namespace,
                %version,
                kind,
                %request_id,
                outcome = code,
                elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "request"
            );
            outcome
        })
    }
}
