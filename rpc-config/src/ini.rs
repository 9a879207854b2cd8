//! The INI parser: oslo.config's `iniparser.BaseParser` and `cfg.ConfigParser`, line for line.
//!
//! - Lines end with `\n`, `\r\n` or `\r` (Python's universal newlines).
//! - Trailing whitespace is stripped from every line; an empty line is blank.
//! - A line starting with a space or a tab continues the value of the option
//!   before it, stripped of its leading whitespace and joined with `\n`; a
//!   blank line, a comment or a section line ends the option, so an indented
//!   line after one of them is an error.
//! - `[name]` starts a section; the name is kept as written (no trimming).
//! - A line starting with `#` or `;` is a comment (not after a value: `a = b # c` is the value `b # c`).
//! - Otherwise the line is `key = value` or `key: value`, split at whichever
//!   of `=` and `:` comes first; key and value are stripped of whitespace, and
//!   a value both starting and ending with the same quote (`"` or `'`) loses
//!   those two quotes (oslo's `_split_key_value`). Keys are case-sensitive.
//! - An option before any section is an error.

use std::path::Path;

use crate::error::{Error, ParseErrorKind};

/// One `key = value` of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The section, as written in its header.
    pub section: String,
    /// The option's name.
    pub key: String,
    /// The value, continuation lines joined with `\n`.
    pub value: String,
    /// The 1-based line of the key.
    pub line: usize,
}

/// A parsed file: its sections (as written, in order, even if empty) and its entries in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IniFile {
    pub sections: Vec<String>,
    pub entries: Vec<Entry>,
}

struct Pending {
    key: String,
    value: Vec<String>,
    line: usize,
}

/// Parses the bytes of a file; `path` only names it in errors.
pub(crate) fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<IniFile, Error> {
    let error = |line: usize, kind: ParseErrorKind| Error::Parse {
        path: path.to_path_buf(),
        line,
        kind,
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(bad) => {
            let valid = bytes.get(..bad.valid_up_to()).unwrap_or_default();
            let line = 1 + valid.iter().filter(|byte| **byte == b'\n').count();
            return Err(error(line, ParseErrorKind::InvalidUtf8));
        }
    };
    parse_str(path, text)
}

/// Parses the text of a file; `path` only names it in errors.
pub(crate) fn parse_str(path: &Path, text: &str) -> Result<IniFile, Error> {
    let error = |line: usize, kind: ParseErrorKind| Error::Parse {
        path: path.to_path_buf(),
        line,
        kind,
    };
    if text.starts_with('\u{feff}') {
        return Err(error(1, ParseErrorKind::ByteOrderMark));
    }
    let mut file = IniFile::default();
    let mut section: Option<String> = None;
    let mut pending: Option<Pending> = None;

    let flush = |pending: &mut Option<Pending>, section: &Option<String>, file: &mut IniFile| {
        let Some(Pending { key, value, line }) = pending.take() else {
            return Ok(());
        };
        let Some(section) = section else {
            return Err(error(line, ParseErrorKind::NoSection));
        };
        file.entries.push(Entry {
            section: section.clone(),
            key,
            value: value.join("\n"),
            line,
        });
        Ok(())
    };

    for (index, raw) in lines(text).enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            flush(&mut pending, &section, &mut file)?;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some(pending) => pending.value.push(line.trim_start().to_owned()),
                None => return Err(error(number, ParseErrorKind::UnexpectedContinuation)),
            }
            continue;
        }
        flush(&mut pending, &section, &mut file)?;
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(error(number, ParseErrorKind::UnclosedSection));
            };
            if name.is_empty() {
                return Err(error(number, ParseErrorKind::EmptySectionName));
            }
            file.sections.push(name.to_owned());
            section = Some(name.to_owned());
        } else if line.starts_with(['#', ';']) {
            // A comment.
        } else {
            let (key, value) = split_key_value(line).ok_or_else(|| error(number, ParseErrorKind::MissingSeparator))?;
            if key.is_empty() {
                return Err(error(number, ParseErrorKind::EmptyKey));
            }
            pending = Some(Pending {
                key: key.to_owned(),
                value: vec![value.to_owned()],
                line: number,
            });
        }
    }
    flush(&mut pending, &section, &mut file)?;
    Ok(file)
}

/// Splits at the first `=` or `:`, strips both sides and one pair of matching quotes around the value.
fn split_key_value(line: &str) -> Option<(&str, &str)> {
    let at = line.find(['=', ':'])?;
    let key = line.get(..at)?.trim();
    let value = line.get(at + 1..)?.trim();
    Some((key, strip_quotes(value)))
}

/// oslo's `if value and value[0] == value[-1] and value.startswith(("\"", "'")): value = value[1:-1]`.
fn strip_quotes(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            // A lone quote is both the first and the last character: it becomes empty.
            return inner
                .strip_suffix(quote)
                .unwrap_or(if inner.is_empty() { inner } else { value });
        }
    }
    value
}

/// Lines as Python's universal newlines split them.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                (!text.is_empty()).then_some(text)
            }
            Some(at) => {
                let line = text.get(..at)?;
                let skip = if text.get(at..)?.starts_with("\r\n") { 2 } else { 1 };
                rest = text.get(at + skip..);
                Some(line)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<IniFile, Error> {
        parse_str(Path::new("test.conf"), text)
    }

    fn entries(text: &str) -> Vec<(String, String, String, usize)> {
        parse(text)
            .unwrap()
            .entries
            .into_iter()
            .map(|entry| (entry.section, entry.key, entry.value, entry.line))
            .collect()
    }

    fn kind(text: &str) -> (usize, ParseErrorKind) {
        match parse(text) {
            Err(Error::Parse { line, kind, .. }) => (line, kind),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn e(section: &str, key: &str, value: &str, line: usize) -> (String, String, String, usize) {
        (section.to_owned(), key.to_owned(), value.to_owned(), line)
    }

    #[test]
    fn separators_whitespace_and_comments() {
        let text = "# leading comment\n[DEFAULT]\n  \nfoo = bar\nbaz: qux \n; other comment\nurl = a=b:c\nt:x=y\n";
        assert_eq!(
            entries(text),
            [
                e("DEFAULT", "foo", "bar", 4),
                e("DEFAULT", "baz", "qux", 5),
                e("DEFAULT", "url", "a=b:c", 7),
                e("DEFAULT", "t", "x=y", 8),
            ]
        );
    }

    #[test]
    fn values_keep_inline_hashes_and_empty_values() {
        assert_eq!(
            entries("[s]\na = b # not a comment\nempty =\n"),
            [e("s", "a", "b # not a comment", 2), e("s", "empty", "", 3)]
        );
    }

    #[test]
    fn matching_quotes_are_stripped_once() {
        assert_eq!(
            entries("[s]\na = \"x y\"\nb = 'z'\nc = \"unclosed\nd = \"x'\ne = \"\nf = \"\"\"\n"),
            [
                e("s", "a", "x y", 2),
                e("s", "b", "z", 3),
                e("s", "c", "\"unclosed", 4),
                e("s", "d", "\"x'", 5),
                e("s", "e", "", 6),
                e("s", "f", "\"", 7),
            ]
        );
    }

    #[test]
    fn continuation_lines_join_with_newlines() {
        let text = "[s]\nmulti = one\n  two\n\tthree  \nnext = x\n";
        assert_eq!(
            entries(text),
            [e("s", "multi", "one\ntwo\nthree", 2), e("s", "next", "x", 5)]
        );
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        assert_eq!(
            entries("[s]\r\na = 1\r\nb = 2\rc = 3"),
            [e("s", "a", "1", 2), e("s", "b", "2", 3), e("s", "c", "3", 4)]
        );
    }

    #[test]
    fn sections_are_kept_as_written() {
        let file = parse("[DEFAULT]\n[ Spaced ]\nk = v\n[empty]\n").unwrap();
        assert_eq!(file.sections, ["DEFAULT", " Spaced ", "empty"]);
        assert_eq!(file.entries[0].section, " Spaced ");
    }

    #[test]
    fn repeated_keys_are_all_kept() {
        assert_eq!(
            entries("[s]\nk = 1\nk = 2\n"),
            [e("s", "k", "1", 2), e("s", "k", "2", 3)]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(kind("a = 1\n"), (1, ParseErrorKind::NoSection));
        assert_eq!(kind("# c\n\nkey = v\n  more\n[s]\n"), (3, ParseErrorKind::NoSection));
        assert_eq!(kind("[s]\nno separator here\n"), (2, ParseErrorKind::MissingSeparator));
        assert_eq!(kind("[s]\n= v\n"), (2, ParseErrorKind::EmptyKey));
        // An indented `= v` is a continuation line, and nothing precedes it.
        assert_eq!(kind("[s]\n = v\n"), (2, ParseErrorKind::UnexpectedContinuation));
        assert_eq!(kind("[s]\n  indented\n"), (2, ParseErrorKind::UnexpectedContinuation));
        assert_eq!(
            kind("[s]\na = 1\n\n  late\n"),
            (4, ParseErrorKind::UnexpectedContinuation)
        );
        assert_eq!(
            kind("[s]\na = 1\n# c\n  late\n"),
            (4, ParseErrorKind::UnexpectedContinuation)
        );
        assert_eq!(kind("[s\n"), (1, ParseErrorKind::UnclosedSection));
        assert_eq!(kind("[s]\n[]\n"), (2, ParseErrorKind::EmptySectionName));
    }

    #[test]
    fn encoding_errors() {
        let path = Path::new("x.conf");
        match parse_bytes(path, b"[s]\na = 1\nb = \xff\n") {
            Err(Error::Parse { line, kind, .. }) => assert_eq!((line, kind), (3, ParseErrorKind::InvalidUtf8)),
            other => panic!("{other:?}"),
        }
        match parse_bytes(path, "\u{feff}[s]\n".as_bytes()) {
            Err(Error::Parse { line, kind, .. }) => assert_eq!((line, kind), (1, ParseErrorKind::ByteOrderMark)),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_bytes(path, b"").unwrap(), IniFile::default());
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A small deterministic fuzz: every prefix of a nasty text, and every single-byte edit.
        let nasty = "[s]\n k\n=\n:\n[\n]\n[]]\n\"\n'\n\r\n\t\n#\n;\n[é]\né = ü\n  \u{3000}x\n\"'\n".as_bytes();
        for end in 0..=nasty.len() {
            let _ = parse_bytes(Path::new("f"), &nasty[..end]);
        }
        for at in 0..nasty.len() {
            for byte in [b'[', b']', b'=', b' ', b'\n', b'\r', 0xc3, 0xff, b'"'] {
                let mut edited = nasty.to_vec();
                edited[at] = byte;
                let _ = parse_bytes(Path::new("f"), &edited);
            }
        }
    }
}
