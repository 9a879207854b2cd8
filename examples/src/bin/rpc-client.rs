//! The seed's `RPC-client.py`: calls `test(arg="myarg")` on topic `test` and
//! prints the result, then casts `stop` with `prepare(namespace="control",
//! version="2.0")`, which stops the server.
//!
//! ```text
//! cargo run -p rpc-examples --bin rpc-client [-- --transport-url URL]
//! ```
//!
//! Like the seed, it uses the untyped client (method name and named
//! arguments), which reaches any server, Python ones included. The default
//! URL is the local RabbitMQ, `amqp://guest:guest@127.0.0.1:5672/%2f`.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use rpc_core::{Client, Context, Target, Version, json};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn run(transport_url: &str) -> Result<(), rpc_core::Error> {
    let transport = rpc_examples::open_transport(transport_url).await?;
    let client = Client::new(transport, Target::topic("test"));
    let ctx = Context::new();
    let result: String = client.call(&ctx, "test", json!({"arg": "myarg"})).await?;
    println!("{result}");
    client
        .prepare()
        .namespace("control")
        .version(Version::new(2, 0))
        .cast(&ctx, "stop", json!({}))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match rpc_examples::parse_options("rpc-client", "The seed's RPC client.", DEFAULT_URL) {
        Ok(options) => options,
        Err(code) => return code,
    };
    rpc_examples::init_logging();
    rpc_examples::exit_code("rpc-client", run(&options.transport_url).await)
}
