//! Errors: the local [`Error`], the one error that crosses the wire
//! ([`RemoteError`]), and the errors of transports and codecs.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CallProgress, Codec, Payload, Version};

/// A boxed error from a transport or another library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong with a call, a cast, or a server.
///
/// [`Error::Remote`] carries what the server answered; every other variant
/// happened on this side. Match on the variants, or ask the predicates
/// ([`is_timeout`](Error::is_timeout), [`remote`](Error::remote),
/// [`is_connection_error`](Error::is_connection_error)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target cannot be used for this operation: a server without a topic
    /// or a server name, a call with `fanout`, an empty topic.
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// Nothing is bound to receive the request: no server has ever listened on
    /// the target. The request was not delivered.
    #[error("no server is listening on {target}")]
    NoListener {
        /// The target, as text.
        target: String,
    },
    /// No reply came within the call's timeout (or before the deadline it
    /// inherited from its context, when that came sooner).
    #[error("no reply to `{method}` on {target} within {timeout:?}: {progress}")]
    Timeout {
        /// The method called.
        method: String,
        /// The target, as text.
        target: String,
        /// How long the call waited: its timeout, or the time its context's
        /// deadline left it.
        timeout: Duration,
        /// How far the call got, as far as the caller knows.
        progress: CallProgress,
    },
    /// The server stopped sending call-monitor heartbeats for a long call.
    /// The call is cancelled on that server when the caller knows it is a
    /// Rust server (it sent a progress notice, or the call is pinned to it
    /// in MessagePack), as a dropped call is: it may be alive all the same,
    /// and nobody waits for its answer now.
    #[error("the server handling `{method}` on {target} sent no heartbeat for {timeout:?}")]
    HeartbeatTimeout {
        /// The method called.
        method: String,
        /// The target, as text.
        target: String,
        /// The call-monitor timeout.
        timeout: Duration,
    },
    /// The request this call was made for was cancelled (its context's
    /// [`Cancellation`](crate::Cancellation): its own caller gave up on it):
    /// a call not sent yet is not sent, and one waiting for its answer stops
    /// waiting, and its server is told (as for a dropped call). At the
    /// deadline the context inherited, the call fails with
    /// [`Timeout`](Error::Timeout) instead, as any call past its deadline.
    /// Casts go out whatever the token says.
    #[error("`{method}` on {target} was given up: the request it was made for was cancelled")]
    Cancelled {
        /// The method called.
        method: String,
        /// The target, as text.
        target: String,
    },
    /// The request's version is above the client's version cap; nothing was sent.
    ///
    /// The version is the one the method was added at, raised by an optional
    /// argument added later when the call sends it (`argument` names it).
    #[error("`{method}`{} needs version {}, above the version cap {cap}", display_argument(.argument), display_version(.version))]
    VersionCap {
        /// The method called.
        method: String,
        /// The argument that raised the version, when one did.
        argument: Option<String>,
        /// The version the request would carry (`None`: no version).
        version: Option<Version>,
        /// The client's version cap.
        cap: Version,
    },
    /// A value could not be encoded; nothing was sent.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: CodecError,
    },
    /// A reply could not be decoded into the expected type.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: CodecError,
    },
    /// The server answered with an error.
    #[error("remote error: {0}")]
    Remote(#[from] RemoteError),
    /// The method failed with its own error type, but the error that came
    /// back does not decode as that type: the server runs another version of
    /// the API, or is not the server the client was written for.
    #[error("the method failed with `{error}`, which does not decode as the method's error type: {source}")]
    UndecodableApplicationError {
        /// The error the server sent.
        error: RemoteError,
        /// Why it does not decode.
        #[source]
        source: CodecError,
    },
    /// The transport failed: connection lost, broker unreachable, closed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A transport URL could not be used.
    #[error("invalid transport url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range or missing.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A server was used out of order: started twice, for example.
    #[error("server {0}")]
    ServerState(&'static str),
    /// A notification cannot be sent as asked: an empty event type, a name
    /// over 4096 bytes, an unknown priority.
    #[error("invalid notification: {0}")]
    InvalidNotification(String),
}

fn display_argument(argument: &Option<String>) -> String {
    match argument {
        Some(argument) => format!(" with argument `{argument}`"),
        None => String::new(),
    }
}

fn display_version(version: &Option<Version>) -> String {
    match version {
        Some(version) => version.to_string(),
        None => "(none)".to_owned(),
    }
}

impl Error {
    /// Whether the call ran out of time: [`Error::Timeout`],
    /// [`Error::HeartbeatTimeout`], or the server's
    /// [`DeadlineExceeded`](ErrorCode::DeadlineExceeded) (the server stopped
    /// the handler at the deadline, and its answer came first).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::HeartbeatTimeout { .. } => true,
            Error::Remote(remote) => remote.code() == ErrorCode::DeadlineExceeded,
            _ => false,
        }
    }

    /// The server's error, when the server answered with one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(remote) | Error::UndecodableApplicationError { error: remote, .. } => Some(remote),
            _ => None,
        }
    }

    /// A short name for the kind of failure, as metrics label it: the
    /// server's [`ErrorCode`] for a remote error, otherwise `timeout`,
    /// `heartbeat_timeout`, `no_listener`, `version_cap`, `transport`, ...
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::InvalidTarget(_) => "invalid_target",
            Error::NoListener { .. } => "no_listener",
            Error::Timeout { .. } => "timeout",
            Error::HeartbeatTimeout { .. } => "heartbeat_timeout",
            Error::Cancelled { .. } => "cancelled",
            Error::VersionCap { .. } => "version_cap",
            Error::Encode { .. } => "encode",
            Error::Decode { .. } => "decode",
            Error::Remote(remote) => remote.code().as_str(),
            Error::UndecodableApplicationError { .. } => ErrorCode::Application.as_str(),
            Error::Transport(_) => "transport",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::Config(_) => "config",
            Error::ServerState(_) => "server_state",
            Error::InvalidNotification(_) => "invalid_notification",
        }
    }

    /// Whether the connection to the broker failed or was lost.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Error::Transport(error) if error.is_connection_error())
    }
}

/// The kind of a [`RemoteError`]: what went wrong on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// An endpoint matched the namespace and version but has no such method
    /// (oslo's `NoSuchMethod`).
    NoSuchMethod,
    /// No endpoint serves the requested namespace and version
    /// (oslo's `UnsupportedVersion`).
    UnsupportedVersion,
    /// The arguments did not match the method: missing, unknown, or of the wrong type.
    InvalidArguments,
    /// The request could not be read: malformed, too large, or of an unknown format.
    BadRequest,
    /// The handler failed unexpectedly (it panicked); the server kept serving.
    Internal,
    /// The method returned its own error type (see [`RemoteError::decode_data`]).
    Application,
    /// The caller's deadline passed while the method ran: the server
    /// stopped it (see `docs/lifecycle.md`).
    DeadlineExceeded,
    /// A server layer refused the caller: its context does not satisfy the
    /// method's policy (oslo.policy's `PolicyNotAuthorized`; see
    /// [`Policy`](crate::middleware::Policy)).
    Forbidden,
    /// The server refused the request over a limit (see
    /// [`RateLimit`](crate::middleware::RateLimit)); worth retrying later.
    Overloaded,
    /// An error without a code, such as a Python exception from an oslo peer.
    Other,
}

impl ErrorCode {
    /// The code's wire name, e.g. `no_such_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoSuchMethod => "no_such_method",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InvalidArguments => "invalid_arguments",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Internal => "internal",
            ErrorCode::Application => "application",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Other => "other",
        }
    }

    /// The code with wire name `name`; unknown names (from newer peers) are [`ErrorCode::Other`].
    pub fn from_name(name: &str) -> ErrorCode {
        match name {
            "no_such_method" => ErrorCode::NoSuchMethod,
            "unsupported_version" => ErrorCode::UnsupportedVersion,
            "invalid_arguments" => ErrorCode::InvalidArguments,
            "bad_request" => ErrorCode::BadRequest,
            "internal" => ErrorCode::Internal,
            "application" => ErrorCode::Application,
            "deadline_exceeded" => ErrorCode::DeadlineExceeded,
            "forbidden" => ErrorCode::Forbidden,
            "overloaded" => ErrorCode::Overloaded,
            _ => ErrorCode::Other,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ErrorCode::from_name(&name))
    }
}

const DISPATCHER_MODULE: &str = "oslo_messaging.rpc.dispatcher";

/// The error a server sends back: the only error that crosses the wire.
///
/// It carries a [`code`](RemoteError::code) for programs, and the exception
/// fields oslo.messaging uses (class, module, message, traceback) so that
/// Python peers read it as they read their own. A method returning
/// `Result<T, E>` sends its `E` as [`data`](RemoteError::data), encoded in the
/// caller's codec; the generated client stub turns it back into `E`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}: {}", .inner.class, .inner.message)]
pub struct RemoteError {
    // Boxed: errors are rare, and `Result`s carrying them stay small.
    inner: Box<Fields>,
}

#[derive(Clone, Debug, PartialEq)]
struct Fields {
    code: ErrorCode,
    class: String,
    module: String,
    message: String,
    traceback: Vec<String>,
    data: Option<Payload>,
}

impl RemoteError {
    /// A remote error with the given code, class and message.
    pub fn new(code: ErrorCode, class: impl Into<String>, message: impl Into<String>) -> RemoteError {
        RemoteError {
            inner: Box::new(Fields {
                code,
                class: class.into(),
                module: String::new(),
                message: message.into(),
                traceback: Vec::new(),
                data: None,
            }),
        }
    }

    /// Sets the error class (oslo's `class`): what Python callers see as the
    /// exception's name.
    pub fn with_class(mut self, class: impl Into<String>) -> RemoteError {
        self.inner.class = class.into();
        self
    }

    /// Sets the module the error class lives in (oslo's `module`).
    pub fn with_module(mut self, module: impl Into<String>) -> RemoteError {
        self.inner.module = module.into();
        self
    }

    /// Sets the traceback lines.
    pub fn with_traceback(mut self, traceback: Vec<String>) -> RemoteError {
        self.inner.traceback = traceback;
        self
    }

    /// Attaches structured data, as JSON.
    pub fn with_data(self, data: Value) -> RemoteError {
        // A `Value` always encodes as JSON.
        match Codec::OsloJson.encode(&data) {
            Ok(payload) => self.with_payload(payload),
            Err(_) => self,
        }
    }

    /// Attaches structured data already encoded in a codec.
    pub fn with_payload(mut self, data: Payload) -> RemoteError {
        self.inner.data = Some(data);
        self
    }

    /// oslo's `NoSuchMethod`: a compatible endpoint lacks `method`.
    pub fn no_such_method(method: &str) -> RemoteError {
        RemoteError::new(
            ErrorCode::NoSuchMethod,
            "NoSuchMethod",
            format!("Endpoint does not support RPC method {method}"),
        )
        .with_module(DISPATCHER_MODULE)
    }

    /// oslo's `UnsupportedVersion`: no endpoint serves `version` in the requested namespace.
    pub fn unsupported_version(version: &Version, method: &str) -> RemoteError {
        RemoteError::new(
            ErrorCode::UnsupportedVersion,
            "UnsupportedVersion",
            format!("Endpoint does not support RPC version {version}. Attempted method: {method}"),
        )
        .with_module(DISPATCHER_MODULE)
    }

    /// oslo's `UnsupportedVersion` for a request whose namespace no endpoint
    /// has: the class stays oslo's, the message says which namespaces the
    /// server has.
    pub fn unknown_namespace<'a>(
        namespace: Option<&str>,
        version: &Version,
        method: &str,
        served: impl IntoIterator<Item = Option<&'a str>>,
    ) -> RemoteError {
        let mut served: Vec<String> = served
            .into_iter()
            .map(|namespace| match namespace {
                Some(namespace) => format!("`{namespace}`"),
                None => "the default namespace".to_owned(),
            })
            .collect();
        served.dedup();
        let requested = match namespace {
            Some(namespace) => format!("namespace `{namespace}`"),
            None => "the default namespace".to_owned(),
        };
        RemoteError::new(
            ErrorCode::UnsupportedVersion,
            "UnsupportedVersion",
            format!(
                "Endpoint does not support RPC version {version}. Attempted method: {method}. \
                 No endpoint serves {requested}; this server has {}",
                served.join(", ")
            ),
        )
        .with_module(DISPATCHER_MODULE)
    }

    /// The arguments of `method` did not decode.
    pub fn invalid_arguments(method: &str, reason: impl fmt::Display) -> RemoteError {
        RemoteError::new(
            ErrorCode::InvalidArguments,
            "TypeError",
            format!("invalid arguments for `{method}`: {reason}"),
        )
        .with_module("builtins")
    }

    /// The request could not be read.
    pub fn bad_request(reason: impl fmt::Display) -> RemoteError {
        RemoteError::new(ErrorCode::BadRequest, "BadRequest", reason.to_string()).with_module("rpc_core")
    }

    /// The caller's deadline passed while `method` ran: the server stopped
    /// the handler.
    pub fn deadline_exceeded(method: &str) -> RemoteError {
        RemoteError::new(
            ErrorCode::DeadlineExceeded,
            "DeadlineExceeded",
            format!("the caller's deadline passed while `{method}` ran; the server stopped it"),
        )
        .with_module("rpc_core")
    }

    /// The handler of `method` panicked.
    pub fn panicked(method: &str, panic: &str) -> RemoteError {
        RemoteError::new(
            ErrorCode::Internal,
            "RuntimeError",
            format!("the handler of `{method}` panicked: {panic}"),
        )
        .with_module("builtins")
    }

    /// An application error `E` returned by a method, encoded in `codec` (the
    /// caller's).
    ///
    /// Its class is the type's name without its module path (`Overdrawn` for
    /// `bank::errors::Overdrawn<T>`; override it with
    /// [`ErrorClass`](crate::ErrorClass) or [`with_class`](RemoteError::with_class)),
    /// its module the crate defining it, its message the error's `Display`,
    /// and the value itself travels as [`data`](RemoteError::data).
    pub fn application<E>(error: &E, codec: Codec) -> RemoteError
    where
        E: Serialize + fmt::Display + ?Sized,
    {
        let (krate, class) = split_type_name(std::any::type_name::<E>());
        let remote = RemoteError::new(ErrorCode::Application, class, error.to_string()).with_module(krate);
        match codec.encode(error) {
            Ok(data) => remote.with_payload(data),
            Err(reason) => {
                tracing::warn!(%reason, class, "cannot encode an application error; sending its message only");
                remote
            }
        }
    }

    /// What went wrong, for programs.
    pub fn code(&self) -> ErrorCode {
        self.inner.code
    }

    /// The error's class name: `NoSuchMethod`, a Rust type's name, a Python exception class.
    pub fn class(&self) -> &str {
        &self.inner.class
    }

    /// The module or crate of the error class (`builtins` for Python built-ins).
    pub fn module(&self) -> &str {
        &self.inner.module
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The traceback lines, when the server sent some (Python peers do).
    pub fn traceback(&self) -> &[String] {
        &self.inner.traceback
    }

    /// The structured data attached to the error, still encoded: a method's
    /// own error value, or a Python exception's `{"args", "kwargs"}`.
    pub fn data(&self) -> Option<&Payload> {
        self.inner.data.as_ref()
    }

    /// The attached data in `codec`, re-encoded when it came from another
    /// (a forwarded error). Data `codec` cannot hold (bytes or numeric
    /// keys, in JSON) is left out, with a warning: the error still reaches
    /// its caller.
    pub(crate) fn data_in(&self, codec: Codec) -> Option<std::borrow::Cow<'_, Payload>> {
        let data = self.data()?;
        match data.in_codec(codec) {
            Ok(data) => Some(data),
            Err(reason) => {
                tracing::warn!(class = self.class(), %codec, %reason, "sending an error without its data, which the caller's codec cannot hold");
                None
            }
        }
    }

    /// Decodes the attached data as `E`: how a typed application error comes back.
    ///
    /// Fails when there is no data, or when it does not decode as `E`.
    pub fn decode_data<E: DeserializeOwned>(&self) -> Result<E, CodecError> {
        match &self.inner.data {
            Some(data) => data.decode(),
            None => Err(CodecError::new(format_args!(
                "the error `{}` carries no data",
                self.inner.class
            ))),
        }
    }
}

/// The class name a method's error type goes by on the wire, instead of its
/// type name.
///
/// Python callers see the class as the exception's name
/// (`oslo_messaging.RemoteError` with this `exc_type`); Rust callers read it
/// with [`RemoteError::class`]. Without this trait the class is the type's
/// name without its module path.
///
/// ```
/// use rpc_core::ErrorClass;
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// enum QuotaError {
///     Exceeded { limit: u32 },
/// }
///
/// impl ErrorClass for QuotaError {
///     const CLASS: &'static str = "OverQuota";
/// }
/// ```
pub trait ErrorClass {
    /// The class name on the wire.
    const CLASS: &'static str;
}

/// Splits `krate::path::Type<c::D>` into (`krate`, `Type`).
fn split_type_name(name: &str) -> (&str, &str) {
    let plain = name.split('<').next().unwrap_or(name);
    let krate = plain.split("::").next().unwrap_or("");
    let class = plain.rsplit("::").next().unwrap_or(plain);
    if krate == class { ("", class) } else { (krate, class) }
}

/// What kind of failure a [`TransportError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Nothing is bound to receive the message (AMQP: returned as unroutable).
    Unroutable,
    /// The connection to the broker was lost while the operation was under way.
    ConnectionLost,
    /// The broker could not be reached (after any retries).
    Unreachable,
    /// The broker refused the operation (access, precondition, resource limits).
    Refused,
    /// The transport was closed.
    Closed,
    /// The message's deadline passed before it could be published: nobody
    /// waits for it any more, so it was not sent.
    Expired,
    /// The broker blocks publishers (a memory or disk alarm) and did not
    /// lift the block in time; the message was not sent.
    Blocked,
    /// The broker did not confirm the message in time: it may or may not
    /// have been routed.
    Unconfirmed,
    /// Anything else.
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Unroutable => "unroutable",
            TransportErrorKind::ConnectionLost => "connection lost",
            TransportErrorKind::Unreachable => "broker unreachable",
            TransportErrorKind::Refused => "refused by the broker",
            TransportErrorKind::Closed => "transport closed",
            TransportErrorKind::Expired => "deadline passed before publishing",
            TransportErrorKind::Blocked => "the broker blocks publishers",
            TransportErrorKind::Unconfirmed => "no publisher confirm in time",
            TransportErrorKind::Other => "transport error",
        })
    }
}

/// An error from a transport: what kind, a message, and the underlying error.
///
/// Messages and sources never include credentials.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl TransportError {
    /// A transport error of `kind`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> TransportError {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the connection failed or was lost.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::ConnectionLost | TransportErrorKind::Unreachable
        )
    }
}

/// A value that could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

impl CodecError {
    pub(crate) fn new(reason: impl fmt::Display) -> CodecError {
        CodecError(reason.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Overdrawn {
        missing: u64,
    }

    impl fmt::Display for Overdrawn {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "overdrawn by {}", self.missing)
        }
    }

    #[test]
    fn application_errors_are_encoded_in_the_callers_codec() {
        for codec in [Codec::MsgPack, Codec::OsloJson] {
            let remote = RemoteError::application(&Overdrawn { missing: u64::MAX }, codec);
            assert_eq!(remote.code(), ErrorCode::Application);
            assert_eq!((remote.class(), remote.module()), ("Overdrawn", "rpc_core"));
            assert_eq!(remote.message(), format!("overdrawn by {}", u64::MAX));
            assert_eq!(remote.data().unwrap().codec(), codec);
            assert_eq!(
                remote.decode_data::<Overdrawn>().unwrap(),
                Overdrawn { missing: u64::MAX }
            );
            assert!(remote.decode_data::<String>().is_err());
        }
    }

    #[test]
    fn dispatcher_errors_use_oslo_names() {
        let error = RemoteError::no_such_method("frob");
        assert_eq!((error.class(), error.module()), ("NoSuchMethod", DISPATCHER_MODULE));
        assert_eq!(
            error.to_string(),
            "NoSuchMethod: Endpoint does not support RPC method frob"
        );
        let error = RemoteError::unsupported_version(&Version::new(3, 1), "frob");
        assert_eq!(error.code(), ErrorCode::UnsupportedVersion);
        assert!(error.message().contains("3.1"));
        assert!(error.decode_data::<Value>().is_err());
        let error =
            RemoteError::unknown_namespace(Some("contrl"), &Version::new(1, 2), "stop", [None, Some("control")]);
        assert_eq!(error.class(), "UnsupportedVersion");
        assert!(
            error
                .message()
                .ends_with("No endpoint serves namespace `contrl`; this server has the default namespace, `control`"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn type_names_split() {
        assert_eq!(split_type_name("a::b::C"), ("a", "C"));
        assert_eq!(split_type_name("a::C<x::Y>"), ("a", "C"));
        assert_eq!(split_type_name("u32"), ("", "u32"));
    }
}
