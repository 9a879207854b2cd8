//! Reading Prometheus' text format in tests.

/// The value of the one series of `name` whose labels include every one of
/// `labels` (`key="value"`) in `metrics` (Prometheus' text format), or
/// `None`. Panics when several series match.
pub fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let found: Vec<f64> = metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches several series:\n{metrics}");
    found.first().copied()
}
