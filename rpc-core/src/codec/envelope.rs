//! oslo's 2.0 envelope, `{"oslo.version": "2.0", "oslo.message": "<inner
//! JSON, as a string>"}`, sealed and opened with as few passes over the
//! message as its bytes allow.
//!
//! - Sealing writes the inner message already escaped, straight into the
//!   envelope: a serde_json formatter escapes the few pieces that need it
//!   (string delimiters, escape sequences, raw fragments) and lets the rest
//!   through unscanned. (Writing the message whole, then escaping it, costs
//!   a second buffer and a pass over every byte; escaping each piece as the
//!   writer receives it costs a scan and a call per piece.)
//! - Opening reads the envelope as oslo and this crate write it without a
//!   JSON parser, and unescapes its string once into the text the inner
//!   message is parsed from (the parser unescapes into its scratch buffer,
//!   then copies out). Any other shape goes to the parser, which keeps the
//!   string as the raw token it checked and leaves the unescaping here.
//!
//! Both write and read exactly what serde_json does: the tests hold them to
//! it, and the shortcut to the parser.

use std::borrow::Cow;
use std::io;

use serde::{Deserialize, Serialize};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use serde_json::value::RawValue;

use super::oslo::sanitize_non_finite;
use crate::{CodecError, Version};

const ENVELOPE_VERSION: Version = Version::new(2, 0);

/// What goes before the inner message's escaped text, as serde_json writes
/// the envelope, and as Python's `json.dumps` does.
const SERDE_START: &str = r#"{"oslo.version":"2.0","oslo.message":""#;
const PYTHON_START: &str = r#"{"oslo.version": "2.0", "oslo.message": ""#;
/// What goes after it.
const END: &str = r#""}"#;

/// `inner`, serialized as JSON, in the 2.0 envelope.
pub(super) fn seal<T: Serialize + ?Sized>(inner: &T) -> Result<Vec<u8>, CodecError> {
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(SERDE_START.as_bytes());
    inner
        .serialize(&mut serde_json::Serializer::with_formatter(&mut body, Escaped))
        .map_err(CodecError::new)?;
    body.extend_from_slice(END.as_bytes());
    Ok(body)
}

/// serde_json's compact output, written as the contents of a JSON string.
///
/// Only quotes, backslashes and control characters need escaping there, and
/// serde_json writes every one of them through the methods below: a string's
/// delimiters, its escape sequences, and raw fragments (pre-encoded JSON).
/// Every other piece (punctuation, numbers, the plain runs of strings) goes
/// through unscanned.
struct Escaped;

impl Formatter for Escaped {
    fn begin_string<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(br#"\""#)
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(br#"\""#)
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, writer: &mut W, char_escape: CharEscape) -> io::Result<()> {
        // The escape as serde_json writes it (`\n`, `\u0001`...), escaped.
        let mut escape = [0; 6];
        let mut free = &mut escape[..];
        CompactFormatter.write_char_escape(&mut free, char_escape)?;
        let written = 6 - free.len();
        write_escaped(writer, &escape[..written])
    }

    fn write_raw_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        write_escaped(writer, fragment.as_bytes())
    }
}

/// How serde_json escapes each byte in a string: `0` for not at all, `u` for
/// `\u00XX`, any other for a backslash and that byte.
static ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Writes `bytes` as the contents of a JSON string.
fn write_escaped<W: ?Sized + io::Write>(writer: &mut W, bytes: &[u8]) -> io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        writer.write_all(&bytes[start..at])?;
        match escape {
            b'u' => writer.write_all(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ])?,
            escape => writer.write_all(&[b'\\', escape])?,
        }
        start = at + 1;
    }
    writer.write_all(&bytes[start..])
}

/// The outer body: the envelope's two keys, when present. The message stays
/// the raw string token serde_json checked: escapes well formed, no control
/// characters.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "oslo.version", default, borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(rename = "oslo.message", default, borrow)]
    message: Option<&'a RawValue>,
}

/// The inner message's text: unwrapped from the envelope, or the body itself
/// (oslo's 1.0 format). Python's bare `NaN` and `Infinity` read as `null`.
pub(super) fn open(body: &[u8]) -> Result<Cow<'_, str>, CodecError> {
    let text = std::str::from_utf8(body).map_err(|_| CodecError::new("the body is not UTF-8"))?;
    let inner = match open_as_written(text) {
        Some(inner) => inner,
        None => match open_parsed(text)? {
            Some(inner) => inner,
            None => return Ok(sanitize_non_finite(text)),
        },
    };
    Ok(match sanitize_non_finite(&inner) {
        Cow::Borrowed(_) => Cow::Owned(inner),
        Cow::Owned(sanitized) => Cow::Owned(sanitized),
    })
}

/// The envelope exactly as oslo and this crate write it, read without a
/// JSON parser: the version first, the message's string last, nothing
/// around them. `None` for any other shape, or a message that is not one
/// plain string, which the parser then reads (or refuses, saying why).
fn open_as_written(text: &str) -> Option<String> {
    let contents = [PYTHON_START, SERDE_START]
        .into_iter()
        .find_map(|start| text.strip_prefix(start))?
        .strip_suffix(END)?;
    unescape_contents(contents).ok()
}

/// The envelope read by serde_json, in any shape JSON allows (keys in any
/// order, other keys, whitespace); `None` without one (the 1.0 format).
fn open_parsed(text: &str) -> Result<Option<String>, CodecError> {
    let outer = sanitize_non_finite(text);
    let envelope: Envelope<'_> = serde_json::from_str(&outer)
        .map_err(|error| CodecError::new(format_args!("the body is not a JSON object: {error}")))?;
    let (Some(version), Some(message)) = (envelope.version, envelope.message) else {
        return Ok(None);
    };
    let supported = Version::parse(&version).is_ok_and(|version| ENVELOPE_VERSION.supports(&version));
    if !supported {
        return Err(CodecError::new(format_args!(
            "unsupported envelope version `{version}` (this peer reads {ENVELOPE_VERSION})"
        )));
    }
    unescape(message.get()).map(Some)
}

/// The text of a JSON string token (quotes included), its escapes decoded.
fn unescape(token: &str) -> Result<String, CodecError> {
    let contents = token
        .strip_prefix('"')
        .and_then(|token| token.strip_suffix('"'))
        .ok_or_else(not_a_string)?;
    unescape_contents(contents)
}

/// A JSON string's contents, its escapes decoded. Refused as serde_json
/// refuses them in a string: a bare quote or control character, a malformed
/// escape, a surrogate without its pair.
fn unescape_contents(contents: &str) -> Result<String, CodecError> {
    let bytes = contents.as_bytes();
    let mut text = String::with_capacity(contents.len());
    let (mut copied, mut at) = (0, 0);
    while let Some(&byte) = bytes.get(at) {
        // The bytes a string cannot hold bare: quotes, backslashes, controls.
        if ESCAPE[usize::from(byte)] == 0 {
            at += 1;
            continue;
        }
        if byte != b'\\' {
            return Err(not_a_string());
        }
        text.push_str(&contents[copied..at]);
        let (decoded, used) = match bytes.get(at + 1) {
            // The escaped character stands for itself: it is copied with
            // the run after it (most escapes in an envelope are quotes).
            Some(b'"' | b'\\' | b'/') => {
                copied = at + 1;
                at += 2;
                continue;
            }
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => unicode_escape(&contents[at..])?,
            _ => return Err(invalid_escape()),
        };
        text.push(decoded);
        at += used;
        copied = at;
    }
    text.push_str(&contents[copied..]);
    Ok(text)
}

/// The character a `\uXXXX` escape at the start of `escape` stands for, or a
/// surrogate pair of them, and how many bytes that took.
fn unicode_escape(escape: &str) -> Result<(char, usize), CodecError> {
    let first = hex4(escape, 2)?;
    let (code, used) = match first {
        0xd800..=0xdbff => {
            if escape.get(6..8) != Some("\\u") {
                return Err(lone_surrogate());
            }
            let second = hex4(escape, 8)?;
            if !(0xdc00..=0xdfff).contains(&second) {
                return Err(lone_surrogate());
            }
            (0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00), 12)
        }
        0xdc00..=0xdfff => return Err(lone_surrogate()),
        code => (code, 6),
    };
    char::from_u32(code)
        .map(|decoded| (decoded, used))
        .ok_or_else(invalid_escape)
}

/// The four hex digits at `at` in `escape`.
fn hex4(escape: &str, at: usize) -> Result<u32, CodecError> {
    let digits = escape.get(at..at + 4).ok_or_else(invalid_escape)?;
    if !digits.bytes().all(|digit| digit.is_ascii_hexdigit()) {
        return Err(invalid_escape());
    }
    u32::from_str_radix(digits, 16).map_err(|_| invalid_escape())
}

fn not_a_string() -> CodecError {
    CodecError::new("the body is not a JSON object: `oslo.message` is not a string")
}

fn invalid_escape() -> CodecError {
    CodecError::new("the body is not a JSON object: an invalid escape in `oslo.message`")
}

fn lone_surrogate() -> CodecError {
    CodecError::new("the body is not a JSON object: a lone surrogate in `oslo.message`")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// What serde_json writes for the envelope, the way the codec sealed it
    /// before.
    fn sealed_by_serde<T: Serialize + ?Sized>(inner: &T) -> Vec<u8> {
        #[derive(Serialize)]
        struct Sealed<'a> {
            #[serde(rename = "oslo.version")]
            version: &'a str,
            #[serde(rename = "oslo.message")]
            message: &'a str,
        }
        let message = serde_json::to_string(inner).unwrap();
        serde_json::to_vec(&Sealed {
            version: "2.0",
            message: &message,
        })
        .unwrap()
    }

    /// `seal` writes exactly the bytes serde_json writes for the envelope.
    #[track_caller]
    fn assert_sealed_as_serde<T: Serialize + ?Sized>(inner: &T) {
        assert_eq!(
            String::from_utf8(seal(inner).unwrap()).unwrap(),
            String::from_utf8(sealed_by_serde(inner)).unwrap()
        );
    }

    /// Every character class serde_json escapes, and some it does not.
    fn awkward_values() -> Vec<serde_json::Value> {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        vec![
            json!({}),
            json!({"a": 1, "b": [true, null, 2.5]}),
            json!({"quote": "say \"hi\"", "slash": "a\\b/c"}),
            json!({"controls": every_control, "del": "\u{7f}"}),
            json!({"unicode": "héllo wörld 日本 🦀", "zero": "\u{0}"}),
            json!({"nested": "{\"inner\": \"\\\"escaped\\\"\"}"}),
            json!(["lone backslash at end \\"]),
        ]
    }

    #[test]
    fn seals_as_serde_json_does() {
        for value in awkward_values() {
            assert_sealed_as_serde(&value);
        }
    }

    /// Keys that are not strings are written quoted, through the same
    /// methods as strings.
    #[test]
    fn seals_other_keys_and_characters_as_serde_json_does() {
        let value: std::collections::BTreeMap<i32, (char, char, Option<f64>)> =
            [(-1, ('"', '\\', Some(f64::NAN))), (7, ('\n', 'é', None))].into();
        assert_sealed_as_serde(&value);
    }

    /// Pre-encoded JSON (a request's arguments) reaches the writer as one
    /// raw fragment, escaped whole.
    #[test]
    fn seals_raw_fragments_as_serde_json_does() {
        #[derive(Serialize)]
        struct WithRaw<'a> {
            args: &'a RawValue,
            count: u8,
        }
        let args: &RawValue = serde_json::from_str(r#"{"quote": "a\"b", "list": [1, "\n\u0001"], "n": null}"#).unwrap();
        let value = WithRaw { args, count: 1 };
        assert_sealed_as_serde(&value);
    }

    /// The escaper alone, on text serde_json's output never holds (raw
    /// control characters): every ASCII character, and wider ones.
    #[test]
    fn escapes_every_character_as_serde_json_does() {
        let text: String = (0u8..0x80)
            .map(char::from)
            .chain(['\u{e9}', '\u{2028}', '\u{1f980}'])
            .collect();
        let mut escaped = Vec::new();
        write_escaped(&mut escaped, text.as_bytes()).unwrap();
        let quoted = serde_json::to_string(&text).unwrap();
        assert_eq!(String::from_utf8(escaped).unwrap(), quoted[1..quoted.len() - 1]);
    }

    #[test]
    fn opens_what_it_seals_and_what_python_writes() {
        for value in awkward_values() {
            let body = sealed_by_serde(&value);
            let inner = open(&body).unwrap();
            assert_eq!(serde_json::from_str::<serde_json::Value>(&inner).unwrap(), value);
            assert_eq!(inner, serde_json::to_string(&value).unwrap());
        }
        // Python's json.dumps: spaces, and every non-ASCII character escaped
        // (a surrogate pair beyond the BMP).
        let python = br#"{"oslo.version": "2.0", "oslo.message": "{\"text\": \"h\u00e9 \ud83e\udd80 \u65e5\", \"tab\": \"\\t\\/\"}"}"#;
        let inner = open(python).unwrap();
        assert_eq!(inner, "{\"text\": \"h\u{e9} \u{1f980} \u{65e5}\", \"tab\": \"\\t\\/\"}");
        // Both writers' envelopes take the shortcut past the JSON parser.
        assert!(open_as_written(std::str::from_utf8(python).unwrap()).is_some());
        let ours = seal(&json!({"a": "b"})).unwrap();
        assert_eq!(
            open_as_written(std::str::from_utf8(&ours).unwrap()).as_deref(),
            Some(r#"{"a":"b"}"#)
        );
        // Another shape (another key after the message) is the parser's.
        let extra = br#"{"oslo.version": "2.0", "oslo.message": "{}", "extra": "x"}"#;
        assert_eq!(open_as_written(std::str::from_utf8(extra).unwrap()), None);
        assert_eq!(open(extra).unwrap(), "{}");
    }

    #[test]
    fn unescapes_every_escape_as_serde_json_does() {
        let tokens = [
            r#""""#,
            r#""plain""#,
            r#""\"\\\/\b\f\n\r\t""#,
            r#""\u0000\u001f\u00e9\u20AC\uD83E\uDD80""#,
            r#""ends with an escape \n""#,
            r#""\\u0041 is not an escape""#,
        ];
        for token in tokens {
            assert_eq!(
                unescape(token).unwrap(),
                serde_json::from_str::<String>(token).unwrap(),
                "{token}"
            );
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses_in_a_string() {
        let tokens = [
            r#""\ud800""#,
            r#""\ud800 and more""#,
            r#""\ud800\u0041""#,
            r#""\udc00""#,
            r#""\x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\u+123""#,
            r#""trailing \"#,
        ];
        for token in tokens {
            assert!(serde_json::from_str::<String>(token).is_err(), "{token}");
            assert!(unescape(token).is_err(), "{token}");
        }
        // Through the envelope, serde_json refuses the malformed ones first;
        // lone surrogates are ours to refuse.
        for message in [r#""\ud800""#, r#""\x""#, "\"\u{1}\"", "42", "[\"a\"]"] {
            let body = format!(r#"{{"oslo.version": "2.0", "oslo.message": {message}}}"#);
            let error = open(body.as_bytes()).unwrap_err();
            assert!(error.to_string().contains("not a JSON object"), "{message}: {error}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_text_seals_and_opens_as_serde_json_does(text in any::<String>()) {
            let value = json!({"text": text, "list": [text]});
            let sealed = seal(&value).unwrap();
            prop_assert_eq!(&sealed, &sealed_by_serde(&value));
            prop_assert_eq!(open(&sealed).unwrap(), serde_json::to_string(&value).unwrap());
        }

        /// Whatever follows the envelope's usual start, the shortcut reads
        /// what the parser reads, or leaves it to the parser.
        #[test]
        fn the_shortcut_reads_what_the_parser_reads(
            contents in r#"(\\|\\u[0-9a-fA-F]{0,4}|\\u[dD][89abAB][0-9a-f]{2}|\\[nrtbf/"x]|"|, "extra": "|\x01|[a-z{}\u{e9}])*"#,
            python in any::<bool>(),
        ) {
            let start = if python { PYTHON_START } else { SERDE_START };
            let body = format!("{start}{contents}{END}");
            if let Some(inner) = open_as_written(&body) {
                prop_assert_eq!(Some(inner), open_parsed(&body).ok().flatten(), "{}", body);
            }
        }

        /// Any string token serde_json lets through as a raw value decodes
        /// as serde_json decodes it, or is refused when serde_json refuses it.
        #[test]
        fn any_escapes_decode_as_serde_json_does(body in r#"(\\|\\u[0-9a-fA-F]{0,4}|\\u[dD][89abAB][0-9a-f]{2}|\\u[dD][c-fC-F][0-9a-f]{2}|\\[nrtbf/"x]|[a-z\u{e9}\u{1f980}])*"#) {
            let token = format!("\"{body}\"");
            if serde_json::from_str::<&RawValue>(&token).is_ok() {
                prop_assert_eq!(unescape(&token).ok(), serde_json::from_str::<String>(&token).ok(), "{}", token);
            }
        }
    }
}
