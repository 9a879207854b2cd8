//! Message headers: what travels beside a body, out of band, so that peers
//! that do not know them (oslo.messaging, older versions of this crate)
//! ignore them. The request lifecycle uses them: deadlines, trace context,
//! progress notices and the name of the server that answers.

use std::borrow::Cow;
use std::fmt;

/// The most headers a message may carry; more are dropped on receipt.
pub const MAX_HEADERS: usize = 32;

/// The longest header name or value accepted on receipt, in bytes; longer
/// ones are dropped.
pub const MAX_HEADER_LEN: usize = 1024;

/// A call's deadline: milliseconds since the Unix epoch, UTC (peers' clocks
/// are assumed in sync, as for any absolute deadline). A Rust server sends
/// progress notices on a call that carries one and runs long.
pub const DEADLINE: &str = "rpc-deadline";

/// W3C trace context: `00-<trace id>-<parent span id>-<flags>`.
pub const TRACEPARENT: &str = "traceparent";

/// W3C trace context: vendor-specific trace state, passed on untouched.
pub const TRACESTATE: &str = "tracestate";

/// On a progress notice (a reply that is not the last): how often the
/// server sends them, in milliseconds. A request asks for notices by
/// carrying a [`DEADLINE`].
pub const PROGRESS: &str = "rpc-progress";

/// On replies and notices: the name of the server handling the call.
pub const SERVER: &str = "rpc-server";

/// Headers of a message: names and string values, in order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Cow<'static, str>, String)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.entries.iter_mut().find(|(key, _)| *key == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// Adds a header read from the wire, unless it is over the limits
    /// ([`MAX_HEADERS`], [`MAX_HEADER_LEN`]): what a peer sends is bounded.
    pub fn insert_received(&mut self, name: &str, value: &str) {
        if self.entries.len() < MAX_HEADERS && name.len() <= MAX_HEADER_LEN && value.len() <= MAX_HEADER_LEN {
            self.insert(name.to_owned(), value);
        }
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(name, value)| (name.as_ref(), value.as_str()))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_headers_are_bounded() {
        let mut headers = Headers::new();
        headers.insert_received("a", &"x".repeat(MAX_HEADER_LEN + 1));
        assert!(headers.is_empty());
        for i in 0..MAX_HEADERS + 5 {
            headers.insert_received(&format!("h{i}"), "v");
        }
        assert_eq!(headers.len(), MAX_HEADERS);
        headers.insert("h0", "w");
        assert_eq!(headers.get("h0"), Some("w"));
        assert_eq!(headers.len(), MAX_HEADERS);
    }
}
