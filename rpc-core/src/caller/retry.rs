//! [`RetryLayer`]: retries the calls of idempotent methods.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tower_layer::Layer;

use super::{Caller, Invocation};
use crate::{Context, Error, ErrorCode, Payload};

/// Retries a failed call of an idempotent method (`#[rpc(idempotent)]`)
/// up to `attempts` times in all, with a backoff that doubles from 100 ms
/// up to 5 s, each wait a random point between half of it and all of it
/// (so that callers refused together do not come back together), within
/// the context's deadline. Retried failures: timeouts,
/// no server listening, a lost connection, and an overloaded server.
/// Calls of other methods, and casts, go once.
#[derive(Clone, Copy, Debug)]
pub struct RetryLayer {
    attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
}

impl RetryLayer {
    /// Up to `attempts` attempts in all (at least 1).
    pub fn new(attempts: u32) -> RetryLayer {
        RetryLayer {
            attempts: attempts.max(1),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The first delay between attempts (default 100 ms); it doubles at each retry.
    pub fn backoff(mut self, first: Duration, max: Duration) -> RetryLayer {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retrying<S>;

    fn layer(&self, inner: S) -> Retrying<S> {
        Retrying { inner, policy: *self }
    }
}

/// A caller that retries idempotent calls; see [`RetryLayer`].
#[derive(Clone, Debug)]
pub struct Retrying<S> {
    inner: S,
    policy: RetryLayer,
}

/// A wait between half of `delay` and all of it, at random.
fn jittered(delay: Duration) -> Duration {
    delay / 2 + delay.mul_f64(rand::random::<f64>() / 2.0)
}

/// Whether trying again may succeed.
fn retryable(error: &Error) -> bool {
    match error {
        Error::Timeout { .. } | Error::HeartbeatTimeout { .. } | Error::NoListener { .. } => true,
        Error::Transport(error) => error.is_connection_error(),
        Error::Remote(remote) => remote.code() == ErrorCode::Overloaded,
        _ => false,
    }
}

impl<S: Caller> Caller for Retrying<S> {
    async fn call<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> Result<Option<Payload>, Error>
    where
        A: Serialize + Sync + ?Sized,
    {
        let mut delay = self.policy.backoff;
        let mut attempt = 1;
        loop {
            let error = match self.inner.call(ctx, invocation).await {
                Err(error) if invocation.is_idempotent() && retryable(&error) => error,
                outcome => return outcome,
            };
            let time_left = ctx.remaining().is_none_or(|left| left > delay);
            if attempt >= self.policy.attempts || !time_left {
                return Err(error);
            }
            // Equal jitter: clients refused together (an overload, a
            // reconnection) do not all come back at the same instant.
            let wait = jittered(delay);
            tracing::info!(method = invocation.method(), attempt, %error, retry_in = ?wait, "retrying an idempotent call");
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(self.policy.max_backoff);
            attempt += 1;
        }
    }

    fn cast<A>(&self, ctx: &Context, invocation: Invocation<'_, A>) -> impl Future<Output = Result<(), Error>> + Send
    where
        A: Serialize + Sync + ?Sized,
    {
        self.inner.cast(ctx, invocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_spread_between_half_the_backoff_and_all_of_it() {
        let delay = Duration::from_millis(400);
        let waits: Vec<Duration> = (0..32).map(|_| jittered(delay)).collect();
        assert!(waits.iter().all(|wait| (delay / 2..=delay).contains(wait)), "{waits:?}");
        assert!(
            waits.iter().any(|wait| *wait != waits[0]),
            "the same wait every time: {waits:?}"
        );
    }
}
