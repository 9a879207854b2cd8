//! `rpc listen`: the notifications sent on topics, as they arrive.
#![allow(clippy::print_stdout)]

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Args, ValueEnum};
use rpc_core::notify::{Notification, NotificationListener, NotificationResult, Priority, handler};
use rpc_core::{Executor, Target, Value};
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
    /// consuming it (ceilometer...), so use a pool on a live system. The
    /// pool's queue expires 5 minutes after the last listener left.
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
    /// Exits after this many notifications (default: until Ctrl-C); the
    /// others stay in the queue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
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

/// How long the broker keeps a `--pool` queue once nothing consumes it
/// (`x-expires`): a pool of the command's own, not a queue left to fill up
/// after it exits.
const POOL_EXPIRES_SECONDS: u32 = 300;

/// Listens and prints until `--count`, Ctrl-C, or stdout closes (`| head`).
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
    let format = args.format;
    if matches!(format, Format::Table) {
        let header = format!(
            "{:<9} {:<28} {:<40} {:<36} payload",
            "priority", "publisher_id", "event_type", "message_id"
        );
        if let Err(error) = print(&header) {
            return closed(&error);
        }
    }
    let (printed, mut seen) = mpsc::unbounded_channel();
    let printed = Arc::new(printed);
    let limit = args.count;
    let taken = Arc::new(AtomicU64::new(0));
    // One at a time: printed in order, and none taken past `--count`.
    let printer = handler(priorities, move |notification| {
        let (printed, taken) = (Arc::clone(&printed), Arc::clone(&taken));
        async move {
            // Past `--count`, or once stdout closed: back to the queue, for
            // its other consumers, not taken and lost.
            if limit.is_some_and(|limit| taken.load(Ordering::SeqCst) >= limit) || printed.is_closed() {
                return NotificationResult::Requeue;
            }
            // Written off the runtime's threads: a write that never returns
            // (a reader that does not read) must not hold the one that
            // would hear Ctrl-C (on a single core, the only one).
            let text = line(format, &notification);
            let written = tokio::task::spawn_blocking(move || print(&text))
                .await
                .unwrap_or_else(|error| Err(io::Error::other(error)));
            match written {
                Ok(()) => {
                    taken.fetch_add(1, Ordering::SeqCst);
                    let _ = printed.send(Ok(()));
                    NotificationResult::Handled
                }
                Err(error) => {
                    let _ = printed.send(Err(error));
                    NotificationResult::Requeue
                }
            }
        }
    });
    let transport = match &args.pool {
        Some(_) => {
            global
                .notification_transport_with("shared_queues_ttl", &POOL_EXPIRES_SECONDS.to_string())
                .await?
        }
        None => global.notification_transport().await?,
    };
    let mut builder = NotificationListener::builder(transport, targets)
        .endpoint(printer)
        .executor(Executor::Sequential)
        .allow_requeue(true);
    if let Some(pool) = &args.pool {
        builder = builder.pool(pool);
    }
    let listener = builder.build()?;
    listener.start().await?;
    // Ctrl-C is caught from before it says it listens: one pressed right
    // after stops it as any other, without the default handler's exit. One
    // stream for both presses: a press while stopping is heard however soon
    // it comes after the first took effect (two presses before it did count
    // as one).
    let mut interrupts = Interrupts::new()?;
    eprintln!("rpc: listening on {}", topics.join(", "));
    let mut count = 0;
    let mut ended = Ok(());
    loop {
        tokio::select! {
            () = interrupts.next() => break,
            one = seen.recv() => match one {
                Some(Ok(())) => {
                    count += 1;
                    if args.count.is_some_and(|limit| count >= limit) {
                        break;
                    }
                }
                Some(Err(error)) => {
                    ended = closed(&error);
                    break;
                }
                None => break,
            }
        }
    }
    seen.close();
    listener.stop();
    // Stopping waits for the notification being printed, which a reader
    // that does not read holds for ever (`rpc listen | less`, paused): a
    // Ctrl-C then ends the command at once. (The signal stays caught once
    // caught: a second one did nothing until 2026-12-05.)
    tokio::select! {
        () = listener.wait() => ended,
        () = interrupts.next() => {
            // Not `eprintln!`, which panics on a closed stderr.
            let _ = writeln!(io::stderr(), "rpc: interrupted while stopping: exiting at once");
            // The runtime cannot shut down under a write that never returns.
            std::process::exit(INTERRUPTED);
        }
    }
}

/// The exit status of a command ended by a second Ctrl-C, as shells give a
/// process killed by SIGINT.
const INTERRUPTED: i32 = 130;

/// Ctrl-C presses, from one registration: none is missed between two waits.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> Result<Interrupts, Exit> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|error| Exit::Failed(format!("cannot catch Ctrl-C: {error}")))?;
            Ok(Interrupts { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupts {})
    }

    /// The next press.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A notification as one line of `format`.
fn line(format: Format, notification: &Notification) -> String {
    // A payload JSON cannot hold (MessagePack's bytes, a map keyed by
    // numbers) prints as null, with why beside it: not as a null sent.
    let (payload, undecodable) = match notification.payload::<Value>() {
        Ok(payload) => (payload, None),
        Err(error) => (Value::Null, Some(error.to_string())),
    };
    match format {
        Format::Json => {
            // A name the sender left out prints as null, not as "".
            let mut printed = notification.names_as_sent();
            printed.insert("payload".to_owned(), payload);
            if let Some(error) = undecodable {
                printed.insert("payload_error".to_owned(), Value::String(error));
            }
            Value::Object(printed).to_string()
        }
        Format::Table => format!(
            "{:<9} {:<28} {:<40} {:<36} {}",
            notification.priority().as_str(),
            notification.publisher_id(),
            notification.event_type(),
            notification.message_id(),
            undecodable.map_or_else(
                || payload.to_string(),
                |error| format!("<undecodable payload: {error}>")
            ),
        ),
    }
}

/// Writes `line` to stdout, flushed: a closed stdout is an error, not a
/// panic (as `println!` makes it).
fn print(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// How the command ends once stdout failed: quietly when its reader is gone
/// (`rpc listen | head`), else with the error.
fn closed(error: &io::Error) -> Result<(), Exit> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Exit::Failed(format!("cannot write to stdout: {error}")))
    }
}
