//! The seed's `RPC-server.py`: an RPC server on topic `test`, server
//! `server1`, with `TestEndpoint` and `ServerControl` (namespace `control`,
//! version `2.0`). It runs until a client casts `stop` (or Ctrl-C), then
//! finishes its work and exits 0.
//!
//! ```text
//! cargo run -p rpc-examples --bin rpc-server [-- --transport-url URL]
//! ```
//!
//! The default URL is the local RabbitMQ, `amqp://guest:guest@127.0.0.1:5672/%2f`.

use std::process::ExitCode;

use rpc_examples::seed;

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn run(transport_url: &str) -> Result<(), rpc_core::Error> {
    let transport = rpc_examples::open_transport(transport_url).await?;
    let server = seed::server(transport)?;
    server.start().await?;
    tracing::info!(
        "serving on topic `test`, server `server1`; cast `stop` (namespace `control`) or press Ctrl-C to stop"
    );
    tokio::select! {
        () = server.wait() => {}
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("stopping server");
            server.stop();
            server.wait().await;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match rpc_examples::parse_options("rpc-server", "The seed's RPC server.", DEFAULT_URL) {
        Ok(options) => options,
        Err(code) => return code,
    };
    rpc_examples::init_logging();
    rpc_examples::exit_code("rpc-server", run(&options.transport_url).await)
}
