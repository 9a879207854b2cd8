//! The seed's `RPC-server.py`: an RPC server on topic `test`, server
//! `server1`, with `TestEndpoint` and `ServerControl` (namespace `control`,
//! version `2.0`). It runs until a client casts `stop`, or SIGTERM or Ctrl-C
//! (a second one, or 25 s, leaves the work in flight), then finishes its
//! work and exits 0.
//!
//! ```text
//! cargo run -p rpc-examples --bin rpc-server [-- --transport-url URL]
//! ```
//!
//! The default URL is the local RabbitMQ, `amqp://guest:guest@127.0.0.1:5672/%2f`.

use std::process::ExitCode;

use rpc_examples::seed;
use rpc_examples::shutdown::{self, Signals};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn run(transport_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let transport = rpc_examples::open_transport(transport_url).await?;
    let server = seed::server(transport)?;
    // Heard from before it serves: a SIGTERM right after the start stops it as any other.
    let mut signals = Signals::new()?;
    server.start().await?;
    tracing::info!(
        "serving on topic `test`, server `server1`; cast `stop` (namespace `control`), send SIGTERM or press Ctrl-C to stop"
    );
    if !shutdown::until_signalled(&mut signals, server.wait(), || server.stop(), shutdown::GRACE).await {
        std::process::exit(1);
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
