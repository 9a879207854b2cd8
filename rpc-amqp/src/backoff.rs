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
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// The longest the next delay may be.
    fn ceiling(&self) -> Duration {
        match self.attempt {
            0 => Duration::ZERO,
            attempt => self.initial.saturating_mul(1 << (attempt - 1).min(20)).min(self.max),
        }
    }

    /// Starts again from the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// After a connection that `lasted` this long was lost: starts again
    /// from the first delay if it lasted longer than the next delay could
    /// be. One lost sooner flapped (a broker, or something in front of it,
    /// that accepts and then drops connections), and the delays keep
    /// growing: taking it again at once every time would spin.
    pub(crate) fn connection_lost(&mut self, lasted: Duration) {
        if lasted > self.ceiling() {
            self.reset();
        }
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
    fn a_connection_that_flapped_does_not_start_the_delays_again() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        // Lost after 50 ms, sooner than the next delay could be (100 ms).
        backoff.connection_lost(Duration::from_millis(50));
        assert!(backoff.next_delay() >= Duration::from_millis(50));
        // Lost after 150 ms, sooner than the next (200 ms): growing still.
        backoff.connection_lost(Duration::from_millis(150));
        assert!(backoff.next_delay() >= Duration::from_millis(100));
        // Lost after 500 ms, longer than the next (400 ms): it lasted.
        backoff.connection_lost(Duration::from_millis(500));
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        // At the cap, a connection that lasted longer than the cap lasted.
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.connection_lost(Duration::from_millis(999));
        assert!(backoff.next_delay() >= Duration::from_millis(500));
        backoff.connection_lost(Duration::from_millis(1001));
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
