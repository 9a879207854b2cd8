//! Time arithmetic that cannot overflow: a deadline is at most about thirty
//! years away, so `Duration::MAX`, the usual "no timeout", is simply "never"
//! here.

use std::time::Duration;

use tokio::time::Instant;

/// The furthest a deadline can be: about thirty years (tokio's own "far
/// future" is the same).
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The instant `duration` from now, or [`FAR_FUTURE`] from now when that is sooner.
pub(crate) fn after(duration: Duration) -> Instant {
    Instant::now() + duration.min(FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_do_not_overflow() {
        let far = after(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(86_400 * 365 * 29));
        assert!(after(Duration::from_secs(1)) < far);
    }
}
