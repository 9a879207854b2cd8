//! The oslo.messaging options, typed, with oslo's names, defaults and types.
//!
//! Each option is looked up as oslo.config looks it up (`_Namespace._get_file_value`):
//! under its name and section, then under its deprecated names and sections.
//! For a single-valued option the last file that sets it (under any of its
//! names) wins, and within that file its last line; within one file the
//! current name beats a deprecated one. A multi-valued option
//! (`MultiStrOpt`) collects the values of every file, in file order.
//!
//! Values are `$`-substituted (see [`substitute`](crate::subst)) and then
//! converted as oslo.config's types convert them:
//! - booleans: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any case;
//! - integers: decimal, with an optional sign and `_` between digits
//!   (Python's `int()`), within the option's range;
//! - lists: split at commas, items stripped, a trailing comma ignored, an
//!   empty value the empty list;
//! - strings: as written (after the parser's quote stripping).
//!
//! Deliberate differences from oslo.config: an empty integer (which oslo
//! reads as `None`, whose meaning differs per option) is an error, and so
//! is a negative number for an option that counts seconds, messages or
//! connections (oslo declares no minimum for some of them).

use std::fmt;
use std::path::PathBuf;

use crate::config::{Config, DEFAULT_SECTION, normalize_section};
use crate::error::{Error, Location};
use crate::subst::{self, SubstError};
use crate::url::{self, TransportUrl};

/// `[oslo_messaging_rabbit]`, the RabbitMQ driver's section.
pub const RABBIT_SECTION: &str = "oslo_messaging_rabbit";
/// `[oslo_messaging_notifications]`, the notifier's section.
pub const NOTIFICATIONS_SECTION: &str = "oslo_messaging_notifications";

/// One oslo option: where it lives, its deprecated aliases, and its default
/// as Python's `str()` writes it (what a `$reference` to it gives when unset).
struct Spec {
    group: &'static str,
    name: &'static str,
    default: &'static str,
    deprecated: &'static [(&'static str, &'static str)],
    secret: bool,
}

const fn spec(group: &'static str, name: &'static str, default: &'static str) -> Spec {
    Spec {
        group,
        name,
        default,
        deprecated: &[],
        secret: false,
    }
}

const fn aliased(spec: Spec, deprecated: &'static [(&'static str, &'static str)]) -> Spec {
    Spec { deprecated, ..spec }
}

const fn secret(spec: Spec) -> Spec {
    Spec { secret: true, ..spec }
}

const D: &str = DEFAULT_SECTION;
const R: &str = RABBIT_SECTION;
const N: &str = NOTIFICATIONS_SECTION;

// [DEFAULT]: oslo_messaging/transport.py, rpc/client.py, server.py, rpc/dispatcher.py.
const TRANSPORT_URL: Spec = secret(spec(D, "transport_url", "rabbit://"));
const CONTROL_EXCHANGE: Spec = spec(D, "control_exchange", "openstack");
const RPC_RESPONSE_TIMEOUT: Spec = spec(D, "rpc_response_timeout", "60");
const EXECUTOR_THREAD_POOL_SIZE: Spec = aliased(
    spec(D, "executor_thread_pool_size", "64"),
    &[(D, "rpc_thread_pool_size")],
);
const RPC_PING_ENABLED: Spec = spec(D, "rpc_ping_enabled", "False");

// [oslo_messaging_rabbit]: oslo_messaging/_drivers/impl_rabbit.py and amqp.py.
const RPC_CONN_POOL_SIZE: Spec = spec(R, "rpc_conn_pool_size", "30");
const SSL: Spec = spec(R, "ssl", "False");
const SSL_CA_FILE: Spec = spec(R, "ssl_ca_file", "");
const SSL_CERT_FILE: Spec = spec(R, "ssl_cert_file", "");
const SSL_KEY_FILE: Spec = spec(R, "ssl_key_file", "");
const HEARTBEAT_TIMEOUT_THRESHOLD: Spec = spec(R, "heartbeat_timeout_threshold", "60");
const RABBIT_QOS_PREFETCH_COUNT: Spec = spec(R, "rabbit_qos_prefetch_count", "0");
const RABBIT_RETRY_INTERVAL: Spec = spec(R, "rabbit_retry_interval", "1");
const RABBIT_INTERVAL_MAX: Spec = spec(R, "rabbit_interval_max", "30");
const KOMBU_FAILOVER_STRATEGY: Spec = spec(R, "kombu_failover_strategy", "round-robin");
const AMQP_DURABLE_QUEUES: Spec = spec(R, "amqp_durable_queues", "False");
const AMQP_AUTO_DELETE: Spec = spec(R, "amqp_auto_delete", "False");
const RABBIT_QUORUM_QUEUE: Spec = spec(R, "rabbit_quorum_queue", "False");
const RABBIT_TRANSIENT_QUORUM_QUEUE: Spec = spec(R, "rabbit_transient_quorum_queue", "False");
const RABBIT_QUORUM_DELIVERY_LIMIT: Spec = spec(R, "rabbit_quorum_delivery_limit", "0");
const RABBIT_QUORUM_MAX_MEMORY_LENGTH: Spec = spec(R, "rabbit_quorum_max_memory_length", "0");
const RABBIT_QUORUM_MAX_MEMORY_BYTES: Spec = spec(R, "rabbit_quorum_max_memory_bytes", "0");
const ENABLE_CANCEL_ON_FAILOVER: Spec = spec(R, "enable_cancel_on_failover", "False");
const RABBIT_TRANSIENT_QUEUES_TTL: Spec = spec(R, "rabbit_transient_queues_ttl", "1800");
const KOMBU_MISSING_CONSUMER_RETRY_TIMEOUT: Spec = aliased(
    spec(R, "kombu_missing_consumer_retry_timeout", "60"),
    &[(R, "kombu_reconnect_timeout")],
);

// [oslo_messaging_notifications]: oslo_messaging/notify/notifier.py.
const DRIVER: Spec = spec(N, "driver", "[]");
const NOTIFICATION_TRANSPORT_URL: Spec = secret(spec(N, "transport_url", ""));
const TOPICS: Spec = spec(N, "topics", "['notifications']");

/// Names older oslo.messaging releases read, which 18.x no longer does
/// (their options declare no deprecated names any more): set in a file,
/// they have no effect, in Python as here. With what replaced each; sorted
/// by section and option, the order they are reported in.
const RETIRED: [(&str, &str, &str); 7] = [
    (D, "amqp_durable_queues", "[oslo_messaging_rabbit] amqp_durable_queues"),
    (D, "notification_driver", "[oslo_messaging_notifications] driver"),
    (D, "notification_topics", "[oslo_messaging_notifications] topics"),
    (
        D,
        "notification_transport_url",
        "[oslo_messaging_notifications] transport_url",
    ),
    (
        D,
        "rabbit_durable_queues",
        "[oslo_messaging_rabbit] amqp_durable_queues",
    ),
    (D, "rpc_conn_pool_size", "[oslo_messaging_rabbit] rpc_conn_pool_size"),
    ("rpc_notifier2", "topics", "[oslo_messaging_notifications] topics"),
];
const RETRY: Spec = spec(N, "retry", "-1");

const SPECS: [&Spec; 29] = [
    &TRANSPORT_URL,
    &CONTROL_EXCHANGE,
    &RPC_RESPONSE_TIMEOUT,
    &EXECUTOR_THREAD_POOL_SIZE,
    &RPC_PING_ENABLED,
    &RPC_CONN_POOL_SIZE,
    &SSL,
    &SSL_CA_FILE,
    &SSL_CERT_FILE,
    &SSL_KEY_FILE,
    &HEARTBEAT_TIMEOUT_THRESHOLD,
    &RABBIT_QOS_PREFETCH_COUNT,
    &RABBIT_RETRY_INTERVAL,
    &RABBIT_INTERVAL_MAX,
    &KOMBU_FAILOVER_STRATEGY,
    &AMQP_DURABLE_QUEUES,
    &AMQP_AUTO_DELETE,
    &RABBIT_QUORUM_QUEUE,
    &RABBIT_TRANSIENT_QUORUM_QUEUE,
    &RABBIT_QUORUM_DELIVERY_LIMIT,
    &RABBIT_QUORUM_MAX_MEMORY_LENGTH,
    &RABBIT_QUORUM_MAX_MEMORY_BYTES,
    &ENABLE_CANCEL_ON_FAILOVER,
    &RABBIT_TRANSIENT_QUEUES_TTL,
    &KOMBU_MISSING_CONSUMER_RETRY_TIMEOUT,
    &DRIVER,
    &NOTIFICATION_TRANSPORT_URL,
    &TOPICS,
    &RETRY,
];

/// `[oslo_messaging_rabbit]` options of oslo.messaging that this framework's
/// transport does not use (current names and deprecated ones).
const UNSUPPORTED_RABBIT_OPTIONS: [&str; 18] = [
    "conn_pool_min_size",
    "conn_pool_ttl",
    "direct_mandatory_flag",
    "heartbeat_in_pthread",
    "heartbeat_rate",
    "hostname",
    "kombu_compression",
    "kombu_reconnect_delay",
    "kombu_reconnect_splay",
    "processname",
    "rabbit_ha_queues",
    "rabbit_login_method",
    "rabbit_retry_backoff",
    "rabbit_stream_fanout",
    "ssl_enforce_fips_mode",
    "ssl_enforce_hostname_verification",
    "ssl_version",
    "use_queue_manager",
];

/// Whether oslo.messaging registers `option` in `group`: `None` for a
/// group whose options are not all known here (`[DEFAULT]`, where the
/// service registers its own, and the service's sections).
pub(crate) fn is_registered(group: &str, option: &str) -> Option<bool> {
    let group = normalize_section(group);
    if group != RABBIT_SECTION && group != NOTIFICATIONS_SECTION {
        return None;
    }
    let typed = SPECS
        .iter()
        .flat_map(|spec| names(spec))
        .any(|(spec_group, name)| spec_group == group && name == option);
    Some(typed || (group == RABBIT_SECTION && UNSUPPORTED_RABBIT_OPTIONS.contains(&option)))
}

/// The default of an option typed here, as a `$reference` to it reads when it is unset.
pub(crate) fn default_text(group: &str, name: &str) -> Option<&'static str> {
    let group = normalize_section(group);
    SPECS
        .iter()
        .find(|spec| spec.group == group && spec.name == name)
        .map(|spec| spec.default)
}

/// How the RabbitMQ driver picks the next node of a multi-host URL (oslo's `kombu_failover_strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailoverStrategy {
    /// `round-robin`: the nodes in the order written (oslo's default).
    #[default]
    RoundRobin,
    /// `shuffle`: a random node.
    Shuffle,
}

impl FailoverStrategy {
    /// The value as written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverStrategy::RoundRobin => "round-robin",
            FailoverStrategy::Shuffle => "shuffle",
        }
    }
}

/// `[DEFAULT]` options of oslo.messaging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultOptions {
    /// `transport_url`: the RPC transport. `None` when unset; oslo then uses
    /// its default `rabbit://` (guest:guest on localhost:5672).
    pub transport_url: Option<TransportUrl>,
    /// `control_exchange`: the exchange of targets that name none. Default `openstack`.
    pub control_exchange: String,
    /// `rpc_response_timeout`: seconds an RPC call waits for its reply. Default 60.
    pub rpc_response_timeout: u32,
    /// `executor_thread_pool_size` (deprecated name `rpc_thread_pool_size`):
    /// how many requests a server handles at once. Default 64, at least 1.
    pub executor_thread_pool_size: u32,
    /// `rpc_ping_enabled`: servers answer `oslo_rpc_server_ping` calls. Default false.
    pub rpc_ping_enabled: bool,
}

impl Default for DefaultOptions {
    fn default() -> DefaultOptions {
        DefaultOptions {
            transport_url: None,
            control_exchange: "openstack".to_owned(),
            rpc_response_timeout: 60,
            executor_thread_pool_size: 64,
            rpc_ping_enabled: false,
        }
    }
}

/// `[oslo_messaging_rabbit]` options that this framework's AMQP transport
/// understands (in its transport URL's query, under these oslo names), and
/// `rpc_conn_pool_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RabbitOptions {
    /// `ssl`: connect with TLS. Default false.
    pub ssl: bool,
    /// `ssl_ca_file`: PEM file of the certificate authorities to trust. Default none (oslo's `''`).
    pub ssl_ca_file: Option<PathBuf>,
    /// `ssl_cert_file`: PEM client certificate. Default none.
    pub ssl_cert_file: Option<PathBuf>,
    /// `ssl_key_file`: PEM private key of the client certificate. Default none.
    pub ssl_key_file: Option<PathBuf>,
    /// `heartbeat_timeout_threshold`: seconds without heartbeats after which
    /// the broker is considered down; 0 disables heartbeats. Default 60.
    pub heartbeat_timeout_threshold: u32,
    /// `rabbit_qos_prefetch_count`: messages prefetched; 0 is unlimited. Default 0.
    pub rabbit_qos_prefetch_count: u32,
    /// `rabbit_retry_interval`: seconds before the first reconnection. Default 1, at least 1.
    pub rabbit_retry_interval: u32,
    /// `rabbit_interval_max`: longest seconds between reconnections. Default 30, at least 1.
    pub rabbit_interval_max: u32,
    /// `kombu_failover_strategy`: `round-robin` (default) or `shuffle`.
    pub kombu_failover_strategy: FailoverStrategy,
    /// `amqp_durable_queues`: durable queues and exchanges. Default false.
    /// (`[DEFAULT] amqp_durable_queues` and `rabbit_durable_queues` are
    /// retired names, ignored as oslo.messaging 18 ignores them.)
    pub amqp_durable_queues: bool,
    /// `amqp_auto_delete`: auto-delete control exchanges, and topic, server
    /// and notification queues. Default false.
    pub amqp_auto_delete: bool,
    /// `rabbit_quorum_queue`: quorum queues (`x-queue-type: quorum`). Default false.
    pub rabbit_quorum_queue: bool,
    /// `rabbit_transient_quorum_queue`: quorum queues for reply and fanout queues too. Default false.
    pub rabbit_transient_quorum_queue: bool,
    /// `rabbit_quorum_delivery_limit`: deliveries of a message before it is
    /// dropped; 0 sets no limit. Default 0.
    pub rabbit_quorum_delivery_limit: u32,
    /// `rabbit_quorum_max_memory_length`: messages a quorum queue keeps in
    /// memory (`x-max-in-memory-length`); 0 sets no limit. Default 0.
    pub rabbit_quorum_max_memory_length: u32,
    /// `rabbit_quorum_max_memory_bytes`: bytes a quorum queue keeps in
    /// memory (`x-max-in-memory-bytes`); 0 sets no limit. Default 0.
    pub rabbit_quorum_max_memory_bytes: u64,
    /// `enable_cancel_on_failover`: `x-cancel-on-ha-failover` on consumers. Default false.
    pub enable_cancel_on_failover: bool,
    /// `rabbit_transient_queues_ttl`: seconds an unused reply or fanout queue
    /// lives (`x-expires`); 0 disables it. Default 1800.
    pub rabbit_transient_queues_ttl: u32,
    /// `kombu_missing_consumer_retry_timeout` (deprecated name
    /// `kombu_reconnect_timeout`): seconds a reply to a missing queue is retried. Default 60.
    pub kombu_missing_consumer_retry_timeout: u32,
    /// `rpc_conn_pool_size`: size of the RPC connection pool. Default 30, at
    /// least 1. Not used by the transport.
    pub rpc_conn_pool_size: u32,
}

impl Default for RabbitOptions {
    fn default() -> RabbitOptions {
        RabbitOptions {
            ssl: false,
            ssl_ca_file: None,
            ssl_cert_file: None,
            ssl_key_file: None,
            heartbeat_timeout_threshold: 60,
            rabbit_qos_prefetch_count: 0,
            rabbit_retry_interval: 1,
            rabbit_interval_max: 30,
            kombu_failover_strategy: FailoverStrategy::RoundRobin,
            amqp_durable_queues: false,
            amqp_auto_delete: false,
            rabbit_quorum_queue: false,
            rabbit_transient_quorum_queue: false,
            rabbit_quorum_delivery_limit: 0,
            rabbit_quorum_max_memory_length: 0,
            rabbit_quorum_max_memory_bytes: 0,
            enable_cancel_on_failover: false,
            rabbit_transient_queues_ttl: 1800,
            kombu_missing_consumer_retry_timeout: 60,
            rpc_conn_pool_size: 30,
        }
    }
}

/// `[oslo_messaging_notifications]` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationOptions {
    /// `driver`, multi-valued:
    /// every `driver = ...` line of every file, in order (`messagingv2`,
    /// `messaging`, `log`, `noop`, `routing`, `test`). Default none: no notifications.
    pub driver: Vec<String>,
    /// `transport_url`: the notifications' transport; `None` when unset or
    /// empty, when the RPC one is used (see
    /// [`Options::notification_transport_url`]).
    pub transport_url: Option<TransportUrl>,
    /// `topics`: comma-separated. Default `notifications`.
    pub topics: Vec<String>,
    /// `retry`: attempts to resend a notification; -1 retries forever, 0 never. Default -1.
    pub retry: i64,
}

impl Default for NotificationOptions {
    fn default() -> NotificationOptions {
        NotificationOptions {
            driver: Vec::new(),
            transport_url: None,
            topics: vec!["notifications".to_owned()],
            retry: -1,
        }
    }
}

impl NotificationOptions {
    /// Whether a driver that does something is configured (one other than `noop`).
    pub fn enabled(&self) -> bool {
        self.driver.iter().any(|driver| !driver.is_empty() && driver != "noop")
    }
}

/// The oslo.messaging options of a configuration, typed; oslo's defaults for those not set.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `[DEFAULT]`.
    pub default: DefaultOptions,
    /// `[oslo_messaging_rabbit]`.
    pub rabbit: RabbitOptions,
    /// `[oslo_messaging_notifications]`.
    pub notifications: NotificationOptions,
    /// The transport options set in the files (oslo names), for [`Options::transport_query`].
    explicit: Vec<&'static str>,
}

impl Options {
    /// Makes `exchange` the default of `control_exchange` when the files do
    /// not set it; see [`Config::with_default_control_exchange`](crate::Config::with_default_control_exchange).
    pub(crate) fn default_control_exchange(&mut self, exchange: String) {
        if !self.explicit.contains(&"control_exchange") {
            self.default.control_exchange = exchange;
            self.explicit.push("control_exchange");
        }
    }

    /// The notifications' transport: `[oslo_messaging_notifications] transport_url`,
    /// or else `[DEFAULT] transport_url` (oslo's `get_notification_transport`).
    pub fn notification_transport_url(&self) -> Option<&TransportUrl> {
        self.notifications
            .transport_url
            .as_ref()
            .or(self.default.transport_url.as_ref())
    }

    /// The options set in the files that the AMQP transport reads from its
    /// URL's query, as `(oslo name, value)` pairs: `control_exchange` and the
    /// [`RabbitOptions`] but `rpc_conn_pool_size`. Options left at their
    /// defaults are not listed, so the transport keeps its own defaults.
    ///
    /// Hand them to [`TransportUrl::full_url_with`], which keeps the URL's own
    /// query options first, as oslo does.
    pub fn transport_query(&self) -> Vec<(&'static str, String)> {
        let rabbit = &self.rabbit;
        let flag = |value: bool| value.to_string();
        let path = |value: &Option<PathBuf>| value.as_ref().map(|path| path.display().to_string());
        self.explicit
            .iter()
            .filter_map(|name| {
                let value = match *name {
                    "control_exchange" => Some(self.default.control_exchange.clone()),
                    "ssl" => Some(flag(rabbit.ssl)),
                    "ssl_ca_file" => path(&rabbit.ssl_ca_file),
                    "ssl_cert_file" => path(&rabbit.ssl_cert_file),
                    "ssl_key_file" => path(&rabbit.ssl_key_file),
                    "heartbeat_timeout_threshold" => Some(rabbit.heartbeat_timeout_threshold.to_string()),
                    "rabbit_qos_prefetch_count" => Some(rabbit.rabbit_qos_prefetch_count.to_string()),
                    "rabbit_retry_interval" => Some(rabbit.rabbit_retry_interval.to_string()),
                    "rabbit_interval_max" => Some(rabbit.rabbit_interval_max.to_string()),
                    "kombu_failover_strategy" => Some(rabbit.kombu_failover_strategy.as_str().to_owned()),
                    "amqp_durable_queues" => Some(flag(rabbit.amqp_durable_queues)),
                    "amqp_auto_delete" => Some(flag(rabbit.amqp_auto_delete)),
                    "rabbit_quorum_queue" => Some(flag(rabbit.rabbit_quorum_queue)),
                    "rabbit_transient_quorum_queue" => Some(flag(rabbit.rabbit_transient_quorum_queue)),
                    "rabbit_quorum_delivery_limit" => Some(rabbit.rabbit_quorum_delivery_limit.to_string()),
                    "rabbit_quorum_max_memory_length" => Some(rabbit.rabbit_quorum_max_memory_length.to_string()),
                    "rabbit_quorum_max_memory_bytes" => Some(rabbit.rabbit_quorum_max_memory_bytes.to_string()),
                    "enable_cancel_on_failover" => Some(flag(rabbit.enable_cancel_on_failover)),
                    "rabbit_transient_queues_ttl" => Some(rabbit.rabbit_transient_queues_ttl.to_string()),
                    "kombu_missing_consumer_retry_timeout" => {
                        Some(rabbit.kombu_missing_consumer_retry_timeout.to_string())
                    }
                    _ => None,
                };
                value.map(|value| (*name, value))
            })
            .collect()
    }
}

/// Why an option of `[oslo_messaging_rabbit]` or `[oslo_messaging_notifications]`,
/// or a retired name elsewhere, has no effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Not an oslo.messaging option of that section: a typo, an option of a
    /// newer oslo.messaging, or one removed long ago.
    Unknown,
    /// An oslo.messaging option that this framework's transport does not use.
    Unsupported,
    /// A name older oslo.messaging releases read and 18.x no longer does
    /// (`[DEFAULT] notification_driver`, say): Python services ignore it
    /// too. `replacement` is the option to set instead, as
    /// `[section] name`.
    Retired {
        /// The option that replaced it.
        replacement: &'static str,
    },
}

/// An option that is set but has no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredOption {
    /// The section: [`RABBIT_SECTION`] or [`NOTIFICATIONS_SECTION`], or
    /// where a retired name was set (`DEFAULT`, say).
    pub section: &'static str,
    /// The option, as written.
    pub option: String,
    /// Where its effective value was written.
    pub location: Location,
    /// Why it has no effect.
    pub reason: IgnoreReason,
}

impl fmt::Display for IgnoredOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: ignoring `{}` in [{}]: ",
            self.location, self.option, self.section
        )?;
        match self.reason {
            IgnoreReason::Unknown => f.write_str("not an oslo.messaging option (misspelt?)"),
            IgnoreReason::Unsupported => f.write_str("an oslo.messaging option this transport does not use"),
            IgnoreReason::Retired { replacement } => write!(
                f,
                "a name oslo.messaging no longer reads (nor do Python services); set {replacement}"
            ),
        }
    }
}

/// An option set under a deprecated name or section, and used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeprecatedOption {
    /// The deprecated section.
    pub section: &'static str,
    /// The deprecated name.
    pub option: &'static str,
    /// Where the value used was written.
    pub location: Location,
    /// The section to use instead.
    pub replacement_section: &'static str,
    /// The name to use instead.
    pub replacement_option: &'static str,
}

impl fmt::Display for DeprecatedOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: option `{}` in [{}] is deprecated: use `{}` in [{}]",
            self.location, self.option, self.section, self.replacement_option, self.replacement_section
        )
    }
}

/// What [`read`] finds.
pub(crate) struct Typed {
    pub options: Options,
    pub ignored: Vec<IgnoredOption>,
    pub deprecated: Vec<DeprecatedOption>,
}

/// A value found for an option: under which name, and where.
struct Found<'a> {
    group: &'static str,
    name: &'static str,
    value: &'a str,
    location: &'a Location,
}

struct Reader<'a> {
    config: &'a Config,
    deprecated: Vec<DeprecatedOption>,
    explicit: Vec<&'static str>,
}

/// Types the options of a merged configuration.
pub(crate) fn read(config: &Config) -> Result<Typed, Error> {
    let mut reader = Reader {
        config,
        deprecated: Vec::new(),
        explicit: Vec::new(),
    };
    let r = &mut reader;
    let default = DefaultOptions {
        transport_url: r.url(&TRANSPORT_URL)?,
        control_exchange: r.string(&CONTROL_EXCHANGE)?.unwrap_or_else(|| "openstack".to_owned()),
        rpc_response_timeout: r.number(&RPC_RESPONSE_TIMEOUT, 0, 60)?,
        executor_thread_pool_size: r.number(&EXECUTOR_THREAD_POOL_SIZE, 1, 64)?,
        rpc_ping_enabled: r.boolean(&RPC_PING_ENABLED)?,
    };
    let rabbit = RabbitOptions {
        ssl: r.boolean(&SSL)?,
        ssl_ca_file: r.path(&SSL_CA_FILE)?,
        ssl_cert_file: r.path(&SSL_CERT_FILE)?,
        ssl_key_file: r.path(&SSL_KEY_FILE)?,
        heartbeat_timeout_threshold: r.number(&HEARTBEAT_TIMEOUT_THRESHOLD, 0, 60)?,
        rabbit_qos_prefetch_count: r.number(&RABBIT_QOS_PREFETCH_COUNT, 0, 0)?,
        rabbit_retry_interval: r.number(&RABBIT_RETRY_INTERVAL, 1, 1)?,
        rabbit_interval_max: r.number(&RABBIT_INTERVAL_MAX, 1, 30)?,
        kombu_failover_strategy: r.failover(&KOMBU_FAILOVER_STRATEGY)?,
        amqp_durable_queues: r.boolean(&AMQP_DURABLE_QUEUES)?,
        amqp_auto_delete: r.boolean(&AMQP_AUTO_DELETE)?,
        rabbit_quorum_queue: r.boolean(&RABBIT_QUORUM_QUEUE)?,
        rabbit_transient_quorum_queue: r.boolean(&RABBIT_TRANSIENT_QUORUM_QUEUE)?,
        rabbit_quorum_delivery_limit: r.number(&RABBIT_QUORUM_DELIVERY_LIMIT, 0, 0)?,
        rabbit_quorum_max_memory_length: r.number(&RABBIT_QUORUM_MAX_MEMORY_LENGTH, 0, 0)?,
        // Bytes may pass 4 GiB (oslo's `IntOpt` has no maximum).
        rabbit_quorum_max_memory_bytes: r
            .integer(&RABBIT_QUORUM_MAX_MEMORY_BYTES, 0, i64::MAX)?
            .map_or(0, |bytes| u64::try_from(bytes).unwrap_or(0)),
        enable_cancel_on_failover: r.boolean(&ENABLE_CANCEL_ON_FAILOVER)?,
        rabbit_transient_queues_ttl: r.number(&RABBIT_TRANSIENT_QUEUES_TTL, 0, 1800)?,
        kombu_missing_consumer_retry_timeout: r.number(&KOMBU_MISSING_CONSUMER_RETRY_TIMEOUT, 0, 60)?,
        rpc_conn_pool_size: r.number(&RPC_CONN_POOL_SIZE, 1, 30)?,
    };
    let notifications = NotificationOptions {
        driver: r.multi(&DRIVER)?,
        // Empty, it falls back to the RPC one (oslo's `url or conf.transport_url`).
        transport_url: r.url_unless_empty(&NOTIFICATION_TRANSPORT_URL)?,
        topics: r.list(&TOPICS)?.unwrap_or_else(|| vec!["notifications".to_owned()]),
        retry: r.integer(&RETRY, i64::MIN, i64::MAX)?.unwrap_or(-1),
    };
    Ok(Typed {
        options: Options {
            default,
            rabbit,
            notifications,
            explicit: reader.explicit,
        },
        ignored: ignored(config),
        deprecated: reader.deprecated,
    })
}

/// The names an option is looked up under: its own, then its deprecated ones.
fn names(spec: &Spec) -> impl Iterator<Item = (&'static str, &'static str)> + use<> {
    std::iter::once((spec.group, spec.name)).chain(spec.deprecated.iter().copied())
}

impl<'a> Reader<'a> {
    /// The value of a single-valued option: the last file setting it under any
    /// name wins; in one file, the earlier name of the list.
    fn find(&mut self, spec: &Spec) -> Option<Found<'a>> {
        let config = self.config;
        let mut best: Option<(usize, Found<'a>)> = None;
        for (group, name) in names(spec) {
            let Some(setting) = config.setting(group, name) else {
                continue;
            };
            let Some((value, location, file)) = setting.entries().last() else {
                continue;
            };
            if best.as_ref().is_none_or(|(best_file, _)| file > *best_file) {
                let found = Found {
                    group,
                    name,
                    value,
                    location,
                };
                best = Some((file, found));
            }
        }
        let (_, found) = best?;
        self.note_use(spec, &found);
        Some(found)
    }

    /// Records the use of an option; notes it when under a deprecated name.
    fn note_use(&mut self, spec: &Spec, found: &Found<'a>) {
        if !self.explicit.contains(&spec.name) {
            self.explicit.push(spec.name);
        }
        if (found.group, found.name) != (spec.group, spec.name) {
            let section = found.group;
            if !self
                .deprecated
                .iter()
                .any(|seen| seen.section == section && seen.option == found.name)
            {
                self.deprecated.push(DeprecatedOption {
                    section,
                    option: found.name,
                    location: found.location.clone(),
                    replacement_section: spec.group,
                    replacement_option: spec.name,
                });
            }
        }
    }

    /// The substituted value of a single-valued option, with where it was found.
    fn text(&mut self, spec: &Spec) -> Result<Option<(String, Found<'a>)>, Error> {
        let Some(found) = self.find(spec) else {
            return Ok(None);
        };
        let value = subst::substitute(self.config, found.group, found.value)
            .map_err(|error| substitution_error(spec, &found, &error))?;
        Ok(Some((value, found)))
    }

    fn string(&mut self, spec: &Spec) -> Result<Option<String>, Error> {
        Ok(self.text(spec)?.map(|(value, _)| value))
    }

    fn path(&mut self, spec: &Spec) -> Result<Option<PathBuf>, Error> {
        Ok(self.string(spec)?.filter(|path| !path.is_empty()).map(PathBuf::from))
    }

    fn boolean(&mut self, spec: &Spec) -> Result<bool, Error> {
        match self.text(spec)? {
            None => Ok(spec.default == "True"),
            Some((value, found)) => parse_bool(&value).map_err(|reason| invalid(spec, &found, reason)),
        }
    }

    fn integer(&mut self, spec: &Spec, min: i64, max: i64) -> Result<Option<i64>, Error> {
        match self.text(spec)? {
            None => Ok(None),
            Some((value, found)) => parse_int(&value, min, max)
                .map(Some)
                .map_err(|reason| invalid(spec, &found, reason)),
        }
    }

    fn number(&mut self, spec: &Spec, min: u32, default: u32) -> Result<u32, Error> {
        let value = self.integer(spec, i64::from(min), i64::from(u32::MAX))?;
        // In range by construction; the default is the fallback for the impossible.
        Ok(value.map_or(default, |value| u32::try_from(value).unwrap_or(default)))
    }

    fn failover(&mut self, spec: &Spec) -> Result<FailoverStrategy, Error> {
        match self.text(spec)? {
            None => Ok(FailoverStrategy::RoundRobin),
            Some((value, found)) => match value.as_str() {
                "round-robin" => Ok(FailoverStrategy::RoundRobin),
                "shuffle" => Ok(FailoverStrategy::Shuffle),
                _ => Err(invalid(spec, &found, "expected `round-robin` or `shuffle`".to_owned())),
            },
        }
    }

    fn list(&mut self, spec: &Spec) -> Result<Option<Vec<String>>, Error> {
        Ok(self.text(spec)?.map(|(value, _)| parse_list(&value)))
    }

    fn url(&mut self, spec: &Spec) -> Result<Option<TransportUrl>, Error> {
        let Some((value, found)) = self.text(spec)? else {
            return Ok(None);
        };
        Self::parse_url(value, found)
    }

    /// A URL, `None` when set but empty.
    fn url_unless_empty(&mut self, spec: &Spec) -> Result<Option<TransportUrl>, Error> {
        match self.text(spec)? {
            Some((value, found)) if !value.trim().is_empty() => Self::parse_url(value, found),
            _ => Ok(None),
        }
    }

    fn parse_url(value: String, found: Found<'a>) -> Result<Option<TransportUrl>, Error> {
        TransportUrl::parse(&value)
            .map(Some)
            .map_err(|source| Error::InvalidTransportUrl {
                location: found.location.clone(),
                section: found.group,
                option: found.name,
                url: url::redact(&value),
                source,
            })
    }

    /// The values of a multi-valued option: every file's, in file order; in
    /// one file, deprecated names' values before the current name's (oslo's
    /// `rvalue = val + rvalue`).
    fn multi(&mut self, spec: &Spec) -> Result<Vec<String>, Error> {
        let config = self.config;
        let mut found: Vec<(usize, usize, usize, Found<'a>)> = Vec::new();
        for (rank, (group, name)) in names(spec).enumerate() {
            let Some(setting) = config.setting(group, name) else {
                continue;
            };
            for (index, (value, location, file)) in setting.entries().enumerate() {
                let entry = Found {
                    group,
                    name,
                    value,
                    location,
                };
                found.push((file, usize::MAX - rank, index, entry));
            }
        }
        found.sort_by_key(|(file, rank, index, _)| (*file, *rank, *index));
        let mut values = Vec::with_capacity(found.len());
        for (_, _, _, entry) in &found {
            self.note_use(spec, entry);
            let value = subst::substitute(self.config, entry.group, entry.value)
                .map_err(|error| substitution_error(spec, entry, &error))?;
            values.push(value);
        }
        Ok(values)
    }
}

fn invalid(spec: &Spec, found: &Found<'_>, reason: String) -> Error {
    Error::InvalidValue {
        location: found.location.clone(),
        section: found.group,
        option: found.name,
        value: (!spec.secret).then(|| found.value.to_owned()),
        reason,
    }
}

fn substitution_error(spec: &Spec, found: &Found<'_>, error: &SubstError) -> Error {
    Error::Substitution {
        location: found.location.clone(),
        section: found.group,
        option: found.name,
        reference: if spec.secret {
            "***".to_owned()
        } else {
            error.reference().to_owned()
        },
        reason: error.reason().to_owned(),
    }
}

/// The options of the rabbit and notifications sections that nothing
/// reads, and the retired names set anywhere.
fn ignored(config: &Config) -> Vec<IgnoredOption> {
    let mut ignored = Vec::new();
    for (section, option, replacement) in RETIRED {
        let setting = config.section(section).and_then(|found| found.get(option));
        if let Some(location) = setting.and_then(|setting| setting.location()) {
            ignored.push(IgnoredOption {
                section,
                option: option.to_owned(),
                location: location.clone(),
                reason: IgnoreReason::Retired { replacement },
            });
        }
    }
    for section_name in [RABBIT_SECTION, NOTIFICATIONS_SECTION] {
        let Some(section) = config.section(section_name) else {
            continue;
        };
        for (option, setting) in section.iter() {
            let typed = SPECS
                .iter()
                .flat_map(|spec| names(spec))
                .any(|(group, name)| group == section_name && name == option);
            if typed {
                continue;
            }
            let reason = if is_registered(section_name, option) == Some(true) {
                IgnoreReason::Unsupported
            } else {
                IgnoreReason::Unknown
            };
            if let Some(location) = setting.location() {
                ignored.push(IgnoredOption {
                    section: section_name,
                    option: option.to_owned(),
                    location: location.clone(),
                    reason,
                });
            }
        }
    }
    ignored
}

/// oslo.config's `types.Boolean`.
fn parse_bool(value: &str) -> Result<bool, String> {
    const TRUE: [&str; 4] = ["true", "1", "on", "yes"];
    const FALSE: [&str; 4] = ["false", "0", "off", "no"];
    if TRUE.iter().any(|word| word.eq_ignore_ascii_case(value)) {
        Ok(true)
    } else if FALSE.iter().any(|word| word.eq_ignore_ascii_case(value)) {
        Ok(false)
    } else {
        Err("expected a boolean: true/false, yes/no, on/off or 1/0".to_owned())
    }
}

/// oslo.config's `types.Integer` (Python's `int()` on ASCII), within `min..=max`.
fn parse_int(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let text = value.trim();
    if text.is_empty() {
        return Err("empty value (oslo.config would read it as None): write a number or remove the line".to_owned());
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|byte| byte.is_ascii_digit() || byte == b'_');
    if !well_formed {
        return Err("expected a decimal integer".to_owned());
    }
    let range = || format!("must be between {min} and {max}");
    let magnitude: i128 = digits.replace('_', "").parse().map_err(|_| range())?;
    let number = if negative { -magnitude } else { magnitude };
    if number < i128::from(min) {
        return Err(if min == 0 {
            "must not be negative".to_owned()
        } else {
            format!("must be at least {min}")
        });
    }
    i64::try_from(number)
        .ok()
        .filter(|number| *number <= max)
        .ok_or_else(range)
}

/// oslo.config's `types.List` of strings.
fn parse_list(value: &str) -> Vec<String> {
    let text = value.trim().trim_end_matches(',');
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',').map(|item| item.trim().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_oslo() {
        for word in ["true", "TRUE", "True", "1", "on", "On", "yes", "YES"] {
            assert_eq!(parse_bool(word), Ok(true), "{word}");
        }
        for word in ["false", "False", "0", "off", "OFF", "no", "No"] {
            assert_eq!(parse_bool(word), Ok(false), "{word}");
        }
        for word in ["", "t", "y", "2", "truee", " true", "enabled"] {
            assert!(parse_bool(word).is_err(), "{word}");
        }
    }

    #[test]
    fn integers_as_python_int() {
        assert_eq!(parse_int("60", 0, 100), Ok(60));
        assert_eq!(parse_int("+7", 0, 100), Ok(7));
        assert_eq!(parse_int("007", 0, 100), Ok(7));
        assert_eq!(parse_int("1_000", 0, 10_000), Ok(1000));
        assert_eq!(parse_int("-1", i64::MIN, i64::MAX), Ok(-1));
        assert_eq!(parse_int("-0", 0, 5), Ok(0));
        for bad in [
            "", "  ", "1.5", "0x10", "1e3", "_1", "1_", "1__0", "ten", "- 1", "--1", "+-1",
        ] {
            assert!(parse_int(bad, i64::MIN, i64::MAX).is_err(), "{bad:?}");
        }
        assert_eq!(parse_int("-5", 0, 10), Err("must not be negative".to_owned()));
        assert_eq!(parse_int("0", 1, 10), Err("must be at least 1".to_owned()));
        assert_eq!(parse_int("11", 0, 10), Err("must be between 0 and 10".to_owned()));
        assert!(parse_int("99999999999999999999999999999999999999999999", 0, 10).is_err());
    }

    #[test]
    fn lists_as_oslo() {
        assert_eq!(parse_list("notifications"), ["notifications"]);
        assert_eq!(parse_list(" a , b,c ,"), ["a", "b", "c"]);
        assert_eq!(parse_list("a,,b"), ["a", "", "b"]);
        assert!(parse_list("").is_empty());
        assert!(parse_list(" ,, ").is_empty());
        assert_eq!(parse_list(" , ,"), ["", ""]);
        assert_eq!(parse_list("a, ,"), ["a", ""]);
    }

    #[test]
    fn spec_defaults_match_typed_defaults() {
        // A configuration where every typed option is set to its `$reference`
        // default text must type to the same values as the Rust defaults.
        let mut text = String::new();
        for group in [DEFAULT_SECTION, RABBIT_SECTION, NOTIFICATIONS_SECTION] {
            text.push_str(&format!("[{group}]\n"));
            for spec in SPECS.iter().filter(|spec| spec.group == group) {
                let value = match spec.default {
                    // Python's str() of a list is not the list syntax of a config file.
                    "[]" => continue,
                    "['notifications']" => "notifications",
                    "" if spec.name == "transport_url" => continue,
                    "rabbit://" => continue,
                    other => other,
                };
                text.push_str(&format!("{} = {value}\n", spec.name));
            }
        }
        let config = Config::from_text("defaults.conf", &text).unwrap();
        let options = config.options();
        assert_eq!(options.default, DefaultOptions::default());
        assert_eq!(options.rabbit, RabbitOptions::default());
        assert_eq!(options.notifications, NotificationOptions::default());
        assert!(config.ignored_options().is_empty());
        let empty = Config::from_text("empty.conf", "").unwrap();
        assert_eq!(empty.options().rabbit, RabbitOptions::default());
        assert!(empty.options().transport_query().is_empty());
    }

    #[test]
    fn oslo_options_this_transport_ignores_are_told_from_typos() {
        // 18.3.1 still declares it (deprecated): not "misspelt?".
        let config = Config::from_text(
            "nova.conf",
            "[oslo_messaging_rabbit]\nssl_enforce_hostname_verification = false\nssl_enforce_hostnme = x\n",
        )
        .unwrap();
        let reasons: Vec<(&str, IgnoreReason)> = config
            .ignored_options()
            .iter()
            .map(|ignored| (ignored.option.as_str(), ignored.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("ssl_enforce_hostname_verification", IgnoreReason::Unsupported),
                ("ssl_enforce_hostnme", IgnoreReason::Unknown)
            ]
        );
    }

    #[test]
    fn auto_delete_reaches_the_transport() {
        let config = Config::from_text("nova.conf", "[oslo_messaging_rabbit]\namqp_auto_delete = true\n").unwrap();
        assert!(config.options().rabbit.amqp_auto_delete);
        assert!(config.ignored_options().is_empty(), "{:?}", config.ignored_options());
        assert!(
            config.rpc_url().contains("amqp_auto_delete=true"),
            "{}",
            config.rpc_url()
        );
    }

    #[test]
    fn quorum_memory_limits_reach_the_transport() {
        let config = Config::from_text(
            "nova.conf",
            "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_max_memory_length = 100\n\
             rabbit_quorum_max_memory_bytes = 8589934592\n",
        )
        .unwrap();
        assert!(config.ignored_options().is_empty(), "{:?}", config.ignored_options());
        let url = config.rpc_url();
        assert!(
            url.contains("rabbit_quorum_max_memory_length=100")
                && url.contains("rabbit_quorum_max_memory_bytes=8589934592"),
            "{url}"
        );
    }

    #[test]
    fn every_unsupported_option_is_unknown_to_the_typed_table() {
        assert!(RETIRED.is_sorted(), "RETIRED is reported in its order");
        for option in UNSUPPORTED_RABBIT_OPTIONS {
            assert!(default_text(RABBIT_SECTION, option).is_none(), "{option}");
        }
        assert_eq!(SPECS.len(), 29);
    }
}
