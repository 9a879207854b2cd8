//! Benchmarks: calls and casts over RabbitMQ, each beside a raw lapin
//! baseline doing the same work on the same broker in the same run, and
//! calls on the in-memory transport.
//!
//! ```text
//! cargo run --release -p rpc-examples --bin rpc-bench -- [--transport-url URL] [--quick] [--json] [--chart PATH]
//! ```
//!
//! Scenarios (see `docs/benchmarks.md`):
//! - `call_seq`: sequential calls, payloads 16 B and 64 KiB;
//! - `call_pipelined`: 64 calls in flight from one client;
//! - `cast`: casts, 64 in flight, until the server has handled them all;
//! - `notify`, `notify_msgpack`: notifications (oslo's JSON, MessagePack),
//!   64 in flight, until a listener has handled them all, beside raw
//!   publishes of an oslo notification's bytes;
//! - `memory_call_seq`, `memory_call_pipelined`: the in-memory transport,
//!   calls made from a task; `memory_call_seq_main_thread` from the
//!   runtime's main future, `memory_call_seq_current_thread` on a
//!   current-thread runtime; each beside the runtime's floor, a channel
//!   round trip to a task made from the same place (`runtime_*`);
//! - `server_rss`: peak resident memory of a server process while one
//!   client keeps 10,000 calls in flight.
//!
//! `ratio` is our operations per second divided by the baseline's.
#![allow(clippy::print_stdout)]

mod chart;
mod ours;
mod peers;
mod raw;
mod runtime_floor;
mod stats;

use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rpc_core::Transport;
use rpc_core::transport::memory::Broker;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

use crate::ours::{NotifyPair, Pair, wait_for};
use crate::peers::{Peer, PeerMode, peer_extra};
use crate::raw::{Guarantees, RawCasts, RawRpc};
use crate::runtime_floor::Echo;
use crate::stats::{CpuTimes, Measured};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const IN_FLIGHT: usize = 64;
/// oslo.messaging's client is synchronous: its calls in flight are threads.
const PEER_THREADS: usize = 16;
const RSS_CALLS: usize = 10_000;
const RSS_PAYLOAD: usize = 4096;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    url: String,
    quick: bool,
    smoke: bool,
    json: bool,
    chart: Option<String>,
    serve: Option<String>,
    only: Option<String>,
    peers: bool,
}

fn parse_options() -> Result<Options, ExitCode> {
    let mut options = Options {
        url: std::env::var("RPC_TRANSPORT_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned()),
        quick: false,
        smoke: false,
        json: false,
        chart: None,
        serve: None,
        only: None,
        peers: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().ok_or_else(|| {
                eprintln!("rpc-bench: {name} needs a value");
                ExitCode::from(2)
            })
        };
        match arg.as_str() {
            "--transport-url" => options.url = value("--transport-url")?,
            "--chart" => options.chart = Some(value("--chart")?),
            "--serve" => options.serve = Some(value("--serve")?),
            "--only" => options.only = Some(value("--only")?),
            "--quick" => options.quick = true,
            "--peers" => options.peers = true,
            // Tiny sizes, for the test that keeps this program working.
            "--smoke" => options.smoke = true,
            "--json" => options.json = true,
            "-h" | "--help" => {
                eprintln!(
                    "Benchmarks calls and casts beside a raw lapin baseline.\n\n\
                     usage: rpc-bench [--transport-url URL] [--quick] [--json] [--chart PATH] [--peers]\n\n\
                     \x20 --transport-url URL  the RabbitMQ broker (default {DEFAULT_URL})\n\
                     \x20 --quick              fewer iterations: under a minute\n\
                     \x20 --json               one JSON object per line and scenario\n\
                     \x20 --chart PATH         write a latency chart (SVG)\n\
                     \x20 --peers              also run oslo.messaging's client and server (Python, .venv)\n\
                     \x20 --only SCENARIO      run one scenario (for profiling)"
                );
                return Err(ExitCode::SUCCESS);
            }
            other => {
                eprintln!("rpc-bench: unexpected argument `{other}` (see --help)");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(options)
}

/// How many operations each scenario runs.
struct Sizes {
    call_seq_small: usize,
    call_seq_large: usize,
    pipelined: usize,
    casts: usize,
    memory_seq: usize,
    memory_pipelined: usize,
    /// oslo.messaging's calls (`--peers`): sequential 16 B, 64 KiB, from threads.
    peer_seq_small: usize,
    peer_seq_large: usize,
    peer_pipelined: usize,
}

impl Sizes {
    fn new(quick: bool, smoke: bool) -> Sizes {
        if smoke {
            Sizes {
                call_seq_small: 40,
                call_seq_large: 20,
                pipelined: 400,
                casts: 400,
                memory_seq: 400,
                memory_pipelined: 4_000,
                peer_seq_small: 20,
                peer_seq_large: 10,
                peer_pipelined: 100,
            }
        } else if quick {
            Sizes {
                call_seq_small: 1_000,
                call_seq_large: 200,
                pipelined: 5_000,
                casts: 5_000,
                memory_seq: 20_000,
                memory_pipelined: 100_000,
                peer_seq_small: 300,
                peer_seq_large: 100,
                peer_pipelined: 1_000,
            }
        } else {
            Sizes {
                call_seq_small: 5_000,
                call_seq_large: 1_000,
                pipelined: 30_000,
                casts: 30_000,
                memory_seq: 200_000,
                memory_pipelined: 1_000_000,
                peer_seq_small: 1_000,
                peer_seq_large: 300,
                peer_pipelined: 3_000,
            }
        }
    }
}

/// One line of the report.
struct Row {
    scenario: &'static str,
    payload_bytes: usize,
    ours: Measured,
    baseline: Option<Measured>,
    extra: Map<String, Value>,
}

impl Row {
    /// Whether the scenario ran on the broker (not on `memory://`, whatever
    /// the URL): only then is the broker's CPU its own.
    fn on_broker(&self) -> bool {
        !self.scenario.starts_with("memory_")
    }

    fn json(&self, transport: &str) -> Value {
        let mut object = Map::new();
        object.insert("scenario".into(), json!(self.scenario));
        let on_broker = self.on_broker();
        let transport = if on_broker { transport } else { "memory://" };
        object.insert("transport".into(), json!(transport));
        object.insert("payload_bytes".into(), json!(self.payload_bytes));
        object.insert("ops_per_s".into(), json!(round(self.ours.ops_per_s)));
        object.insert("p50_us".into(), json!(round(self.ours.quantile_us(0.5))));
        object.insert("p99_us".into(), json!(round(self.ours.quantile_us(0.99))));
        object.extend(cpu_keys("", &self.ours, on_broker));
        if let Some(baseline) = &self.baseline {
            object.insert("baseline_ops_per_s".into(), json!(round(baseline.ops_per_s)));
            object.insert("baseline_p50_us".into(), json!(round(baseline.quantile_us(0.5))));
            object.insert("baseline_p99_us".into(), json!(round(baseline.quantile_us(0.99))));
            object.extend(cpu_keys("baseline_", baseline, on_broker));
            object.insert("ratio".into(), json!(round(self.ours.ops_per_s / baseline.ops_per_s)));
            object.insert(
                "latency_ratio".into(),
                json!(round(self.ours.quantile_us(0.5) / baseline.quantile_us(0.5))),
            );
        }
        object.extend(self.extra.clone());
        Value::Object(object)
    }

    /// The note on the side under `prefix` (see [`compared`]), if measured.
    fn comparison(&self, prefix: &str, name: &str) -> Option<String> {
        let extra = |key: &str| self.extra.get(&format!("{prefix}_{key}")).cloned();
        let p50 = extra("p50_us")?;
        let extra = |key: &str| extra(key).unwrap_or_default();
        Some(format!(
            "{name}: {} ops/s, p50 {p50} µs; ours {}x its rate, {}x its p50",
            extra("ops_per_s"),
            extra("ratio"),
            extra("latency_ratio")
        ))
    }

    /// The (p50, p99) the row holds for `prefix` (`floor`, `peer`), if measured.
    fn figures(&self, prefix: &str) -> Option<(f64, f64)> {
        let get = |quantile: &str| self.extra.get(&format!("{prefix}_{quantile}_us"))?.as_f64();
        get("p50").zip(get("p99"))
    }
}

/// `<prefix>cpu_us_per_op`, the process's CPU per operation, and with
/// `on_broker`, `<prefix>broker_cpu_us_per_op`, the broker's, as measured.
fn cpu_keys(prefix: &str, measured: &Measured, on_broker: bool) -> Map<String, Value> {
    let micros = |cpu: Duration| json!(round(cpu.as_secs_f64() * 1e6));
    let broker = measured.broker_cpu_per_op.filter(|_| on_broker);
    measured
        .cpu_per_op
        .map(|cpu| (format!("{prefix}cpu_us_per_op"), micros(cpu)))
        .into_iter()
        .chain(broker.map(|cpu| (format!("{prefix}broker_cpu_us_per_op"), micros(cpu))))
        .collect()
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Our URL for the run: queues expire after the run instead of lingering.
fn bench_url(url: &str) -> String {
    if url.contains("shared_queues_ttl") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}shared_queues_ttl=60&transient_queues_ttl=60")
}

async fn amqp_pair(url: &str, topic: &str) -> Result<Pair, BoxError> {
    Ok(Pair::start(rpc_amqp::connect(url).await?, rpc_amqp::connect(url).await?, topic).await?)
}

async fn call_seq(url: &str, size: usize, total: usize) -> Result<Row, BoxError> {
    let body = payload(size);
    if let Some(side) = one_side() {
        return Ok(Row {
            scenario: "call_seq",
            payload_bytes: size,
            ours: one_side_calls(url, &side, &body, total, 1).await?,
            baseline: None,
            extra: Map::new(),
        });
    }
    let name = format!("seq{size}_{}", short_id());
    let raw = RawRpc::start(url, &name, Guarantees::Confirmed).await?;
    let floor = RawRpc::start(url, &format!("{name}_floor"), Guarantees::Floor).await?;
    let pair = amqp_pair(&bench_url(url), &format!("rpc_bench_{name}")).await?;
    let warmup = total / 10 + 10;
    stats::run(warmup, 1, |_| raw.call(&body)).await?;
    stats::run(warmup, 1, |_| floor.call(&body)).await?;
    stats::run(warmup, 1, |_| pair.call(&body)).await?;
    // Alternate halves so that drift on a shared machine hits all alike.
    let half = total / 2;
    let base_a = stats::run(half, 1, |_| raw.call(&body)).await?;
    let floor_a = stats::run(half, 1, |_| floor.call(&body)).await?;
    let ours_a = stats::run(half, 1, |_| pair.call(&body)).await?;
    let ours_b = stats::run(half, 1, |_| pair.call(&body)).await?;
    let floor_b = stats::run(half, 1, |_| floor.call(&body)).await?;
    let base_b = stats::run(half, 1, |_| raw.call(&body)).await?;
    raw.close().await?;
    floor.close().await?;
    pair.stop().await;
    let ours = merge(ours_a, ours_b);
    let floor = merge(floor_a, floor_b);
    let mut extra = measured_extra("floor", &ours, &floor);
    extra.extend(cpu_keys("floor_", &floor, true));
    Ok(Row {
        scenario: "call_seq",
        payload_bytes: size,
        ours,
        baseline: Some(merge(base_a, base_b)),
        extra,
    })
}

/// Another side measured here (the floor, without confirms or acks; the
/// runtime's floor), under `prefix`, and ours against it.
fn measured_extra(prefix: &str, ours: &Measured, other: &Measured) -> Map<String, Value> {
    compared(
        prefix,
        ours,
        other.ops_per_s,
        other.quantile_us(0.5),
        other.quantile_us(0.99),
    )
}

/// Another side's rate, p50 and p99 under `prefix`, and ours against them:
/// `<prefix>_ratio` (our rate over its) and `<prefix>_latency_ratio` (our
/// p50 over its).
fn compared(prefix: &str, ours: &Measured, ops_per_s: f64, p50_us: f64, p99_us: f64) -> Map<String, Value> {
    Map::from_iter([
        (format!("{prefix}_ops_per_s"), json!(round(ops_per_s))),
        (format!("{prefix}_p50_us"), json!(round(p50_us))),
        (format!("{prefix}_p99_us"), json!(round(p99_us))),
        (format!("{prefix}_ratio"), json!(round(ours.ops_per_s / ops_per_s))),
        (
            format!("{prefix}_latency_ratio"),
            json!(round(ours.quantile_us(0.5) / p50_us)),
        ),
    ])
}

/// Two halves of one measurement: their operations, time and CPU added up.
fn merge(a: Measured, b: Measured) -> Measured {
    let elapsed =
        Duration::from_secs_f64(a.latencies.len() as f64 / a.ops_per_s + b.latencies.len() as f64 / b.ops_per_s);
    let mean = |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| (a + b) / 2);
    Measured {
        cpu_per_op: mean(a.cpu_per_op, b.cpu_per_op),
        broker_cpu_per_op: mean(a.broker_cpu_per_op, b.broker_cpu_per_op),
        ..Measured::new(a.latencies.into_iter().chain(b.latencies).collect(), elapsed)
    }
}

/// For profiling: `total` calls of `body`, `in_flight` at a time, on one
/// side alone (`ours`, `raw` or `floor`), measured as ours.
async fn one_side_calls(
    url: &str,
    side: &str,
    body: &[u8],
    total: usize,
    in_flight: usize,
) -> Result<Measured, BoxError> {
    let name = format!("one_{}", short_id());
    match side {
        "raw" | "floor" => {
            let guarantees = if side == "raw" {
                Guarantees::Confirmed
            } else {
                Guarantees::Floor
            };
            let raw = RawRpc::start(url, &name, guarantees).await?;
            let measured = stats::run(total, in_flight, |_| raw.call(body)).await?;
            raw.close().await?;
            Ok(measured)
        }
        _ => {
            let pair = amqp_pair(&bench_url(url), &format!("rpc_bench_{name}")).await?;
            let measured = stats::run(total, in_flight, |_| pair.call(body)).await?;
            pair.stop().await;
            Ok(measured)
        }
    }
}

async fn call_pipelined(url: &str, total: usize) -> Result<Row, BoxError> {
    let body = payload(16);
    if let Some(side) = one_side() {
        return Ok(Row {
            scenario: "call_pipelined",
            payload_bytes: 16,
            ours: one_side_calls(url, &side, &body, total, IN_FLIGHT).await?,
            baseline: None,
            extra: Map::from_iter([("in_flight".to_owned(), json!(IN_FLIGHT))]),
        });
    }
    let name = format!("pipe_{}", short_id());
    let raw = RawRpc::start(url, &name, Guarantees::Confirmed).await?;
    let floor = RawRpc::start(url, &format!("{name}_floor"), Guarantees::Floor).await?;
    let pair = amqp_pair(&bench_url(url), &format!("rpc_bench_{name}")).await?;
    stats::run(total / 10, IN_FLIGHT, |_| raw.call(&body)).await?;
    stats::run(total / 10, IN_FLIGHT, |_| floor.call(&body)).await?;
    stats::run(total / 10, IN_FLIGHT, |_| pair.call(&body)).await?;
    // Alternate halves (baseline, floor, ours, ours, floor, baseline) against drift.
    let half = total / 2;
    let base_a = stats::run(half, IN_FLIGHT, |_| raw.call(&body)).await?;
    let floor_a = stats::run(half, IN_FLIGHT, |_| floor.call(&body)).await?;
    let ours_a = stats::run(half, IN_FLIGHT, |_| pair.call(&body)).await?;
    let ours_b = stats::run(half, IN_FLIGHT, |_| pair.call(&body)).await?;
    let floor_b = stats::run(half, IN_FLIGHT, |_| floor.call(&body)).await?;
    let base_b = stats::run(half, IN_FLIGHT, |_| raw.call(&body)).await?;
    let (ours, baseline) = (merge(ours_a, ours_b), merge(base_a, base_b));
    raw.close().await?;
    floor.close().await?;
    pair.stop().await;
    let floor = merge(floor_a, floor_b);
    let mut extra = measured_extra("floor", &ours, &floor);
    extra.extend(cpu_keys("floor_", &floor, true));
    extra.insert("in_flight".to_owned(), json!(IN_FLIGHT));
    Ok(Row {
        scenario: "call_pipelined",
        payload_bytes: 16,
        ours,
        baseline: Some(baseline),
        extra,
    })
}

/// Casts until consumed, beside raw lapin: confirmed (`cast`), or, with
/// `confirms` false, ours with `confirm_casts(false)` beside raw publishes
/// without confirms (`cast_unconfirmed`).
async fn casts(url: &str, total: usize, confirms: bool) -> Result<Row, BoxError> {
    let body = payload(16);
    let name = format!("cast_{}", short_id());
    let raw = if confirms {
        RawCasts::start(url, &name).await?
    } else {
        RawCasts::unconfirmed(url, &name).await?
    };
    let pair = amqp_pair(&bench_url(url), &format!("rpc_bench_{name}")).await?;
    // Measured at the consumer: from the first publish until the last is consumed.
    let half = total / 2;
    let raw_round = || until_consumed(&raw.consumed, &raw.progress, half, |_| raw.cast(&body));
    let ours_round = || {
        until_consumed(&pair.bench.handled, &pair.bench.progress, half, |_| async {
            if confirms {
                pair.cast(&body).await
            } else {
                pair.cast_unconfirmed(&body).await
            }
        })
    };
    let (ours, baseline) = alternated(raw_round, ours_round).await?;
    raw.close().await?;
    pair.stop().await;
    Ok(Row {
        scenario: if confirms { "cast" } else { "cast_unconfirmed" },
        payload_bytes: 16,
        ours,
        baseline,
        extra: Map::from_iter([("in_flight".to_owned(), json!(IN_FLIGHT))]),
    })
}

/// The one side to run alone, for profiling: `RPC_BENCH_ONE_SIDE` (`ours`,
/// `raw`, or for `call_seq` and `call_pipelined` also `floor`), or `ours` with
/// `RPC_BENCH_OURS_ONLY` set.
fn one_side() -> Option<String> {
    match std::env::var("RPC_BENCH_ONE_SIDE") {
        Ok(side) => Some(side),
        Err(_) => std::env::var_os("RPC_BENCH_OURS_ONLY").map(|_| "ours".to_owned()),
    }
}

/// Runs the baseline's and our rounds alternately (baseline, ours, ours,
/// baseline: against drift) and merges each side's two; with
/// `RPC_BENCH_ONE_SIDE=ours` or `raw`, one side alone (for profiling it),
/// returned as ours, without a baseline.
async fn alternated<R, O, RF, OF>(raw_round: R, ours_round: O) -> Result<(Measured, Option<Measured>), BoxError>
where
    R: Fn() -> RF,
    O: Fn() -> OF,
    RF: Future<Output = Result<Measured, BoxError>>,
    OF: Future<Output = Result<Measured, BoxError>>,
{
    if let Some(side) = one_side() {
        let measured = if side == "ours" {
            ours_round().await?
        } else {
            raw_round().await?
        };
        return Ok((measured, None));
    }
    let base_a = raw_round().await?;
    let ours_a = ours_round().await?;
    let ours_b = ours_round().await?;
    let base_b = raw_round().await?;
    Ok((merge(ours_a, ours_b), Some(merge(base_a, base_b))))
}

/// Notifications in `codec`, 64 in flight, until the listener handled them
/// all; the baseline publishes bodies of the same size (an oslo
/// notification of a 16-byte payload, in its envelope) to a counting consumer.
async fn notifications(url: &str, total: usize, codec: rpc_core::Codec) -> Result<Row, BoxError> {
    let data = "0123456789abcdef";
    let name = format!("notify_{}", short_id());
    // What oslo's messagingv2 driver writes for that payload, for the baseline.
    let inner = json!({
        "message_id": uuid::Uuid::new_v4().to_string(),
        "publisher_id": "rpc-bench",
        "event_type": "rpc_bench.event",
        "priority": "INFO",
        "payload": {"data": data},
        "timestamp": "2026-12-03 09:41:07.123456",
        "_unique_id": uuid::Uuid::new_v4().simple().to_string(),
    });
    let body = serde_json::to_vec(&json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}))?;
    // Persistent, in a durable queue, as oslo's notifications and ours go.
    let raw = RawCasts::persistent(url, &name).await?;
    let bench = bench_url(url);
    let pair = NotifyPair::start(
        rpc_amqp::connect(&bench).await?,
        rpc_amqp::connect(&bench).await?,
        &format!("rpc_bench_{name}"),
        codec,
    )
    .await?;
    let half = total / 2;
    let raw_round = || until_consumed(&raw.consumed, &raw.progress, half, |_| raw.cast(&body));
    let ours_round = || until_consumed(&pair.handled, &pair.progress, half, |_| pair.notify(data));
    let (ours, baseline) = alternated(raw_round, ours_round).await?;
    raw.close().await?;
    pair.stop().await;
    Ok(Row {
        scenario: match codec {
            rpc_core::Codec::MsgPack => "notify_msgpack",
            _ => "notify",
        },
        payload_bytes: body.len(),
        ours,
        baseline,
        extra: Map::from_iter([("in_flight".to_owned(), json!(IN_FLIGHT))]),
    })
}

/// Publishes `total` messages with `publish`, `IN_FLIGHT` at a time, and
/// waits until `counter` (with `progress`) counted them all: measured at
/// the consumer, the rate from the first publish to the last consumed and
/// the CPU over the same span.
async fn until_consumed<F, Fut, E>(
    counter: &AtomicU64,
    progress: &Notify,
    total: usize,
    publish: F,
) -> Result<Measured, BoxError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    let before = counter.load(Ordering::Relaxed);
    let (started, cpu) = (Instant::now(), CpuTimes::now());
    let published = stats::run(total, IN_FLIGHT, publish).await.map_err(Into::into)?;
    wait_for(counter, progress, before + total as u64).await;
    let mut measured = Measured {
        ops_per_s: total as f64 / started.elapsed().as_secs_f64(),
        ..published
    };
    CpuTimes::now().since(cpu, total).record(&mut measured);
    Ok(measured)
}

/// Where the calls of a `memory://` scenario are made from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CalledFrom {
    /// A spawned task: on a multi-thread runtime the call, the server and
    /// the reply can stay on one worker thread.
    Task,
    /// The runtime's `block_on` future (`#[tokio::main]`'s body), which
    /// tokio runs outside its worker threads: every call crosses to a
    /// worker and back.
    MainThread,
}

async fn memory(scenario: &'static str, total: usize, in_flight: usize, from: CalledFrom) -> Result<Row, BoxError> {
    let broker = Broker::new();
    let pair = std::sync::Arc::new(Pair::start(broker.transport(), broker.transport(), "rpc_bench_memory").await?);
    let calls = {
        let pair = std::sync::Arc::clone(&pair);
        async move {
            let body = payload(16);
            stats::run(total / 10, in_flight, |_| pair.call(&body)).await?;
            if one_side().is_some() {
                // For profiling: ours alone.
                return Ok::<_, BoxError>((stats::run(total, in_flight, |_| pair.call(&body)).await?, None));
            }
            let echo = Echo::start();
            stats::run(total / 10, in_flight, |_| echo.call(&body)).await?;
            // Alternate halves (floor, ours, ours, floor) against drift.
            let half = total / 2;
            let floor_a = stats::run(half, in_flight, |_| echo.call(&body)).await?;
            let ours_a = stats::run(half, in_flight, |_| pair.call(&body)).await?;
            let ours_b = stats::run(half, in_flight, |_| pair.call(&body)).await?;
            let floor_b = stats::run(half, in_flight, |_| echo.call(&body)).await?;
            Ok((merge(ours_a, ours_b), Some(merge(floor_a, floor_b))))
        }
    };
    let (ours, floor) = match from {
        CalledFrom::Task => tokio::spawn(calls).await??,
        CalledFrom::MainThread => calls.await?,
    };
    let mut extra = floor
        .map(|floor| measured_extra("runtime", &ours, &floor))
        .unwrap_or_default();
    extra.insert("in_flight".to_owned(), json!(in_flight));
    if let Some(pair) = std::sync::Arc::into_inner(pair) {
        pair.stop().await;
    }
    Ok(Row {
        scenario,
        payload_bytes: 16,
        ours,
        baseline: None,
        extra,
    })
}

/// Sequential calls through a server with one pass-through middleware layer
/// (ours) against the same server with none (the baseline), on memory or
/// on RabbitMQ, in alternating halves: what a layer costs. With no layer
/// the server calls the dispatcher directly.
async fn middleware(scenario: &'static str, url: Option<&str>, total: usize) -> Result<Row, BoxError> {
    let connect = |broker: &Broker| {
        let broker = broker.clone();
        async move {
            match url {
                Some(url) => Ok::<_, BoxError>(rpc_amqp::connect(&bench_url(url)).await?),
                None => Ok(broker.transport()),
            }
        }
    };
    let broker = Broker::new();
    let id = short_id();
    let bare = Pair::with_layers(
        connect(&broker).await?,
        connect(&broker).await?,
        &format!("rpc_bench_bare_{id}"),
        0,
    )
    .await?;
    let layered = Pair::with_layers(
        connect(&broker).await?,
        connect(&broker).await?,
        &format!("rpc_bench_layer_{id}"),
        1,
    )
    .await?;
    let body = payload(16);
    let warmup = total / 10 + 10;
    stats::run(warmup, 1, |_| bare.call(&body)).await?;
    stats::run(warmup, 1, |_| layered.call(&body)).await?;
    let half = total / 2;
    let base_a = stats::run(half, 1, |_| bare.call(&body)).await?;
    let ours_a = stats::run(half, 1, |_| layered.call(&body)).await?;
    let ours_b = stats::run(half, 1, |_| layered.call(&body)).await?;
    let base_b = stats::run(half, 1, |_| bare.call(&body)).await?;
    bare.stop().await;
    layered.stop().await;
    Ok(Row {
        scenario,
        payload_bytes: 16,
        ours: merge(ours_a, ours_b),
        baseline: Some(merge(base_a, base_b)),
        extra: Map::from_iter([("layers".to_owned(), json!(1))]),
    })
}

/// Peak RSS of a separate server process while 10,000 calls are in flight.
async fn server_rss(url: &str) -> Result<Row, BoxError> {
    let topic = format!("rpc_bench_rss_{}", short_id());
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", &topic, "--transport-url", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    if lines.next_line().await?.as_deref() != Some("ready") {
        return Err("the server process did not start".into());
    }
    let pid = child.id().ok_or("no pid")?.to_string();
    let idle_rss = stats::peak_rss_kib(&pid).unwrap_or(0);
    let client = amqp_pair_client(url, &topic).await?;
    let body = payload(RSS_PAYLOAD);
    let ours = stats::run(RSS_CALLS, RSS_CALLS, |_| client.call(&body)).await?;
    stdin.write_all(b"report\n").await?;
    let report = lines.next_line().await?.ok_or("no report")?;
    let peak: u64 = report
        .strip_prefix("peak_rss_kib ")
        .and_then(|kib| kib.parse().ok())
        .ok_or("bad report")?;
    child.wait().await?;
    Ok(Row {
        scenario: "server_rss",
        payload_bytes: RSS_PAYLOAD,
        ours,
        baseline: None,
        extra: Map::from_iter([
            ("in_flight".to_owned(), json!(RSS_CALLS)),
            ("peak_rss_kib".to_owned(), json!(peak)),
            ("idle_rss_kib".to_owned(), json!(idle_rss)),
        ]),
    })
}

struct Caller(ours::BenchClient);

impl Caller {
    async fn call(&self, body: &[u8]) -> Result<(), rpc_core::Error> {
        let payload = serde_bytes::ByteBuf::from(body);
        self.0.echo(&rpc_core::Context::new(), payload).await.map(drop)
    }
}

async fn amqp_pair_client(url: &str, topic: &str) -> Result<Caller, BoxError> {
    let transport: Transport = rpc_amqp::connect(&bench_url(url)).await?;
    let client = rpc_core::Client::new(transport, rpc_core::Target::topic(topic)).timeout(Duration::from_secs(120));
    Ok(Caller(ours::BenchClient::new(client)))
}

/// `--serve TOPIC`: a server process for `server_rss`. Prints `ready`, then,
/// when `report` arrives on stdin, its peak RSS, and exits.
async fn serve(url: &str, topic: &str) -> Result<(), BoxError> {
    let transport = rpc_amqp::connect(&bench_url(url)).await?;
    let server = rpc_core::Server::builder(transport, rpc_core::Target::server(topic, "bench"))
        .endpoint(ours::Bench::default())
        .build()?;
    server.start().await?;
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    tokio::task::spawn_blocking(move || std::io::stdin().lock().read_line(&mut line)).await??;
    let peak = stats::peak_rss_kib("self").ok_or("no /proc/self/status")?;
    println!("peak_rss_kib {peak}");
    std::io::stdout().flush()?;
    server.stop();
    server.wait().await;
    Ok(())
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<22} {:>8} {:>12} {:>9} {:>9} {:>13} {:>10} {:>10} {:>7}",
        "scenario", "payload", "ops/s", "p50 µs", "p99 µs", "base ops/s", "base p50", "base p99", "ratio"
    );
    for row in rows {
        let (base_ops, base_p50, base_p99, ratio) = match &row.baseline {
            Some(base) => (
                format!("{:.0}", base.ops_per_s),
                format!("{:.1}", base.quantile_us(0.5)),
                format!("{:.1}", base.quantile_us(0.99)),
                format!("{:.2}", row.ours.ops_per_s / base.ops_per_s),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<22} {:>8} {:>12.0} {:>9.1} {:>9.1} {:>13} {:>10} {:>10} {:>7}",
            row.scenario,
            row.payload_bytes,
            row.ours.ops_per_s,
            row.ours.quantile_us(0.5),
            row.ours.quantile_us(0.99),
            base_ops,
            base_p50,
            base_p99,
            ratio
        );
        let micros = |cpu: Option<Duration>| cpu.map(|cpu| format!("{:.1}", cpu.as_secs_f64() * 1e6));
        let cpu_note = |what: &str, cpu: fn(&Measured) -> Option<Duration>| {
            micros(cpu(&row.ours)).map(|ours| match micros(row.baseline.as_ref().and_then(cpu)) {
                Some(base) => format!("{what} CPU per op: {ours} µs, baseline {base} µs"),
                None => format!("{what} CPU per op: {ours} µs"),
            })
        };
        let broker_note = cpu_note("broker", |measured| measured.broker_cpu_per_op).filter(|_| row.on_broker());
        let notes: Vec<String> = cpu_note("process", |measured| measured.cpu_per_op)
            .into_iter()
            .chain(broker_note)
            .chain(
                row.extra
                    .get("peak_rss_kib")
                    .map(|kib| format!("server peak RSS {kib} KiB")),
            )
            .chain(row.comparison("peer", "oslo.messaging (Python client and server)"))
            .chain(row.comparison("floor", "floor (no confirms, no acks)"))
            .chain(row.comparison("runtime", "the runtime's floor (a channel round trip to a task)"))
            .collect();
        if !notes.is_empty() {
            println!("{:<22} {}", "", notes.join(", "));
        }
    }
}

async fn run(options: &Options) -> Result<Vec<Row>, BoxError> {
    let sizes = Sizes::new(options.quick, options.smoke);
    let url = options.url.as_str();
    // Its CPU is reported beside ours when it runs here.
    stats::find_broker(url);
    let mut rows = Vec::new();
    let wanted = |scenario: &str| options.only.as_deref().is_none_or(|only| scenario.starts_with(only));
    let log = |scenario: &str| eprintln!("rpc-bench: {scenario}...");
    let peer = if options.peers { Some(Peer::find()?) } else { None };
    // oslo.messaging's run, after ours, its figures added to our row.
    let with_peer = |mut row: Row, mode: PeerMode, count: usize| {
        let peer = peer.as_ref();
        async move {
            if let Some(peer) = peer {
                log(&format!("{} {} B, oslo.messaging", row.scenario, row.payload_bytes));
                let figures = peer.run(url, mode, count, row.payload_bytes).await?;
                row.extra.extend(peer_extra(&row.ours, &figures));
            }
            Ok::<_, BoxError>(row)
        }
    };
    if wanted("call_seq") {
        log("call_seq 16 B");
        let row = call_seq(url, 16, sizes.call_seq_small).await?;
        rows.push(with_peer(row, PeerMode::Sequential, sizes.peer_seq_small).await?);
        log("call_seq 64 KiB");
        let row = call_seq(url, 64 * 1024, sizes.call_seq_large).await?;
        rows.push(with_peer(row, PeerMode::Sequential, sizes.peer_seq_large).await?);
    }
    if wanted("call_pipelined") {
        log("call_pipelined");
        let row = call_pipelined(url, sizes.pipelined).await?;
        rows.push(with_peer(row, PeerMode::Threads(PEER_THREADS), sizes.peer_pipelined).await?);
    }
    if wanted("cast") {
        log("cast");
        rows.push(casts(url, sizes.casts, true).await?);
        log("cast_unconfirmed");
        rows.push(casts(url, sizes.casts, false).await?);
    }
    if wanted("notify") {
        log("notify (oslo JSON)");
        rows.push(notifications(url, sizes.casts, rpc_core::Codec::OsloJson).await?);
        log("notify (MessagePack)");
        rows.push(notifications(url, sizes.casts, rpc_core::Codec::MsgPack).await?);
    }
    if wanted("memory_call_seq") {
        log("memory_call_seq (from a task)");
        rows.push(memory("memory_call_seq", sizes.memory_seq, 1, CalledFrom::Task).await?);
        log("memory_call_seq from the main thread");
        rows.push(
            memory(
                "memory_call_seq_main_thread",
                sizes.memory_seq,
                1,
                CalledFrom::MainThread,
            )
            .await?,
        );
        log("memory_call_seq on a current-thread runtime");
        let total = sizes.memory_seq;
        let row = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(memory(
                "memory_call_seq_current_thread",
                total,
                1,
                CalledFrom::MainThread,
            ))
        })
        .await??;
        rows.push(row);
    }
    if wanted("memory_call_pipelined") {
        log("memory_call_pipelined");
        rows.push(
            memory(
                "memory_call_pipelined",
                sizes.memory_pipelined,
                IN_FLIGHT,
                CalledFrom::Task,
            )
            .await?,
        );
    }
    if wanted("middleware") || wanted("memory_middleware") {
        log("memory_middleware: one layer against none");
        rows.push(middleware("memory_middleware", None, sizes.memory_seq).await?);
        log("middleware (AMQP): one layer against none");
        rows.push(middleware("middleware", Some(url), sizes.call_seq_small).await?);
    }
    if wanted("server_rss") {
        log("server_rss");
        rows.push(server_rss(url).await?);
    }
    Ok(rows)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(code) => return code,
    };
    rpc_amqp::register();
    if let Some(topic) = &options.serve {
        return match serve(&options.url, topic).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("rpc-bench --serve: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let rows = match run(&options).await {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!("rpc-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    let transport = rpc_core::transport::redact_url(&options.url);
    if options.json {
        for row in &rows {
            println!("{}", row.json(&transport));
        }
    } else {
        print_table(&rows);
    }
    if let Some(path) = &options.chart {
        let bars: Vec<chart::Bars> = rows
            .iter()
            .filter(|row| row.scenario != "server_rss")
            .map(|row| chart::Bars {
                label: format!(
                    "{}|{} B",
                    row.scenario
                        .replace("memory_", "memory|")
                        .replace("_current_thread", "|(current thread)")
                        .replace("_main_thread", "|(main thread)"),
                    row.payload_bytes
                ),
                ours: (row.ours.quantile_us(0.5), row.ours.quantile_us(0.99)),
                baseline: row.baseline.as_ref().map(|b| (b.quantile_us(0.5), b.quantile_us(0.99))),
                floor: row.figures("floor"),
                peer: row.figures("peer"),
            })
            .collect();
        if let Err(error) = chart::write(path, "Latency: ours beside raw lapin and oslo.messaging", &bars) {
            eprintln!("rpc-bench: cannot write the chart: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
