//! Listens for notifications, as an oslo.messaging notification listener,
//! and prints one JSON line per notification: `priority`, `publisher_id`,
//! `event_type`, `payload`, `message_id` (and `timestamp`).
//!
//! ```text
//! cargo run -p rpc-examples --bin notify-listen -- \
//!     --transport-url amqp://guest:guest@127.0.0.1:5672/%2f \
//!     --topic notifications [--topic another] [--pool audit] [--count 10]
//! ```
//!
//! Exits after `--count` notifications, or on Ctrl-C. Without `--pool`,
//! listeners on a topic share its notifications; each pool gets them all.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rpc_core::Target;
use rpc_core::notify::{NotificationListener, Priority, handler};
use tokio::sync::mpsc;

/// Prints the notifications it receives, one JSON line each.
#[derive(Debug, Parser)]
#[command(name = "notify-listen")]
struct Options {
    /// Where to connect: memory://, or RabbitMQ (amqp://, amqps://, rabbit://).
    #[arg(long, env = "RPC_TRANSPORT_URL", default_value = "memory://")]
    transport_url: String,
    /// A topic to listen on (repeat for several).
    #[arg(long = "topic", default_value = "notifications")]
    topics: Vec<String>,
    /// Join this pool: each pool gets every notification once.
    #[arg(long)]
    pool: Option<String>,
    /// The exchange (default: the transport's control exchange).
    #[arg(long)]
    exchange: Option<String>,
    /// Exit after this many notifications.
    #[arg(long)]
    count: Option<u64>,
}

async fn run(options: Options) -> Result<(), rpc_core::Error> {
    let transport = rpc_examples::open_transport(&options.transport_url).await?;
    let targets = options.topics.iter().map(|topic| match &options.exchange {
        Some(exchange) => Target::topic(topic).with_exchange(exchange),
        None => Target::topic(topic),
    });
    let (printed, mut seen) = mpsc::unbounded_channel();
    let printed = Arc::new(printed);
    let printer = handler(Priority::ALL, move |notification| {
        let printed = Arc::clone(&printed);
        async move {
            let payload: serde_json::Value = notification.payload().unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({
                "priority": notification.priority().as_str(),
                "publisher_id": notification.publisher_id(),
                "event_type": notification.event_type(),
                "payload": payload,
                "message_id": notification.message_id(),
                "timestamp": notification.timestamp(),
            });
            println!("{line}");
            let _ = printed.send(());
        }
    });
    let mut builder = NotificationListener::builder(transport, targets).endpoint(printer);
    if let Some(pool) = &options.pool {
        builder = builder.pool(pool);
    }
    let listener = builder.build()?;
    listener.start().await?;
    eprintln!("notify-listen: listening on {}", options.topics.join(", "));
    let mut count = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            one = seen.recv() => {
                if one.is_none() {
                    break;
                }
                count += 1;
                if options.count.is_some_and(|limit| count >= limit) {
                    break;
                }
            }
        }
    }
    listener.stop();
    listener.wait().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    rpc_examples::init_logging();
    rpc_examples::exit_code("notify-listen", run(options).await)
}
