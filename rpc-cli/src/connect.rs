//! The options every command takes, and the transport they lead to.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Args, ValueEnum};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rpc_config::{Config, Source, Sources, find_config_dirs, find_config_files};
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
    /// A directory of oslo.config files (`*.conf`, by name), read where it
    /// stands among the files, as oslo.config reads it.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) config_dir: Vec<PathBuf>,
    /// The service whose files and exchange to use, as oslo.config's
    /// project (`nova`): without --config-file, the first of
    /// ~/.nova/nova.conf, ~/nova.conf, /etc/nova/nova.conf, /etc/nova.conf;
    /// without --config-dir, the first nova.conf.d there; and the control
    /// exchange `nova`, unless the transport URL in use names one
    /// (--transport-url's query, or the files' control_exchange).
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) project: Option<String>,
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
    /// The configuration files, if any were given or found for
    /// `--project`; read at the first call.
    pub(crate) fn config(&self) -> Result<Option<&Config>, Exit> {
        let loaded = self.loaded.get_or_init(|| {
            let sources = self.sources(std::env::args_os().skip(1));
            if sources.as_slice().is_empty() {
                return Ok(None);
            }
            let mut config = Config::load(&sources).map_err(|error| error.to_string())?;
            if let Some(project) = &self.project {
                config = config.with_default_control_exchange(project);
            }
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

    /// What to read, as oslo.config reads it: the project's default files
    /// when the command line gives no `--config-file`, its default
    /// directory when it gives no `--config-dir`, then the files and
    /// directories of the command line (`args`), in its order.
    fn sources(&self, args: impl IntoIterator<Item = OsString>) -> Sources {
        let mut given = given_sources(args);
        if given.is_empty() {
            // Not seen in the arguments (clap has them all the same).
            given.extend(self.config_file.iter().cloned().map(Source::File));
            given.extend(self.config_dir.iter().cloned().map(Source::Dir));
        }
        let mut sources = Sources::new();
        if let Some(project) = &self.project {
            if !given.iter().any(|source| matches!(source, Source::File(_))) {
                find_config_files(project)
                    .into_iter()
                    .for_each(|file| sources.push(Source::File(file)));
            }
            if !given.iter().any(|source| matches!(source, Source::Dir(_))) {
                find_config_dirs(project)
                    .into_iter()
                    .for_each(|dir| sources.push(Source::Dir(dir)));
            }
        }
        given.into_iter().for_each(|source| sources.push(source));
        sources
    }

    /// The RPC transport's URL: `--transport-url`, the files', the
    /// environment's, or the local RabbitMQ; with `--project`'s exchange
    /// when neither the files nor the URL name one.
    pub(crate) fn rpc_url(&self, config: Option<&Config>) -> String {
        let url = match (&self.transport_url, config) {
            (Some(url), _) => url.clone(),
            (None, Some(config)) => return config.rpc_url(),
            (None, None) => environment_url().unwrap_or_else(|| DEFAULT_URL.to_owned()),
        };
        match &self.project {
            Some(project) => with_default_exchange(url, project),
            None => url,
        }
    }

    /// Opens the RPC transport.
    pub(crate) async fn transport(&self) -> Result<Transport, Exit> {
        let url = self.rpc_url(self.config()?);
        self.given_url_checked(open(&url).await)
    }

    /// Opens the RPC transport, giving up after `timeout` (a command's
    /// `--timeout` covers reaching the broker too: opening alone retries for
    /// the transport's `startup_timeout`, 30 s by default).
    pub(crate) async fn transport_within(&self, timeout: Duration) -> Result<Transport, Exit> {
        let url = self.rpc_url(self.config()?);
        match tokio::time::timeout(timeout, open(&url)).await {
            Ok(opened) => self.given_url_checked(opened),
            Err(_) => Err(Exit::Unreachable(format!(
                "no connection to the broker within {:.1} s (--timeout)",
                timeout.as_secs_f64()
            ))),
        }
    }

    /// A bad `--transport-url` is a bad command line (2), not a bad
    /// configuration file (6), whose transport URL it would be otherwise.
    fn given_url_checked(&self, opened: Result<Transport, Exit>) -> Result<Transport, Exit> {
        match opened {
            Err(Exit::Config(message)) if self.transport_url.is_some() => {
                Err(Exit::Usage(format!("--transport-url: {message}")))
            }
            other => other,
        }
    }

    /// Opens the notifications' transport (the files' `[oslo_messaging_notifications]
    /// transport_url` when `--transport-url` is not given).
    pub(crate) async fn notification_transport(&self) -> Result<Transport, Exit> {
        let opened = open(&self.notification_url()?).await;
        self.given_url_checked(opened)
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
            push_option(&mut url, option, value);
        }
        self.given_url_checked(open(&url).await)
    }

    /// The call timeout: the command's, else the files' `rpc_response_timeout`, else 60 s.
    pub(crate) fn timeout(&self, given: Option<f64>) -> Result<Duration, Exit> {
        match given {
            // Zero too: every call would time out before it was sent.
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|timeout| !timeout.is_zero())
                .ok_or_else(|| Exit::Usage(format!("--timeout must be a positive number of seconds, not {seconds}"))),
            None => Ok(self
                .config()?
                .map_or(rpc_core::DEFAULT_TIMEOUT, |config| config.call_timeout())),
        }
    }
}

/// The `--config-file` and `--config-dir` options of a command line, in its
/// order (clap keeps each option's values apart, and those given before the
/// command are replaced by those given after it), up to `--`.
fn given_sources(args: impl IntoIterator<Item = OsString>) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Compared as bytes: a path need not be UTF-8.
        let bytes = arg.as_encoded_bytes();
        if bytes == b"--" {
            break;
        }
        let (name, value) = match bytes.iter().position(|byte| *byte == b'=') {
            Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
            None => (bytes, None),
        };
        let make: fn(PathBuf) -> Source = match name {
            b"--config-file" => Source::File,
            b"--config-dir" => Source::Dir,
            _ => continue,
        };
        let value = match value {
            Some(value) => Some(os_string(value)),
            None => args.next(),
        };
        if let Some(value) = value {
            sources.push(make(PathBuf::from(value)));
        }
    }
    sources
}

/// The text after `--option=`, split from an argument at an ASCII `=`.
#[cfg(unix)]
fn os_string(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_owned()
}

/// The text after `--option=` (elsewhere than on Unix, as UTF-8).
#[cfg(not(unix))]
fn os_string(bytes: &[u8]) -> OsString {
    OsString::from(String::from_utf8_lossy(bytes).into_owned())
}

/// `url` with `control_exchange=EXCHANGE` in its query, unless it names
/// one already.
fn with_default_exchange(mut url: String, exchange: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    if !query.split('&').any(|pair| pair.starts_with("control_exchange=")) {
        let exchange = utf8_percent_encode(exchange, NON_ALPHANUMERIC).to_string();
        push_option(&mut url, "control_exchange", &exchange);
    }
    url
}

/// Adds `option=value` (already encoded) to `url`'s query.
fn push_option(url: &mut String, option: &str, value: &str) {
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(option);
    url.push('=');
    url.push_str(value);
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
    const LOG_DRIVER: &str = "rpc_core::notify::log_driver=debug";
    let level = match verbose {
        0 => &format!("warn,lapin=error,{LOG_DRIVER}"),
        1 => "debug",
        _ => "trace",
    };
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        // `RUST_LOG` says what else to log; what the log driver logs is the
        // command's output, shown unless `RUST_LOG` names it.
        Ok(filter) if !std::env::var("RUST_LOG").is_ok_and(|given| given.contains("log_driver")) => {
            filter.add_directive(LOG_DRIVER.parse().expect("a valid directive"))
        }
        Ok(filter) => filter,
        Err(_) => tracing_subscriber::EnvFilter::new(level),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn files_and_directories_keep_the_command_line_s_order() {
        let given = given_sources(args(
            "--config-file a.conf call --config-dir d --config-file=b.conf topic m --args {} -- --config-file c",
        ));
        assert_eq!(
            given,
            [
                Source::File("a.conf".into()),
                Source::Dir("d".into()),
                Source::File("b.conf".into()),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_path_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let path = OsString::from_vec(b"/etc/n\xffva.conf".to_vec());
        let mut joined = b"--config-file=".to_vec();
        joined.extend_from_slice(path.as_encoded_bytes());
        let given = given_sources([OsString::from_vec(joined), "--config-dir".into(), path.clone()]);
        assert_eq!(given, [Source::File(path.clone().into()), Source::Dir(path.into())]);
    }

    #[test]
    fn the_project_s_exchange_is_a_default() {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        assert_eq!(
            with_default_exchange(url.into(), "nova"),
            format!("{url}?control_exchange=nova")
        );
        let given = format!("{url}?heartbeat=10&control_exchange=cinder");
        assert_eq!(with_default_exchange(given.clone(), "nova"), given);
        assert_eq!(
            with_default_exchange(format!("{url}?heartbeat=10"), "nova"),
            format!("{url}?heartbeat=10&control_exchange=nova")
        );
        assert_eq!(
            with_default_exchange("memory://".into(), "nova"),
            "memory://?control_exchange=nova"
        );
    }
}
