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
        "notify",
        "notify_msgpack",
        "memory_call_seq",
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
        for key in ["floor_ops_per_s", "floor_p50_us", "floor_ratio", "floor_latency_ratio"] {
            assert_eq!(row.get(key).is_some(), has_floor, "{key} in {row}");
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
