//! Time arithmetic that cannot overflow: a deadline is at most about thirty
//! years away, so `Duration::MAX`, the usual "no timeout", is simply "never"
//! here.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The furthest a deadline can be: about thirty years (tokio's own "far
/// future" is the same).
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The instant `duration` from now, or [`FAR_FUTURE`] from now when that is sooner.
pub(crate) fn after(duration: Duration) -> Instant {
    Instant::now() + duration.min(FAR_FUTURE)
}

/// The wall-clock time `duration` from now, or [`FAR_FUTURE`] from now when
/// that is sooner.
pub(crate) fn system_after(duration: Duration) -> SystemTime {
    SystemTime::now()
        .checked_add(duration.min(FAR_FUTURE))
        .unwrap_or(SystemTime::UNIX_EPOCH + FAR_FUTURE)
}

/// The instant of a wall-clock deadline: when it comes on this process's
/// monotonic clock (now when it has passed).
pub(crate) fn instant_of(deadline: SystemTime) -> Instant {
    after(deadline.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The wall-clock time of an instant, for peers: a deadline travels as an
/// absolute time, since peers share wall clocks, not monotonic ones.
pub(crate) fn system_time_of(instant: Instant) -> SystemTime {
    let left = instant.saturating_duration_since(Instant::now());
    SystemTime::now().checked_add(left).unwrap_or_else(SystemTime::now)
}

/// A deadline as it travels: milliseconds since the Unix epoch.
/// Rounded up: a server never stops a handler before its caller gave up.
pub(crate) fn to_unix_millis(deadline: SystemTime) -> String {
    let since_epoch = deadline.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let millis = (since_epoch.as_secs().saturating_mul(1000))
        .saturating_add(u64::from(since_epoch.subsec_nanos().div_ceil(1_000_000)));
    millis.to_string()
}

/// A deadline read from a peer: milliseconds since the Unix epoch, digits
/// only, at most [`FAR_FUTURE`] from now (what a peer claims is bounded).
pub(crate) fn from_unix_millis(text: &str) -> Option<SystemTime> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: u64 = text.parse().ok()?;
    let deadline = SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(millis))?;
    let furthest = SystemTime::now().checked_add(FAR_FUTURE)?;
    Some(deadline.min(furthest))
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

    #[test]
    fn deadlines_travel_as_unix_millis() {
        let soon = SystemTime::now() + Duration::from_secs(5);
        let read = from_unix_millis(&to_unix_millis(soon)).unwrap();
        assert!(
            read.duration_since(soon).unwrap() < Duration::from_millis(1),
            "rounded up"
        );
        for bad in ["", "-1", "1e9", " 12", "0x10", "123456789012345678901"] {
            assert_eq!(from_unix_millis(bad), None, "{bad}");
        }
        let far = from_unix_millis(&u64::MAX.to_string()).unwrap();
        assert!(far <= SystemTime::now() + FAR_FUTURE);
        assert_eq!(from_unix_millis("0"), Some(SystemTime::UNIX_EPOCH));
    }
}
