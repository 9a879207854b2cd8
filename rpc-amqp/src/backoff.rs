//! Reconnection delays: exponential, capped, with jitter.

use std::time::Duration;

/// The delays between reconnection attempts: the first retry comes at once,
/// then `initial`, doubling up to `max`, each drawn uniformly from the upper
/// half of its range so that many clients losing one broker do not come back
/// in step (a reconnect storm).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        if attempt == 0 {
            return Duration::ZERO;
        }
        let exponent = (attempt - 1).min(20);
        let ceiling = self.initial.saturating_mul(1 << exponent).min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Starts again from the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        let expected_ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for ceiling in expected_ceilings {
            let delay = backoff.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::ZERO);
    }

    #[test]
    fn delays_differ_between_clients() {
        let delays: Vec<Duration> = (0..20)
            .map(|_| {
                let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
                backoff.next_delay();
                backoff.next_delay()
            })
            .collect();
        assert!(delays.iter().any(|delay| *delay != delays[0]), "no jitter: {delays:?}");
    }
}
