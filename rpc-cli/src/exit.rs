//! How a command ends: exit codes scripts can use, and the message.

use std::process::ExitCode;

use rpc_core::Error;

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
            Error::Transport(_) => Exit::Unreachable(message),
            Error::InvalidUrl { .. } | Error::Config(_) => Exit::Config(message),
            _ => Exit::Usage(message),
        }
    }
}
