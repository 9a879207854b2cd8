//! `rpc`: an operator's command line for oslo.messaging-style RPC.
//!
//! Calls, casts, pings, notifications, the servers on a topic, endpoint
//! descriptions and a quick benchmark, against Rust and Python servers
//! alike, in oslo's JSON or MessagePack. Results are JSON on stdout; exit
//! codes tell scripts what happened (see [`exit::Exit`]). `docs/cli.md`
//! covers every command.

mod args;
mod commands;
mod connect;
mod exit;
mod out;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::connect::Global;
use crate::exit::Exit;

/// An operator's command line for oslo.messaging-style RPC and notifications.
///
/// Talks to Rust servers built on this framework and to OpenStack's Python
/// services alike. Where to connect comes from `--transport-url`, else from
/// oslo.config files (`--config-file`, `--config-dir`: the `nova.conf` a
/// service reads; `--project nova` finds nova's own), else
/// `$RPC_TRANSPORT_URL`, else the local RabbitMQ.
///
/// Results are JSON on stdout, messages on stderr. Exit codes: 0 done,
/// 1 the server answered an error, 2 bad command line, 3 timed out,
/// 4 no server listens, 5 cannot reach the broker, 6 bad configuration,
/// 7 the broker refused.
#[derive(Debug, Parser)]
#[command(name = "rpc", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calls a method and prints its result as JSON.
    ///
    /// Example: rpc call compute get_status --server host-1 --arg instance=42
    Call(commands::call::CallArgs),
    /// Casts a method: sends it without waiting for a result.
    ///
    /// Example: rpc cast compute refresh --fanout
    Cast(commands::call::CastArgs),
    /// Pings servers with oslo's `oslo_rpc_server_ping`, and times each answer.
    ///
    /// Servers answer when started with ping enabled (oslo's
    /// `rpc_ping_enabled = true`; `ServerBuilder::rpc_ping(true)`).
    ///
    /// Example: rpc ping compute --server host-1 --count 5
    Ping(commands::ping::PingArgs),
    /// Prints the notifications sent on topics, one per line.
    ///
    /// Example: rpc listen --topic notifications --priority error
    Listen(commands::listen::ListenArgs),
    /// Sends one notification.
    ///
    /// Example: rpc notify --event-type compute.instance.create.end --payload '{"id": 1}'
    Notify(commands::notify::NotifyArgs),
    /// Lists the servers listening on a topic: its queues and their consumers,
    /// through RabbitMQ's management API.
    ///
    /// Example: rpc servers compute --management-url http://127.0.0.1:15672
    Servers(commands::servers::ServersArgs),
    /// Prints endpoint descriptions: the API snapshots the compatibility check
    /// writes (JSON files).
    ///
    /// Example: rpc describe tests/api/inventory-1.2.json
    Describe(commands::describe::DescribeArgs),
    /// Compares two endpoint descriptions: exits 1 when NEW breaks callers of OLD.
    ///
    /// Example: rpc compat tests/api/inventory-1.1.json tests/api/inventory-1.2.json
    Compat(commands::describe::CompatArgs),
    /// Measures a method's latency and throughput against a live server.
    ///
    /// Example: rpc bench test test --args '{"arg": "x"}' --count 2000 --concurrency 16
    Bench(commands::bench::BenchArgs),
    /// Prints a shell completion script.
    ///
    /// Example: rpc completions bash > /etc/bash_completion.d/rpc
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

async fn run(cli: Cli) -> Result<(), Exit> {
    let global = cli.global;
    match cli.command {
        Command::Call(args) => commands::call::call(&global, args).await,
        Command::Cast(args) => commands::call::cast(&global, args).await,
        Command::Ping(args) => commands::ping::ping(&global, args).await,
        Command::Listen(args) => commands::listen::listen(&global, args).await,
        Command::Notify(args) => commands::notify::notify(&global, args).await,
        Command::Servers(args) => commands::servers::servers(&global, args).await,
        Command::Describe(args) => commands::describe::describe(&args),
        Command::Compat(args) => commands::describe::compat(&args),
        Command::Bench(args) => commands::bench::bench(&global, args).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rpc", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    connect::init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rpc: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => exit.report(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
