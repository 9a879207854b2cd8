//! The quickstart prints `myarg` and exits 0 once its server has stopped.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn quickstart_prints_myarg_and_exits() {
    let started = Instant::now();
    // On `memory://`, its default, whatever the environment names.
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env_remove("RPC_TRANSPORT_URL")
        .env("RUST_LOG", "info")
        .output()
        .expect("quickstart runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit status {:?}; stderr:\n{stderr}",
        output.status
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "myarg\n");
    assert!(stderr.contains("TestEndpoint.test"), "{stderr}");
    assert!(stderr.contains("ServerControlEndpoint.stop"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn quickstart_reports_a_bad_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(["--transport-url", "nats://user:secret@localhost"])
        .output()
        .expect("quickstart runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no transport is registered for `nats://`"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
}
