//! The client: calls and casts to a target.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::de::value::UnitDeserializer;
use tokio::time::Instant;
use tracing::Instrument;

use crate::message::RequestHeader;
use crate::progress::{self, CallProgress};
use crate::reply::{PendingCall, Unanswered};
use crate::server::running::{CANCEL_METHOD, CancelArgs};
use crate::transport::{Address, DeliveryMode, Headers, OutgoingMessage, Retry, headers};
use crate::{
    Cancellation, Codec, CodecError, Context, Error, Payload, Target, TraceContext, Transport, TransportError,
    TransportErrorKind, Version, deadline, ids, metrics,
};

/// The call timeout when none is set: oslo's `rpc_response_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends requests to a [`Target`]: [`call`](Client::call) waits for the
/// result, [`cast`](Client::cast) does not.
///
/// Cheap to clone. [`prepare`](Client::prepare) returns a copy whose target
/// fields and options can be overridden without touching the original, as
/// oslo.messaging's `prepare()` does:
///
/// ```
/// # use rpc_core::{Client, Target, Version, transport::memory::Broker};
/// # let transport = Broker::new().transport();
/// use std::time::Duration;
///
/// let client = Client::new(transport, Target::topic("compute"));
/// let pinned = client
///     .prepare()
///     .server("host-1")
///     .namespace("control")
///     .version(Version::new(2, 0))
///     .timeout(Duration::from_secs(5));
/// assert_eq!(client.target().server_name(), None);
/// assert_eq!(pinned.target().server_name(), Some("host-1"));
/// ```
///
/// Generated stubs (`<Endpoint>Client`) wrap a client and add typed methods;
/// the untyped [`call`](Client::call) reaches any server, Python ones included.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    target: Target,
    options: Options,
}

#[derive(Clone, Debug)]
struct Options {
    timeout: Duration,
    call_monitor_timeout: Option<Duration>,
    version_cap: Option<Version>,
    retry: Retry,
    delivery: DeliveryMode,
    confirm_casts: bool,
    codec: Option<Codec>,
}

/// The method and API a request is for; generated stubs set the namespace and
/// version of their endpoint, the untyped methods take the target's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Method<'a> {
    pub(crate) name: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) version: Option<&'a Version>,
    /// The optional argument that raised the version, if one did.
    pub(crate) argument: Option<&'a str>,
    /// A timeout of its own (a client layer's), instead of the client's.
    pub(crate) timeout: Option<Duration>,
}

impl Client {
    /// A client for `target`, with a 60 s call timeout and no version cap.
    pub fn new(transport: Transport, target: Target) -> Client {
        Client {
            transport,
            target,
            options: Options {
                timeout: DEFAULT_TIMEOUT,
                call_monitor_timeout: None,
                version_cap: None,
                retry: Retry::default(),
                delivery: DeliveryMode::default(),
                confirm_casts: true,
                codec: None,
            },
        }
    }

    /// A copy of this client to override settings on; the original is unchanged.
    pub fn prepare(&self) -> Client {
        self.clone()
    }

    /// Overrides the exchange (default: the transport's control exchange).
    pub fn exchange(mut self, exchange: impl Into<String>) -> Client {
        self.target.set_exchange(Some(exchange.into()));
        self
    }

    /// Overrides the topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Client {
        self.target = self.target.with_topic(topic);
        self
    }

    /// Sends to the server named `server` only; an empty name is none (any
    /// server on the topic), as oslo routes it.
    pub fn server(mut self, server: impl Into<String>) -> Client {
        self.target
            .set_server(Some(server.into()).filter(|server| !server.is_empty()));
        self
    }

    /// Sends to any server on the topic again.
    pub fn any_server(mut self) -> Client {
        self.target.set_server(None);
        self
    }

    /// Overrides the namespace of untyped requests.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Client {
        self.target.set_namespace(Some(namespace.into()));
        self
    }

    /// Overrides the version of untyped requests.
    pub fn version(mut self, version: Version) -> Client {
        self.target.set_version(Some(version));
        self
    }

    /// Makes casts reach every server on the topic (calls refuse fanout).
    pub fn fanout(mut self, fanout: bool) -> Client {
        self.target = self.target.with_fanout(fanout);
        self
    }

    /// How long a call waits for its result (default 60 s). It is also the
    /// request's expiration: a request nobody took in that time is dropped.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.options.timeout = timeout;
        self
    }

    /// Asks servers for keep-alive heartbeats on long calls (oslo's
    /// `call_monitor_timeout`): the call fails when the server stays silent for
    /// this long, while the overall timeout still bounds it. Servers send no
    /// heartbeats for values under 2 s. Zero means no monitor, as in oslo.
    pub fn call_monitor_timeout(mut self, timeout: Duration) -> Client {
        self.options.call_monitor_timeout = Some(timeout).filter(|timeout| !timeout.is_zero());
        self
    }

    /// Refuses, before sending, any request whose version is not compatible
    /// with `cap`: for rolling upgrades, pin the cap to what the oldest
    /// server understands.
    pub fn version_cap(mut self, cap: Version) -> Client {
        self.options.version_cap = Some(cap);
        self
    }

    /// Without a version cap (oslo's `prepare(version_cap=None)`): a copy
    /// of a capped client that sends whatever version a method asks.
    pub fn no_version_cap(mut self) -> Client {
        self.options.version_cap = None;
        self
    }

    /// How hard to try publishing while the broker is unreachable (default
    /// [`Retry::Forever`]; calls still give up at their timeout).
    pub fn retry(mut self, retry: Retry) -> Client {
        self.options.retry = retry;
        self
    }

    /// What an interrupted cast does (default [`DeliveryMode::AtMostOnce`]).
    ///
    /// With [`DeliveryMode::AtLeastOnce`], casts are persistent and a cast
    /// whose connection is lost before the broker confirmed it is published
    /// again once reconnected (as [`retry`](Client::retry) allows), so it is
    /// never lost but may arrive twice. Calls are not repeated: a call
    /// interrupted by a lost connection fails at once with a connection
    /// error, and its caller decides.
    pub fn delivery_mode(mut self, mode: DeliveryMode) -> Client {
        self.options.delivery = mode;
        self
    }

    /// Whether a cast waits for the broker to take it (default `true`).
    ///
    /// By default a cast returns once the broker confirmed it: a cast no
    /// server listens for fails with [`Error::NoListener`], and one
    /// interrupted by a lost connection with a connection error. With
    /// `false`, a cast returns as soon as it is written to the connection:
    /// faster (oslo.messaging's casts wait for the confirm, and are not
    /// mandatory: a cast nobody listens for is dropped unseen), but such
    /// failures are then only logged and counted by the transport
    /// ([`DriverStats::returned`](crate::transport::DriverStats::returned)),
    /// and the caller never sees them. At-least-once casts
    /// ([`delivery_mode`](Client::delivery_mode)) and fanout casts keep their
    /// confirms; calls are not affected (their reply is their proof). On
    /// `memory://` nothing changes: delivery is decided at once.
    pub fn confirm_casts(mut self, confirm: bool) -> Client {
        self.options.confirm_casts = confirm;
        self
    }

    /// The codec requests are sent with (default: the transport's).
    pub fn codec(mut self, codec: Codec) -> Client {
        self.options.codec = Some(codec);
        self
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The call timeout.
    pub fn call_timeout(&self) -> Duration {
        self.options.timeout
    }

    /// The version cap, if any.
    pub fn cap(&self) -> Option<&Version> {
        self.options.version_cap.as_ref()
    }

    /// Whether a request for `version` passes the version cap (`None`: no
    /// version). Always true without a cap; with a cap, a request without a
    /// version does not pass, as in oslo.messaging.
    pub fn can_send_version(&self, version: Option<&Version>) -> bool {
        match (&self.options.version_cap, version) {
            (None, _) => true,
            (Some(cap), Some(version)) => cap.supports(version),
            (Some(_), None) => false,
        }
    }

    /// Calls `method` with named `args` and waits for its result.
    ///
    /// `args` must serialize as a map of argument name to value: a struct, a
    /// map, or `rpc_core::json!({...})`. The request carries the target's
    /// namespace and version.
    ///
    /// ```
    /// # use rpc_core::{Client, Context, Target, json, transport::memory::Broker};
    /// # async fn demo(client: Client) -> Result<(), rpc_core::Error> {
    /// let echoed: String = client.call(&Context::new(), "test", json!({"arg": "myarg"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<R: DeserializeOwned>(
        &self,
        ctx: &Context,
        method: &str,
        args: impl Serialize,
    ) -> Result<R, Error> {
        self.invoke(ctx, self.untyped(method), &args).await
    }

    /// Casts `method` with named `args`: returns once the transport accepted
    /// the request, without waiting for any result.
    pub async fn cast(&self, ctx: &Context, method: &str, args: impl Serialize) -> Result<(), Error> {
        self.send_cast(ctx, self.untyped(method), &args).await
    }

    fn untyped<'a>(&'a self, name: &'a str) -> Method<'a> {
        Method {
            name,
            namespace: self.target.namespace(),
            version: self.target.version(),
            argument: None,
            timeout: None,
        }
    }

    fn wire_codec(&self) -> Codec {
        self.options.codec.unwrap_or_else(|| self.transport.codec())
    }

    fn check(&self, method: &Method<'_>, is_call: bool) -> Result<(), Error> {
        if self.target.topic_name().is_empty() {
            return Err(Error::InvalidTarget("the target has no topic".to_owned()));
        }
        if is_call && self.target.fanout() {
            return Err(Error::InvalidTarget(
                "a call cannot fan out to every server; cast instead".to_owned(),
            ));
        }
        if let Some(cap) = &self.options.version_cap {
            if !self.can_send_version(method.version) {
                return Err(Error::VersionCap {
                    method: method.name.to_owned(),
                    argument: method.argument.map(str::to_owned),
                    version: method.version.copied(),
                    cap: *cap,
                });
            }
        }
        Ok(())
    }

    fn address(&self) -> Address<'_> {
        Address::new(
            self.target.exchange().unwrap_or(self.transport.control_exchange()),
            self.target.topic_name(),
            // oslo routes on `if target.server`: an empty name is none.
            self.target.server_name().filter(|server| !server.is_empty()),
            self.target.fanout(),
        )
    }

    fn send_error(&self, error: TransportError) -> Error {
        match error.kind() {
            TransportErrorKind::Unroutable => Error::NoListener {
                target: self.target.to_string(),
            },
            _ => Error::Transport(error),
        }
    }

    pub(crate) async fn send_cast<A: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        method: Method<'_>,
        args: &A,
    ) -> Result<(), Error> {
        let recorded = Recorded::start(self, method, false);
        let sent = async {
            self.check(&method, false)?;
            tracing::debug!(method = method.name, target = %self.target, "cast");
            // Sent whatever the context's token says: a cast waits for no
            // answer, and one made once a request was cancelled (a
            // cleanup) is meant to go out.
            self.publish(ctx, method, args, None).await
        }
        .await;
        recorded.ended(sent.as_ref().err());
        sent
    }

    pub(crate) async fn invoke<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        ctx: &Context,
        method: Method<'_>,
        args: &A,
    ) -> Result<R, Error> {
        decode_result(self.invoke_payload(ctx, method, args).await?)
    }

    /// Calls, and returns the result still encoded (`None`: the peer sent no result).
    pub(crate) async fn invoke_payload<A: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        method: Method<'_>,
        args: &A,
    ) -> Result<Option<Payload>, Error> {
        let recorded = Recorded::start(self, method, true);
        let result = self.call_payload(ctx, method, args).await;
        recorded.ended(result.as_ref().err());
        result
    }

    async fn call_payload<A: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        method: Method<'_>,
        args: &A,
    ) -> Result<Option<Payload>, Error> {
        self.check(&method, true)?;
        // The sooner of this call's timeout and the deadline it inherits from
        // the context (the request being handled, when called from a handler).
        let own_timeout = method.timeout.unwrap_or(self.options.timeout);
        let own = deadline::after(own_timeout);
        let deadline = ctx
            .deadline()
            .map_or(own, |inherited| deadline::instant_of(inherited).min(own));
        let timeout = own_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let not_sent = || Error::Timeout {
            method: method.name.to_owned(),
            target: self.target.to_string(),
            timeout,
            progress: CallProgress::NotSent,
        };
        if deadline <= Instant::now() {
            return Err(not_sent());
        }
        let span = call_span(ctx, method, &self.target);
        let sending = tokio::time::timeout_at(
            deadline,
            self.send_call(ctx, method, args, deadline).instrument(span.clone()),
        );
        // Watching the token only where there is one (a server's request):
        // boxed, so that the call's own future, moved as it is made and
        // boxed, does not carry the larger state (copying it took more than
        // half of a call's instructions, measured on `memory://`).
        let sent = match ctx.cancellation() {
            None => sending.await,
            Some(token) => Box::pin(self.unless_cancelled(ctx, token, method, async { Ok(sending.await) })).await?,
        };
        let pending = sent.map_err(|_| not_sent())??;
        // Dropped before its answer (the caller gave up), or given up on a
        // server gone silent, the call is cancelled.
        let mut call = InFlight {
            client: self,
            pending,
            cancel_on_drop: true,
            _waiting: metrics::Counted::enter(metrics::Gauge::ClientInFlight),
        };
        let waiting = self.wait(&mut call.pending, deadline, timeout, method).instrument(span);
        // A nested call gives up with the request it was made for (its
        // caller's cancel), and tells its own server.
        let reply = match ctx.cancellation() {
            None => waiting.await,
            Some(token) => Box::pin(self.unless_cancelled(ctx, token, method, waiting)).await,
        };
        // A server that stopped sending heartbeats may be alive all the
        // same (its heartbeats late): nobody waits for its answer now.
        // Nor for one whose request was cancelled.
        call.cancel_on_drop = matches!(reply, Err(Error::HeartbeatTimeout { .. } | Error::Cancelled { .. }));
        let reply = reply?;
        match reply.failure {
            Some(failure) => Err(Error::Remote(failure)),
            None => Ok(reply.result),
        }
    }

    /// A call's `work`, unless the request `ctx` was made for is cancelled
    /// first (`cancellation`, its token: a nested call's): then
    /// [`Error::Cancelled`]. What `work` has
    /// to give wins a tie: a reply that came is not thrown away. A cancel
    /// at the inherited deadline (the server cancels there) lets `work` end
    /// as its own deadline makes it, a timeout, as every call past its
    /// deadline does.
    async fn unless_cancelled<T>(
        &self,
        ctx: &Context,
        cancellation: &Cancellation,
        method: Method<'_>,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let at_deadline = || ctx.remaining().is_some_and(|left| left.is_zero());
        if cancellation.is_cancelled() && !at_deadline() {
            return Err(self.cancelled(method));
        }
        tokio::pin!(work);
        tokio::select! {
            biased;
            done = &mut work => done,
            () = cancellation.cancelled() => {
                if at_deadline() {
                    return work.await;
                }
                Err(self.cancelled(method))
            }
        }
    }

    fn cancelled(&self, method: Method<'_>) -> Error {
        Error::Cancelled {
            method: method.name.to_owned(),
            target: self.target.to_string(),
        }
    }

    async fn send_call<A: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        method: Method<'_>,
        args: &A,
        deadline: Instant,
    ) -> Result<PendingCall, Error> {
        let replies = self.transport.replies(self.options.retry).await?;
        let pending = replies.register(self.options.call_monitor_timeout.is_some());
        tracing::debug!(method = method.name, target = %self.target, msg_id = pending.msg_id(), "call");
        let reply_to = replies.address();
        let reply = CallHeader {
            msg_id: pending.msg_id(),
            reply_to: &reply_to,
            deadline,
        };
        // Dropped while the request goes out (it waits for the broker's
        // confirm on quorum queues), the call may still reach its server:
        // cancelled there, as a call dropped while it waits for its answer.
        let sending = Sending {
            client: self,
            msg_id: Some(pending.msg_id()),
        };
        let sent = self.publish(ctx, method, args, Some(reply)).await;
        sending.ended();
        sent?;
        pending.sent();
        Ok(pending)
    }

    /// Frames the request (a call when `call` is set) and publishes it.
    async fn publish<A: Serialize + ?Sized>(
        &self,
        ctx: &Context,
        method: Method<'_>,
        args: &A,
        call: Option<CallHeader<'_>>,
    ) -> Result<(), Error> {
        let unique_id = ids::Id::next();
        let span = outgoing_trace(ctx);
        let header = RequestHeader {
            method: method.name,
            namespace: method.namespace,
            version: method.version,
            msg_id: call.as_ref().map(|call| call.msg_id),
            reply_to: call.as_ref().map(|call| call.reply_to),
            call_monitor: call
                .as_ref()
                .and(self.options.call_monitor_timeout)
                // Longer than a server takes is no monitor at all: send the longest.
                .map(|timeout| timeout.min(crate::header::MAX_CALL_MONITOR).as_secs_f64()),
            unique_id: unique_id.as_str(),
            context: ctx,
            trace: span.as_ref(),
        };
        let codec = self.wire_codec();
        let body = codec.encode_request(&header, args).map_err(|source| Error::Encode {
            what: "the arguments",
            source,
        })?;
        // A call's request expires with the call: nobody waits for it after.
        let deadline = call.as_ref().map(|call| call.deadline);
        let mut message = OutgoingMessage::new(body, codec, deadline, self.options.retry)
            .with_headers(lifecycle_headers(span.as_ref(), deadline));
        match &call {
            Some(call) => message = message.for_call(call.msg_id),
            None => {
                message = message
                    .with_delivery(self.options.delivery)
                    .with_confirm(self.options.confirm_casts);
            }
        }
        self.transport
            .driver()
            .send(self.address(), message)
            .await
            .map_err(|error| self.send_error(error))
    }

    /// Waits for the reply until the deadline, and, with a call monitor,
    /// fails early when heartbeats stop.
    async fn wait(
        &self,
        pending: &mut PendingCall,
        deadline: Instant,
        timeout: Duration,
        method: Method<'_>,
    ) -> Result<crate::message::Reply, Error> {
        let monitor = self.options.call_monitor_timeout;
        let mut silent_until = monitor.map(deadline::after);
        loop {
            let wake_at = silent_until.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                // A reply that came at the deadline is better than a timeout.
                biased;
                outcome = &mut pending.outcome => {
                    return match outcome {
                        Ok(Ok(reply)) => Ok(reply),
                        // A request the broker returned (sent without
                        // waiting for its confirm) reads as one refused at once.
                        Ok(Err(Unanswered::Transport(error))) => Err(self.send_error(error)),
                        Ok(Err(Unanswered::Undecodable(source))) => Err(Error::Decode { what: "the reply", source }),
                        Err(_) => Err(Error::Transport(TransportError::new(
                            TransportErrorKind::Closed,
                            "the reply queue was closed",
                        ))),
                    };
                }
                () = heartbeat(pending.heartbeat.as_deref()) => {
                    silent_until = monitor.map(deadline::after);
                }
                () = tokio::time::sleep_until(wake_at) => {
                    let target = self.target.to_string();
                    let method = method.name.to_owned();
                    return Err(match monitor {
                        Some(timeout) if wake_at < deadline => Error::HeartbeatTimeout { method, target, timeout },
                        _ => {
                            let progress = progress::story(pending.heard());
                            Error::Timeout { method, target, timeout, progress }
                        }
                    });
                }
            }
        }
    }
}

/// The headers that carry a request's lifecycle to the server: the call's
/// deadline (which also asks a Rust server for progress notices on a call
/// that runs long), and the trace context (a new span, child of the
/// context's); notifications carry the trace context too. Each header
/// costs: every one is a field table entry that lapin encodes, copies and
/// parses.
pub(crate) fn lifecycle_headers(span: Option<&TraceContext>, deadline: Option<Instant>) -> Headers {
    let mut headers = Headers::new();
    if let Some(deadline) = deadline {
        headers.insert(
            headers::DEADLINE,
            deadline::to_unix_millis(deadline::system_time_of(deadline)),
        );
    }
    if let Some(span) = span {
        headers.insert(headers::TRACEPARENT, span.traceparent());
        if let Some(state) = span.state() {
            headers.insert(headers::TRACESTATE, state.to_owned());
        }
    }
    headers
}

/// The span of a call on the caller's side (`rpc.call`, level debug): with
/// the `opentelemetry` feature, the span the server's `rpc.request` is a
/// child of, itself a child of the context's trace when it has one.
fn call_span(ctx: &Context, method: Method<'_>, target: &Target) -> tracing::Span {
    let span = tracing::debug_span!("rpc.call", method = method.name, target = %target);
    #[cfg(feature = "opentelemetry")]
    if let Some(trace) = ctx.trace() {
        crate::otel::set_parent(&span, trace);
    }
    let _ = ctx;
    span
}

/// The span a request names as its parent: with the `opentelemetry`
/// feature and a layer installed, the current span as exported (the
/// `rpc.call` span of a call); otherwise a new span in the context's trace.
/// `None` outside any trace: the server then starts one (a trace made up
/// here and recorded nowhere would tell it nothing more, and cost a header).
pub(crate) fn outgoing_trace(ctx: &Context) -> Option<TraceContext> {
    #[cfg(feature = "opentelemetry")]
    if let Some(trace) = crate::otel::trace_of(&tracing::Span::current()) {
        return Some(trace);
    }
    ctx.trace().map(TraceContext::child)
}

/// A request in the client's series: recorded when it ends, or as
/// `dropped` when its caller gave it up before (a `select!`, a timeout
/// around it), so that requests given up on are counted too.
struct Recorded<'a> {
    client: &'a Client,
    method: Method<'a>,
    is_call: bool,
    /// Until recorded.
    timer: Option<metrics::Timer>,
}

impl<'a> Recorded<'a> {
    fn start(client: &'a Client, method: Method<'a>, is_call: bool) -> Recorded<'a> {
        Recorded {
            client,
            method,
            is_call,
            timer: Some(metrics::Timer::start()),
        }
    }

    /// Records the request's end: done, or failed with `error`.
    fn ended(mut self, error: Option<&Error>) {
        self.record(error.map(Error::kind_name));
    }

    fn record(&mut self, code: Option<&'static str>) {
        if let Some(timer) = self.timer.take() {
            let (client, method) = (self.client, self.method);
            metrics::sent(
                client.target.topic_name(),
                method.namespace,
                method.name,
                self.is_call,
                code,
                timer,
            );
        }
    }
}

impl Drop for Recorded<'_> {
    fn drop(&mut self) {
        self.record(Some("dropped"));
    }
}

/// A call waiting for its answer. Dropped before the answer came (its
/// caller's future was dropped, or the call failed with
/// [`Error::HeartbeatTimeout`]), it cancels the call on the server handling
/// it, when the caller knows which and that it understands cancels: the
/// server that sent a progress notice, or the pinned server when the call
/// is in MessagePack (only Rust servers speak it). Otherwise the server
/// stops at the call's deadline.
struct InFlight<'a> {
    client: &'a Client,
    pending: PendingCall,
    /// Until the answer came (a `HeartbeatTimeout` is none).
    cancel_on_drop: bool,
    _waiting: metrics::Counted,
}

impl InFlight<'_> {
    fn server(&self) -> Option<String> {
        match self.pending.heard() {
            Some(heard) => Some(heard.server().to_owned()),
            None => pinned_rust_server(self.client),
        }
    }
}

/// The server a call is pinned to, when it is in MessagePack (only Rust
/// servers speak it, and they understand cancels).
fn pinned_rust_server(client: &Client) -> Option<String> {
    let pinned = client.target.server_name()?;
    (client.wire_codec() == Codec::MsgPack).then(|| pinned.to_owned())
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.cancel_on_drop {
            cancel_dropped(self.client, self.server(), self.pending.msg_id());
        }
    }
}

/// A call's request going out; dropped before it is out, it cancels the
/// call on its pinned server, as [`InFlight`] does.
struct Sending<'a> {
    client: &'a Client,
    /// `None` once the publish ended.
    msg_id: Option<&'a str>,
}

impl Sending<'_> {
    /// The publish ended, the request out or refused: nothing to cancel.
    fn ended(mut self) {
        self.msg_id = None;
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let Some(msg_id) = self.msg_id else {
            return;
        };
        cancel_dropped(self.client, pinned_rust_server(self.client), msg_id);
    }
}

/// Casts a cancel of the call `msg_id` to `server`, if known, from a task
/// of its own (a dropped call cannot wait for it).
fn cancel_dropped(client: &Client, server: Option<String>, msg_id: &str) {
    let (Some(server), Ok(runtime)) = (server, tokio::runtime::Handle::try_current()) else {
        return;
    };
    let client = client.prepare().server(server).fanout(false).retry(Retry::Never);
    let args = CancelArgs {
        msg_id: msg_id.to_owned(),
    };
    runtime.spawn(async move {
        let method = Method {
            name: CANCEL_METHOD,
            namespace: None,
            version: None,
            argument: None,
            timeout: None,
        };
        let msg_id = &args.msg_id;
        match client.publish(&Context::new(), method, &args, None).await {
            Ok(()) => tracing::debug!(%msg_id, target = %client.target, "cancelled a dropped call"),
            Err(error) => tracing::debug!(%msg_id, %error, "could not cancel a dropped call"),
        }
    });
}

/// Decodes a call's result.
pub(crate) fn decode_result<R: DeserializeOwned>(result: Option<Payload>) -> Result<R, Error> {
    match result {
        Some(result) => result.decode(),
        // oslo peers may omit `result` for a `None` result: decode it as unit.
        None => R::deserialize(UnitDeserializer::<serde::de::value::Error>::new()).map_err(CodecError::new),
    }
    .map_err(|source| Error::Decode {
        what: "the result",
        source,
    })
}

/// The next heartbeat of a monitored call; never, for other calls.
async fn heartbeat(notify: Option<&tokio::sync::Notify>) {
    match notify {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// Where a call's reply goes, and when its caller gives up.
struct CallHeader<'a> {
    msg_id: &'a str,
    reply_to: &'a str,
    deadline: Instant,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("timeout", &self.options.timeout)
            .field("call_monitor_timeout", &self.options.call_monitor_timeout)
            .field("version_cap", &self.options.version_cap)
            .field("retry", &self.options.retry)
            .field("delivery", &self.options.delivery)
            .field("confirm_casts", &self.options.confirm_casts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::transport::memory::Broker;

    fn method(name: &str) -> Method<'_> {
        Method {
            name,
            namespace: None,
            version: None,
            argument: None,
            timeout: None,
        }
    }

    /// A call whose request is cancelled as its inherited deadline passes
    /// (the server cancels there) ends as its own deadline makes it end,
    /// not as `Cancelled`: as every call past its deadline, a timeout.
    #[tokio::test]
    async fn a_cancel_at_the_inherited_deadline_leaves_the_call_its_timeout() {
        let client = Client::new(Broker::new().transport(), Target::topic("t"));
        let token = Cancellation::new();
        token.cancel();
        let ctx = Context::new()
            .with_cancellation(token.clone())
            .with_deadline(SystemTime::now() - Duration::from_millis(1));
        let ended = client
            .unless_cancelled(&ctx, &token, method("m"), async {
                tokio::task::yield_now().await;
                Err::<(), _>(Error::ServerState("timed out, as its deadline says"))
            })
            .await;
        assert!(matches!(ended, Err(Error::ServerState(_))), "{ended:?}");
        // Before its deadline, a cancel is a cancel.
        let token = Cancellation::new();
        let ctx = Context::new()
            .with_cancellation(token.clone())
            .with_deadline(SystemTime::now() + Duration::from_secs(60));
        let cancelled = client.unless_cancelled(&ctx, &token, method("m"), async {
            token.cancel();
            std::future::pending::<Result<(), Error>>().await
        });
        assert!(matches!(cancelled.await, Err(Error::Cancelled { .. })));
    }
}
