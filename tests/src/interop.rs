//! Running Python oslo.messaging programs (`tests/python/`) beside ours, and
//! the endpoints they talk to.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::{Context, Value, endpoint};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};

/// The Python interpreter of the interop virtualenv: `$RPC_TEST_PYTHON`, or
/// `.venv/bin/python` at the top of the repository (`scripts/python-env.sh`
/// creates it; `scripts/test.sh` runs that first).
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("RPC_TEST_PYTHON") {
        return python.into();
    }
    let python = workspace().join(".venv/bin/python");
    assert!(
        python.exists(),
        "no Python virtualenv for the interop tests at {}: run scripts/python-env.sh (scripts/test.sh does)",
        python.display()
    );
    python
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

/// A Python program of `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    workspace().join("tests/python").join(name)
}

/// The test broker's URL in oslo.messaging's form (`rabbit://`, an empty vhost for `/`).
pub fn oslo_url() -> String {
    let url = crate::broker::url();
    let (_, rest) = url.split_once("://").expect("a URL");
    let rest = rest.split('?').next().unwrap_or(rest);
    let rest = rest
        .strip_suffix("%2f")
        .or_else(|| rest.strip_suffix("%2F"))
        .unwrap_or(rest);
    let rest = if rest.contains('/') {
        rest.to_owned()
    } else {
        format!("{rest}/")
    };
    format!("rabbit://{rest}")
}

/// A Python program of `tests/python/` with the broker's URL in its environment.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(python());
    command
        .arg(script(name))
        .env("OSLO_URL", oslo_url())
        .env("PYTHONUNBUFFERED", "1");
    command
}

/// A Python server process; killed if dropped while running.
#[derive(Debug)]
pub struct PythonServer {
    child: Child,
}

impl PythonServer {
    /// Starts `name` with `args` and waits until it prints `ready`.
    pub async fn start(name: &str, args: &[&str]) -> PythonServer {
        let mut program = command(name);
        program.args(args);
        PythonServer::spawn(name, program).await
    }

    /// Starts `program` (a [`command`] with its arguments and environment)
    /// and waits until it prints `ready`.
    pub async fn spawn(name: &str, mut program: Command) -> PythonServer {
        let mut child = program
            .stdout(Stdio::piped())
            .spawn()
            .expect("the Python server starts");
        let stdout = child.stdout.take().expect("stdout");
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        // Read its output on a thread of its own, to the end, so that it
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
            }
        });
        let started = tokio::time::timeout(Duration::from_secs(60), is_ready).await;
        assert!(
            matches!(started, Ok(Ok(()))),
            "the Python server {name} did not get ready"
        );
        PythonServer { child }
    }

    /// Waits for the process to exit by itself, at most `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the Python server did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A typed application error of the interop endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteropError {
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for InteropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The endpoint Python clients call.
#[derive(Debug, Clone)]
pub struct Interop {
    name: String,
    records: Arc<Mutex<Vec<String>>>,
}

impl Interop {
    /// The endpoint of the server called `name`.
    pub fn new(name: &str) -> Interop {
        Interop {
            name: name.to_owned(),
            records: Arc::default(),
        }
    }
}

#[endpoint]
impl Interop {
    /// Returns `arg`.
    async fn echo(&self, _ctx: &Context, arg: String) -> String {
        arg
    }

    /// Returns `value`, whatever it is.
    async fn echo_value(&self, _ctx: &Context, value: Value) -> Value {
        value
    }

    /// Adds.
    async fn add(&self, _ctx: &Context, a: i64, b: i64) -> i64 {
        a + b
    }

    /// The server's name.
    async fn whoami(&self, _ctx: &Context) -> String {
        self.name.clone()
    }

    /// Records a value.
    async fn record(&self, _ctx: &Context, value: String) {
        self.records.lock().unwrap().push(value);
    }

    /// The values recorded.
    async fn records(&self, _ctx: &Context) -> Vec<String> {
        self.records.lock().unwrap().clone()
    }

    /// Fails with `message`.
    async fn fail(&self, _ctx: &Context, message: String) -> Result<(), InteropError> {
        Err(InteropError { message })
    }

    /// The context received.
    async fn context(&self, ctx: &Context) -> Context {
        ctx.clone()
    }

    /// Sleeps, then returns how long.
    async fn slow(&self, _ctx: &Context, seconds: f64) -> f64 {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        seconds
    }
}

/// Namespace `v`, version 1.3.
#[derive(Debug, Clone, Copy)]
pub struct VersionOne;

#[endpoint(namespace = "v", version = "1.3")]
impl VersionOne {
    /// Which version answered.
    async fn which(&self, _ctx: &Context) -> String {
        "1.3".to_owned()
    }
}

/// Namespace `v`, version 2.1.
#[derive(Debug, Clone, Copy)]
pub struct VersionTwo;

#[endpoint(namespace = "v", version = "2.1")]
impl VersionTwo {
    /// Which version answered.
    async fn which(&self, _ctx: &Context) -> String {
        "2.1".to_owned()
    }
}

/// The API of `tests/python/python_server.py`, as a Rust contract: typed
/// stubs for a Python server.
#[endpoint]
pub trait PythonApi {
    /// Returns `arg`.
    async fn echo(&self, ctx: &Context, arg: String) -> String;
    /// Adds.
    async fn add(&self, ctx: &Context, a: i64, b: i64) -> i64;
    /// The server's name.
    async fn whoami(&self, ctx: &Context) -> String;
    /// Records a value.
    async fn record(&self, ctx: &Context, value: String);
    /// The values recorded.
    async fn records(&self, ctx: &Context) -> Vec<String>;
    /// Raises `ValueError(message)`.
    async fn fail(&self, ctx: &Context, message: String);
    /// The context received.
    async fn context(&self, ctx: &Context) -> Context;
    /// Sleeps.
    async fn slow(&self, ctx: &Context, seconds: f64) -> f64;
}
