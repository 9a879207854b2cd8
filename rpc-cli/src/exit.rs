//! How a command ends: exit codes scripts can use, and the message.

use std::process::ExitCode;

use rpc_core::{Error, TransportErrorKind};

/// Why a command failed, with its exit code.
#[derive(Debug)]
pub(crate) enum Exit {
    /// 1: the server answered with an error (printed as JSON on stdout).
    Remote(String),
    /// 1: what was asked did not hold (an incompatible API, unanswered pings).
    Failed(String),
    /// 2: the command line is wrong (clap reports its own errors with 2 too).
    Usage(String),
    /// 3: no answer in time.
    Timeout(String),
    /// 4: no server listens on the target.
    NoListener(String),
    /// 5: the broker (or its management API) cannot be reached.
    Unreachable(String),
    /// 6: a configuration file is wrong.
    Config(String),
    /// 7: the broker (or its management API) refused: credentials,
    /// permissions, a message over its size limit, a resource alarm.
    Refused(String),
}

impl Exit {
    /// Prints the message on stderr and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        let (code, message) = match self {
            Exit::Remote(message) | Exit::Failed(message) => (1, message),
            Exit::Usage(message) => (2, message),
            Exit::Timeout(message) => (3, message),
            Exit::NoListener(message) => (4, message),
            Exit::Unreachable(message) => (5, message),
            Exit::Config(message) => (6, message),
            Exit::Refused(message) => (7, message),
        };
        eprintln!("rpc: {message}");
        ExitCode::from(code)
    }
}

impl From<Error> for Exit {
    fn from(error: Error) -> Exit {
        let message = error.to_string();
        match &error {
            Error::Remote(_) | Error::UndecodableApplicationError { .. } => Exit::Remote(message),
            Error::Timeout { .. } | Error::HeartbeatTimeout { .. } => Exit::Timeout(message),
            Error::NoListener { .. } => Exit::NoListener(message),
            Error::Transport(error) => match error.kind() {
                TransportErrorKind::Unroutable => Exit::NoListener(message),
                TransportErrorKind::Refused | TransportErrorKind::Blocked => Exit::Refused(message),
                // Sent, or not: as unknown as an unanswered call.
                TransportErrorKind::Unconfirmed | TransportErrorKind::Expired => Exit::Timeout(message),
                _ => Exit::Unreachable(message),
            },
            Error::InvalidUrl { .. } | Error::Config(_) => Exit::Config(message),
            // The server answered; what it answered cannot be shown.
            Error::Decode { .. } | Error::ServerState(_) | Error::Cancelled { .. } => Exit::Failed(message),
            _ => Exit::Usage(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use rpc_core::TransportError;

    use super::*;

    fn code(error: Error) -> u8 {
        match Exit::from(error) {
            Exit::Remote(_) | Exit::Failed(_) => 1,
            Exit::Usage(_) => 2,
            Exit::Timeout(_) => 3,
            Exit::NoListener(_) => 4,
            Exit::Unreachable(_) => 5,
            Exit::Config(_) => 6,
            Exit::Refused(_) => 7,
        }
    }

    #[test]
    fn transport_failures_have_the_code_of_what_happened() {
        let transport = |kind| code(Error::Transport(TransportError::new(kind, "x")));
        assert_eq!(transport(TransportErrorKind::Unreachable), 5);
        assert_eq!(transport(TransportErrorKind::ConnectionLost), 5);
        // Bad credentials, a message over the broker's limit, an alarm: not unreachable.
        assert_eq!(transport(TransportErrorKind::Refused), 7);
        assert_eq!(transport(TransportErrorKind::Blocked), 7);
        // Perhaps delivered: retrying blindly could send it twice.
        assert_eq!(transport(TransportErrorKind::Unconfirmed), 3);
        assert_eq!(transport(TransportErrorKind::Unroutable), 4);
        // What the server or the transport's state made fail is no bad command line.
        assert_eq!(code(Error::ServerState("stopped")), 1);
    }
}
