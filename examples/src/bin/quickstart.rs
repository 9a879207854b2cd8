//! The seed program in one process: an RPC server and a client, on the
//! in-memory transport by default.
//!
//! ```text
//! cargo run -p rpc-examples --bin quickstart
//! cargo run -p rpc-examples --bin quickstart -- --transport-url amqp://guest:guest@127.0.0.1:5672/%2f
//! ```
//!
//! The server listens on topic `test`, server `server1`, with two endpoints:
//! `TestEndpoint.test(arg)` returns its argument, and `ServerControl.stop()`
//! (namespace `control`, version `2.0`) stops the server. The client calls
//! `test("myarg")` with the typed stub and prints the result, then casts
//! `stop` to `server1` with the control endpoint's typed stub (which carries
//! the namespace and version the seed's client passes to `prepare()`); the
//! program exits once the server has stopped.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use rpc_core::{Client, Context, Target};
use rpc_examples::seed::{self, ServerControlClient, TestEndpointClient};

async fn run(transport_url: &str) -> Result<(), rpc_core::Error> {
    let transport = rpc_examples::open_transport(transport_url).await?;

    let server = seed::server(transport.clone())?;
    server.start().await?;

    let client = Client::new(transport, Target::topic("test"));
    let ctx = Context::new();
    let echoed = TestEndpointClient::new(client.clone())
        .test(&ctx, "myarg".to_owned())
        .await?;
    println!("{echoed}");
    ServerControlClient::new(client)
        .prepare()
        .server("server1")
        .cast()
        .stop(&ctx)
        .await?;

    server.wait().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match rpc_examples::parse_options(
        "quickstart",
        "The seed's RPC server and client in one process.",
        "memory://",
    ) {
        Ok(options) => options,
        Err(code) => return code,
    };
    rpc_examples::init_logging();
    rpc_examples::exit_code("quickstart", run(&options.transport_url).await)
}
