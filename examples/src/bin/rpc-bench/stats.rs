//! Latency samples and what is reported of them.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

/// The outcome of running one scenario one way (ours or the baseline).
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// Operations per second over the whole run.
    pub(crate) ops_per_s: f64,
    /// Latency of each operation, sorted.
    pub(crate) latencies: Vec<Duration>,
    /// CPU time of the whole process per operation, when measured.
    pub(crate) cpu_per_op: Option<Duration>,
}

impl Measured {
    pub(crate) fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
        latencies.sort_unstable();
        let ops_per_s = latencies.len() as f64 / elapsed.as_secs_f64();
        Measured {
            ops_per_s,
            latencies,
            cpu_per_op: None,
        }
    }

    /// The `q` quantile (0..=1) of the latencies, in microseconds.
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[index].as_secs_f64() * 1e6
    }
}

/// Runs `total` operations with at most `in_flight` outstanding, timing each
/// and measuring the process's CPU time per operation.
pub(crate) async fn run<F, Fut, E>(total: usize, in_flight: usize, operation: F) -> Result<Measured, E>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let cpu_before = process_cpu_time();
    let mut measured = run_timed(total, in_flight, operation).await?;
    if let (Some(before), Some(after)) = (cpu_before, process_cpu_time()) {
        measured.cpu_per_op = Some((after - before) / u32::try_from(total.max(1)).unwrap_or(u32::MAX));
    }
    Ok(measured)
}

async fn run_timed<F, Fut, E>(total: usize, in_flight: usize, operation: F) -> Result<Measured, E>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let timed = |index| {
        let started = Instant::now();
        let future = operation(index);
        async move { future.await.map(|()| started.elapsed()) }
    };
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(total);
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    while next < total.min(in_flight) {
        running.push(timed(next));
        next += 1;
    }
    while let Some(latency) = running.next().await {
        latencies.push(latency?);
        if next < total {
            running.push(timed(next));
            next += 1;
        }
    }
    Ok(Measured::new(latencies, started.elapsed()))
}

/// CPU time used by this process so far (user + system), from `/proc/self/stat`.
pub(crate) fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at `) `.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// Peak resident memory of a process, in KiB, from `/proc/<pid>/status` (VmHWM).
pub(crate) fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let measured = Measured::new(
            (1..=100).rev().map(Duration::from_micros).collect(),
            Duration::from_secs(1),
        );
        assert_eq!(measured.quantile_us(0.5).round(), 51.0);
        assert_eq!(measured.quantile_us(0.99).round(), 99.0);
        assert_eq!(measured.ops_per_s, 100.0);
    }

    #[tokio::test]
    async fn keeps_the_requested_number_in_flight() {
        let live = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        run(50, 8, |_| async {
            let now = live.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
            live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), ()>(())
        })
        .await
        .unwrap();
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 8);
    }
}
