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
//! Exits after `--count` notifications, or on Ctrl-C, or once stdout
//! closes (`| head`). Without `--pool`, listeners on a topic share its
//! notifications (so on a live system it would take its share from the
//! services consuming them: give it a pool); each pool gets them all, and on
//! RabbitMQ this program's pool queue expires 5 minutes after it exits,
//! instead of filling up. What it does not print (past `--count`, or when
//! stdout closed) goes back to the queue. `rpc listen` (rpc-cli) is the
//! operator's version of it.
#![allow(clippy::print_stdout)]

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use rpc_core::notify::{NotificationListener, NotificationResult, Priority, handler};
use rpc_core::{Executor, Target};
use rpc_examples::shutdown::{self, Signals};
use tokio::sync::mpsc;

/// Prints the notifications it receives, one JSON line each.
#[derive(Debug, Parser)]
#[command(name = "notify-listen")]
struct Options {
    /// Where to connect: memory://, or RabbitMQ (amqp://, amqps://, rabbit://).
    #[arg(long, env = "RPC_TRANSPORT_URL", hide_env_values = true, default_value = "memory://")]
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

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut url = options.transport_url.clone();
    if options.pool.is_some() && !url.starts_with("memory:") {
        // A pool of this program's own: its queue goes once unused for 5 minutes.
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("shared_queues_ttl=300");
    }
    let transport = rpc_examples::open_transport(&url).await?;
    let targets = options.topics.iter().map(|topic| match &options.exchange {
        Some(exchange) => Target::topic(topic).with_exchange(exchange),
        None => Target::topic(topic),
    });
    let (printed, mut seen) = mpsc::unbounded_channel();
    let taken = Arc::new(AtomicU64::new(0));
    let limit = options.count;
    let printer = handler(Priority::ALL, move |notification| {
        let (printed, taken) = (printed.clone(), Arc::clone(&taken));
        async move {
            // Past `--count`, or once stdout closed: back to the queue, not lost.
            if limit.is_some_and(|limit| taken.load(Ordering::SeqCst) >= limit) || printed.is_closed() {
                return NotificationResult::Requeue;
            }
            let payload: serde_json::Value = match notification.payload() {
                Ok(payload) => payload,
                Err(error) => serde_json::Value::String(format!("<undecodable payload: {error}>")),
            };
            let line = serde_json::json!({
                "priority": notification.priority().as_str(),
                "publisher_id": notification.publisher_id(),
                "event_type": notification.event_type(),
                "payload": payload,
                "message_id": notification.message_id(),
                "timestamp": notification.timestamp(),
            });
            let written = writeln!(io::stdout().lock(), "{line}");
            let _ = printed.send(written.is_ok());
            match written {
                Ok(()) => {
                    taken.fetch_add(1, Ordering::SeqCst);
                    NotificationResult::Handled
                }
                Err(_) => NotificationResult::Requeue,
            }
        }
    });
    let mut builder = NotificationListener::builder(transport, targets)
        .endpoint(printer)
        // One at a time, so that `--count` takes no more than it prints.
        .executor(Executor::Sequential)
        .allow_requeue(true);
    if let Some(pool) = &options.pool {
        builder = builder.pool(pool);
    }
    let listener = builder.build()?;
    let mut signals = Signals::new()?;
    listener.start().await?;
    eprintln!("notify-listen: listening on {}", options.topics.join(", "));
    let mut count = 0;
    loop {
        tokio::select! {
            _ = signals.next() => break,
            one = seen.recv() => match one {
                Some(true) => {
                    count += 1;
                    if options.count.is_some_and(|limit| count >= limit) {
                        break;
                    }
                }
                // stdout closed: nothing more can be printed.
                Some(false) | None => break,
            }
        }
    }
    drop(seen);
    // A write that never returns (a reader that does not read) holds the
    // listener's stop: a second signal, or the grace, ends it anyway.
    listener.stop();
    if !shutdown::stopped_within(&mut signals, listener.wait(), shutdown::GRACE).await {
        std::process::exit(1);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    rpc_examples::init_logging();
    rpc_examples::exit_code("notify-listen", run(options).await)
}
