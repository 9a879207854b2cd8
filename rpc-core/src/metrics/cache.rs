//! The handles of per-method series, registered once and found again
//! without allocating.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};

use super::{CLIENT_DURATION, CLIENT_ERRORS, CLIENT_REQUESTS, SERVER_DURATION, SERVER_ERRORS, SERVER_REQUESTS};

/// The series of one topic, namespace and method.
pub(super) struct Series {
    labels: [(&'static str, String); 3],
    calls: Counter,
    casts: Counter,
    duration: Histogram,
    /// Whether casts are timed too (a server's are; a client's return at once).
    time_casts: bool,
    errors: Errors,
}

impl Series {
    fn new(names: [&'static str; 3], time_casts: bool, topic: &str, namespace: Option<&str>, method: &str) -> Series {
        let [requests, errors_name, duration] = names;
        let labels = [
            ("topic", topic.to_owned()),
            ("namespace", namespace.unwrap_or("").to_owned()),
            ("method", method.to_owned()),
        ];
        let with_kind = |kind: &'static str| {
            let [topic, namespace, method] = labels.clone();
            counter!(requests, &[topic, namespace, method, ("kind", kind.to_owned())])
        };
        Series {
            calls: with_kind("call"),
            casts: with_kind("cast"),
            duration: histogram!(duration, &labels),
            errors: Errors::new(errors_name, labels.to_vec()),
            labels,
            time_casts,
        }
    }

    pub(super) fn server(topic: &str, namespace: Option<&str>, method: &str) -> Series {
        Series::new(
            [SERVER_REQUESTS, SERVER_ERRORS, SERVER_DURATION],
            true,
            topic,
            namespace,
            method,
        )
    }

    pub(super) fn client(topic: &str, namespace: Option<&str>, method: &str) -> Series {
        Series::new(
            [CLIENT_REQUESTS, CLIENT_ERRORS, CLIENT_DURATION],
            false,
            topic,
            namespace,
            method,
        )
    }

    /// Records one request: its kind, its error's code if it failed, its duration.
    pub(super) fn record(&self, is_call: bool, error: Option<&'static str>, elapsed: Duration) {
        if is_call { &self.calls } else { &self.casts }.increment(1);
        if is_call || self.time_casts {
            self.duration.record(elapsed.as_secs_f64());
        }
        if let Some(code) = error {
            self.errors.increment(code);
        }
    }

    fn is(&self, topic: &str, namespace: Option<&str>, method: &str) -> bool {
        self.labels[0].1 == topic && self.labels[1].1 == namespace.unwrap_or("") && self.labels[2].1 == method
    }
}

/// A series' error counters by code, each registered at its first error.
pub(super) struct Errors {
    name: &'static str,
    /// The series' labels, to which each counter adds its `code`.
    labels: Vec<(&'static str, String)>,
    by_code: Mutex<Vec<(&'static str, Counter)>>,
}

impl Errors {
    pub(super) fn new(name: &'static str, labels: Vec<(&'static str, String)>) -> Errors {
        Errors {
            name,
            labels,
            by_code: Mutex::new(Vec::new()),
        }
    }

    /// Counts one error of `code`.
    pub(super) fn increment(&self, code: &'static str) {
        let mut errors = self.by_code.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let position = errors.iter().position(|(known, _)| *known == code);
        let index = position.unwrap_or_else(|| {
            let mut labels = self.labels.clone();
            labels.push(("code", code.to_owned()));
            errors.push((code, counter!(self.name, &labels)));
            errors.len() - 1
        });
        errors[index].1.increment(1);
    }
}

/// Series by (topic, namespace, method): a lookup hashes the names and
/// compares them, and allocates only the first time.
///
/// The hash is FNV-1a, not a keyed one: the names are the program's own (a
/// server labels only the methods its endpoints have), and SipHash cost
/// more than the rest of the lookup.
///
/// At most [`MOST_SERIES`] names are kept; the names after them share one
/// series labelled [`OTHER`](super::OTHER): a client forwarding names its
/// callers chose (a gateway's untyped calls) would grow them without bound.
#[derive(Default)]
pub(super) struct Cache {
    series: Mutex<Entries>,
}

/// How many (topic, namespace, method) series a cache keeps apart.
pub(super) const MOST_SERIES: usize = 2048;

#[derive(Default)]
struct Entries {
    // Keys are hashes already: not hashed again.
    by_names: HashMap<u64, Vec<Arc<Series>>, crate::ids::RandomKeys>,
    count: usize,
    /// The series of every name past [`MOST_SERIES`].
    others: Option<Arc<Series>>,
}

/// FNV-1a over the names, each followed by a byte no UTF-8 text holds.
fn fnv1a(names: [&str; 3]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in names {
        for byte in name.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

impl Cache {
    pub(super) fn get(
        &self,
        topic: &str,
        namespace: Option<&str>,
        method: &str,
        new: fn(&str, Option<&str>, &str) -> Series,
    ) -> Arc<Series> {
        let key = fnv1a([topic, namespace.unwrap_or("\u{0}"), method]);
        let mut entries = self.series.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = &mut *entries;
        if let Some(found) = entries
            .by_names
            .get(&key)
            .and_then(|bucket| bucket.iter().find(|series| series.is(topic, namespace, method)))
        {
            return Arc::clone(found);
        }
        if entries.count >= MOST_SERIES {
            let others = entries.others.get_or_insert_with(|| {
                tracing::warn!(
                    most = MOST_SERIES,
                    label = super::OTHER,
                    "too many methods to label apart: the next ones share one series"
                );
                Arc::new(new(super::OTHER, Some(super::OTHER), super::OTHER))
            });
            return Arc::clone(others);
        }
        let created = Arc::new(new(topic, namespace, method));
        entries.by_names.entry(key).or_default().push(Arc::clone(&created));
        entries.count += 1;
        created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_most_share_one_series() {
        let cache = Cache::default();
        let method = |n: usize| format!("made_up_{n}");
        for n in 0..MOST_SERIES {
            let series = cache.get("gateway", None, &method(n), Series::client);
            assert!(series.is("gateway", None, &method(n)));
        }
        let past = cache.get("gateway", None, &method(MOST_SERIES), Series::client);
        assert!(past.is(super::super::OTHER, Some(super::super::OTHER), super::super::OTHER));
        let again = cache.get("gateway", None, &method(MOST_SERIES + 1), Series::client);
        assert!(Arc::ptr_eq(&past, &again));
        // Names kept before keep their own.
        assert!(
            cache
                .get("gateway", None, &method(7), Series::client)
                .is("gateway", None, &method(7))
        );
        assert_eq!(cache.series.lock().unwrap().count, MOST_SERIES);
    }
}
