//! The endpoints the conformance suite serves.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::{Context, endpoint};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What a [`Calculator`] has seen, shared with the test.
#[derive(Debug, Default)]
pub struct Observed {
    /// Values recorded by casts, in arrival order.
    pub records: Mutex<Vec<String>>,
    /// Signalled at every record.
    pub recorded: Notify,
    /// Requests handled (any method).
    pub handled: AtomicUsize,
    /// Requests running right now, and the most seen at once.
    pub running: AtomicUsize,
    /// The most requests seen running at once.
    pub peak: AtomicUsize,
}

impl Observed {
    /// The values recorded so far.
    pub fn records(&self) -> Vec<String> {
        self.records.lock().unwrap().clone()
    }

    /// Waits until `count` values are recorded, or panics after `within`.
    pub async fn wait_for_records(&self, count: usize, within: Duration) -> Vec<String> {
        tokio::time::timeout(within, async {
            loop {
                let recorded = self.recorded.notified();
                let records = self.records();
                if records.len() >= count {
                    return records;
                }
                recorded.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {count} records, got {:?}", self.records()))
    }
}

/// A math error, sent back to the caller typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MathError {
    /// Division by zero.
    DivideByZero,
    /// The result does not fit.
    Overflow {
        /// The operation.
        operation: String,
    },
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MathError::DivideByZero => f.write_str("division by zero"),
            MathError::Overflow { operation } => write!(f, "overflow in {operation}"),
        }
    }
}

/// A result that may fail with a [`MathError`].
pub type MathResult<T> = Result<T, MathError>;

/// The calculator as a client built against another error type sees it.
#[endpoint]
pub trait StaleCalculator {
    /// Divides, failing with an error type the server does not use.
    async fn divide(&self, ctx: &Context, a: i64, b: i64) -> Result<i64, StaleError>;
}

/// An error type of another version of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleError {
    /// A code.
    pub code: u32,
}

impl fmt::Display for StaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stale error {}", self.code)
    }
}

/// The main test endpoint: default namespace, no version (1.0).
#[derive(Debug, Clone)]
pub struct Calculator {
    /// The server's name, returned by `whoami`.
    pub name: String,
    /// What the endpoint saw.
    pub observed: Arc<Observed>,
}

impl Calculator {
    /// A calculator for the server called `name`.
    pub fn new(name: &str) -> Calculator {
        Calculator {
            name: name.to_owned(),
            observed: Arc::default(),
        }
    }

    fn enter(&self) -> Running<'_> {
        self.observed.handled.fetch_add(1, Ordering::SeqCst);
        let now = self.observed.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.observed.peak.fetch_max(now, Ordering::SeqCst);
        Running(&self.observed)
    }

    /// Not remote: not in the `#[endpoint]` block.
    pub fn local_only(&self) -> &str {
        &self.name
    }
}

struct Running<'a>(&'a Observed);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[endpoint]
impl Calculator {
    /// Adds two numbers.
    async fn add(&self, _ctx: &Context, a: i64, b: i64) -> i64 {
        let _running = self.enter();
        a + b
    }

    /// Returns the context it received.
    async fn echo_context(&self, ctx: &Context) -> Context {
        let _running = self.enter();
        ctx.clone()
    }

    /// Returns the name of the server that handled the call.
    async fn whoami(&self, _ctx: &Context) -> String {
        let _running = self.enter();
        self.name.clone()
    }

    /// Greets, with an optional title.
    async fn greet(&self, _ctx: &Context, name: String, title: Option<String>) -> String {
        let _running = self.enter();
        match title {
            Some(title) => format!("hello {title} {name}"),
            None => format!("hello {name}"),
        }
    }

    /// Divides, failing with a typed error.
    async fn divide(&self, _ctx: &Context, a: i64, b: i64) -> Result<i64, MathError> {
        let _running = self.enter();
        if b == 0 {
            return Err(MathError::DivideByZero);
        }
        a.checked_div(b).ok_or(MathError::Overflow {
            operation: "divide".to_owned(),
        })
    }

    /// Subtracts, through an alias of `Result`.
    async fn checked_sub(&self, _ctx: &Context, a: i64, b: i64) -> MathResult<i64> {
        let _running = self.enter();
        a.checked_sub(b).ok_or(MathError::Overflow {
            operation: "subtract".to_owned(),
        })
    }

    /// Sleeps, then returns how long; runs to its end even after its
    /// caller's deadline (for tests of late replies and work in flight).
    #[rpc(uninterruptible)]
    async fn sleep(&self, _ctx: &Context, millis: u64) -> u64 {
        let _running = self.enter();
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    /// Records a value (meant to be cast).
    async fn record(&self, _ctx: &Context, value: String) {
        let _running = self.enter();
        self.observed
            .records
            .lock()
            .unwrap()
            .push(format!("{}:{value}", self.name));
        self.observed.recorded.notify_waiters();
    }

    /// Sleeps, then records a value: casts whose order and concurrency show.
    async fn slow_record(&self, _ctx: &Context, value: String, millis: u64) {
        let _running = self.enter();
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.observed
            .records
            .lock()
            .unwrap()
            .push(format!("{}:{value}", self.name));
        self.observed.recorded.notify_waiters();
    }

    /// Panics.
    async fn explode(&self, _ctx: &Context) -> u32 {
        let _running = self.enter();
        panic!("boom")
    }
}

/// The control API, version 2.3, in the trait form.
#[endpoint(namespace = "control", version = "2.3")]
pub trait Control {
    /// Which implementation answered.
    async fn probe(&self, ctx: &Context) -> String;

    /// Added in 2.3.
    #[rpc(since = "2.3")]
    async fn newest(&self, ctx: &Context) -> bool;
}

/// The control API as an older server ships it: version 1.4.
#[endpoint(namespace = "control", version = "1.4")]
pub trait LegacyControl {
    /// Which implementation answered.
    async fn probe(&self, ctx: &Context) -> String;
}

/// Implements both control APIs.
#[derive(Debug, Clone, Copy)]
pub struct ControlImpl;

impl Control for ControlImpl {
    async fn probe(&self, _ctx: &Context) -> String {
        "control 2.3".to_owned()
    }

    async fn newest(&self, _ctx: &Context) -> bool {
        true
    }
}

impl LegacyControl for ControlImpl {
    async fn probe(&self, _ctx: &Context) -> String {
        "control 1.4".to_owned()
    }
}
