//! The series of notifiers and notification listeners.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::cache::Errors;
use super::{
    LISTENER_DURATION, LISTENER_FAILURES, LISTENER_IN_FLIGHT, LISTENER_NOTIFICATIONS, NOTIFIER_ERRORS,
    NOTIFIER_NOTIFICATIONS, Settled, UNKNOWN,
};
use crate::notify::Priority;

/// A listener's series for one priority.
pub(super) struct PrioritySeries {
    /// By [`Settled`]: handled, requeued, rejected, duplicate.
    settled: [Counter; 4],
    failed: Counter,
    duration: Histogram,
}

impl PrioritySeries {
    fn new(topic: &str, priority: &'static str) -> PrioritySeries {
        let labels = [("topic", topic.to_owned()), ("priority", priority.to_owned())];
        PrioritySeries {
            settled: Settled::ALL.map(|settled| {
                let [topic, priority] = labels.clone();
                counter!(
                    LISTENER_NOTIFICATIONS,
                    &[topic, priority, ("result", settled.as_str().to_owned())]
                )
            }),
            failed: counter!(LISTENER_FAILURES, &labels),
            duration: histogram!(LISTENER_DURATION, &labels),
        }
    }
}

/// A listener's series: those of the priorities its endpoints handle
/// registered when it is built, the others at their first notification (a
/// pool's queue is bound with the priorities of every listener in the
/// pool, so a listener may get some its endpoints do not handle).
pub(super) struct ListenerSeries {
    topic: String,
    pub(super) in_flight: Gauge,
    /// Messages rejected before their priority was known.
    unreadable: Counter,
    /// Deliveries left to the broker, unread (their connection was lost).
    pub(super) left: Counter,
    /// By priority, in [`Priority::ALL`]'s order.
    priorities: [OnceLock<PrioritySeries>; 7],
}

impl ListenerSeries {
    pub(super) fn new(topic: &str, handled: &[Priority]) -> ListenerSeries {
        ListenerSeries {
            topic: topic.to_owned(),
            in_flight: gauge!(LISTENER_IN_FLIGHT, "topic" => topic.to_owned()),
            unreadable: counter!(
                LISTENER_NOTIFICATIONS,
                "topic" => topic.to_owned(),
                "priority" => UNKNOWN,
                "result" => Settled::Rejected.as_str()
            ),
            left: counter!(
                LISTENER_NOTIFICATIONS,
                "topic" => topic.to_owned(),
                "priority" => UNKNOWN,
                "result" => "left"
            ),
            priorities: Priority::ALL.map(|priority| {
                let series = OnceLock::new();
                if handled.contains(&priority) {
                    let _ = series.set(PrioritySeries::new(topic, priority.as_str()));
                }
                series
            }),
        }
    }

    fn of(&self, priority: Priority) -> &PrioritySeries {
        self.priorities[priority as usize].get_or_init(|| PrioritySeries::new(&self.topic, priority.as_str()))
    }

    pub(super) fn settled(&self, priority: Option<Priority>, settled: Settled, count: u64) {
        match priority {
            Some(priority) => self.of(priority).settled[settled as usize].increment(count),
            None => self.unreadable.increment(count),
        }
    }

    pub(super) fn failed(&self, priority: Priority) {
        self.of(priority).failed.increment(1);
    }

    pub(super) fn handled_in(&self, priority: Priority, elapsed: Duration) {
        self.of(priority).duration.record(elapsed.as_secs_f64());
    }
}

/// A notifier's series for one topic and priority, registered at its first
/// notification.
pub(super) struct NotifierSeries {
    sent: Counter,
    errors: Errors,
}

impl NotifierSeries {
    fn new(topic: &str, priority: Priority) -> NotifierSeries {
        let labels = vec![("topic", topic.to_owned()), ("priority", priority.as_str().to_owned())];
        NotifierSeries {
            sent: counter!(NOTIFIER_NOTIFICATIONS, &labels),
            errors: Errors::new(NOTIFIER_ERRORS, labels),
        }
    }

    pub(super) fn record(
        slot: &OnceLock<NotifierSeries>,
        topic: &str,
        priority: Priority,
        error: Option<&'static str>,
    ) {
        let series = slot.get_or_init(|| NotifierSeries::new(topic, priority));
        series.sent.increment(1);
        if let Some(code) = error {
            series.errors.increment(code);
        }
    }
}
