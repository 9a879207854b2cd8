//! A server process for fault and load tests: serves a [`Worker`] on a
//! broker until its stdin closes, then stops gracefully.
//!
//! ```text
//! rpc-test-server --url URL --topic TOPIC --server NAME
//!     [--at-least-once] [--journal FILE] [--delay-ms N] [--concurrency N]
//! ```
//!
//! Prints `ready` on stdout once it serves; logs go to stderr (`RUST_LOG`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use rpc_core::{DeliveryMode, Executor, Server, Target};
use rpc_tests::worker::Worker;

#[derive(Debug)]
struct Options {
    url: String,
    topic: String,
    server: String,
    delivery: DeliveryMode,
    journal: Option<PathBuf>,
    delay: Duration,
    concurrency: usize,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        url: String::new(),
        topic: String::new(),
        server: String::new(),
        delivery: DeliveryMode::AtMostOnce,
        journal: None,
        delay: Duration::ZERO,
        concurrency: rpc_core::DEFAULT_CONCURRENCY,
    };
    while let Some(flag) = args.next() {
        if flag == "--at-least-once" {
            options.delivery = DeliveryMode::AtLeastOnce;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|error| format!("{flag}: {error}"));
        match flag.as_str() {
            "--url" => options.url = value.clone(),
            "--topic" => options.topic = value.clone(),
            "--server" => options.server = value.clone(),
            "--journal" => options.journal = Some(PathBuf::from(&value)),
            "--delay-ms" => options.delay = Duration::from_millis(number()?),
            "--concurrency" => options.concurrency = usize::try_from(number()?).map_err(|error| error.to_string())?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.url.is_empty() || options.topic.is_empty() || options.server.is_empty() {
        return Err("--url, --topic and --server are required".to_owned());
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let options = parse(std::env::args().skip(1))?;
    let transport = rpc_amqp::connect(&options.url).await?;
    let worker = Worker::new(&options.server, options.journal.as_deref(), options.delay)?;
    let server = Server::builder(transport.clone(), Target::server(&options.topic, &options.server))
        .endpoint(worker)
        .executor(Executor::Concurrent(options.concurrency))
        .delivery_mode(options.delivery)
        .build()?;
    server.start().await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    // Serve until stdin closes.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    server.stop();
    server.wait().await;
    transport.close().await?;
    Ok(())
}
