//! Sends one notification, as oslo.messaging's `Notifier` does, and prints
//! it as sent.
//!
//! ```text
//! cargo run -p rpc-examples --bin notify-send -- \
//!     --transport-url amqp://guest:guest@127.0.0.1:5672/%2f \
//!     --topic notifications --priority info \
//!     --event-type compute.instance.create.end --publisher-id compute.host-1 \
//!     --payload '{"instance_id": "9f1c", "state": "active"}'
//! ```
//!
//! On `memory://` (the default) the notification stays in this process; on
//! RabbitMQ it waits in the queue `<topic>.<priority>` for its listeners
//! (`notify-listen`, or any oslo.messaging notification listener).
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use clap::Parser;
use rpc_core::Context;
use rpc_core::notify::{Notifier, NotifyDriver, Priority};

/// Sends one notification (oslo.messaging's Notifier).
#[derive(Debug, Parser)]
#[command(name = "notify-send")]
struct Options {
    /// Where to connect: memory://, or RabbitMQ (amqp://, amqps://, rabbit://).
    #[arg(long, env = "RPC_TRANSPORT_URL", hide_env_values = true, default_value = "memory://")]
    transport_url: String,
    /// A topic to send on (repeat for several).
    #[arg(long = "topic", default_value = "notifications")]
    topics: Vec<String>,
    /// The priority: audit, debug, info, warn, error, critical or sample.
    #[arg(long, default_value = "info", value_parser = parse_priority)]
    priority: Priority,
    /// What happened, such as compute.instance.create.end.
    #[arg(long)]
    event_type: String,
    /// Who sends it, such as compute.host-1.
    #[arg(long, default_value = "notify-send")]
    publisher_id: String,
    /// The payload, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse_json)]
    payload: serde_json::Value,
    /// messagingv2 (oslo's 2.0 envelope) or messaging (1.0, no envelope).
    #[arg(long, default_value = "messagingv2", value_parser = parse_driver)]
    driver: NotifyDriver,
    /// The exchange (default: the transport's control exchange).
    #[arg(long)]
    exchange: Option<String>,
}

fn parse_priority(text: &str) -> Result<Priority, String> {
    Priority::from_name(text)
        .ok_or_else(|| format!("`{text}` is not a priority (audit, debug, info, warn, error, critical, sample)"))
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))
}

fn parse_driver(text: &str) -> Result<NotifyDriver, String> {
    match NotifyDriver::from_name(text) {
        Some(driver @ (NotifyDriver::MessagingV2 | NotifyDriver::Messaging)) => Ok(driver),
        _ => Err(format!(
            "`{text}` is not a driver this program sends with (messagingv2, messaging)"
        )),
    }
}

async fn run(options: Options) -> Result<(), rpc_core::Error> {
    let transport = rpc_examples::open_transport(&options.transport_url).await?;
    let mut notifier = Notifier::new(transport, &options.publisher_id)
        .topics(&options.topics)
        .driver(options.driver);
    if let Some(exchange) = &options.exchange {
        notifier = notifier.exchange(exchange);
    }
    let ctx = Context::generate_request_id();
    notifier
        .notify(&ctx, options.priority, &options.event_type, &options.payload)
        .await?;
    let sent = serde_json::json!({
        "priority": options.priority.as_str(),
        "publisher_id": options.publisher_id,
        "event_type": options.event_type,
        "payload": options.payload,
        "topics": options.topics,
        "request_id": ctx.request_id(),
    });
    println!("{sent}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    rpc_examples::init_logging();
    rpc_examples::exit_code("notify-send", run(options).await)
}
