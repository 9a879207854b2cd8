//! One delivery, from the transport to its reply: the only path a message
//! takes through a server, read top-down.
//!
//! 0. leave it to the broker when its channel closed before it started (the
//!    broker delivers it again, perhaps to another server);
//! 1. read it: content type, size, then the decoder, which checks every
//!    header value into typed fields (`crate::header`); what cannot be read
//!    is rejected, logged once, and answered `BadRequest` when its reply
//!    address can be read; a request whose caller's deadline has passed
//!    (its `rpc-deadline` header) is counted, logged and not started;
//! 2. settle it at once (at-most-once, oslo's default) or keep it until
//!    answered (at-least-once);
//! 3. admit its message id to the duplicate window: a copy of a message
//!    already run is dropped, a copy of one still running waits for it;
//! 4. run the method, with call-monitor heartbeats beside it, in the span
//!    of the caller's trace, until the caller's deadline at the latest;
//! 5. reply;
//! 6. settle it (at-least-once), and the copies that waited for it.
//!
//! One guard covers the whole path. A panic anywhere in it becomes an
//! `Internal` reply when the caller has not been answered yet; and the
//! delivery is settled and its duplicate-window entry cleared whatever
//! happens, on every executor and delivery mode, even when the future is
//! dropped half-way.

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use super::heartbeat::{self, Heartbeats};
use super::incoming::Incoming;
use super::running;
use super::{Shared, reply};
use crate::cancel;
use crate::message::{Payload, ReplyAddress, Request, UndecodableRequest};
use crate::metrics::{self, Dropped};
use crate::middleware::Interruptible;
use crate::recent::Admission;
use crate::transport::{Delivery, DeliveryMode};
use crate::{Cancellation, Codec, CodecError, ErrorCode, RemoteError, TraceContext};

/// Handles one delivery to the end. `_slot` is its place in the executor,
/// held until the delivery is settled.
pub(super) async fn handle(shared: Arc<Shared>, delivery: Delivery, _slot: OwnedSemaphorePermit) {
    let mut guard = Guard::new(Arc::clone(&shared), delivery);
    let served = AssertUnwindSafe(serve(&shared, &mut guard)).catch_unwind().await;
    if let Err(panic) = served {
        let panic = panic_message(&*panic);
        tracing::error!(target = %shared.target, %panic, "serving a request panicked; the server keeps serving");
        guard.answer_panic(&panic).await;
    }
    guard.settle().await;
}

async fn serve(shared: &Arc<Shared>, guard: &mut Guard) {
    if guard.leave_if_gone() {
        return;
    }
    let Some((codec, mut request)) = read(shared, guard).await else {
        return;
    };
    let incoming = guard
        .delivery
        .as_ref()
        .map(|delivery| Incoming::read(delivery.headers()))
        .unwrap_or_default()
        .or_trace_of(request.context());
    guard.codec = Some(codec);
    guard.address = request.reply.clone();
    if incoming.expired() {
        drop_expired(shared, guard, &request, &incoming);
        return;
    }
    if running::is_cancel(&request) {
        cancel(shared, &request);
        return;
    }
    if shared.delivery == DeliveryMode::AtMostOnce && !guard.ack_now(&request).await {
        return;
    }
    if !admit(shared, guard, &request).await {
        guard.address = None;
        return;
    }
    let span = tracing::debug_span!(
        "rpc.request",
        method = %request.method,
        namespace = request.namespace.as_deref().unwrap_or(""),
        msg_id = request.reply.as_ref().map(|reply| reply.msg_id.as_str()).unwrap_or(""),
        request_id = request.context.request_id().unwrap_or(""),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_span_id = incoming.parent.as_ref().map(TraceContext::span_id).unwrap_or_default(),
    );
    let trace = request_trace(&span, &incoming);
    if !span.is_disabled() {
        span.record("trace_id", trace.trace_id());
        span.record("span_id", trace.span_id());
    }
    let cancellation = Cancellation::new();
    request
        .context
        .set_lifecycle(incoming.deadline, trace, cancellation.clone());
    let _running = request
        .reply
        .as_ref()
        .and_then(|reply| shared.running.register(&reply.msg_id, &cancellation));
    let deadline = incoming.deadline.map(crate::deadline::instant_of);
    // Those holding the token before the handler runs (here, the context,
    // the running calls): more once it returned, and work it spawned kept it.
    let owners = cancellation.holders();
    async {
        shared.count(|counters| &counters.handled);
        let address = guard.address.as_ref();
        let timer = metrics::Timer::start();
        let Some(outcome) = run_method(shared, codec, &mut request, address, deadline, &cancellation).await else {
            // Cancelled by its caller, who is gone: nobody to answer.
            record(shared, &request, Some(CANCELLED), timer);
            guard.address = None;
            return;
        };
        let code = outcome.as_ref().err().map(|error| error.code().as_str());
        record(shared, &request, code, timer);
        if let Some(deadline) = deadline {
            cancellation.cancel_at_if_kept(owners, deadline);
        }
        if let Err(error) = &outcome {
            log_failure(&request, error);
        }
        if let Some(address) = guard.address.take() {
            reply::send(shared, codec, &address, outcome, deadline).await;
        }
    }
    .instrument(span)
    .await;
}

/// The error label of a request stopped unanswered at its caller's cancel.
const CANCELLED: &str = "cancelled";

/// Records a request's outcome in the metrics: `code` is its error's, or
/// [`CANCELLED`]; a method or namespace that no endpoint has is labelled as
/// unknown (a peer chose it).
fn record(shared: &Shared, request: &Request, code: Option<&'static str>, timer: metrics::Timer) {
    // Only the names an endpoint has label a series: a peer's made-up
    // names are unknown, also when a layer answered before the dispatcher
    // looked (a policy refusing everyone without a role, a rate limit).
    let refused = [ErrorCode::NoSuchMethod, ErrorCode::UnsupportedVersion].map(ErrorCode::as_str);
    let unknown = code.is_some_and(|code| refused.contains(&code))
        || (cfg!(feature = "metrics") && !shared.dispatcher.serves(request.namespace(), request.method()));
    let (namespace, method) = if unknown {
        (Some(metrics::UNKNOWN), metrics::UNKNOWN)
    } else {
        (request.namespace(), request.method())
    };
    shared.metrics.served(namespace, method, request.is_call(), code, timer);
}

/// A caller cancels its call: the handler's token is cancelled, which
/// stops an interruptible handler. Not answered (a cast); unknown ids (the
/// call finished, or ran elsewhere) are ignored.
fn cancel(shared: &Shared, request: &Request) {
    match request.args.decode::<running::CancelArgs>() {
        Ok(args) => {
            let found = shared.running.cancel(&args.msg_id);
            tracing::debug!(msg_id = %args.msg_id, found, "a caller cancelled its call");
        }
        Err(reason) => tracing::warn!(%reason, "ignoring an unreadable cancel message"),
    }
}

/// The trace of a request's handling: the `rpc.request` span as
/// OpenTelemetry exports it, a child of the caller's (feature
/// `opentelemetry`, with a layer installed); otherwise a span of our own,
/// child of the caller's.
fn request_trace(span: &tracing::Span, incoming: &Incoming) -> TraceContext {
    #[cfg(feature = "opentelemetry")]
    {
        if let Some(parent) = &incoming.parent {
            crate::otel::set_parent(span, parent);
        }
        if let Some(trace) = crate::otel::trace_of(span) {
            return trace;
        }
    }
    let _ = span;
    incoming.span()
}

/// A request whose caller's deadline passed before the server took it:
/// nobody waits for its result, so it is not started, nor answered; it is
/// counted and logged, and settled with the rest.
fn drop_expired(shared: &Shared, guard: &mut Guard, request: &Request, incoming: &Incoming) {
    shared.dropped(Dropped::Expired);
    let late = incoming
        .deadline
        .and_then(|deadline| SystemTime::now().duration_since(deadline).ok())
        .unwrap_or_default();
    tracing::warn!(
        method = %request.method,
        msg_id = request.reply.as_ref().map(|reply| reply.msg_id.as_str()).unwrap_or(""),
        late_by = ?late,
        "not starting a request whose caller's deadline has passed"
    );
    guard.address = None;
}

/// Step 1: the request, or `None` when it cannot be read (then it is
/// rejected, and answered when its reply address is known).
async fn read(shared: &Shared, guard: &mut Guard) -> Option<(Codec, Request)> {
    let Some(delivery) = &guard.delivery else {
        return None;
    };
    let codec = match delivery.codec() {
        Ok(codec) => codec,
        Err(reason) => {
            guard.reject(&reason).await;
            return None;
        }
    };
    let body = delivery.body();
    let decoded = if body.len() > shared.max_message_size {
        Err(UndecodableRequest {
            reason: CodecError::new(format_args!(
                "the request is {} bytes, over the limit of {} bytes",
                body.len(),
                shared.max_message_size
            )),
            reply: codec.reply_address(body),
        })
    } else {
        codec.decode_request(body)
    };
    match decoded {
        Ok(request) => Some((codec, request)),
        Err(bad) => {
            guard.reject(&bad.reason).await;
            if let Some(address) = bad.reply {
                let error =
                    RemoteError::bad_request(format_args!("the server cannot read the request: {}", bad.reason));
                reply::send(shared, codec, &address, Err(error), None).await;
            }
            None
        }
    }
}

/// Step 3: whether the request is new; a copy is settled or parked here.
async fn admit(shared: &Shared, guard: &mut Guard, request: &Request) -> bool {
    let (Some(id), Some(delivery)) = (&request.unique_id, guard.delivery.take()) else {
        return true;
    };
    let running = shared.delivery == DeliveryMode::AtLeastOnce;
    let admission = shared.recent().admit(id, delivery, running);
    match admission {
        Admission::Fresh(delivery) => {
            guard.delivery = Some(delivery);
            if running {
                guard.running = Some(id.clone());
            }
            true
        }
        Admission::Duplicate(mut copy) => {
            shared.dropped(Dropped::Duplicate);
            tracing::warn!(method = %request.method, unique_id = %id, "dropping a duplicate message");
            settle(&mut copy).await;
            false
        }
        Admission::Parked => {
            shared.dropped(Dropped::Duplicate);
            tracing::warn!(method = %request.method, unique_id = %id, "a copy of a running request arrived; it is dropped when that one finishes");
            false
        }
    }
}

/// Step 4: runs the method, turning a panic into an error, with heartbeats
/// or progress notices beside it for a caller that asked for them. At the
/// caller's deadline the request is cancelled, and an interruptible handler
/// dropped; when the caller cancels the call, an interruptible handler is
/// dropped too, and there is nothing to answer (`None`).
async fn run_method(
    shared: &Arc<Shared>,
    codec: Codec,
    request: &mut Request,
    address: Option<&ReplyAddress>,
    deadline: Option<Instant>,
    cancellation: &Cancellation,
) -> Option<Result<Payload, RemoteError>> {
    // One timer, for the first heartbeat or notice, then the deadline. The
    // heartbeat task is spawned only when its first beat is due: a call
    // that finishes sooner costs no task.
    let mut beats = address.zip(heartbeat::interval(request, deadline));
    // A liveness probe carries no credentials and must not be shed: the
    // built-in ping answers before the layers (a `Policy` refused it, and a
    // limit could make it wait, until 2026-12-05: a probe then restarted a
    // healthy server).
    let (handler, interruptible) = if shared.ping && super::ping::is_ping(request) {
        (super::ping::pong(request), Interruptible::Known(true))
    } else {
        shared.layers.dispatch(&shared.dispatcher, request)
    };
    // Read when it matters: a layer may pick the endpoint late.
    let settled = matches!(interruptible, Interruptible::Known(_));
    let interruptible = || interruptible.get() && shared.interrupt_at_deadline;
    // A cancel seen while the handler may not be dropped: not waited for again.
    let mut cancel_refused = false;
    let mut run = AssertUnwindSafe(handler).catch_unwind();
    let first_beat = beats.as_ref().map(|(_, interval)| crate::deadline::after(*interval));
    let wake_at = match (first_beat, deadline) {
        (Some(beat), Some(deadline)) => Some(beat.min(deadline)),
        (beat, deadline) => beat.or(deadline),
    };
    let timer =
        tokio::time::sleep_until(wake_at.unwrap_or_else(|| crate::deadline::after(crate::deadline::FAR_FUTURE)));
    tokio::pin!(timer);
    let mut timed = wake_at.is_some();
    let mut heartbeats: Option<Heartbeats> = None;
    let ran = loop {
        tokio::select! {
            biased;
            ran = &mut run => break Ran::Done(ran),
            () = &mut timer, if timed => {
                if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
                    cancellation.cancel();
                    if interruptible() {
                        break Ran::Deadline;
                    }
                    // Run to its end, with nobody left to tell that it
                    // runs: no notice past the deadline (they went on, every
                    // interval, until the handler returned).
                    if let Some(heartbeats) = heartbeats.take() {
                        heartbeats.stop().await;
                    }
                    break Ran::Done((&mut run).await);
                }
                if let Some((address, interval)) = beats.take() {
                    heartbeats = Some(Heartbeats::start(Arc::clone(shared), codec, address.clone(), interval));
                }
                match deadline {
                    Some(deadline) => timer.as_mut().reset(deadline),
                    None => timed = false,
                }
            }
            // Waited for unless known not to matter: with layers, the
            // endpoint is picked while this `select!` polls the handler.
            () = cancel::server_waiter(cancellation), if !cancel_refused && (interruptible() || !settled) => {
                if interruptible() {
                    break Ran::Cancelled;
                }
                cancel_refused = true;
            }
        }
    };
    drop(run);
    let outcome = match ran {
        Ran::Done(ran) => Some(ran.unwrap_or_else(|panic| {
            let panic = panic_message(&*panic);
            tracing::error!(method = %request.method, %panic, "a handler panicked; the server keeps serving");
            Err(RemoteError::panicked(&request.method, &panic))
        })),
        Ran::Deadline => {
            shared.dropped(Dropped::Interrupted);
            tracing::warn!(method = %request.method, "stopped a handler at its caller's deadline");
            Some(Err(RemoteError::deadline_exceeded(&request.method)))
        }
        Ran::Cancelled => {
            shared.dropped(Dropped::Cancelled);
            tracing::info!(method = %request.method, "stopped a handler: its caller cancelled the call");
            None
        }
    };
    if let Some(heartbeats) = heartbeats {
        heartbeats.stop().await;
    }
    outcome
}

/// How a handler's run ended.
enum Ran<T> {
    /// It finished (or panicked).
    Done(T),
    /// Dropped at its caller's deadline.
    Deadline,
    /// Dropped because its caller cancelled the call.
    Cancelled,
}

/// Logs, once, why a request failed: the server refused it (no such method,
/// bad arguments), or the method returned an error. Panics are logged where
/// they are caught.
fn log_failure(request: &Request, error: &RemoteError) {
    let kind = if request.reply.is_some() { "call" } else { "cast" };
    match error.code() {
        ErrorCode::NoSuchMethod
        | ErrorCode::UnsupportedVersion
        | ErrorCode::InvalidArguments
        | ErrorCode::BadRequest => {
            let (method, code, reason) = (&request.method, error.code().as_str(), error.message());
            tracing::warn!(%method, code, reason, "refusing a {kind}");
        }
        // Logged by the layer that refused it.
        ErrorCode::Forbidden | ErrorCode::Overloaded => {}
        ErrorCode::Internal | ErrorCode::DeadlineExceeded => {}
        ErrorCode::Application | ErrorCode::Other => {
            let (method, code, reason) = (&request.method, error.code().as_str(), error.message());
            tracing::debug!(%method, code, reason, "the method of a {kind} failed");
        }
    }
}

/// Acknowledges a request that was run, or a copy of one.
async fn settle(delivery: &mut Delivery) {
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, "cannot acknowledge a request; the broker will deliver it again");
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// What is still owed for a delivery: settling it, clearing its entry in
/// the duplicate window (and settling the copies parked there), and an
/// answer to its caller. Settled explicitly at the end of the path; on drop,
/// whatever was left is done then.
struct Guard {
    shared: Arc<Shared>,
    /// The delivery, until settled (or parked in the duplicate window).
    delivery: Option<Delivery>,
    /// The message id marked running in the duplicate window.
    running: Option<String>,
    /// The caller's codec, once the request is read.
    codec: Option<Codec>,
    /// The caller's reply address, until answered.
    address: Option<ReplyAddress>,
}

impl Guard {
    fn new(shared: Arc<Shared>, delivery: Delivery) -> Guard {
        shared.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.metrics.in_flight(true);
        Guard {
            shared,
            delivery: Some(delivery),
            running: None,
            codec: None,
            address: None,
        }
    }

    /// Rejects the delivery without requeueing it: nobody can read it.
    async fn reject(&mut self, reason: &(dyn fmt::Display + Sync)) {
        let Some(mut delivery) = self.delivery.take() else {
            return;
        };
        self.shared.dropped(Dropped::Unreadable);
        let (target, bytes) = (&self.shared.target, delivery.body().len());
        tracing::warn!(%target, %reason, bytes, "rejecting a message the server cannot read");
        if let Err(error) = delivery.reject(false).await {
            tracing::warn!(%error, "cannot reject a message");
        }
    }

    /// Leaves to the broker a delivery whose channel closed before it
    /// started: the broker delivers it again, perhaps to another server.
    /// Run here too, an at-least-once request would run twice (and could not
    /// be acknowledged); an at-most-once one could not be acknowledged before
    /// it runs, and would be dropped. Before the duplicate window sees it, so
    /// that the copy delivered again is not taken for a duplicate.
    fn leave_if_gone(&mut self) -> bool {
        if !self.delivery.as_ref().is_some_and(Delivery::is_gone) {
            return false;
        }
        self.delivery = None;
        self.shared.dropped(Dropped::Left);
        tracing::info!(target = %self.shared.target, "a request received on a connection since lost is left to the broker, which delivers it again");
        true
    }

    /// At-most-once: acknowledges before the method runs. A request that
    /// cannot be acknowledged (its connection lost meanwhile) is not run,
    /// as oslo.messaging does: it is left to the broker, which delivers it
    /// again.
    async fn ack_now(&mut self, request: &Request) -> bool {
        let Some(delivery) = self.delivery.as_mut() else {
            return true;
        };
        // Settled in place: the delivery still goes through the duplicate window.
        match delivery.ack().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(method = %request.method, %error, "cannot acknowledge a request; it is left to the broker, which delivers it again");
                self.shared.dropped(Dropped::Left);
                self.address = None;
                false
            }
        }
    }

    /// After a panic: answers the caller, if it was not answered yet.
    async fn answer_panic(&mut self, panic: &str) {
        let (Some(address), Some(codec)) = (self.address.take(), self.codec) else {
            return;
        };
        let error = RemoteError::new(
            ErrorCode::Internal,
            "RuntimeError",
            format!("the server failed while handling the request: {panic}"),
        )
        .with_module("builtins");
        let answered = AssertUnwindSafe(reply::send(&self.shared, codec, &address, Err(error), None))
            .catch_unwind()
            .await;
        if answered.is_err() {
            tracing::error!("answering a request after a panic panicked too; its caller will time out");
        }
    }

    /// Settles what is left: the delivery (acknowledged: it was run, or failed
    /// in a way a redelivery would repeat), and the duplicate-window entry with
    /// the copies parked behind it.
    async fn settle(mut self) {
        if let Some(mut delivery) = self.delivery.take() {
            settle(&mut delivery).await;
        }
        for mut copy in self.finish() {
            settle(&mut copy).await;
        }
    }

    /// Marks the running id done; returns the copies that waited for it.
    fn finish(&mut self) -> Vec<Delivery> {
        match self.running.take() {
            Some(id) => self.shared.recent().finish(&id),
            None => Vec::new(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.shared.metrics.in_flight(false);
        let mut owed: Vec<Delivery> = self.delivery.take().into_iter().collect();
        owed.extend(self.finish());
        owed.retain(|delivery| !delivery.is_settled());
        if owed.is_empty() {
            return;
        }
        // Dropped half-way (the runtime is shutting down, say): settle
        // from a task of its own when a runtime is still there; otherwise the
        // broker delivers the message again once the channel closes.
        tracing::warn!(deliveries = owed.len(), "a request was abandoned half-way; settling it");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for mut delivery in owed {
                    settle(&mut delivery).await;
                }
            });
        }
    }
}
