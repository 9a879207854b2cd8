//! Latency samples and what is reported of them.

use std::future::Future;
use std::sync::OnceLock;
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
    /// CPU time of the broker per operation, when it runs on this host
    /// (see [`find_broker`]); its idle time over the run is counted too.
    pub(crate) broker_cpu_per_op: Option<Duration>,
}

impl Measured {
    pub(crate) fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
        latencies.sort_unstable();
        let ops_per_s = latencies.len() as f64 / elapsed.as_secs_f64();
        Measured {
            ops_per_s,
            latencies,
            cpu_per_op: None,
            broker_cpu_per_op: None,
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
    let before = CpuTimes::now();
    let mut measured = run_timed(total, in_flight, operation).await?;
    CpuTimes::now().since(before, total).record(&mut measured);
    Ok(measured)
}

/// The CPU time used so far by this process and by the broker, when readable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTimes {
    process: Option<Duration>,
    broker: Option<Duration>,
}

impl CpuTimes {
    pub(crate) fn now() -> CpuTimes {
        CpuTimes {
            process: process_cpu_time(),
            broker: broker_pid().and_then(|pid| cpu_time(&pid.to_string())),
        }
    }

    /// The time used from `before` to `self`, per operation of `total`.
    pub(crate) fn since(self, before: CpuTimes, total: usize) -> CpuTimes {
        let per_op = |after: Option<Duration>, before: Option<Duration>| {
            after
                .zip(before)
                .map(|(after, before)| after.saturating_sub(before) / u32::try_from(total.max(1)).unwrap_or(u32::MAX))
        };
        CpuTimes {
            process: per_op(self.process, before.process),
            broker: per_op(self.broker, before.broker),
        }
    }

    /// Sets `measured`'s CPU per operation to these.
    pub(crate) fn record(self, measured: &mut Measured) {
        measured.cpu_per_op = self.process;
        measured.broker_cpu_per_op = self.broker;
    }
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
fn process_cpu_time() -> Option<Duration> {
    cpu_time("self")
}

/// CPU time used by process `pid` so far (user + system), from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at `) `.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// The broker's process, once [`find_broker`] looked for it.
static BROKER: OnceLock<Option<u32>> = OnceLock::new();

/// The broker's process on this host, if [`find_broker`] found it.
fn broker_pid() -> Option<u32> {
    BROKER.get().copied().flatten()
}

/// Looks for the process of the broker at `url` on this host: the one
/// listening on the port of the URL's first node (`RPC_BENCH_BROKER_PID`
/// says it instead). Not found (a broker elsewhere), the broker's CPU is
/// not reported.
pub(crate) fn find_broker(url: &str) {
    BROKER.get_or_init(|| {
        if let Ok(pid) = std::env::var("RPC_BENCH_BROKER_PID") {
            return pid.parse().ok();
        }
        let config = rpc_amqp::AmqpConfig::from_url(url).ok()?;
        listening_pid(config.hosts().first()?.port)
    });
}

/// The process holding the socket that listens on TCP `port` here, from
/// `/proc/net/tcp{,6}` (state `0A`, listening) and each process's `fd`s.
fn listening_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(table) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit_once(':'))
                .and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
            if let (Some(local_port), Some(&"0A"), Some(inode)) = (local_port, fields.get(3), fields.get(9)) {
                if local_port == port {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let pids = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
    };
    let holder = pids().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|mut fds| {
            fds.any(|fd| {
                fd.ok()
                    .and_then(|fd| std::fs::read_link(fd.path()).ok())
                    .is_some_and(|target| inodes.iter().any(|inode| target.as_os_str() == inode.as_str()))
            })
        })
    });
    // Another user's sockets cannot be read: something here listens on the
    // port, and if one Erlang VM runs here, that is the broker.
    holder.or_else(|| {
        let mut erlang_vms = pids().filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|name| name.trim_end() == "beam.smp")
        });
        erlang_vms.next().filter(|_| erlang_vms.next().is_none())
    })
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
