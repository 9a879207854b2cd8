//! `rpc bench`: a quick latency and throughput check against a live server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rpc_core::Value;

use crate::args::RequestArgs;
use crate::connect::Global;
use crate::exit::Exit;
use crate::out::outln;

/// `rpc bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// How many calls in all.
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: u64,
    /// How many calls in flight at once.
    #[arg(short, long, default_value_t = 1)]
    concurrency: usize,
    /// Seconds each call may wait.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
}

/// Calls `count` times, `concurrency` at once, then prints a summary.
pub(crate) async fn bench(global: &Global, args: BenchArgs) -> Result<(), Exit> {
    let timeout = global.timeout(Some(args.timeout))?;
    let request = &args.request;
    let (arguments, ctx) = (Arc::new(request.arguments()?), Arc::new(request.context()?));
    let client = request
        .client(global, global.transport_within(timeout).await?)?
        .timeout(timeout);
    let method: Arc<str> = Arc::from(request.method.as_str());
    // One call first: a method that fails fails the bench at once.
    client
        .call::<Value>(&ctx, &method, &*arguments)
        .await
        .map_err(crate::commands::call::failed)?;
    let progress = ProgressBar::with_draw_target(Some(args.count), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let calls = futures_util::stream::iter(0..args.count)
        .map(|_| {
            let (client, ctx, arguments, method) = (
                client.clone(),
                Arc::clone(&ctx),
                Arc::clone(&arguments),
                Arc::clone(&method),
            );
            let progress = progress.clone();
            async move {
                let started = Instant::now();
                let answered = client.call::<Value>(&ctx, &method, &*arguments).await;
                progress.inc(1);
                answered.map(|_| started.elapsed())
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    let outcomes: Vec<Result<Duration, rpc_core::Error>> = calls.collect().await;
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let mut latencies: Vec<Duration> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok().copied())
        .collect();
    latencies.sort_unstable();
    let failed: Vec<&rpc_core::Error> = outcomes.iter().filter_map(|outcome| outcome.as_ref().err()).collect();
    let quantile = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(index).map_or(0.0, |latency| latency.as_secs_f64() * 1e3)
    };
    outln!("{:<14} {}", "method", method);
    outln!("{:<14} {} ({} in flight)", "calls", args.count, args.concurrency.max(1));
    outln!("{:<14} {}", "failed", failed.len());
    outln!("{:<14} {:.2} s", "elapsed", elapsed.as_secs_f64());
    outln!(
        "{:<14} {:.0}",
        "calls/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    outln!("{:<14} {:.3} ms", "p50", quantile(0.50));
    outln!("{:<14} {:.3} ms", "p90", quantile(0.90));
    outln!("{:<14} {:.3} ms", "p99", quantile(0.99));
    outln!("{:<14} {:.3} ms", "max", quantile(1.0));
    match failed.first() {
        Some(error) => Err(Exit::Failed(format!(
            "{} of {} calls failed; the first: {error}",
            failed.len(),
            args.count
        ))),
        None => Ok(()),
    }
}
