//! `rpc-bench --json` prints every scenario with the keys the README
//! promises (tiny sizes: this checks the program, not its figures).

use std::process::Command;

#[test]
fn every_scenario_is_reported() {
    let output = Command::new(env!("CARGO_BIN_EXE_rpc-bench"))
        .args(["--smoke", "--json", "--transport-url", &rpc_tests::broker::url()])
        .output()
        .expect("rpc-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rpc-bench failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let scenarios: Vec<&str> = rows.iter().map(|row| row["scenario"].as_str().unwrap()).collect();
    for expected in [
        "call_seq",
        "call_pipelined",
        "cast",
        "cast_unconfirmed",
        "notify",
        "notify_msgpack",
        "memory_call_seq",
        "memory_call_seq_main_thread",
        "memory_call_seq_current_thread",
        "memory_call_pipelined",
        "memory_middleware",
        "middleware",
        "server_rss",
    ] {
        assert!(scenarios.contains(&expected), "{expected} missing from {scenarios:?}");
    }
    for row in &rows {
        for key in ["scenario", "payload_bytes", "ops_per_s", "p50_us", "p99_us"] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
        let scenario = row["scenario"].as_str().unwrap();
        let has_baseline = [
            "call_seq",
            "call_pipelined",
            "cast",
            "cast_unconfirmed",
            "notify",
            "notify_msgpack",
            "memory_middleware",
            "middleware",
        ]
        .contains(&scenario);
        for key in ["baseline_ops_per_s", "baseline_p50_us", "ratio"] {
            assert_eq!(row.get(key).is_some(), has_baseline, "{key} in {row}");
        }
        let has_floor = ["call_seq", "call_pipelined"].contains(&scenario);
        for key in [
            "floor_ops_per_s",
            "floor_p50_us",
            "floor_ratio",
            "floor_latency_ratio",
            "floor_cpu_us_per_op",
        ] {
            assert_eq!(row.get(key).is_some(), has_floor, "{key} in {row}");
        }
        // The broker runs here (the suite starts it): its CPU is reported
        // for every side of every scenario on it, and for none in memory.
        let on_broker = !scenario.starts_with("memory_");
        assert_eq!(row.get("broker_cpu_us_per_op").is_some(), on_broker, "{row}");
        assert_eq!(
            row.get("baseline_broker_cpu_us_per_op").is_some(),
            on_broker && has_baseline,
            "{row}"
        );
        assert_eq!(row.get("floor_broker_cpu_us_per_op").is_some(), has_floor, "{row}");
        let has_runtime_floor = [
            "memory_call_seq",
            "memory_call_seq_main_thread",
            "memory_call_seq_current_thread",
            "memory_call_pipelined",
        ]
        .contains(&scenario);
        for key in [
            "runtime_ops_per_s",
            "runtime_p50_us",
            "runtime_ratio",
            "runtime_latency_ratio",
        ] {
            assert_eq!(row.get(key).is_some(), has_runtime_floor, "{key} in {row}");
        }
        assert!(row["ops_per_s"].as_f64().unwrap() > 0.0, "{row}");
        let transport = row["transport"].as_str().unwrap();
        if scenario.starts_with("memory_") {
            assert_eq!(transport, "memory://", "{row}");
        } else {
            let url = rpc_tests::broker::url();
            assert_eq!(transport, rpc_core::transport::redact_url(&url), "{row}");
        }
    }
    let sizes: Vec<u64> = rows
        .iter()
        .filter(|row| row["scenario"] == "call_seq")
        .map(|row| row["payload_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [16, 65536]);
    let rss = rows.iter().find(|row| row["scenario"] == "server_rss").unwrap();
    assert!(rss["peak_rss_kib"].as_u64().unwrap() > 0);
}

/// `--peers` runs oslo.messaging's own client and server in the same run:
/// every call scenario gets its figures and our ratios against them, and
/// the chart shows them.
#[test]
fn peers_run_beside_ours() {
    let python = std::env::var("RPC_TEST_PYTHON").expect("RPC_TEST_PYTHON: the virtualenv of scripts/python-env.sh");
    let chart = std::env::temp_dir().join(format!("rpc-bench-peers-{}.svg", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_rpc-bench"))
        .args(["--smoke", "--json", "--only", "call", "--peers", "--chart"])
        .arg(&chart)
        .args(["--transport-url", &rpc_tests::broker::url()])
        .env("RPC_BENCH_PYTHON", python)
        .output()
        .expect("rpc-bench runs");
    assert!(
        output.status.success(),
        "rpc-bench --peers failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let scenarios: Vec<(&str, u64)> = rows
        .iter()
        .map(|row| {
            (
                row["scenario"].as_str().unwrap(),
                row["payload_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        scenarios,
        [("call_seq", 16), ("call_seq", 65536), ("call_pipelined", 16)]
    );
    for row in &rows {
        let number = |key: &str| row[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {row}"));
        let (ours, peer) = (number("ops_per_s"), number("peer_ops_per_s"));
        assert!(
            peer > 0.0 && number("peer_p50_us") > 0.0 && number("peer_p99_us") > 0.0,
            "{row}"
        );
        // The ratio is ours over oslo's, from the figures printed (rounded).
        assert!(
            (number("peer_ratio") - ours / peer).abs() < 0.05 * (ours / peer) + 0.01,
            "{row}"
        );
        assert!(number("peer_latency_ratio") > 0.0, "{row}");
    }
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    let _ = std::fs::remove_file(&chart);
    for series in [
        "raw floor p50",
        "ours p50",
        "raw, our guarantees p50",
        "oslo.messaging p50",
    ] {
        assert!(svg.contains(series), "the chart has no `{series}`");
    }
}

/// Without a Python for the peer, `--peers` says how to get one.
#[test]
fn peers_without_python_say_how_to_get_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_rpc-bench"))
        .args(["--smoke", "--only", "call_seq", "--peers"])
        .args(["--transport-url", &rpc_tests::broker::url()])
        .env("RPC_BENCH_PYTHON", "/nonexistent/python")
        .output()
        .expect("rpc-bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scripts/python-env.sh"), "{stderr}");
}
