//! The peer: oslo.messaging's own client and server (`--peers`), run by
//! `examples/peers/oslo_bench.py` in the Python virtualenv that
//! `scripts/python-env.sh` makes, on the same broker in the same run.

use std::path::PathBuf;

use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Map, Value};

use crate::stats::Measured;
use crate::{BoxError, compared, short_id};

/// The script, beside this crate's sources.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/oslo_bench.py");

/// How oslo.messaging's run went.
pub(crate) struct PeerFigures {
    pub(crate) ops_per_s: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// A Python with oslo.messaging.
pub(crate) struct Peer {
    python: PathBuf,
}

/// How the peer calls: one at a time, or from this many threads.
#[derive(Clone, Copy)]
pub(crate) enum PeerMode {
    Sequential,
    Threads(usize),
}

impl Peer {
    /// `$RPC_BENCH_PYTHON`, `$RPC_TEST_PYTHON`, or the workspace's `.venv`.
    pub(crate) fn find() -> Result<Peer, BoxError> {
        let python = ["RPC_BENCH_PYTHON", "RPC_TEST_PYTHON"]
            .iter()
            .find_map(|name| std::env::var_os(name).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python")));
        if !python.exists() {
            return Err(format!(
                "--peers needs a Python with oslo.messaging: run `bash scripts/python-env.sh` (it makes .venv), \
                 or set RPC_BENCH_PYTHON (looked for {})",
                python.display()
            )
            .into());
        }
        Ok(Peer { python })
    }

    /// Runs `count` calls of `size` bytes through oslo.messaging on the
    /// broker at `url` (our form), and removes the queues it declared.
    pub(crate) async fn run(
        &self,
        url: &str,
        mode: PeerMode,
        count: usize,
        size: usize,
    ) -> Result<PeerFigures, BoxError> {
        let topic = format!("rpc_bench_peer_{}", short_id());
        let (mode, threads) = match mode {
            PeerMode::Sequential => ("seq", 1),
            PeerMode::Threads(threads) => ("pipelined", threads),
        };
        let output = tokio::process::Command::new(&self.python)
            .arg(SCRIPT)
            .args([oslo_url(url), topic.clone(), mode.to_owned()])
            .args([count.to_string(), size.to_string(), threads.to_string()])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|error| format!("running {}: {error}", self.python.display()))?;
        remove_queues(url, &topic).await;
        if !output.status.success() {
            return Err(format!(
                "oslo_bench.py failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let figures: Value = stdout
            .lines()
            .last()
            .ok_or("oslo_bench.py printed nothing")
            .and_then(|line| serde_json::from_str(line).map_err(|_| "oslo_bench.py printed no JSON"))?;
        let number = |key: &str| {
            figures[key]
                .as_f64()
                .ok_or_else(|| format!("oslo_bench.py gave no {key}: {figures}"))
        };
        Ok(PeerFigures {
            ops_per_s: number("ops_per_s")?,
            p50_us: number("p50_us")?,
            p99_us: number("p99_us")?,
        })
    }
}

/// The peer's figures, and ours against them.
pub(crate) fn peer_extra(ours: &Measured, peer: &PeerFigures) -> Map<String, Value> {
    compared("peer", ours, peer.ops_per_s, peer.p50_us, peer.p99_us)
}

/// oslo's form of an `amqp://` URL: `rabbit://`, the vhost `/` as an empty
/// path, no query (its options are ours).
fn oslo_url(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    let rest = url
        .strip_prefix("amqp://")
        .or_else(|| url.strip_prefix("rabbit://"))
        .unwrap_or(url);
    let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    match vhost {
        "" | "%2f" | "%2F" => format!("rabbit://{authority}/"),
        vhost => format!("rabbit://{authority}/{vhost}"),
    }
}

/// oslo declares its topic and server queues to live forever: remove them.
async fn remove_queues(url: &str, topic: &str) {
    let Ok(connection) = Connection::connect(url, ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for queue in [topic.to_owned(), format!("{topic}.bench")] {
            let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}

#[cfg(test)]
mod tests {
    use super::oslo_url;

    #[test]
    fn urls_take_oslo_form() {
        assert_eq!(
            oslo_url("amqp://guest:guest@127.0.0.1:5672/%2f?single_connection=true"),
            "rabbit://guest:guest@127.0.0.1:5672/"
        );
        assert_eq!(oslo_url("amqp://u:p@host:5673/nova"), "rabbit://u:p@host:5673/nova");
    }
}
