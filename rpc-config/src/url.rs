//! oslo.messaging's transport URL: `TransportURL.parse` in `oslo_messaging/transport.py`.
//!
//! `scheme://[user[:password]@]host[:port][,[user[:password]@]host[:port]...]/[virtual_host][?query]`
//!
//! As oslo parses it (with Python's `urllib.parse.urlsplit` underneath):
//! - leading control characters and spaces are dropped, and tabs and line
//!   breaks removed anywhere (so a URL continued on an indented line works);
//! - the scheme is lower-cased; it must be one this framework opens
//!   ([`Scheme`]);
//! - the host list runs from `//` to the first `/`, `?` or `#`; it is split at
//!   commas, empty entries skipped. Each host has its own credentials, none
//!   inherited from another: `user:pass@` up to the host's last `@`, split at
//!   the first `:`, both percent-decoded; without `@` the host has neither;
//! - a host is `name`, `name:port`, `[ipv6]` or `[ipv6]:port`; an IPv6
//!   address with a port must be bracketed (a bare one has no port). Host
//!   names are not percent-decoded. The port is optional: none is written
//!   when the URL gives none (the transport picks 5672, as oslo does, with
//!   TLS too; 5671 only for AMQP's own `amqps://` and `amqp://...?ssl=true`);
//! - the virtual host is the path after its first `/`, percent-decoded:
//!   absent without a path, empty for a lone `/`, and `/` for `//` (kolla's
//!   `...:5672//`); `//nova` is the vhost `/nova`;
//! - the query is `parse_qs`'d: `&`-separated `key=value` pairs, `+` as a
//!   space, percent-decoded, pairs without `=` or with an empty value dropped,
//!   and the values of a repeated key joined with `,` (one pair per key, in the
//!   order of first appearance);
//! - a `#fragment` is dropped.

use std::fmt;
use std::net::Ipv6Addr;

/// A URL scheme this framework can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `rabbit://`: oslo.messaging's RabbitMQ driver (TLS with `?ssl=true`).
    Rabbit,
    /// `kombu://`: oslo's older name of the RabbitMQ driver.
    Kombu,
    /// `amqp://`: AMQP 0-9-1 (RabbitMQ).
    Amqp,
    /// `amqps://`: AMQP 0-9-1 over TLS.
    Amqps,
    /// `memory://`: the in-process transport, for tests.
    Memory,
}

impl Scheme {
    /// The schemes accepted.
    pub const ALL: [Scheme; 5] = [
        Scheme::Rabbit,
        Scheme::Kombu,
        Scheme::Amqp,
        Scheme::Amqps,
        Scheme::Memory,
    ];

    /// The scheme as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Rabbit => "rabbit",
            Scheme::Kombu => "kombu",
            Scheme::Amqp => "amqp",
            Scheme::Amqps => "amqps",
            Scheme::Memory => "memory",
        }
    }

    fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|scheme| scheme.as_str() == name)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transport URL is invalid. Never contains a password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme:` (oslo's "No scheme specified").
    #[error("no scheme specified (expected `rabbit://...`)")]
    NoScheme,
    /// A scheme this framework cannot open (oslo would fail to load its driver).
    #[error("unsupported scheme `{0}` (supported: rabbit, kombu, amqp, amqps, memory)")]
    UnsupportedScheme(String),
    /// A badly bracketed IPv6 host, or a bracketed host that is not an IPv6 address.
    #[error("invalid IPv6 host `{0}`")]
    InvalidIpv6(String),
    /// A port that is not a number from 0 to 65535; the host as written (without credentials).
    #[error("invalid port in host `{0}`")]
    InvalidPort(String),
    /// The host list ends at a `/`, `?` or `#` that an `@` follows: most
    /// likely a user name or password holding one of them unencoded. None
    /// of the URL is shown, since any of it may be the password.
    #[error(
        "the host list does not parse, and an `@` follows: a user name or password holding `/`, `?`, `#` or `,` must be percent-encoded (`%2F`, `%3F`, `%23`, `%2C`)"
    )]
    UnencodedCredentials,
    /// An `@` but no `//` before it: credentials outside a host list
    /// (`rabbit:/user:pass@host`). None of the URL is shown.
    #[error("the URL has credentials but no `//` before them: write `rabbit://user:pass@host:port/`")]
    NoHostList,
}

/// One broker of a transport URL (oslo's `TransportHost`).
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransportHost {
    /// The host name or address (an IPv6 address without brackets); `None` for an entry like `user:pass@`.
    pub hostname: Option<String>,
    /// The port, if written.
    pub port: Option<u16>,
    /// The user name, percent-decoded, if credentials were written.
    pub username: Option<String>,
    password: Option<String>,
}

impl TransportHost {
    /// A host; credentials are given with [`with_credentials`](TransportHost::with_credentials).
    pub fn new(hostname: impl Into<String>, port: Option<u16>) -> TransportHost {
        TransportHost {
            hostname: Some(hostname.into()),
            port,
            username: None,
            password: None,
        }
    }

    /// The same host with a user name and password.
    pub fn with_credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> TransportHost {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// The password, percent-decoded (`Some("")` for `user:@host`, `None` for `user@host`).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Writes the host as oslo's `TransportURL.__str__` does, with the password masked.
    fn write_masked(&self, out: &mut String) {
        if self.username.is_some() || self.password.is_some() {
            if let Some(username) = &self.username {
                out.push_str(&quote(username, ""));
            }
            if self.password.is_some() {
                // Only whether there is a password shows, not even its length.
                out.push_str(":***");
            }
            out.push('@');
        }
        if let Some(hostname) = self.hostname.as_deref().filter(|hostname| !hostname.is_empty()) {
            if hostname.contains(':') {
                out.push('[');
                out.push_str(hostname);
                out.push(']');
            } else {
                out.push_str(hostname);
            }
        }
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
    }
}

impl fmt::Debug for TransportHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = String::new();
        self.write_masked(&mut shown);
        f.write_str(&shown)
    }
}

/// A parsed transport URL.
///
/// `Display` writes it as oslo's `TransportURL.__str__` does, with every
/// password replaced by `***`, for logs; `Debug` masks passwords too.
/// [`full_url`](TransportUrl::full_url) gives the URL with its passwords,
/// for the transport.
///
/// ```
/// use rpc_config::{Scheme, TransportUrl};
/// let url = TransportUrl::parse("rabbit://nova:s%40cret@10.0.0.11:5672,nova:s%40cret@[fd00::12]//nova?ssl=1")?;
/// assert_eq!(url.scheme(), Scheme::Rabbit);
/// assert_eq!(url.hosts()[0].password(), Some("s@cret"));
/// assert_eq!(url.hosts()[1].hostname.as_deref(), Some("fd00::12"));
/// assert_eq!(url.hosts()[1].port, None);
/// assert_eq!(url.virtual_host(), Some("/nova"));
/// assert_eq!(url.query_value("ssl"), Some("1"));
/// assert_eq!(url.to_string(), "rabbit://nova:***@10.0.0.11:5672,nova:***@[fd00::12]//nova?ssl=1");
/// # Ok::<(), rpc_config::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TransportUrl {
    scheme: Scheme,
    hosts: Vec<TransportHost>,
    virtual_host: Option<String>,
    query: Vec<(String, String)>,
    full: String,
}

impl TransportUrl {
    /// Parses a URL as oslo's `TransportURL.parse` does (see the module docs).
    pub fn parse(url: &str) -> Result<TransportUrl, UrlError> {
        // urlsplit: strip leading C0 controls and spaces, remove tabs and line breaks.
        let cleaned: String = url
            .trim_start_matches(|c: char| c <= ' ')
            .chars()
            .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
            .collect();
        let (scheme, rest) = split_scheme(&cleaned).ok_or(UrlError::NoScheme)?;
        let scheme = Scheme::from_name(&scheme).ok_or(UrlError::UnsupportedScheme(scheme))?;
        let (netloc, rest) = match rest.strip_prefix("//") {
            Some(after) => after.split_at(after.find(['/', '?', '#']).unwrap_or(after.len())),
            // oslo would read `user:pass@host` as the virtual host, and show it.
            None if rest.contains('@') => return Err(UrlError::NoHostList),
            None => ("", rest),
        };
        // An `@` after the host list: most likely in a password holding an
        // unencoded `/`, `?` or `#`, which ended the host list inside it.
        let at_after_hosts = rest.contains('@');
        let rest = rest.split_once('#').map_or(rest, |(before, _fragment)| before);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let virtual_host = path.strip_prefix('/').map(unquote);
        let mut hosts = Vec::new();
        let entries: Vec<&str> = netloc.split(',').collect();
        for (index, entry) in entries.iter().enumerate().filter(|(_, entry)| !entry.is_empty()) {
            // `user:pa/ss@host` or `user:pa,ss@host`: the host list ends, or
            // an entry does, inside the password, so the error would show a
            // piece of it as a host or port.
            let split_credentials = !entry.contains('@')
                && (entries[index + 1..].iter().any(|later| later.contains('@'))
                    || (!netloc.contains('@') && at_after_hosts));
            let host = parse_host(entry).map_err(|error| {
                if split_credentials {
                    UrlError::UnencodedCredentials
                } else {
                    error
                }
            })?;
            hosts.push(host);
        }
        Ok(TransportUrl {
            scheme,
            hosts,
            virtual_host,
            query: parse_query(query),
            full: cleaned,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The brokers, in the order written (possibly none: `rabbit://`).
    pub fn hosts(&self) -> &[TransportHost] {
        &self.hosts
    }

    /// The virtual host, percent-decoded: `None` without a path, `Some("")`
    /// for `.../`, `Some("/")` for `...//`.
    pub fn virtual_host(&self) -> Option<&str> {
        self.virtual_host.as_deref()
    }

    /// The query options, one pair per key, in order of first appearance.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }

    /// A query option's value.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Whether some hosts have credentials and others not (oslo logs a warning: "All hosts must be set with
    /// username/password or not at the same time").
    pub fn has_mixed_credentials(&self) -> bool {
        let with = |host: &&TransportHost| host.username.is_some() && host.password.is_some();
        let count = self.hosts.iter().filter(with).count();
        count > 0 && count < self.hosts.len()
    }

    /// The URL with its passwords, as given (without its leading spaces, tabs
    /// and line breaks), for the transport. Never log it: log `self` instead.
    pub fn full_url(&self) -> &str {
        &self.full
    }

    /// [`full_url`](TransportUrl::full_url) with query options added for the
    /// keys the URL does not set: the URL's own options win, as in oslo,
    /// where the URL's query overrides the configuration file.
    ///
    /// ```
    /// use rpc_config::TransportUrl;
    /// let url = TransportUrl::parse("rabbit://u:p@h//?heartbeat_timeout_threshold=20")?;
    /// let extra = [("heartbeat_timeout_threshold", "60".to_owned()), ("rabbit_quorum_queue", "true".to_owned())];
    /// assert_eq!(url.full_url_with(&extra), "rabbit://u:p@h//?heartbeat_timeout_threshold=20&rabbit_quorum_queue=true");
    /// # Ok::<(), rpc_config::UrlError>(())
    /// ```
    pub fn full_url_with<K: AsRef<str>, V: AsRef<str>>(&self, options: &[(K, V)]) -> String {
        let added: Vec<String> = options
            .iter()
            // Set in the URL under either of its names (`heartbeat` is
            // `heartbeat_timeout_threshold` to the AMQP transport): the
            // URL's wins (the file's came after it, and won, until 2026-12-05).
            .filter(|(key, _)| names_of(key.as_ref()).all(|name| self.query_value(name).is_none()))
            .map(|(key, value)| format!("{}={}", quote_plus(key.as_ref()), quote_plus(value.as_ref())))
            .collect();
        if added.is_empty() {
            return self.full.clone();
        }
        let (body, fragment) = match self.full.split_once('#') {
            Some((body, fragment)) => (body, Some(fragment)),
            None => (self.full.as_str(), None),
        };
        let mut url = body.to_owned();
        if !url.contains('?') {
            url.push('?');
        } else if !url.ends_with(['?', '&']) {
            url.push('&');
        }
        url.push_str(&added.join("&"));
        if let Some(fragment) = fragment {
            url.push('#');
            url.push_str(fragment);
        }
        url
    }

    fn write_masked(&self) -> String {
        let mut out = format!("{}://", self.scheme);
        for (index, host) in self.hosts.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            host.write_masked(&mut out);
        }
        out.push('/');
        if let Some(virtual_host) = self.virtual_host.as_deref() {
            out.push_str(&quote(virtual_host, "/"));
        }
        if !self.query.is_empty() {
            out.push('?');
            let pairs: Vec<String> = self
                .query
                .iter()
                .map(|(key, value)| format!("{}={}", quote_plus(key), quote_plus(value)))
                .collect();
            out.push_str(&pairs.join("&"));
        }
        out
    }
}

/// The URL with passwords masked, as oslo's `TransportURL.__str__` writes it.
impl fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.write_masked())
    }
}

impl fmt::Debug for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransportUrl({})", self.write_masked())
    }
}

/// Masks the passwords of a URL that may not parse, for error messages.
pub(crate) fn redact(url: &str) -> String {
    if let Ok(parsed) = TransportUrl::parse(url) {
        return parsed.to_string();
    }
    // Mask everything between `//` and the last `@`: a password holding an
    // unencoded `/`, `?` or `#` (which end the host list) stays hidden too.
    // A URL that does not parse may show less than it could; never more.
    // Without `//` after the scheme, what follows the scheme up to the last `@`.
    let Some(colon) = url.find(':') else {
        return url.to_owned();
    };
    let start = if url[colon + 1..].starts_with("//") {
        colon + 3
    } else {
        colon + 1
    };
    let tail = url.get(start..).unwrap_or_default();
    match tail.rfind('@') {
        Some(at) => format!(
            "{}***{}",
            url.get(..start).unwrap_or_default(),
            tail.get(at..).unwrap_or_default()
        ),
        None => url.to_owned(),
    }
}

/// urlsplit's scheme rule: ASCII letter first, then letters, digits, `+`, `-`, `.`, up to a `:`.
fn split_scheme(url: &str) -> Option<(String, &str)> {
    let colon = url.find(':')?;
    let scheme = url.get(..colon)?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), url.get(colon + 1..)?))
}

/// One host entry: credentials, then oslo_utils' `netutils.parse_host_port`.
fn parse_host(entry: &str) -> Result<TransportHost, UrlError> {
    let (userinfo, hostport) = match entry.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, entry),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, password)) => (Some(unquote(user)), Some(unquote(password))),
            None => (Some(unquote(userinfo)), None),
        },
    };
    let (hostname, port) = if hostport.is_empty() {
        (None, None)
    } else if let Some(bracketed) = hostport.strip_prefix('[') {
        let invalid = || UrlError::InvalidIpv6(hostport.to_owned());
        let (address, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        if after.contains(']') || !(after.is_empty() || after.starts_with(':')) || !is_ipv6(address) {
            return Err(invalid());
        }
        // `_port.split(':')[1]`: what follows the first `:` after `]`, up to any next `:`.
        let port = after
            .strip_prefix(':')
            .map(|port| port.split(':').next().unwrap_or_default());
        (Some(address.to_owned()), port)
    } else if hostport.contains('[') || hostport.contains(']') {
        return Err(UrlError::InvalidIpv6(hostport.to_owned()));
    } else if hostport.matches(':').count() == 1 {
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, ""));
        (Some(host.to_owned()), Some(port))
    } else {
        // No port, or an unbracketed IPv6 address (which cannot have one).
        (Some(hostport.to_owned()), None)
    };
    let port = match port {
        None => None,
        Some(text) => Some(parse_port(text).ok_or_else(|| UrlError::InvalidPort(hostport.to_owned()))?),
    };
    Ok(TransportHost {
        hostname,
        port,
        username,
        password,
    })
}

fn is_ipv6(address: &str) -> bool {
    // Python's ipaddress accepts a `%zone` suffix.
    let address = address.split_once('%').map_or(address, |(address, _zone)| address);
    address.parse::<Ipv6Addr>().is_ok()
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `urllib.parse.parse_qs` (without `keep_blank_values`), repeated keys joined with `,` as oslo does.
fn parse_query(query: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in query.split('&') {
        let Some((key, value)) = piece.split_once('=') else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let key = unquote(&key.replace('+', " "));
        let value = unquote(&value.replace('+', " "));
        match pairs.iter_mut().find(|(name, _)| *name == key) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => pairs.push((key, value)),
        }
    }
    pairs
}

/// `urllib.parse.unquote`: `%XX` decoded, other `%` kept, invalid UTF-8 replaced.
fn unquote(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|digit| (*digit as char).to_digit(16));
            let low = bytes.get(index + 2).and_then(|digit| (*digit as char).to_digit(16));
            if let (Some(high), Some(low)) = (high, low) {
                // Two hex digits make a byte: high * 16 + low <= 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'%'));
                index += 3;
                continue;
            }
        }
        out.push(byte);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `urllib.parse.quote(text, safe)`: everything but letters, digits, `_.-~` and `safe` percent-encoded.
fn quote(text: &str, safe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) || safe.as_bytes().contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `urllib.parse.quote_plus`: as `quote(text, "")` but spaces become `+`.
fn quote_plus(text: &str) -> String {
    quote(text, " ").replace(' ', "+")
}

/// The AMQP transport's short names of oslo's options, each pair one
/// option: a URL setting it by either name sets it.
const ALIASES: [(&str, &str); 16] = [
    ("heartbeat", "heartbeat_timeout_threshold"),
    ("prefetch", "rabbit_qos_prefetch_count"),
    ("durable", "amqp_durable_queues"),
    ("auto_delete", "amqp_auto_delete"),
    ("quorum", "rabbit_quorum_queue"),
    ("transient_quorum", "rabbit_transient_quorum_queue"),
    ("quorum_delivery_limit", "rabbit_quorum_delivery_limit"),
    ("quorum_max_memory_length", "rabbit_quorum_max_memory_length"),
    ("quorum_max_memory_bytes", "rabbit_quorum_max_memory_bytes"),
    ("cancel_on_failover", "enable_cancel_on_failover"),
    ("transient_queues_ttl", "rabbit_transient_queues_ttl"),
    ("retry_interval", "rabbit_retry_interval"),
    ("max_retry_interval", "rabbit_interval_max"),
    ("failover_strategy", "kombu_failover_strategy"),
    ("reply_retry_timeout", "kombu_missing_consumer_retry_timeout"),
    ("kombu_reconnect_timeout", "kombu_missing_consumer_retry_timeout"),
];

/// `key` and the other names of its option.
fn names_of(key: &str) -> impl Iterator<Item = &str> {
    std::iter::once(key).chain(ALIASES.iter().filter_map(move |&(short, oslo)| {
        if short == key {
            Some(oslo)
        } else if oslo == key {
            Some(short)
        } else {
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, port: Option<u16>) -> TransportHost {
        TransportHost::new(name, port)
    }

    #[test]
    fn kolla_multi_host_url() {
        let url = TransportUrl::parse(
            "rabbit://openstack:secret@10.0.0.11:5672,openstack:secret@10.0.0.12:5672,openstack:secret@10.0.0.13:5672//",
        )
        .unwrap();
        assert_eq!(url.scheme(), Scheme::Rabbit);
        assert_eq!(
            url.hosts(),
            [
                host("10.0.0.11", Some(5672)).with_credentials("openstack", "secret"),
                host("10.0.0.12", Some(5672)).with_credentials("openstack", "secret"),
                host("10.0.0.13", Some(5672)).with_credentials("openstack", "secret"),
            ]
        );
        assert_eq!(url.virtual_host(), Some("/"));
        assert!(url.query().is_empty());
        assert_eq!(
            url.to_string(),
            "rabbit://openstack:***@10.0.0.11:5672,openstack:***@10.0.0.12:5672,openstack:***@10.0.0.13:5672//"
        );
    }

    #[test]
    fn credentials_are_per_host_and_never_inherited() {
        let url = TransportUrl::parse("amqp://u1:p1@h1:5672,h2,u3@h3:5673,u4:@h4").unwrap();
        let hosts = url.hosts();
        assert_eq!(hosts[0], host("h1", Some(5672)).with_credentials("u1", "p1"));
        assert_eq!(hosts[1], host("h2", None));
        assert_eq!((hosts[2].username.as_deref(), hosts[2].password()), (Some("u3"), None));
        assert_eq!(hosts[2].port, Some(5673));
        assert_eq!(hosts[3], host("h4", None).with_credentials("u4", ""));
        assert!(url.has_mixed_credentials());
        assert_eq!(url.virtual_host(), None);
        assert_eq!(url.to_string(), "amqp://u1:***@h1:5672,h2,u3@h3:5673,u4:***@h4/");
    }

    #[test]
    fn percent_decoding_and_at_signs() {
        let url = TransportUrl::parse("rabbit://us%40er@realm:p%3Ass%2Fw%25@broker:5671/my%2Fvhost").unwrap();
        let broker = &url.hosts()[0];
        // The user ends at the first `:`, the credentials at the last `@`.
        assert_eq!(broker.username.as_deref(), Some("us@er@realm"));
        assert_eq!(broker.password(), Some("p:ss/w%"));
        assert_eq!(url.virtual_host(), Some("my/vhost"));
        assert_eq!(unquote("%zz%4"), "%zz%4");
        assert_eq!(unquote("%C3%A9%ff"), "é\u{fffd}");
        assert_eq!(
            url.full_url(),
            "rabbit://us%40er@realm:p%3Ass%2Fw%25@broker:5671/my%2Fvhost",
            "the full URL is kept as written"
        );
        assert_eq!(url.to_string(), "rabbit://us%40er%40realm:***@broker:5671/my/vhost");
    }

    #[test]
    fn ipv6_hosts() {
        let url =
            TransportUrl::parse("amqp://u:p@[::1]:5672,[fe80::1%25eth0],[2001:db8::7]:5673,2001:db8::8/").unwrap();
        let hosts = url.hosts();
        assert_eq!((hosts[0].hostname.as_deref(), hosts[0].port), (Some("::1"), Some(5672)));
        assert_eq!(
            (hosts[1].hostname.as_deref(), hosts[1].port),
            (Some("fe80::1%25eth0"), None)
        );
        assert_eq!(
            (hosts[2].hostname.as_deref(), hosts[2].port),
            (Some("2001:db8::7"), Some(5673))
        );
        assert_eq!(
            (hosts[3].hostname.as_deref(), hosts[3].port),
            (Some("2001:db8::8"), None)
        );
        assert_eq!(
            url.to_string(),
            "amqp://u:***@[::1]:5672,[fe80::1%25eth0],[2001:db8::7]:5673,[2001:db8::8]/"
        );
        for bad in [
            "amqp://[::1",
            "amqp://::1]:5672",
            "amqp://[10.0.0.1]:5672",
            "amqp://[::1]x",
            "amqp://[::1]]",
        ] {
            assert!(
                matches!(TransportUrl::parse(bad), Err(UrlError::InvalidIpv6(_))),
                "{bad}: {:?}",
                TransportUrl::parse(bad)
            );
        }
    }

    #[test]
    fn virtual_hosts() {
        let vhost = |url: &str| TransportUrl::parse(url).unwrap().virtual_host().map(str::to_owned);
        assert_eq!(vhost("rabbit://h"), None);
        assert_eq!(vhost("rabbit://h/"), Some(String::new()));
        assert_eq!(vhost("rabbit://h//"), Some("/".to_owned()));
        assert_eq!(vhost("rabbit://h//nova"), Some("/nova".to_owned()));
        assert_eq!(vhost("rabbit://h/%2Fnova"), Some("/nova".to_owned()));
        assert_eq!(vhost("rabbit://h/nova?x=1#frag"), Some("nova".to_owned()));
        assert_eq!(vhost("rabbit://h?x=1"), None);
    }

    #[test]
    fn query_like_parse_qs() {
        let url = TransportUrl::parse("rabbit://h/?ssl=1&a=x&a=y&empty=&flag&sp=a+b%20c&&ssl_ca_file=%2Fetc%2Fca.pem")
            .unwrap();
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(
            url.query(),
            owned(&[
                ("ssl", "1"),
                ("a", "x,y"),
                ("sp", "a b c"),
                ("ssl_ca_file", "/etc/ca.pem")
            ])
        );
        assert_eq!(url.query_value("a"), Some("x,y"));
        assert_eq!(url.query_value("empty"), None);
        assert_eq!(
            url.to_string(),
            "rabbit://h/?ssl=1&a=x%2Cy&sp=a+b+c&ssl_ca_file=%2Fetc%2Fca.pem"
        );
    }

    #[test]
    fn schemes() {
        for (text, scheme) in [
            ("rabbit://", Scheme::Rabbit),
            ("RABBIT://h", Scheme::Rabbit),
            ("kombu://h", Scheme::Kombu),
            ("amqp://h", Scheme::Amqp),
            ("amqps://h", Scheme::Amqps),
            ("memory://", Scheme::Memory),
            ("memory:", Scheme::Memory),
        ] {
            assert_eq!(TransportUrl::parse(text).unwrap().scheme(), scheme, "{text}");
        }
        assert_eq!(TransportUrl::parse("rabbit://").unwrap().hosts(), []);
        assert_eq!(
            TransportUrl::parse("kafka://u:secret@h:9092").unwrap_err(),
            UrlError::UnsupportedScheme("kafka".to_owned())
        );
        for bad in ["", "no-scheme-here", "//h/", "1abc://h", "ra bbit://h", ":foo"] {
            assert_eq!(TransportUrl::parse(bad).unwrap_err(), UrlError::NoScheme, "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(TransportUrl::parse("rabbit://h:0").unwrap().hosts()[0].port, Some(0));
        for (bad, host) in [
            ("rabbit://u:p@h:", "h:"),
            ("rabbit://h:99999", "h:99999"),
            ("rabbit://h:+1", "h:+1"),
            ("rabbit://[::1]:x", "[::1]:x"),
        ] {
            assert_eq!(
                TransportUrl::parse(bad),
                Err(UrlError::InvalidPort(host.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn continuation_lines_and_spaces_are_removed() {
        let url = TransportUrl::parse("  rabbit://u:p@h1:5672,\nu:p@h2:5672//").unwrap();
        assert_eq!(url.hosts().len(), 2);
        assert_eq!(url.full_url(), "rabbit://u:p@h1:5672,u:p@h2:5672//");
    }

    #[test]
    fn debug_and_errors_never_show_passwords() {
        let url = TransportUrl::parse("rabbit://admin:hunter2@h1,bob:s3cret@h2").unwrap();
        let shown = format!("{url:?} {:?} {url}", url.hosts());
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert_eq!(
            redact("rabbit://admin:hunter2@h1:x,bob:s3cret@h2/v"),
            "rabbit://***@h2/v"
        );
        assert_eq!(redact("rabbit://admin:hunter2@h1/"), "rabbit://admin:***@h1/");
        let error = TransportUrl::parse("rabbit://admin:hunter2@h1:bad")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        // A password holding an unencoded `/`: the host list ends inside it.
        for url in [
            "rabbit://nova:Zx/9ab@10.0.0.11:5672//",
            "amqp://u:Qk/Wj@h/",
            "amqp://u:Qk?Wj@h/",
            "amqp://u:Qk#Wj@h/",
        ] {
            let error = TransportUrl::parse(url).unwrap_err();
            assert_eq!(error, UrlError::UnencodedCredentials, "{url}");
            let (shown, error) = (redact(url), error.to_string());
            for secret in ["Zx", "9ab", "Qk", "Wj"] {
                assert!(
                    !shown.contains(secret) && !error.contains(secret),
                    "{url}: {shown}; {error}"
                );
            }
        }
        assert_eq!(
            redact("rabbit://nova:Zx/9ab@10.0.0.11:5672//"),
            "rabbit://***@10.0.0.11:5672//"
        );
        // A virtual host holding an `@` still parses.
        let url = TransportUrl::parse("amqp://h:5672/vh@x").unwrap();
        assert_eq!(url.virtual_host(), Some("vh@x"));
        // A comma in a password splits the host list inside it; a single
        // slash leaves the credentials out of any host list.
        for (url, expected) in [
            ("rabbit://nova:s3cr3t,x@h:5672//", UrlError::UnencodedCredentials),
            ("rabbit://nova:s3[cr3t,x@h:5672//", UrlError::UnencodedCredentials),
            ("rabbit:/nova:s3cr3t@h//", UrlError::NoHostList),
            ("rabbit:nova:s3cr3t@h", UrlError::NoHostList),
        ] {
            let error = TransportUrl::parse(url).unwrap_err();
            assert_eq!(error, expected, "{url}");
            let (shown, error) = (redact(url), error.to_string());
            assert!(
                !shown.contains("s3") && !error.contains("s3"),
                "{url}: {shown}; {error}"
            );
        }
        // Not a scheme this crate opens, and no `//`: hidden all the same.
        assert_eq!(redact("kafka:nova:s3cr3t@h"), "kafka:***@h");
        // A bad port after the credentials' entry names that host alone.
        assert_eq!(
            TransportUrl::parse("rabbit://u:p@h1:5672,h2:abc/").unwrap_err(),
            UrlError::InvalidPort("h2:abc".to_owned())
        );
    }

    #[test]
    fn full_url_with_adds_missing_options_only() {
        let extra = [("ssl", "true"), ("a b", "c/d")];
        let url = TransportUrl::parse("rabbit://h//?ssl=0#frag").unwrap();
        assert_eq!(url.full_url_with(&extra), "rabbit://h//?ssl=0&a+b=c%2Fd#frag");
        let url = TransportUrl::parse("rabbit://h//").unwrap();
        assert_eq!(url.full_url_with(&extra), "rabbit://h//?ssl=true&a+b=c%2Fd");
        assert_eq!(url.full_url_with::<&str, &str>(&[]), "rabbit://h//");
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let pieces = [
            "rabbit:", "//", "u", ":", "@", "[", "]", "::1", ",", "/", "?", "=", "&", "#", "%", "%4", "é", "\n",
        ];
        let mut text = String::new();
        for (i, a) in pieces.iter().enumerate() {
            for b in &pieces {
                for c in &pieces[i..] {
                    text.clear();
                    text.push_str(a);
                    text.push_str(b);
                    text.push_str(c);
                    text.push_str(a);
                    let _ = TransportUrl::parse(&text).map(|url| (url.to_string(), url.full_url_with(&[("k", "v")])));
                    let _ = redact(&text);
                }
            }
        }
    }
}
