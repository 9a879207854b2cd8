//! The errors of loading a configuration.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::url::UrlError;

/// Where a value was written: a file and a 1-based line number.
///
/// Displayed as `path:line`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as it was given (a config-dir file: the directory joined with its name).
    pub path: PathBuf,
    /// The line of the option (of its first line, for a value continued on later lines).
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// Why a line of a config file could not be parsed (oslo.config's
/// `iniparser` errors, plus the file's encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// An option before any `[section]` line (oslo: "Section must be started before assignment").
    NoSection,
    /// A line that is neither a section, a comment nor `key = value` / `key: value`
    /// (oslo: "No ':' or '=' found in assignment").
    MissingSeparator,
    /// `= value` with nothing before the separator (oslo: "Key cannot be empty").
    EmptyKey,
    /// An indented line that continues no option: it follows a section line,
    /// a comment or a blank line (oslo: "Unexpected continuation line").
    UnexpectedContinuation,
    /// A line starting with `[` but not ending with `]` (oslo: "Invalid section (must end with ])").
    UnclosedSection,
    /// `[]` (oslo: "Empty section name").
    EmptySectionName,
    /// Bytes that are not UTF-8 (oslo.config fails to decode such a file).
    InvalidUtf8,
    /// The file starts with a UTF-8 byte order mark, which oslo.config reads
    /// as part of the first line and then rejects.
    ByteOrderMark,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseErrorKind::NoSection => "option outside any section (a `[section]` line must come first)",
            ParseErrorKind::MissingSeparator => "expected `key = value` or `key: value`",
            ParseErrorKind::EmptyKey => "empty option name",
            ParseErrorKind::UnexpectedContinuation => {
                "indented line continues no option (indentation continues the previous value)"
            }
            ParseErrorKind::UnclosedSection => "section line must end with `]`",
            ParseErrorKind::EmptySectionName => "empty section name",
            ParseErrorKind::InvalidUtf8 => "not valid UTF-8",
            ParseErrorKind::ByteOrderMark => "the file starts with a byte order mark, which oslo.config rejects",
        })
    }
}

/// Everything that can go wrong loading a configuration.
///
/// Every variant about a value names the file and line it came from, the
/// section and the option. Passwords never appear: transport URLs are shown
/// with `***` for passwords, and values of secret options are not shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Config files that do not exist. As oslo.config does, every source is
    /// read first and all the missing files are listed together.
    #[error("config files not found: {}", join_paths(paths))]
    FilesNotFound {
        /// The missing files, in the order given.
        paths: Vec<PathBuf>,
    },
    /// Config files that exist but may not be read (checked after the missing ones, as oslo.config does).
    #[error("permission denied reading config files: {}", join_paths(paths))]
    PermissionDenied {
        /// The unreadable files, in the order given.
        paths: Vec<PathBuf>,
    },
    /// A `--config-dir` that does not exist (oslo's `ConfigDirNotFoundError`).
    #[error("config directory not found: {}", path.display())]
    DirNotFound {
        /// The directory.
        path: PathBuf,
    },
    /// Any other failure to read a file or list a directory.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A line that is not valid INI as oslo.config reads it.
    #[error("{}:{line}: {kind}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        kind: ParseErrorKind,
    },
    /// A value that is not of its option's type, or out of its range.
    #[error(
        "{location}: invalid value {} for option `{option}` in [{section}]: {reason}",
        shown(value)
    )]
    InvalidValue {
        /// Where the value was written.
        location: Location,
        /// The section (group) of the option.
        section: &'static str,
        /// The option's name, as written (a deprecated name if that was used).
        option: &'static str,
        /// The value as written, or `None` for a secret option.
        value: Option<String>,
        /// Why it is invalid.
        reason: String,
    },
    /// A transport URL that cannot be parsed or names a scheme this framework cannot open.
    #[error("{location}: invalid transport URL `{url}` for option `{option}` in [{section}]: {source}")]
    InvalidTransportUrl {
        /// Where the URL was written.
        location: Location,
        /// The section (group) of the option.
        section: &'static str,
        /// The option's name, as written (a deprecated name if that was used).
        option: &'static str,
        /// The URL with its passwords masked.
        url: String,
        /// What is wrong with it.
        #[source]
        source: UrlError,
    },
    /// A `$name` / `${name}` / `${section.name}` reference (oslo.config's
    /// template substitution) that cannot be resolved, or that refers to itself.
    #[error(
        "{location}: option `{option}` in [{section}]: cannot substitute `${reference}`: {reason} \
         (write `$$` for a literal `$`)"
    )]
    Substitution {
        /// Where the value holding the reference was written.
        location: Location,
        /// The section (group) of the option.
        section: &'static str,
        /// The option's name, as written (a deprecated name if that was used).
        option: &'static str,
        /// The name referenced, or `***` in a secret option.
        reference: String,
        /// Why it cannot be resolved.
        reason: String,
    },
}

fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|path| path.display().to_string()).collect();
    shown.join(", ")
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "(secret, not shown)".to_owned(),
    }
}
