//! Reads OpenStack configuration files the way oslo.config reads them, and
//! types the oslo.messaging options, so that Rust services and tools take
//! their messaging settings from the same `nova.conf`, `neutron.conf`... as
//! the Python services next to them.
//!
//! ```
//! use rpc_config::{Config, Sources};
//! # let dir = std::env::temp_dir().join(format!("rpc-config-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(dir.join("nova.conf.d")).unwrap();
//! # std::fs::write(dir.join("nova.conf"), "[DEFAULT]\ntransport_url = rabbit://nova:secret@10.0.0.11:5672//\n").unwrap();
//! # std::fs::write(dir.join("nova.conf.d/10-rabbit.conf"), "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n").unwrap();
//! // nova-compute --config-file /etc/nova/nova.conf --config-dir /etc/nova/nova.conf.d
//! let config = Config::load(&Sources::new().file(dir.join("nova.conf")).dir(dir.join("nova.conf.d")))?;
//! let options = config.options();
//! assert!(options.rabbit.rabbit_quorum_queue);
//! let url = options.default.transport_url.as_ref().unwrap();
//! // Display masks passwords: for logs.
//! assert_eq!(url.to_string(), "rabbit://nova:***@10.0.0.11:5672//");
//! // The transport gets the full URL, with the section's options in its query.
//! assert_eq!(
//!     url.full_url_with(&options.transport_query()),
//!     "rabbit://nova:secret@10.0.0.11:5672//?rabbit_quorum_queue=true"
//! );
//! for ignored in config.ignored_options() {
//!     eprintln!("{ignored}");
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), rpc_config::Error>(())
//! ```
//!
//! # What is matched
//!
//! - The INI dialect of oslo.config's `iniparser`: `key = value` or
//!   `key: value`, whitespace stripped around both, `#`/`;` comment lines,
//!   indented continuation lines joined with `\n`, one pair of matching
//!   quotes stripped, case-sensitive keys, section names case-insensitive
//!   except `DEFAULT`, errors with their line.
//! - Several files (`--config-file`) and directories (`--config-dir`, their
//!   `*.conf` sorted by name) in command-line order; single-valued options
//!   take the last value, multi-valued ones all values of all files ([`Sources`]).
//! - oslo's `$name` / `${section.name}` substitution, `$$` for `$`.
//! - oslo's option names, deprecated names, types and defaults ([`Options`]),
//!   as oslo.messaging 18.3.1 declares them: names older releases read and 18
//!   no longer does (`[DEFAULT] notification_driver`, `rabbit_durable_queues`)
//!   are ignored as Python services ignore them, and reported
//!   ([`IgnoreReason::Retired`]); a notifier loads each driver once, as
//!   stevedore does; an empty `[oslo_messaging_notifications] transport_url`
//!   falls back to the RPC one.
//! - oslo.messaging's transport URL parsing ([`TransportUrl`]).
//!
//! Not matched: oslo.config also reads `OS_<SECTION>__<OPTION>` environment
//! variables, command-line options and pluggable configuration sources
//! (`config_source`), which this crate does not.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod error;
mod files;
mod ini;
mod options;
mod service;
mod subst;
mod url;

pub use config::{Config, DEFAULT_SECTION, Section, Setting};
pub use error::{Error, Location, ParseErrorKind};
pub use files::{Source, Sources, find_config_dirs, find_config_files};
pub use options::{
    DefaultOptions, DeprecatedOption, FailoverStrategy, IgnoreReason, IgnoredOption, NOTIFICATIONS_SECTION,
    NotificationOptions, Options, RABBIT_SECTION, RabbitOptions,
};
pub use service::DEFAULT_TRANSPORT_URL;
pub use url::{Scheme, TransportHost, TransportUrl, UrlError};
