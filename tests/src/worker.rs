//! A worker endpoint and the test server process that serves it, for tests
//! that kill servers, run them side by side, or measure their memory.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::{Context, endpoint};

/// Serves the test server's methods; with a journal, records every value
/// cast to its `record` method in a file, one line each, written
/// before the request is acknowledged.
#[derive(Debug, Clone)]
pub struct Worker {
    name: String,
    journal: Option<Arc<Mutex<File>>>,
    delay: Duration,
}

impl Worker {
    /// A worker named `name` that records into `journal` (appending), each
    /// record taking `delay`.
    pub fn new(name: impl Into<String>, journal: Option<&Path>, delay: Duration) -> std::io::Result<Worker> {
        let journal = match journal {
            Some(path) => Some(Arc::new(Mutex::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        Ok(Worker {
            name: name.into(),
            journal,
            delay,
        })
    }
}

#[endpoint]
impl Worker {
    /// Waits the worker's delay, then appends `value` to the journal.
    async fn record(&self, _ctx: &Context, value: u64) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if let Some(journal) = &self.journal {
            let line = format!("{value}\n");
            // One write per line: a killed process loses no line it wrote.
            let mut file = journal.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.write_all(line.as_bytes()).expect("write the journal");
        }
    }

    /// Returns `text`.
    async fn echo(&self, _ctx: &Context, text: String) -> String {
        text
    }

    /// Sleeps for `millis` (interrupted at its caller's deadline): a call
    /// still running when a test kills the process.
    async fn hold(&self, _ctx: &Context, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    /// The server's name.
    async fn whoami(&self, _ctx: &Context) -> String {
        self.name.clone()
    }
}

/// The values recorded in `journal`, in order (empty if it does not exist).
pub fn read_journal(journal: &Path) -> Vec<u64> {
    match std::fs::read_to_string(journal) {
        Ok(text) => text.lines().filter_map(|line| line.parse().ok()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A `rpc-test-server` process. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts `exe` (the `rpc-test-server` binary: pass
    /// `env!("CARGO_BIN_EXE_rpc-test-server")`) with `args`, and waits until
    /// it serves.
    pub fn spawn(exe: &str, args: &[&str]) -> ServerProcess {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {exe}: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the server's stdout");
        assert_eq!(line.trim(), "ready", "the test server did not start");
        let stdin = child.stdin.take();
        ServerProcess { child, stdin }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident memory (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Kills the process at once (SIGKILL): no request is settled.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (it stops and waits for its requests) and
    /// waits for it to exit.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for the test server");
        assert!(status.success(), "the test server exited with {status}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// A temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// A fresh directory under `parent`.
    pub fn new_in(parent: &Path, prefix: &str) -> TempDir {
        let path = parent.join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
