//! Writing results on stdout without panicking when its reader went away.

use std::fmt;
use std::io::{self, Write};

/// The exit code when stdout closed before the output was written
/// (`rpc ping -c 0 topic | head -2`): 128 + `SIGPIPE`, as a tool that
/// signal ends.
pub(crate) const CLOSED_STDOUT: i32 = 141;

/// `println!` on stdout, which ends the command quietly (exit 141) when its
/// reader went away, where `println!` panics (exit 101, and a message).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` on stdout, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Writes `text` on stdout, or ends the process when it cannot be written.
pub(crate) fn write(text: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if error.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(CLOSED_STDOUT);
        }
        eprintln!("rpc: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}
