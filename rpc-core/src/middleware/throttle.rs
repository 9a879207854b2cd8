//! Refusals logged at most once a second: a flood is when layers refuse
//! most, and a line per refused request would turn it into one of logs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a layer logs its refusals at most.
const EVERY: Duration = Duration::from_secs(1);

/// Counts refusals, and lets one be logged at most every second, with how
/// many went unlogged since the last.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    /// `Some(n)` when this refusal is to be logged, `n` the refusals not
    /// logged since the last one; `None` when it is only counted.
    pub(super) fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if state.last.is_some_and(|last| now.duration_since(last) < EVERY) {
            state.unlogged += 1;
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.unlogged))
    }
}

/// At most `limit` characters of a field a peer wrote, for a log line.
pub(super) fn bounded(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refusal_a_second_is_logged_with_the_count_of_the_rest() {
        let throttle = Throttle::default();
        assert_eq!(throttle.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.admit(), None);
        }
        throttle.state.lock().unwrap().last = Some(Instant::now() - EVERY);
        assert_eq!(throttle.admit(), Some(1000));
    }

    #[test]
    fn fields_are_cut_on_a_character() {
        assert_eq!(bounded("héllo", 2), "hé");
        assert_eq!(bounded("hi", 10), "hi");
    }
}
