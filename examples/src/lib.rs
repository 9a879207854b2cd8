//! Shared pieces of the example programs: the seed's endpoints,
//! command-line options and logging.

use std::process::ExitCode;

pub mod probe;
pub mod seed;
pub mod shutdown;

/// The exit code of an example's `run`: success, or its error on stderr
/// (`program: error`) and failure.
pub fn exit_code<E: std::fmt::Display>(program: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Opens a transport from a URL: `memory://`, or RabbitMQ (`amqp://`,
/// `amqps://`, `rabbit://`).
pub async fn open_transport(url: &str) -> Result<rpc_core::Transport, rpc_core::Error> {
    rpc_amqp::register();
    rpc_core::transport_from_url(url).await
}

/// The options every example takes.
#[derive(Debug)]
pub struct Options {
    /// `--transport-url URL`: where to connect.
    pub transport_url: String,
}

/// Reads `--transport-url URL` (or `--transport-url=URL`) from the command
/// line, falling back to `$RPC_TRANSPORT_URL`, then to `default_url`.
///
/// Prints usage and returns `Err` with the exit code on `--help` or bad input.
pub fn parse_options(program: &str, about: &str, default_url: &str) -> Result<Options, ExitCode> {
    let mut transport_url = std::env::var("RPC_TRANSPORT_URL").ok();
    let mut args = std::env::args().skip(1);
    let usage = || {
        eprintln!(
            "{about}\n\nusage: {program} [--transport-url URL]\n\n  --transport-url URL  where to connect (default {default_url}; also $RPC_TRANSPORT_URL)"
        );
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--transport-url" => match args.next() {
                Some(url) => transport_url = Some(url),
                None => {
                    eprintln!("{program}: --transport-url needs a value");
                    return Err(ExitCode::from(2));
                }
            },
            "-h" | "--help" => {
                usage();
                return Err(ExitCode::SUCCESS);
            }
            other => match other.strip_prefix("--transport-url=") {
                Some(url) => transport_url = Some(url.to_owned()),
                None => {
                    eprintln!("{program}: unexpected argument `{other}`");
                    usage();
                    return Err(ExitCode::from(2));
                }
            },
        }
    }
    Ok(Options {
        transport_url: transport_url.unwrap_or_else(|| default_url.to_owned()),
    })
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise; lapin's
/// only from `error` unless `RUST_LOG` names lapin (it logs a returned
/// message's body at `warn`, an OpenStack context and its token with it, and
/// the transport reports returns itself); colours only on a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;

    const LAPIN: &str = "lapin=error";
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) if !std::env::var("RUST_LOG").is_ok_and(|given| given.contains("lapin")) => {
            filter.add_directive(LAPIN.parse().expect("a valid directive"))
        }
        Ok(filter) => filter,
        Err(_) => tracing_subscriber::EnvFilter::new(format!("info,{LAPIN}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
