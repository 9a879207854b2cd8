//! The transport's configuration, from a URL or a builder.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rpc_core::transport::{DEFAULT_CONTROL_EXCHANGE, redact_url};
use rpc_core::{Codec, Error};

/// How long the broker keeps an unused reply or fanout queue by default (oslo's 30 minutes).
pub const DEFAULT_TRANSIENT_QUEUE_TTL: Duration = Duration::from_secs(1800);

/// The AMQP heartbeat requested by default, in seconds: a dead peer is noticed within twice this.
pub const DEFAULT_HEARTBEAT: u16 = 10;

/// How long a server keeps retrying a reply whose queue is missing by
/// default (oslo's `kombu_missing_consumer_retry_timeout`).
pub const DEFAULT_REPLY_RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest message body published by default: RabbitMQ 4's own limit
/// (`max_message_size`, 16 MiB); larger bodies are refused before sending.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// One broker node of a (possibly multi-host) URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Host {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub username: String,
    password: String,
}

impl Host {
    /// A node with credentials.
    pub fn new(host: impl Into<String>, port: u16, username: impl Into<String>, password: impl Into<String>) -> Host {
        Host {
            host: host.into(),
            port,
            username: username.into(),
            password: password.into(),
        }
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

/// Never shows the password.
impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:***@{}:{}", self.username, self.host, self.port)
    }
}

/// TLS settings (`amqps://`, or `?ssl=true`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of extra certificate authorities to trust (oslo's `ssl_ca_file`),
    /// added to the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (oslo's `ssl_cert_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM (PKCS#8) private key of the client certificate (oslo's `ssl_key_file`).
    pub key_file: Option<PathBuf>,
}

/// How a multi-host URL's nodes are tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailoverStrategy {
    /// In the order written, moving to the next node on failure.
    #[default]
    RoundRobin,
    /// In an order shuffled for each connection, then round-robin (what
    /// oslo does, whatever its strategy: the default with `rabbit://`).
    Shuffle,
}

/// Everything the AMQP transport needs: where to connect and how to behave.
///
/// Build it from a URL with [`AmqpConfig::from_url`] (see the crate docs for
/// the forms and options), or with [`AmqpConfig::new`] and the setters, then
/// [`connect`](AmqpConfig::connect). `Debug` never shows passwords.
#[derive(Clone, Debug)]
pub struct AmqpConfig {
    pub(crate) hosts: Vec<Host>,
    pub(crate) vhost: String,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) heartbeat: u16,
    pub(crate) connect_timeout: Duration,
    pub(crate) prefetch: Option<u16>,
    pub(crate) codec: Codec,
    pub(crate) control_exchange: String,
    pub(crate) durable_queues: bool,
    pub(crate) auto_delete: bool,
    pub(crate) quorum_queues: bool,
    pub(crate) transient_quorum: bool,
    pub(crate) quorum_delivery_limit: Option<u32>,
    pub(crate) quorum_max_in_memory: (Option<u64>, Option<u64>),
    pub(crate) cancel_on_failover: bool,
    pub(crate) max_message_size: usize,
    pub(crate) publish_timeout: Duration,
    pub(crate) startup_timeout: Duration,
    pub(crate) single_connection: bool,
    pub(crate) transient_queue_ttl: Option<Duration>,
    pub(crate) shared_queue_ttl: Option<Duration>,
    pub(crate) retry_interval: Duration,
    pub(crate) max_retry_interval: Duration,
    pub(crate) failover: FailoverStrategy,
    pub(crate) connection_name: Option<String>,
    pub(crate) reply_retry_timeout: Duration,
    pub(crate) max_channels: usize,
    pub(crate) confirm_calls: bool,
    pub(crate) confirm_replies: bool,
}

impl AmqpConfig {
    /// A configuration for the given nodes, with the defaults.
    pub fn new(hosts: Vec<Host>) -> AmqpConfig {
        AmqpConfig {
            hosts,
            vhost: "/".to_owned(),
            tls: None,
            heartbeat: DEFAULT_HEARTBEAT,
            connect_timeout: Duration::from_secs(10),
            prefetch: None,
            codec: Codec::default(),
            control_exchange: DEFAULT_CONTROL_EXCHANGE.to_owned(),
            durable_queues: false,
            auto_delete: false,
            quorum_queues: false,
            transient_quorum: false,
            quorum_delivery_limit: None,
            quorum_max_in_memory: (None, None),
            cancel_on_failover: false,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            publish_timeout: Duration::from_secs(30),
            startup_timeout: Duration::from_secs(30),
            single_connection: false,
            transient_queue_ttl: Some(DEFAULT_TRANSIENT_QUEUE_TTL),
            shared_queue_ttl: None,
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(30),
            failover: FailoverStrategy::default(),
            connection_name: None,
            reply_retry_timeout: DEFAULT_REPLY_RETRY_TIMEOUT,
            max_channels: 256,
            confirm_calls: false,
            confirm_replies: true,
        }
    }

    /// Parses a transport URL: `amqp://`, `amqps://`, or oslo's `rabbit://`,
    /// with any number of comma-separated hosts.
    pub fn from_url(url: &str) -> Result<AmqpConfig, Error> {
        parse_url(url).map_err(|reason| Error::InvalidUrl {
            url: redact_url(url),
            reason,
        })
    }

    /// The virtual host (default `/`).
    pub fn vhost(mut self, vhost: impl Into<String>) -> AmqpConfig {
        self.vhost = vhost.into();
        self
    }

    /// Connects with TLS.
    pub fn tls(mut self, tls: TlsConfig) -> AmqpConfig {
        self.tls = Some(tls);
        self
    }

    /// The AMQP heartbeat to request, in seconds (default 10); the broker may lower it.
    pub fn heartbeat(mut self, seconds: u16) -> AmqpConfig {
        self.heartbeat = seconds;
        self
    }

    /// How long one connection attempt may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> AmqpConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Caps servers' prefetch (default: each server's concurrency limit).
    pub fn prefetch(mut self, prefetch: u16) -> AmqpConfig {
        self.prefetch = Some(prefetch);
        self
    }

    /// The codec clients send with (default MessagePack).
    pub fn codec(mut self, codec: Codec) -> AmqpConfig {
        self.codec = codec;
        self
    }

    /// The exchange of targets that name none (default `openstack`).
    pub fn control_exchange(mut self, exchange: impl Into<String>) -> AmqpConfig {
        self.control_exchange = exchange.into();
        self
    }

    /// A durable control exchange, and persistent messages (oslo's
    /// `amqp_durable_queues`). Topic and server queues are durable whatever
    /// this says: RabbitMQ 4.3 refuses transient shared queues.
    pub fn durable_queues(mut self, durable: bool) -> AmqpConfig {
        self.durable_queues = durable;
        self
    }

    /// Control exchanges, and topic, server and notification queues,
    /// declared auto-delete (oslo's `amqp_auto_delete`, default false): the
    /// same flags as Python services that set it, whose declarations would
    /// otherwise fail against ours (`PRECONDITION_FAILED`, inequivalent
    /// `auto_delete`). Not with [`quorum_queues`](AmqpConfig::quorum_queues):
    /// RabbitMQ refuses auto-delete quorum queues, and connecting fails with
    /// `Error::Config`.
    pub fn auto_delete(mut self, auto_delete: bool) -> AmqpConfig {
        self.auto_delete = auto_delete;
        self
    }

    /// Waits for the broker's confirm of every call's request (default
    /// false). By default a call's request goes out unconfirmed, its reply
    /// proving it routed and a returned request failing the call with
    /// `NoListener` within a few milliseconds; see `docs/reliability.md`.
    pub fn confirm_calls(mut self, confirm: bool) -> AmqpConfig {
        self.confirm_calls = confirm;
        self
    }

    /// Whether a server's replies wait for the broker's publisher confirm
    /// (default true). With confirms, a reply lost with the server's
    /// connection, refused by a quorum reply queue, or returned because its
    /// queue is missing (the caller reconnecting) is published again for
    /// `reply_retry_timeout`, as oslo.messaging does. Without (`false`), a
    /// reply returns once written to the connection, and those replies are
    /// lost: their callers, if still waiting, time out; a returned one is
    /// counted and logged. It saves the server a frame from the broker and
    /// the wake-ups it causes, per reply; see `docs/reliability.md`.
    pub fn confirm_replies(mut self, confirm: bool) -> AmqpConfig {
        self.confirm_replies = confirm;
        self
    }

    /// Quorum topic and server queues, replicated across a cluster (oslo's
    /// `rabbit_quorum_queue`); implies a durable control exchange.
    pub fn quorum_queues(mut self, quorum: bool) -> AmqpConfig {
        self.quorum_queues = quorum;
        self
    }

    /// Quorum reply and fanout queues (oslo's `rabbit_transient_quorum_queue`)
    /// instead of exclusive ones: they survive the loss of the node holding
    /// the connection, at the cost of a replicated queue per process.
    pub fn transient_quorum(mut self, quorum: bool) -> AmqpConfig {
        self.transient_quorum = quorum;
        self
    }

    /// How many times a quorum queue delivers a message before dropping it
    /// (`x-delivery-limit`, oslo's `rabbit_quorum_delivery_limit`); `None`
    /// leaves the broker's default (unlimited on RabbitMQ 3, 20 on 4).
    pub fn quorum_delivery_limit(mut self, limit: Option<u32>) -> AmqpConfig {
        self.quorum_delivery_limit = limit;
        self
    }

    /// How many messages, and how many bytes, a quorum queue keeps in
    /// memory (`x-max-in-memory-length`, `x-max-in-memory-bytes`: oslo's
    /// `rabbit_quorum_max_memory_length` and `rabbit_quorum_max_memory_bytes`);
    /// `None` sets no limit. RabbitMQ 3 compares them between declarations:
    /// a Python service that sets them declares its queues with them, and
    /// they must match ours. RabbitMQ 4 ignores them.
    pub fn quorum_max_in_memory(mut self, length: Option<u64>, bytes: Option<u64>) -> AmqpConfig {
        self.quorum_max_in_memory = (length, bytes);
        self
    }

    /// Asks the broker to cancel consumers when a replicated queue fails
    /// over (`x-cancel-on-ha-failover`, oslo's `enable_cancel_on_failover`);
    /// a cancelled consumer is declared and consumed again.
    pub fn cancel_on_failover(mut self, cancel: bool) -> AmqpConfig {
        self.cancel_on_failover = cancel;
        self
    }

    /// The largest message body published (default 16 MiB, RabbitMQ 4's
    /// `max_message_size`): a larger one is refused before it reaches the
    /// broker, which would close the channel.
    pub fn max_message_size(mut self, bytes: usize) -> AmqpConfig {
        self.max_message_size = bytes;
        self
    }

    /// How long a publish without a deadline of its own (a cast, a reply, a
    /// notification) waits for the broker: its confirm, or the end of a
    /// resource alarm that blocks publishers (default 30 s). With
    /// `Retry::Forever` (casts' and notifications' default) it starts once
    /// connected: the wait for an unreachable broker is as long as it takes,
    /// as oslo's; with a bounded `Retry` (replies') it bounds that wait too.
    pub fn publish_timeout(mut self, timeout: Duration) -> AmqpConfig {
        self.publish_timeout = bounded(timeout);
        self
    }

    /// How long the first connection keeps trying the hosts, with the
    /// reconnection backoff, before `connect` fails (default 30 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> AmqpConfig {
        self.startup_timeout = bounded(timeout);
        self
    }

    /// Publishes and consumes on one connection instead of two (not
    /// recommended: during a resource alarm the broker stops reading a
    /// publishing connection, acknowledgements included).
    pub fn single_connection(mut self, single: bool) -> AmqpConfig {
        self.single_connection = single;
        self
    }

    /// How long an unused reply or fanout queue lives (default 30 min; `None`: forever).
    pub fn transient_queue_ttl(mut self, ttl: Option<Duration>) -> AmqpConfig {
        self.transient_queue_ttl = ttl;
        self
    }

    /// Makes unused topic, server and notification queues expire
    /// (`x-expires`), with the messages waiting in them, which
    /// oslo.messaging never does: for short-lived environments such as test
    /// brokers. Peers declaring the same queues must use the same setting.
    pub fn shared_queue_ttl(mut self, ttl: Option<Duration>) -> AmqpConfig {
        self.shared_queue_ttl = ttl;
        self
    }

    /// The first reconnection delay (default 1 s, at least 0.1 s); it
    /// doubles up to [`max_retry_interval`](AmqpConfig::max_retry_interval),
    /// with jitter.
    pub fn retry_interval(mut self, interval: Duration) -> AmqpConfig {
        self.retry_interval = bounded(interval).max(SHORTEST_RETRY_INTERVAL);
        self
    }

    /// The longest reconnection delay (default 30 s).
    pub fn max_retry_interval(mut self, interval: Duration) -> AmqpConfig {
        self.max_retry_interval = bounded(interval);
        self
    }

    /// How the nodes of a multi-host URL are tried.
    pub fn failover(mut self, strategy: FailoverStrategy) -> AmqpConfig {
        self.failover = strategy;
        self
    }

    /// The connections' name in the broker, suffixed with their role
    /// (`:publish`, `:consume`); by default `<program>:<pid>`.
    pub fn connection_name(mut self, name: impl Into<String>) -> AmqpConfig {
        self.connection_name = Some(name.into());
        self
    }

    /// How long a server keeps retrying a reply whose queue is missing
    /// (default 60 s, oslo's); then the queue is remembered as gone for as long.
    pub fn reply_retry_timeout(mut self, timeout: Duration) -> AmqpConfig {
        self.reply_retry_timeout = bounded(timeout);
        self
    }

    /// The nodes.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The codec clients send with.
    pub fn wire_codec(&self) -> Codec {
        self.codec
    }

    pub(crate) fn durable(&self) -> bool {
        self.durable_queues || self.quorum_queues
    }
}

fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| format!("the {what} is not valid UTF-8 once percent-decoded"))
}

fn parse_host(entry: &str, default_port: u16) -> Result<Host, String> {
    let (userinfo, hostport) = match entry.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, entry),
    };
    let (username, password) = match userinfo {
        None => ("guest".to_owned(), "guest".to_owned()),
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, password)) => (decode(user, "user name")?, decode(password, "password")?),
            None => (decode(userinfo, "user name")?, String::new()),
        },
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or("unclosed `[` in an IPv6 host")?;
        (host, rest.strip_prefix(':'))
    } else if hostport.matches(':').count() > 1 {
        // An IPv6 address without brackets, and so without a port, as
        // oslo reads it (`netutils.parse_host_port`).
        (hostport, None)
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port.parse().map_err(|_| format!("invalid port `{port}`"))?,
    };
    let host = if host.is_empty() {
        "localhost".to_owned()
    } else {
        decode(host, "host")?
    };
    Ok(Host {
        host,
        port,
        username,
        password,
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{key}` must be true or false, not `{value}`")),
    }
}

fn parse_seconds(key: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .map(bounded)
        .ok_or_else(|| format!("`{key}` must be a number of seconds, not `{value}`"))
}

/// The shortest reconnection delay: 0 (oslo's `rabbit_retry_interval = 0`,
/// from which oslo still backs off) would retry in a loop, as fast as
/// connections fail.
const SHORTEST_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// The longest wait the transport keeps: about thirty years, so that
/// `Duration::MAX`, the usual "no timeout", is "never" and not an overflow
/// when it is added to the time now.
const LONGEST_WAIT: Duration = Duration::from_secs(86_400 * 365 * 30);

fn bounded(duration: Duration) -> Duration {
    duration.min(LONGEST_WAIT)
}

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("`{key}` must be a whole number, not `{value}`"))
}

/// A whole number AMQP carries in 16 bits, capped there.
fn parse_short(key: &str, value: &str) -> Result<u16, String> {
    let number: u64 = parse_number(key, value)?;
    Ok(u16::try_from(number).unwrap_or(u16::MAX))
}

fn parse_url(url: &str) -> Result<AmqpConfig, String> {
    let (scheme, rest) = url.split_once("://").ok_or("expected `amqp://...`")?;
    let scheme = scheme.to_ascii_lowercase();
    let mut tls = match scheme.as_str() {
        "amqp" | "rabbit" | "kombu" => None,
        "amqps" => Some(TlsConfig::default()),
        other => return Err(format!("unsupported scheme `{other}`")),
    };
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    // `user:pa?ss@host`: the query starts inside the password, whose first
    // piece would be read as a host and port, and shown as one. An option's
    // value may hold an `@` (a certificate's path): the query's first piece
    // holds one before any `=` only when it is the rest of a password.
    let first_piece = query.split('&').next().unwrap_or("");
    if first_piece.split('=').next().is_some_and(|name| name.contains('@')) {
        return Err(
            "an `@` follows the `?`: a user name or password holding `?` must be percent-encoded (`%3F`)".to_owned(),
        );
    }
    // Credentials end at the last `@`; the vhost starts at the first `/` after it.
    let search_from = main.rfind('@').unwrap_or(0);
    let (authority, path) = match main[search_from..].find('/') {
        Some(at) => (&main[..search_from + at], &main[search_from + at + 1..]),
        None => (main, ""),
    };
    let mut query_pairs = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // As oslo's `parse_qs`, which drops a blank value, and reads `+` as
        // a space (`rpc-config` writes a space so: `ssl_ca_file` in a
        // directory with a space in its name was not found until 2026-12-05).
        if value.is_empty() {
            continue;
        }
        let form = |text: &str| text.replace('+', " ");
        query_pairs.push((
            decode(&form(key), "option name")?,
            decode(&form(value), "option value")?,
        ));
    }
    // TLS may be switched on by the query, which changes the default port.
    for (key, value) in &query_pairs {
        if key == "ssl" && parse_bool(key, value)? && tls.is_none() {
            tls = Some(TlsConfig::default());
        }
    }
    // oslo's form (`rabbit://`) is what oslo connects to: port 5672 unless
    // written, with TLS too (`str(host.port or 5672)`), and its hosts in an
    // order shuffled for each connection, so that a cluster's clients
    // spread over its nodes. AMQP's own forms default to 5671 with TLS,
    // and keep the order written unless told to shuffle.
    let oslo_form = matches!(scheme.as_str(), "rabbit" | "kombu");
    let default_port = if tls.is_some() && !oslo_form { 5671 } else { 5672 };
    let entries: Vec<&str> = authority.split(',').filter(|entry| !entry.is_empty()).collect();
    let hosts = if entries.is_empty() {
        vec![parse_host("", default_port)?]
    } else {
        // Empty entries are skipped, as oslo skips them.
        entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                parse_host(entry, default_port).map_err(|reason| {
                    // `user:pa,ss@host`: the list split inside the password,
                    // and the reason would show a piece of it.
                    if !entry.contains('@') && entries[index + 1..].iter().any(|later| later.contains('@')) {
                        "a host does not parse and credentials follow it: a user name or password holding `,` must be percent-encoded (`%2C`)".to_owned()
                    } else {
                        reason
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut config = AmqpConfig::new(hosts);
    config.vhost = match decode(path, "vhost")? {
        vhost if vhost.is_empty() => "/".to_owned(),
        vhost => vhost,
    };
    for (key, value) in &query_pairs {
        let key = key.as_str();
        match key {
            "ssl" => {}
            // As oslo's, these apply only with TLS on: `ssl_ca_file` set
            // beside `ssl = False` in a service's files connects in plain.
            "ssl_ca_file" | "ssl_cert_file" | "ssl_key_file" => {
                let Some(tls) = tls.as_mut() else {
                    tracing::warn!(
                        option = key,
                        "ignoring a TLS option: TLS is off (`amqps://` or `ssl=true` turns it on)"
                    );
                    continue;
                };
                let path = Some(PathBuf::from(value));
                match key {
                    "ssl_ca_file" => tls.ca_file = path,
                    "ssl_cert_file" => tls.cert_file = path,
                    _ => tls.key_file = path,
                }
            }
            // AMQP carries both in 16 bits: a larger value (oslo reads any
            // integer) is the largest, not an error at connection time.
            "heartbeat" | "heartbeat_timeout_threshold" => config.heartbeat = parse_short(key, value)?,
            "connect_timeout" => config.connect_timeout = parse_seconds(key, value)?,
            "prefetch" | "rabbit_qos_prefetch_count" => {
                config.prefetch = Some(parse_short(key, value)?).filter(|prefetch| *prefetch > 0);
            }
            "codec" => config.codec = Codec::from_name(value).ok_or_else(|| format!("unknown codec `{value}`"))?,
            "control_exchange" if !value.is_empty() => config.control_exchange = value.clone(),
            "durable" | "amqp_durable_queues" => config.durable_queues = parse_bool(key, value)?,
            "auto_delete" | "amqp_auto_delete" => config.auto_delete = parse_bool(key, value)?,
            "quorum" | "rabbit_quorum_queue" => config.quorum_queues = parse_bool(key, value)?,
            "transient_quorum" | "rabbit_transient_quorum_queue" => config.transient_quorum = parse_bool(key, value)?,
            "quorum_delivery_limit" | "rabbit_quorum_delivery_limit" => {
                config.quorum_delivery_limit = Some(parse_number::<u32>(key, value)?).filter(|limit| *limit > 0);
            }
            "quorum_max_memory_length" | "rabbit_quorum_max_memory_length" => {
                config.quorum_max_in_memory.0 = Some(parse_number::<u64>(key, value)?).filter(|limit| *limit > 0);
            }
            "quorum_max_memory_bytes" | "rabbit_quorum_max_memory_bytes" => {
                config.quorum_max_in_memory.1 = Some(parse_number::<u64>(key, value)?).filter(|limit| *limit > 0);
            }
            "cancel_on_failover" | "enable_cancel_on_failover" => config.cancel_on_failover = parse_bool(key, value)?,
            "max_message_size" => config.max_message_size = parse_number(key, value)?,
            "publish_timeout" => config.publish_timeout = parse_seconds(key, value)?,
            "startup_timeout" => config.startup_timeout = parse_seconds(key, value)?,
            "single_connection" => config.single_connection = parse_bool(key, value)?,
            "confirm_calls" => config.confirm_calls = parse_bool(key, value)?,
            "confirm_replies" => config.confirm_replies = parse_bool(key, value)?,
            "transient_queues_ttl" | "rabbit_transient_queues_ttl" => {
                config.transient_queue_ttl = Some(parse_seconds(key, value)?).filter(|ttl| !ttl.is_zero());
            }
            "shared_queues_ttl" => {
                config.shared_queue_ttl = Some(parse_seconds(key, value)?).filter(|ttl| !ttl.is_zero());
            }
            "retry_interval" | "rabbit_retry_interval" => {
                config.retry_interval = parse_seconds(key, value)?.max(SHORTEST_RETRY_INTERVAL);
            }
            "max_retry_interval" | "rabbit_interval_max" => config.max_retry_interval = parse_seconds(key, value)?,
            "failover_strategy" | "kombu_failover_strategy" => {
                config.failover = match value.as_str() {
                    "round-robin" => FailoverStrategy::RoundRobin,
                    "shuffle" => FailoverStrategy::Shuffle,
                    _ => return Err(format!("`{key}` must be `round-robin` or `shuffle`")),
                }
            }
            "connection_name" => config.connection_name = Some(value.clone()),
            "reply_retry_timeout" | "kombu_missing_consumer_retry_timeout" => {
                config.reply_retry_timeout = parse_seconds(key, value)?;
            }
            _ => tracing::warn!(option = key, "ignoring an unknown transport URL option"),
        }
    }
    if let Some(tls) = &mut tls {
        // As Python's `load_cert_chain`: a key not given is read from the
        // certificate's file (one PEM holding both); a key without a
        // certificate is no client identity, and is ignored.
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), None) => tls.key_file = Some(cert.clone()),
            (None, Some(_)) => {
                tracing::warn!("ignoring `ssl_key_file` without `ssl_cert_file`, as oslo does");
                tls.key_file = None;
            }
            _ => {}
        }
    }
    config.tls = tls;
    if oslo_form {
        // oslo shuffles its hosts first, whatever the strategy.
        config.failover = FailoverStrategy::Shuffle;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_host_forms() {
        let config = AmqpConfig::from_url("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(config.hosts, [Host::new("127.0.0.1", 5672, "guest", "guest")]);
        assert_eq!(config.vhost, "/");
        assert!(config.tls.is_none());

        let config = AmqpConfig::from_url("rabbit://").unwrap();
        assert_eq!(config.hosts, [Host::new("localhost", 5672, "guest", "guest")]);
        assert_eq!(config.vhost, "/");

        let config = AmqpConfig::from_url("amqps://us%40er:p%3Ass%2Fw@broker/my%2Fvhost").unwrap();
        assert_eq!(config.hosts, [Host::new("broker", 5671, "us@er", "p:ss/w")]);
        assert_eq!(config.vhost, "my/vhost");
        assert!(config.tls.is_some());
    }

    #[test]
    fn waits_past_thirty_years_are_never() {
        let config =
            AmqpConfig::from_url("amqp://h/?publish_timeout=1e19&startup_timeout=1e19&retry_interval=1e19").unwrap();
        assert_eq!(
            (config.publish_timeout, config.startup_timeout, config.retry_interval),
            (LONGEST_WAIT, LONGEST_WAIT, LONGEST_WAIT)
        );
        let config = AmqpConfig::new(vec![Host::new("h", 5672, "u", "p")])
            .publish_timeout(Duration::MAX)
            .startup_timeout(Duration::MAX)
            .retry_interval(Duration::MAX)
            .max_retry_interval(Duration::MAX)
            .reply_retry_timeout(Duration::MAX);
        // Each is added to the time now somewhere: none may overflow.
        for wait in [
            config.publish_timeout,
            config.startup_timeout,
            config.retry_interval,
            config.max_retry_interval,
            config.reply_retry_timeout,
        ] {
            assert!(tokio::time::Instant::now().checked_add(wait).is_some(), "{wait:?}");
        }
    }

    #[test]
    fn a_zero_retry_interval_still_waits() {
        for config in [
            AmqpConfig::from_url("amqp://h/?retry_interval=0").unwrap(),
            AmqpConfig::from_url("rabbit://h/?rabbit_retry_interval=0").unwrap(),
            AmqpConfig::new(vec![Host::new("h", 5672, "u", "p")]).retry_interval(Duration::ZERO),
        ] {
            assert_eq!(config.retry_interval, SHORTEST_RETRY_INTERVAL);
        }
    }

    #[test]
    fn multiple_hosts_and_vhost() {
        let config = AmqpConfig::from_url("rabbit://u:p@h1:5672,v:q@h2:5673,h3/nova").unwrap();
        assert_eq!(
            config.hosts,
            [
                Host::new("h1", 5672, "u", "p"),
                Host::new("h2", 5673, "v", "q"),
                Host::new("h3", 5672, "guest", "guest"),
            ]
        );
        assert_eq!(config.vhost, "nova");
        let config = AmqpConfig::from_url("amqp://[::1]:5673,[fe80::1]/").unwrap();
        assert_eq!(config.hosts[0].host, "::1");
        assert_eq!(config.hosts[0].port, 5673);
        assert_eq!(config.hosts[1].port, 5672);
    }

    #[test]
    fn options() {
        let config = AmqpConfig::from_url(
            "rabbit://h/?heartbeat=5&prefetch=8&control_exchange=nova&amqp_durable_queues=true\
             &rabbit_transient_queues_ttl=60&retry_interval=0.2&kombu_failover_strategy=shuffle\
             &ssl=1&ssl_ca_file=/etc/ca.pem&connect_timeout=2.5&unknown_option=1",
        )
        .unwrap();
        assert_eq!(config.heartbeat, 5);
        assert_eq!(config.prefetch, Some(8));
        assert_eq!(config.control_exchange, "nova");
        assert!(config.durable());
        assert_eq!(config.transient_queue_ttl, Some(Duration::from_secs(60)));
        assert_eq!(config.retry_interval, Duration::from_millis(200));
        assert_eq!(config.failover, FailoverStrategy::Shuffle);
        assert_eq!(config.connect_timeout, Duration::from_millis(2500));
        let tls = config.tls.unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        // oslo's form: 5672 with TLS too, as oslo connects.
        assert_eq!(config.hosts[0].port, 5672);
    }

    #[test]
    fn urls_are_read_as_oslo_reads_them() {
        // An IPv6 address without brackets has no port.
        let config = AmqpConfig::from_url("rabbit://u:p@2001:db8::8//").unwrap();
        assert_eq!(config.hosts, [Host::new("2001:db8::8", 5672, "u", "p")]);
        // `+` in a query value is a space (`parse_qs`); `%2B` is a plus.
        let config = AmqpConfig::from_url("rabbit://h/?ssl=true&ssl_ca_file=/etc/My+CA/a%2Bb.pem").unwrap();
        assert_eq!(config.tls.unwrap().ca_file, Some(PathBuf::from("/etc/My CA/a+b.pem")));
        // Values past AMQP's 16 bits are its largest (rpc-config reads up to 32).
        let config = AmqpConfig::from_url("rabbit://h/?heartbeat_timeout_threshold=70000&prefetch=100000").unwrap();
        assert_eq!((config.heartbeat, config.prefetch), (u16::MAX, Some(u16::MAX)));
        // A blank value is no value; empty host entries are skipped.
        let config = AmqpConfig::from_url("rabbit://u:p@h1,u:p@h2,/?ssl=&heartbeat=").unwrap();
        assert_eq!(config.hosts.len(), 2);
        assert!(config.tls.is_none());
        // oslo connects to 5672 unless told, with TLS too; AMQP's own forms to 5671.
        assert_eq!(
            AmqpConfig::from_url("rabbit://h/?ssl=true").unwrap().hosts[0].port,
            5672
        );
        assert_eq!(AmqpConfig::from_url("amqp://h/?ssl=true").unwrap().hosts[0].port, 5671);
        assert_eq!(AmqpConfig::from_url("amqps://h/").unwrap().hosts[0].port, 5671);
        // oslo shuffles its hosts, whatever the strategy; AMQP's forms keep the order written.
        for url in ["rabbit://h1,h2/", "rabbit://h1,h2/?kombu_failover_strategy=round-robin"] {
            assert_eq!(
                AmqpConfig::from_url(url).unwrap().failover,
                FailoverStrategy::Shuffle,
                "{url}"
            );
        }
        assert_eq!(
            AmqpConfig::from_url("amqp://h1,h2/").unwrap().failover,
            FailoverStrategy::RoundRobin
        );
    }

    #[test]
    fn tls_files_apply_only_with_tls_on() {
        // As oslo's `ssl_ca_file` with `ssl = False`: a plain connection.
        for url in [
            "amqp://h/?ssl_ca_file=/etc/ca.pem",
            "amqp://h/?ssl=false&ssl_ca_file=/etc/ca.pem&ssl_cert_file=/c.pem",
        ] {
            let config = AmqpConfig::from_url(url).unwrap();
            assert!(config.tls.is_none(), "{url}");
            assert_eq!(config.hosts[0].port, 5672, "{url}");
        }
        for url in [
            "amqp://h/?ssl_ca_file=/etc/ca.pem&ssl=true",
            "amqps://h/?ssl_ca_file=/etc/ca.pem",
            // An `@` in a path is no password's (it was refused as one, 2026-12-05).
            "amqps://h/?ssl_ca_file=/etc/ca.pem&ssl_cert_file=/etc/app@1/c.pem&ssl_key_file=/k.pem",
        ] {
            let config = AmqpConfig::from_url(url).unwrap();
            assert_eq!(config.tls.unwrap().ca_file, Some(PathBuf::from("/etc/ca.pem")), "{url}");
            assert_eq!(config.hosts[0].port, 5671, "{url}");
        }
    }

    /// As oslo (Python's `load_cert_chain`): a certificate file without a
    /// key file holds both; a key file alone is ignored. Both were refused.
    #[test]
    fn a_client_certificate_may_hold_its_key() {
        let combined = AmqpConfig::from_url("amqps://h/?ssl_cert_file=/etc/both.pem").unwrap();
        let tls = combined.tls.unwrap();
        assert_eq!(tls.cert_file, Some(PathBuf::from("/etc/both.pem")));
        assert_eq!(tls.key_file, Some(PathBuf::from("/etc/both.pem")));
        let key_alone = AmqpConfig::from_url("amqps://h/?ssl_key_file=/etc/key.pem").unwrap();
        assert_eq!(key_alone.tls.unwrap().key_file, None);
    }

    #[test]
    fn bad_urls_are_clear_and_hide_passwords() {
        for (url, needle) in [
            ("http://u:secret@h", "unsupported scheme `http`"),
            ("amqp://u:secret@h:99999", "invalid port `99999`"),
            (
                "amqp://u:secret@h/?heartbeat=soon",
                "`heartbeat` must be a whole number",
            ),
            ("amqp://u:secret@h/?durable=maybe", "`durable` must be true or false"),
            ("amqp://u:secret@h/?connect_timeout=1e20", "must be a number of seconds"),
            (
                "amqp://u:secret@h/?reply_retry_timeout=-1",
                "must be a number of seconds",
            ),
            ("amqp://u:secret@h/?codec=xml", "unknown codec `xml`"),
            ("amqp://u:secret@[::1/", "unclosed `[`"),
            // A comma in the password splits the host list inside it.
            ("amqp://u:sec,ret@h/", "holding `,` must be percent-encoded"),
            ("amqp://u:sec,ret@h:5672,v:p@h2/", "holding `,` must be percent-encoded"),
            // A `?` in the password starts the query inside it.
            ("amqp://u:sec?ret@h/", "holding `?` must be percent-encoded"),
            ("amqp://u:1234?secret@h/", "holding `?` must be percent-encoded"),
            ("amqp://u:p@h1,v:1234?secret@h2/", "holding `?` must be percent-encoded"),
        ] {
            let error = AmqpConfig::from_url(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }

    #[test]
    fn debug_hides_passwords() {
        let config = AmqpConfig::from_url("amqp://admin:hunter2@h1,bob:s3cret@h2").unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("admin:***@h1:5672"), "{shown}");
    }
}
