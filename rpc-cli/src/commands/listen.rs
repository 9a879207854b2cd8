//! `rpc listen`: the notifications sent on topics, as they arrive.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use clap::{Args, ValueEnum};
use rpc_core::notify::{NotificationListener, Priority, handler};
use rpc_core::{Target, Value};
use tokio::sync::mpsc;

use crate::connect::Global;
use crate::exit::Exit;

/// `rpc listen`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// A topic to listen on; repeat it (default: the files' topics, else `notifications`).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// Shares the notifications with the other listeners of this pool
    /// (each pool gets every notification once); without a pool, this
    /// listener takes its share of the topic's queue with the services
    /// consuming it (ceilometer...), so use a pool on a live system.
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
    /// Only these priorities (audit, debug, info, warn, error, critical, sample); repeat it.
    #[arg(long = "priority", value_name = "PRIORITY", value_parser = parse_priority)]
    priorities: Vec<Priority>,
    /// The exchange; the transport's control exchange by default.
    #[arg(long, value_name = "NAME")]
    exchange: Option<String>,
    /// How to print: JSON lines, or a table for people.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Exits after this many notifications (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// `--format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// One JSON object per line: priority, publisher_id, event_type, payload, message_id, timestamp.
    Json,
    /// A line of columns per notification.
    Table,
}

pub(crate) fn parse_priority(name: &str) -> Result<Priority, String> {
    Priority::from_name(name).ok_or_else(|| {
        format!("unknown priority `{name}`; expected audit, debug, info, warn, error, critical or sample")
    })
}

/// Listens and prints until `--count` or Ctrl-C.
pub(crate) async fn listen(global: &Global, args: ListenArgs) -> Result<(), Exit> {
    let topics = if args.topics.is_empty() {
        global.config()?.map_or_else(
            || vec!["notifications".to_owned()],
            |config| config.options().notifications.topics.clone(),
        )
    } else {
        args.topics.clone()
    };
    let targets = topics.iter().map(|topic| match &args.exchange {
        Some(exchange) => Target::topic(topic).with_exchange(exchange),
        None => Target::topic(topic),
    });
    let priorities = if args.priorities.is_empty() {
        Priority::ALL.to_vec()
    } else {
        args.priorities.clone()
    };
    let (printed, mut seen) = mpsc::unbounded_channel();
    let printed = Arc::new(printed);
    let format = args.format;
    if matches!(format, Format::Table) {
        println!(
            "{:<9} {:<28} {:<40} {:<36} payload",
            "priority", "publisher_id", "event_type", "message_id"
        );
    }
    let printer = handler(priorities, move |notification| {
        let printed = Arc::clone(&printed);
        async move {
            let payload: Value = notification.payload().unwrap_or(Value::Null);
            match format {
                Format::Json => {
                    // A name the sender left out prints as null, not as "".
                    let mut printed = notification.names_as_sent();
                    printed.insert("payload".to_owned(), payload);
                    println!("{}", Value::Object(printed));
                }
                Format::Table => println!(
                    "{:<9} {:<28} {:<40} {:<36} {payload}",
                    notification.priority().as_str(),
                    notification.publisher_id(),
                    notification.event_type(),
                    notification.message_id(),
                ),
            }
            let _ = printed.send(());
        }
    });
    let transport = global.notification_transport().await?;
    let mut builder = NotificationListener::builder(transport, targets).endpoint(printer);
    if let Some(pool) = &args.pool {
        builder = builder.pool(pool);
    }
    let listener = builder.build()?;
    listener.start().await?;
    eprintln!("rpc: listening on {}", topics.join(", "));
    let mut count = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            one = seen.recv() => {
                if one.is_none() {
                    break;
                }
                count += 1;
                if args.count.is_some_and(|limit| count >= limit) {
                    break;
                }
            }
        }
    }
    listener.stop();
    listener.wait().await;
    Ok(())
}
