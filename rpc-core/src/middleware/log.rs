//! [`RequestLog`]: one log line per request.

use std::time::{Instant, SystemTime};

use super::{Middleware, Next};
use crate::endpoint::HandlerFuture;
use crate::message::Request;

/// Logs one line per request once it is answered (`tracing` target
/// `rpc_core::request`, level info): method, namespace, version, call or
/// cast, request id, outcome (`ok` or the error code) and how long it took.
/// A request the server stopped before it was answered has its line too:
/// outcome `deadline_exceeded` when stopped at its caller's deadline,
/// `cancelled` when its caller gave up on it or the server's runtime
/// dropped it, `panicked` when its handler panicked (the server answers
/// those). Refusals by layers added before this one are not seen; add it
/// first to log every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestLog;

impl Middleware for RequestLog {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        let mut line = Line {
            started: Instant::now(),
            method: request.method().to_owned(),
            namespace: request.namespace().unwrap_or("").to_owned(),
            version: request.version().map(ToString::to_string).unwrap_or_default(),
            kind: if request.is_call() { "call" } else { "cast" },
            request_id: request.context().request_id().unwrap_or("").to_owned(),
            deadline: request.context().deadline(),
            written: false,
        };
        Box::pin(async move {
            let outcome = next.run(request).await;
            line.write(match &outcome {
                Ok(_) => "ok",
                Err(error) => error.code().as_str(),
            });
            outcome
        })
    }
}

/// A request's line, written once: when it is answered, or else when its
/// handler is dropped (stopped, or unwound by a panic).
struct Line {
    started: Instant,
    method: String,
    namespace: String,
    version: String,
    kind: &'static str,
    request_id: String,
    deadline: Option<SystemTime>,
    written: bool,
}

impl Line {
    fn write(&mut self, outcome: &str) {
        self.written = true;
        tracing::info!(
            target: "rpc_core::request",
            method = %self.method,
            namespace = %self.namespace,
            version = %self.version,
            kind = self.kind,
            request_id = %self.request_id,
            outcome,
            elapsed_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request"
        );
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.written {
            return;
        }
        let outcome = if std::thread::panicking() {
            "panicked"
        } else if self.deadline.is_some_and(|deadline| deadline <= SystemTime::now()) {
            "deadline_exceeded"
        } else {
            "cancelled"
        };
        self.write(outcome);
    }
}
