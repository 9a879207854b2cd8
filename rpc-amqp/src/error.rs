//! Classification of lapin's errors into the runtime's transport error kinds.

use lapin::ErrorKind;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use rpc_core::{TransportError, TransportErrorKind};

/// What kind of failure a lapin error is, for callers and for retry decisions.
///
/// Unlike lapin's `can_be_recovered`, a refusal by the broker (access,
/// missing entity, precondition) is not treated as recoverable: retrying it
/// cannot help.
pub(crate) fn classify(error: &lapin::Error) -> TransportErrorKind {
    match error.kind() {
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::ParsingError(_) => TransportErrorKind::ConnectionLost,
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::NOROUTE) => TransportErrorKind::Unroutable,
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED) => TransportErrorKind::ConnectionLost,
            _ => TransportErrorKind::Refused,
        },
        ErrorKind::ChannelsLimitReached | ErrorKind::AuthProviderError(_) => TransportErrorKind::Refused,
        _ => TransportErrorKind::Other,
    }
}

/// A transport error for `error`, which happened while `doing` something.
pub(crate) fn from_lapin(error: lapin::Error, doing: impl std::fmt::Display) -> TransportError {
    TransportError::new(classify(&error), format!("{doing}: {error}")).with_source(error)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use lapin::protocol::AMQPError;

    use super::*;

    fn protocol(kind: AMQPErrorKind) -> lapin::Error {
        ErrorKind::ProtocolError(AMQPError::new(kind, "text".into())).into()
    }

    #[test]
    fn kinds() {
        let io: lapin::Error = ErrorKind::IOError(Arc::new(io::Error::from(io::ErrorKind::ConnectionReset))).into();
        assert_eq!(classify(&io), TransportErrorKind::ConnectionLost);
        assert_eq!(
            classify(&ErrorKind::MissingHeartbeatError.into()),
            TransportErrorKind::ConnectionLost
        );
        assert_eq!(
            classify(&protocol(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED))),
            TransportErrorKind::Refused
        );
        assert_eq!(
            classify(&protocol(AMQPErrorKind::Soft(AMQPSoftError::NOROUTE))),
            TransportErrorKind::Unroutable
        );
        assert_eq!(
            classify(&protocol(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED))),
            TransportErrorKind::ConnectionLost
        );
    }
}
