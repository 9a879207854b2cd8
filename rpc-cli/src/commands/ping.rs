//! `rpc ping`: oslo's `oslo_rpc_server_ping`, timed.

use std::time::{Duration, Instant};

use clap::Args;
use rpc_core::{Client, Context, PING_METHOD, Target, Value};

use crate::connect::Global;
use crate::exit::Exit;
use crate::out::outln;

/// `rpc ping`.
#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    /// The topic.
    topic: String,
    /// Pings this server only.
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
    /// How many pings (0: until Ctrl-C).
    #[arg(short, long, default_value_t = 1)]
    count: u64,
    /// Seconds between pings.
    #[arg(short, long, default_value_t = 1.0, value_name = "SECONDS")]
    interval: f64,
    /// Seconds to wait for each answer, and for the broker at first.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    timeout: f64,
    /// The exchange; the transport's control exchange by default.
    #[arg(long, value_name = "NAME")]
    exchange: Option<String>,
}

/// Pings, prints each round trip, then a summary; exits 0 when every ping
/// was answered: else with the last failure's code (3 no answer in time, 4
/// no server listens), or 1 (an answer other than `pong`, or a ping still
/// waiting when interrupted).
pub(crate) async fn ping(global: &Global, args: PingArgs) -> Result<(), Exit> {
    let seconds = |option: &str, value: f64| {
        Duration::try_from_secs_f64(value).map_err(|_| Exit::Usage(format!("--{option} must be positive, not {value}")))
    };
    let interval = seconds("interval", args.interval)?;
    // Zero too: every ping would time out before it went out.
    let timeout = seconds("timeout", args.timeout)?;
    if timeout.is_zero() {
        return Err(Exit::Usage("--timeout must be positive, not 0".to_owned()));
    }
    let mut target = match &args.server {
        Some(server) => Target::server(&args.topic, server),
        None => Target::topic(&args.topic),
    };
    if let Some(exchange) = &args.exchange {
        target = target.with_exchange(exchange);
    }
    let name = target.to_string();
    let client = Client::new(global.transport_within(timeout).await?, target)
        .codec(global.codec.into())
        .timeout(timeout);
    let ctx = Context::new();
    let mut times = Vec::new();
    let mut last_failure = None;
    let mut sent = 0;
    while args.count == 0 || sent < args.count {
        if sent > 0 {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        sent += 1;
        let started = Instant::now();
        let answer = tokio::select! {
            answer = client.call::<Value>(&ctx, PING_METHOD, serde_json::json!({})) => answer,
            _ = tokio::signal::ctrl_c() => break,
        };
        let elapsed = started.elapsed();
        match answer {
            Ok(answer) if answer == "pong" => {
                outln!("pong from {name}: seq={sent} time={:.2} ms", millis(elapsed));
                times.push(elapsed);
            }
            Ok(other) => {
                outln!("unexpected answer from {name}: seq={sent} {other}");
                last_failure = Some(Exit::Failed(format!("{name} answered {other}, not \"pong\"")));
            }
            Err(error) => {
                outln!("no pong from {name}: seq={sent} {error}");
                last_failure = Some(Exit::from(error));
            }
        }
    }
    summary(&name, sent, &times);
    let lost = sent.saturating_sub(times.len() as u64);
    match last_failure {
        Some(failure) => Err(failure),
        // Interrupted (Ctrl-C) while a ping waited for its answer.
        None if lost > 0 => Err(Exit::Failed(format!("{lost} of {sent} pings to {name} unanswered"))),
        None => Ok(()),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn summary(name: &str, sent: u64, times: &[Duration]) {
    let answered = times.len();
    let lost = sent.saturating_sub(answered as u64);
    outln!("--- {name} ping statistics ---");
    outln!("{sent} sent, {answered} answered, {lost} lost");
    if let (Some(min), Some(max)) = (times.iter().min(), times.iter().max()) {
        let average = times.iter().map(|time| millis(*time)).sum::<f64>() / answered as f64;
        outln!(
            "round-trip min/avg/max = {:.2}/{average:.2}/{:.2} ms",
            millis(*min),
            millis(*max)
        );
    }
}
