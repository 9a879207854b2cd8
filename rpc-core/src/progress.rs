//! What a caller knows of its call while it waits: the story a timeout
//! tells. Servers send progress notices on calls that run long (the
//! first after a quarter of the time the caller has left, at least 250 ms,
//! at most 30 s, then as often), so a fast call costs nothing, and a call
//! that times out says whether a server had it and whether it still did.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::transport::{Headers, headers};

/// The shortest interval between progress notices.
pub(crate) const MIN_NOTICE_INTERVAL: Duration = Duration::from_millis(250);

/// The longest interval between progress notices.
pub(crate) const MAX_NOTICE_INTERVAL: Duration = Duration::from_secs(30);

/// How often a server sends progress notices for a call with `left` before
/// its deadline: a quarter of it, within [250 ms, 30 s].
pub(crate) fn notice_interval(left: Duration) -> Duration {
    (left / 4).clamp(MIN_NOTICE_INTERVAL, MAX_NOTICE_INTERVAL)
}

/// How far a call got before its caller gave up, as far as the caller knows.
///
/// Carried by [`Error::Timeout`](crate::Error::Timeout): "nobody took it",
/// "the server is slow" and "the server died mid-call" read differently.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallProgress {
    /// The request was never published: it could not start going out
    /// before the deadline (the client's reply queue did not start, say).
    /// A transport that gives up publishing it says why instead
    /// ([`Error::Transport`](crate::Error::Transport): unreachable, blocking
    /// publishers, or slow to confirm).
    NotSent,
    /// Published and routed to a queue, but no server said it was working
    /// on it: nobody consumed it, every server was busy, or the call was
    /// shorter than a server's first progress notice (250 ms at least), or
    /// its server does not send them (oslo.messaging).
    Unclaimed,
    /// A server was working on it until the caller gave up.
    Working {
        /// The server's name.
        server: String,
        /// How long before the caller gave up it last heard from the server.
        last_heard: Duration,
    },
    /// A server took it, then went silent for over two notice intervals:
    /// it died, lost its connection, or is stuck where it cannot even send
    /// a notice.
    WentSilent {
        /// The server's name.
        server: String,
        /// How long the server had been silent when the caller gave up.
        silent_for: Duration,
    },
}

impl fmt::Display for CallProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallProgress::NotSent => f.write_str("it was never published: it could not start going out in time"),
            CallProgress::Unclaimed => f.write_str(
                "it was published, but no server reported working on it (nobody took it, or every server was busy)",
            ),
            CallProgress::Working { server, last_heard } => write!(
                f,
                "server `{server}` was still working on it (last heard {last_heard:.1?} before giving up): the server is slow"
            ),
            CallProgress::WentSilent { server, silent_for } => write!(
                f,
                "server `{server}` took it, then went silent for {silent_for:.1?}: it may have died mid-call"
            ),
        }
    }
}

/// The last progress notice a waiting call received.
#[derive(Clone, Debug)]
pub(crate) struct Heard {
    server: String,
    interval: Duration,
    at: Instant,
}

impl Heard {
    /// The notice a reply that is not the last carries, if it is one (a
    /// Rust server's notice names the server; oslo's heartbeats do not).
    pub(crate) fn from_headers(headers: &Headers) -> Option<Heard> {
        let server = headers.get(headers::SERVER)?;
        let interval = headers
            .get(headers::PROGRESS)
            .and_then(|millis| millis.parse::<u64>().ok())
            .map_or(MAX_NOTICE_INTERVAL, Duration::from_millis)
            .clamp(MIN_NOTICE_INTERVAL, MAX_NOTICE_INTERVAL);
        Some(Heard {
            server: server.to_owned(),
            interval,
            at: Instant::now(),
        })
    }

    /// The name of the server handling the call.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }
}

/// What a call that gave up now knew, from the last notice it heard.
pub(crate) fn story(heard: Option<Heard>) -> CallProgress {
    let Some(heard) = heard else {
        return CallProgress::Unclaimed;
    };
    let since = heard.at.elapsed();
    if since > heard.interval * 2 {
        CallProgress::WentSilent {
            server: heard.server,
            silent_for: since,
        }
    } else {
        CallProgress::Working {
            server: heard.server,
            last_heard: since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(notice_interval(Duration::from_secs(4)), Duration::from_secs(1));
        assert_eq!(notice_interval(Duration::from_millis(100)), MIN_NOTICE_INTERVAL);
        assert_eq!(notice_interval(Duration::from_secs(3600)), MAX_NOTICE_INTERVAL);
        assert_eq!(notice_interval(Duration::ZERO), MIN_NOTICE_INTERVAL);
    }

    #[tokio::test(start_paused = true)]
    async fn the_three_stories() {
        assert_eq!(story(None), CallProgress::Unclaimed);
        let mut headers = Headers::new();
        headers.insert(headers::SERVER, "s1");
        headers.insert(headers::PROGRESS, "500");
        let heard = Heard::from_headers(&headers).unwrap();
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(matches!(story(Some(heard.clone())), CallProgress::Working { server, .. } if server == "s1"));
        tokio::time::advance(Duration::from_millis(700)).await;
        let silent = story(Some(heard));
        assert!(
            matches!(&silent, CallProgress::WentSilent { server, .. } if server == "s1"),
            "{silent:?}"
        );
        assert!(silent.to_string().contains("may have died"), "{silent}");
        headers.insert(headers::PROGRESS, "garbage");
        assert!(Heard::from_headers(&headers).is_some());
        assert!(Heard::from_headers(&Headers::new()).is_none());
    }
}
