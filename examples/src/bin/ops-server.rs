//! The seed's server as it runs in production: oslo's ping answered (for
//! openstack-helm's probe), a log line per request, a policy on the control
//! endpoint (stopping needs the `admin` role), metrics for Prometheus on
//! `/metrics`, and readiness and liveness on `/healthz` and `/livez`.
//!
//! ```text
//! cargo run -p rpc-examples --bin ops-server -- --transport-url amqp://guest:guest@127.0.0.1:5672/%2f --listen 127.0.0.1:9464
//! curl -s 127.0.0.1:9464/metrics; curl -s 127.0.0.1:9464/healthz
//! ```
//!
//! It prints `listening on http://ADDRESS` once serving, and runs until
//! SIGTERM or Ctrl-C (a second one, or 25 s, leaves the work in flight), or
//! an admin casts `stop`. Point a readiness probe at `/healthz` (not ready
//! while the broker is away) and a liveness probe at `/livez`: a liveness
//! probe on `/healthz` would restart the pod at every broker outage.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rpc_core::middleware::{Policy, RequestLog, Rule};
use rpc_core::{Server, Target};
use rpc_examples::shutdown::{self, Signals};
use rpc_examples::{probe, seed};

/// The seed's server, with middleware, metrics and health probes.
#[derive(Debug, Parser)]
#[command(name = "ops-server")]
struct Options {
    /// Where to connect: `memory://`, or RabbitMQ (`amqp://...`).
    #[arg(long, env = "RPC_TRANSPORT_URL", hide_env_values = true, default_value = "memory://")]
    transport_url: String,
    /// The topic to serve.
    #[arg(long, default_value = "test")]
    topic: String,
    /// The server's name.
    #[arg(long, default_value = "server1")]
    server: String,
    /// Where the HTTP probes listen (port 0: any free port); every
    /// interface by default, as a pod's probes and Prometheus reach it.
    #[arg(long, default_value = "0.0.0.0:9464")]
    listen: String,
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = probe::install_prometheus()?;
    let transport = rpc_examples::open_transport(&options.transport_url).await?;
    let builder = Server::builder(transport, Target::server(&options.topic, &options.server));
    let control = seed::ServerControl {
        server: builder.handle(),
    };
    let server = builder
        .endpoint(seed::TestEndpoint)
        .endpoint(control)
        .rpc_ping(true)
        .layer(RequestLog)
        .layer(Policy::new(Rule::allow()).rule("control:stop", Rule::role("admin")))
        .build()?;
    // The probes' port and the signals first: a port taken, or a signal
    // right after the start, must not cost requests already taken.
    let (listener, address) = probe::bind(&options.listen).await?;
    let mut signals = Signals::new()?;
    server.start().await?;
    let server = Arc::new(server);
    let probes = tokio::spawn(probe::serve(listener, Arc::clone(&server), metrics));
    println!("listening on http://{address}");
    tracing::info!(topic = %options.topic, server = %options.server, %address, "serving; /metrics, /healthz (ready), /livez (live)");
    if !shutdown::until_signalled(&mut signals, server.wait(), || server.stop(), shutdown::GRACE).await {
        std::process::exit(1);
    }
    probes.abort();
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    rpc_examples::init_logging();
    rpc_examples::exit_code("ops-server", run(options).await)
}
