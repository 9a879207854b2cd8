//! The options every command takes, and the transport they lead to.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Args, ValueEnum};
use rpc_config::{Config, Sources};
use rpc_core::{Codec, Transport};

use crate::exit::Exit;

/// The local RabbitMQ, when nothing says otherwise.
const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Options of every command.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Where to connect: amqp://, rabbit:// (oslo's form, several hosts),
    /// amqps://, memory://. Overrides the configuration files, which
    /// override $RPC_TRANSPORT_URL.
    // Not clap's `env`: it would put the variable's value, password and
    // all, in `--help`, and rank it above the files.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) transport_url: Option<String>,
    /// An oslo.config file to read (`nova.conf`...); repeat it, later files
    /// override earlier ones.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config_file: Vec<PathBuf>,
    /// A directory of oslo.config files (`*.conf`, by name), read after the files.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) config_dir: Vec<PathBuf>,
    /// The wire format of requests: oslo's JSON (what Python services speak;
    /// Rust servers read both) or MessagePack.
    #[arg(long, global = true, value_enum, default_value_t = WireCodec::Oslo)]
    pub(crate) codec: WireCodec,
    /// More logs on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// The files, read once, at their first use.
    #[arg(skip)]
    loaded: OnceLock<Result<Option<Config>, String>>,
}

/// `--codec`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum WireCodec {
    /// oslo.messaging's JSON.
    Oslo,
    /// MessagePack.
    Msgpack,
}

impl From<WireCodec> for Codec {
    fn from(codec: WireCodec) -> Codec {
        match codec {
            WireCodec::Oslo => Codec::OsloJson,
            WireCodec::Msgpack => Codec::MsgPack,
        }
    }
}

impl Global {
    /// The configuration files, if any were given; read at the first call.
    pub(crate) fn config(&self) -> Result<Option<&Config>, Exit> {
        let loaded = self.loaded.get_or_init(|| {
            if self.config_file.is_empty() && self.config_dir.is_empty() {
                return Ok(None);
            }
            let mut sources = Sources::new();
            for file in &self.config_file {
                sources = sources.file(file);
            }
            for dir in &self.config_dir {
                sources = sources.dir(dir);
            }
            let config = Config::load(&sources).map_err(|error| error.to_string())?;
            for ignored in config.ignored_options() {
                tracing::warn!("{ignored}");
            }
            Ok(Some(config))
        });
        loaded
            .as_ref()
            .map(Option::as_ref)
            .map_err(|error| Exit::Config(error.clone()))
    }

    /// The RPC transport's URL: `--transport-url`, the files', the environment's, or the local RabbitMQ.
    pub(crate) fn rpc_url(&self, config: Option<&Config>) -> String {
        match (&self.transport_url, config) {
            (Some(url), _) => url.clone(),
            (None, Some(config)) => config.rpc_url(),
            (None, None) => environment_url().unwrap_or_else(|| DEFAULT_URL.to_owned()),
        }
    }

    /// Opens the RPC transport.
    pub(crate) async fn transport(&self) -> Result<Transport, Exit> {
        open(&self.rpc_url(self.config()?)).await
    }

    /// Opens the notifications' transport (the files' `[oslo_messaging_notifications]
    /// transport_url` when `--transport-url` is not given).
    pub(crate) async fn notification_transport(&self) -> Result<Transport, Exit> {
        open(&self.notification_url()?).await
    }

    fn notification_url(&self) -> Result<String, Exit> {
        let config = self.config()?;
        Ok(match (&self.transport_url, config) {
            (None, Some(config)) => config.notification_url(),
            _ => self.rpc_url(config),
        })
    }

    /// Opens the notifications' transport as [`notification_transport`](Global::notification_transport)
    /// does, with a transport option added to its URL (RabbitMQ's; a
    /// `memory://` transport takes none).
    pub(crate) async fn notification_transport_with(&self, option: &str, value: &str) -> Result<Transport, Exit> {
        let mut url = self.notification_url()?;
        if !url.starts_with("memory:") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(option);
            url.push('=');
            url.push_str(value);
        }
        open(&url).await
    }

    /// The call timeout: the command's, else the files' `rpc_response_timeout`, else 60 s.
    pub(crate) fn timeout(&self, given: Option<f64>) -> Result<Duration, Exit> {
        match given {
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .map_err(|_| Exit::Usage(format!("--timeout must be a positive number of seconds, not {seconds}"))),
            None => Ok(self
                .config()?
                .map_or(rpc_core::DEFAULT_TIMEOUT, |config| config.call_timeout())),
        }
    }
}

/// `$RPC_TRANSPORT_URL`, when set and not empty.
fn environment_url() -> Option<String> {
    std::env::var(ENVIRONMENT_URL).ok().filter(|url| !url.trim().is_empty())
}

/// The variable naming the transport when neither `--transport-url` nor a
/// configuration file does.
const ENVIRONMENT_URL: &str = "RPC_TRANSPORT_URL";

async fn open(url: &str) -> Result<Transport, Exit> {
    rpc_amqp::register();
    rpc_core::transport_from_url(url).await.map_err(Exit::from)
}

/// Logs on stderr: warnings by default, more with `-v`, or as `RUST_LOG` says;
/// the notifications of the `log` notification driver (`rpc notify --driver
/// log`) at every priority.
pub(crate) fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn,lapin=error,rpc_core::notify::log_driver=debug",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
