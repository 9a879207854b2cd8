//! Per-method limits: [`ConcurrencyLimit`] (wait for a slot) and
//! [`RateLimit`] (refuse over the rate).
//!
//! Both are configured by method name, plus at most one limit shared by
//! every other method: the layers run before the dispatcher, so a method
//! name may be anything a peer sent, and a limit per unknown name would let
//! a peer grow the server's memory.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::by_method::ByMethod;
use super::throttle::Throttle;
use super::{Middleware, Next};
use crate::endpoint::HandlerFuture;
use crate::message::Request;
use crate::{ErrorCode, RemoteError};

/// Runs at most so many requests of a method at once; the others wait in
/// arrival order, holding their place in the server's executor: a burst of
/// one method larger than the executor (64 requests by default) keeps the
/// others waiting too, so give the executor room beyond the sum of the
/// limits. A waiter whose request is cancelled (its caller's deadline
/// passed, or its caller gave up) leaves without running, also under
/// `#[rpc(uninterruptible)]` (it took a slot and ran, for nobody, until
/// 2026-12-05).
///
/// ```
/// use rpc_core::middleware::ConcurrencyLimit;
///
/// // Two resizes at a time; every other method shares 16 slots.
/// let limit = ConcurrencyLimit::new().method("resize", 2).others(16);
/// ```
#[derive(Clone, Default)]
pub struct ConcurrencyLimit {
    methods: ByMethod<Arc<Semaphore>>,
    others: Option<Arc<Semaphore>>,
}

impl ConcurrencyLimit {
    /// No limit yet: add some with [`method`](Self::method) and [`others`](Self::others).
    pub fn new() -> ConcurrencyLimit {
        ConcurrencyLimit::default()
    }

    /// At most `limit` requests of `method` at once (at least 1): a method
    /// in any namespace, or `namespace:method`, as [`Policy`](super::Policy)
    /// names them.
    pub fn method(mut self, method: impl Into<String>, limit: usize) -> ConcurrencyLimit {
        self.methods
            .insert(method.into(), Arc::new(Semaphore::new(limit.max(1))));
        self
    }

    /// At most `limit` requests at once of all the methods without a limit
    /// of their own, together (at least 1).
    pub fn others(mut self, limit: usize) -> ConcurrencyLimit {
        self.others = Some(Arc::new(Semaphore::new(limit.max(1))));
        self
    }
}

impl Middleware for ConcurrencyLimit {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        let own = self.methods.find(request).map(|(slots, _)| slots);
        let Some(slots) = own.or(self.others.as_ref()) else {
            return next.run(request);
        };
        Box::pin(async move {
            let permit = match slots.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    let _queued = crate::metrics::Counted::enter(crate::metrics::Gauge::Queued);
                    // The token alone, not the whole context: the request
                    // is borrowed again to run.
                    let cancellation = request.context().cancellation().cloned().unwrap_or_default();
                    tokio::select! {
                        // Never closed: waits for a slot.
                        permit = slots.acquire() => permit
                            .map_err(|_| RemoteError::new(ErrorCode::Internal, "RuntimeError", "the limit was closed"))?,
                        () = cancellation.cancelled() => return Err(RemoteError::new(
                            ErrorCode::DeadlineExceeded,
                            "DeadlineExceeded",
                            format!("`{}` was cancelled while it waited for its concurrency limit; it did not run", request.method()),
                        )
                        .with_module("rpc_core")),
                    }
                }
            };
            let outcome = next.run(request).await;
            drop(permit);
            outcome
        })
    }
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods = self.methods.names();
        f.debug_struct("ConcurrencyLimit")
            .field("methods", &methods)
            .field("others", &self.others.is_some())
            .finish()
    }
}

/// Refuses, with [`ErrorCode::Overloaded`], the requests of a method over
/// `count` per `per` (a token bucket holding `count` tokens, refilled
/// evenly over `per`, as tower's `RateLimit` counts them). Refused at once:
/// the caller learns to back off instead of timing out.
///
/// ```
/// use std::time::Duration;
/// use rpc_core::middleware::RateLimit;
///
/// let limit = RateLimit::new().method("create", 10, Duration::from_secs(1));
/// ```
#[derive(Clone, Default)]
pub struct RateLimit {
    methods: ByMethod<Arc<Bucket>>,
    others: Option<Arc<Bucket>>,
    refusals: Arc<Throttle>,
}

impl RateLimit {
    /// No limit yet: add some with [`method`](Self::method) and [`others`](Self::others).
    pub fn new() -> RateLimit {
        RateLimit::default()
    }

    /// At most `count` requests of `method` per `per` (0: none at all): a
    /// method in any namespace, or `namespace:method`, as
    /// [`Policy`](super::Policy) names them.
    pub fn method(mut self, method: impl Into<String>, count: u32, per: Duration) -> RateLimit {
        self.methods.insert(method.into(), Arc::new(Bucket::new(count, per)));
        self
    }

    /// At most `count` requests per `per` of all the methods without a limit
    /// of their own, together (0: none at all).
    pub fn others(mut self, count: u32, per: Duration) -> RateLimit {
        self.others = Some(Arc::new(Bucket::new(count, per)));
        self
    }
}

impl Middleware for RateLimit {
    fn call<'a>(&'a self, request: &'a mut Request, next: Next<'a>) -> HandlerFuture<'a> {
        let bucket = self
            .methods
            .find(request)
            .map(|(bucket, _)| bucket)
            .or(self.others.as_ref());
        if bucket.is_none_or(|bucket| bucket.take()) {
            return next.run(request);
        }
        let bucket = bucket.map(|bucket| (bucket.count, bucket.per)).unwrap_or_default();
        if let Some(unlogged) = self.refusals.admit() {
            tracing::warn!(
                method = request.method(),
                unlogged,
                "refusing a request over its rate limit (refusals are logged once a second at most: `unlogged` since the last)"
            );
        }
        let refusal = RemoteError::new(
            ErrorCode::Overloaded,
            "RateLimitExceeded",
            format!(
                "{} is limited to {} requests per {:?}; try again later",
                request.method(),
                bucket.0,
                bucket.1
            ),
        );
        Box::pin(std::future::ready(Err(refusal)))
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods = self.methods.names();
        f.debug_struct("RateLimit")
            .field("methods", &methods)
            .field("others", &self.others.is_some())
            .finish()
    }
}

/// A token bucket: `count` tokens, one more every `per / count`; none ever
/// with a `count` of 0 (which let one through per `per` until 2026-12-05).
struct Bucket {
    count: u32,
    per: Duration,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(count: u32, per: Duration) -> Bucket {
        Bucket {
            count,
            per: per.max(Duration::from_nanos(1)),
            state: Mutex::new((f64::from(count), Instant::now())),
        }
    }

    /// Takes a token if there is one.
    fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        // A count of 0 refills nothing: 0 / per, never NaN.
        let refill = now.duration_since(*last).as_secs_f64() / self.per.as_secs_f64() * f64::from(self.count);
        *tokens = (*tokens + refill).min(f64::from(self.count));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refills_evenly() {
        let bucket = Bucket::new(2, Duration::from_secs(1));
        assert!(bucket.take());
        assert!(bucket.take());
        assert!(!bucket.take(), "two per second: the third is refused");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(bucket.take(), "half a second gives one token back");
        assert!(!bucket.take());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(bucket.take());
        assert!(bucket.take());
        assert!(!bucket.take(), "the bucket holds `count` tokens at most");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_of_none_refuses_everything() {
        let bucket = Bucket::new(0, Duration::from_secs(1));
        assert!(!bucket.take());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(!bucket.take(), "a count of 0 lets nothing through, ever");
    }
}
