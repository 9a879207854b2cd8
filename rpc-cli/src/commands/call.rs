//! `rpc call` and `rpc cast`.

use clap::Args;
use rpc_core::{Error, RemoteError, Value};
use serde_json::json;

use crate::args::RequestArgs;
use crate::connect::Global;
use crate::exit::Exit;
use crate::out::outln;

/// `rpc call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// Seconds to wait for the result (default: the files'
    /// `rpc_response_timeout`, else 60).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
}

/// `rpc cast`.
#[derive(Debug, Args)]
pub(crate) struct CastArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// Sends to every server on the topic (not with `--server`, which it
    /// would override, nor `--exchange`: fanout has an exchange of its own).
    #[arg(long, conflicts_with_all = ["server", "exchange"])]
    fanout: bool,
}

/// Calls, and prints the result as JSON (or the server's error, exit 1).
pub(crate) async fn call(global: &Global, args: CallArgs) -> Result<(), Exit> {
    let request = &args.request;
    let (arguments, ctx) = (request.arguments()?, request.context()?);
    let timeout = global.timeout(args.timeout)?;
    let client = request
        .client(global, global.transport_within(timeout).await?)?
        .timeout(timeout);
    match client.call::<Value>(&ctx, &request.method, &arguments).await {
        Ok(result) => {
            print_json(&result);
            Ok(())
        }
        Err(error) => Err(failed(error)),
    }
}

/// Casts; prints nothing.
pub(crate) async fn cast(global: &Global, args: CastArgs) -> Result<(), Exit> {
    let request = &args.request;
    let (arguments, ctx) = (request.arguments()?, request.context()?);
    let client = request.client(global, global.transport().await?)?.fanout(args.fanout);
    client.cast(&ctx, &request.method, &arguments).await.map_err(failed)
}

/// The exit for a failed request; a server's error is printed on stdout
/// as JSON first, for scripts.
pub(crate) fn failed(error: Error) -> Exit {
    if let Some(remote) = error.remote() {
        print_json(&json!({ "error": remote_json(remote) }));
    }
    Exit::from(error)
}

/// A server's error as JSON: its code, oslo's class, module, message, and
/// the traceback a Python server sent.
pub(crate) fn remote_json(remote: &RemoteError) -> Value {
    json!({
        "code": remote.code().as_str(),
        "class": remote.class(),
        "module": remote.module(),
        "message": remote.message(),
        "traceback": remote.traceback(),
    })
}

/// Prints `value`, pretty.
pub(crate) fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(_) => outln!("{value}"),
    }
}
