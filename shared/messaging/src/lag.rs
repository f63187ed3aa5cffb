//! Consumer lag for every assigned partition, from the moment it is assigned.
//!
//! librdkafka's statistics report a partition's lag only once the consumer has fetched from it,
//! so a consumer stuck from the start, or one whose partitions never got a message, exported
//! nothing and its lag alert could never fire. Here the lag is measured the way
//! `kafka-consumer-groups.sh --describe` does: the group's committed offset against the
//! partition's high watermark, for every partition in the current assignment, refreshed
//! periodically (and at once after a rebalance) whether or not messages flow. Series of
//! partitions no longer assigned are removed, so a replica reports only what it owns.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::Notify;

use crate::metrics::MessagingMetrics;

/// How often a consumer's lag is measured by default.
pub const LAG_REFRESH: Duration = Duration::from_secs(5);

/// The longest one broker round trip of a measurement may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages of a partition the group has not committed: from the committed offset (or, with none
/// committed, from the low watermark, where `auto.offset.reset = earliest` starts) to the high
/// watermark. An offset below the low watermark (removed by retention) counts from the low one.
pub fn partition_lag(committed: Offset, low: i64, high: i64) -> i64 {
    let from = match committed {
        Offset::Offset(o) => o.max(low),
        _ => low,
    };
    (high - from).max(0)
}

/// The consumer's context: wakes the lag task after every rebalance, so a newly assigned
/// partition is reported at once and a revoked one disappears at once.
pub(crate) struct RebalanceNotify(pub(crate) Arc<Notify>);

impl ClientContext for RebalanceNotify {}

impl ConsumerContext for RebalanceNotify {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.0.notify_one();
    }
}

/// A partition of the assignment: (topic, partition).
type Partition = (String, i32);

/// One measurement: the assignment, and the lag of each partition whose offsets could be read.
struct Measurement {
    assigned: BTreeSet<Partition>,
    lags: Vec<(Partition, i64)>,
}

/// Reads the group's committed offsets and each partition's watermarks for `assignment`
/// through the probe (broker round trips: call it on a blocking thread).
fn measure(probe: &BaseConsumer, assignment: TopicPartitionList, name: &str) -> Result<Measurement, String> {
    let assigned: BTreeSet<Partition> =
        assignment.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
    if assigned.is_empty() {
        return Ok(Measurement { assigned, lags: Vec::new() });
    }
    let committed = probe.committed_offsets(assignment, BROKER_TIMEOUT).map_err(|e| e.to_string())?;
    let mut lags = Vec::with_capacity(assigned.len());
    for e in committed.elements() {
        match probe.fetch_watermarks(e.topic(), e.partition(), BROKER_TIMEOUT) {
            Ok((low, high)) => {
                lags.push(((e.topic().to_string(), e.partition()), partition_lag(e.offset(), low, high)))
            }
            // Keep the partition's last value rather than report a guess.
            Err(err) => tracing::debug!(consumer = name, topic = e.topic(), partition = e.partition(), error = %err,
                "watermarks unavailable"),
        }
    }
    Ok(Measurement { assigned, lags })
}

/// The lag series one consumer exports, kept in step with its assignment.
///
/// It holds the consumer only weakly and asks the brokers through a probe of its own (a client
/// of the same group that never joins it): the consumer is closed by its owner, never by this
/// task. (A consumer whose last reference went with this task, at a runtime's shutdown, closed
/// from there and hung in librdkafka's rebalance on close.)
pub(crate) struct LagReporter<C: ConsumerContext + 'static> {
    pub(crate) name: String,
    pub(crate) consumer: Weak<StreamConsumer<C>>,
    pub(crate) probe: Arc<BaseConsumer>,
    pub(crate) metrics: MessagingMetrics,
    pub(crate) every: Duration,
    pub(crate) rebalanced: Arc<Notify>,
}

/// The running measurement of one consumer; dropping it stops the measurement and removes the
/// consumer's series (a stopped consumer owns no partition).
pub(crate) struct LagTask {
    name: String,
    metrics: MessagingMetrics,
    exported: Arc<Mutex<BTreeSet<Partition>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LagTask {
    fn drop(&mut self) {
        self.task.abort();
        let exported = std::mem::take(&mut *self.exported.lock().unwrap_or_else(|e| e.into_inner()));
        for p in &exported {
            remove(&self.metrics, &self.name, p);
        }
    }
}

impl<C: ConsumerContext + 'static> LagReporter<C> {
    /// Measures at once, then every `every` and after each rebalance, until the returned task is
    /// dropped.
    pub(crate) fn start(self) -> LagTask {
        let exported = Arc::new(Mutex::new(BTreeSet::new()));
        let (name, metrics) = (self.name.clone(), self.metrics.clone());
        let task = tokio::spawn(self.run(exported.clone()));
        LagTask { name, metrics, exported, task }
    }

    async fn run(self, exported: Arc<Mutex<BTreeSet<Partition>>>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.rebalanced.notified() => {}
            }
            // The assignment is local state: read it and let the consumer go at once.
            let assignment = match self.consumer.upgrade().map(|c| c.assignment()) {
                Some(Ok(a)) => a,
                Some(Err(e)) => {
                    tracing::debug!(consumer = %self.name, error = %e, "assignment unavailable");
                    continue;
                }
                None => return, // the consumer is gone
            };
            let (probe, name) = (self.probe.clone(), self.name.clone());
            match tokio::task::spawn_blocking(move || measure(&probe, assignment, &name)).await {
                Ok(Ok(m)) => self.export(&mut exported.lock().unwrap_or_else(|e| e.into_inner()), m),
                Ok(Err(e)) => tracing::debug!(consumer = %self.name, error = %e, "lag not measured"),
                Err(e) => tracing::warn!(consumer = %self.name, error = %e, "lag measurement failed"),
            }
        }
    }

    /// Sets the gauge of every measured partition and removes the series of partitions no longer
    /// assigned; `exported` becomes the partitions now exported.
    fn export(&self, exported: &mut BTreeSet<Partition>, m: Measurement) {
        for ((topic, partition), lag) in &m.lags {
            self.metrics.consumer_lag.with_label_values(&[&self.name, topic, &partition.to_string()]).set(*lag);
        }
        for gone in exported.difference(&m.assigned) {
            remove(&self.metrics, &self.name, gone);
        }
        // A partition still assigned but not measured this time keeps its earlier series.
        exported.retain(|p| m.assigned.contains(p));
        exported.extend(m.lags.into_iter().map(|(p, _)| p));
    }
}

fn remove(metrics: &MessagingMetrics, name: &str, (topic, partition): &Partition) {
    let _ = metrics.consumer_lag.remove_label_values(&[name, topic, &partition.to_string()]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset_or_from_the_low_watermark_without_one() {
        assert_eq!(partition_lag(Offset::Invalid, 0, 0), 0, "an empty partition");
        assert_eq!(partition_lag(Offset::Invalid, 0, 1), 1, "one message, nothing committed");
        assert_eq!(partition_lag(Offset::Invalid, 40, 45), 5, "retention removed the first 40");
        assert_eq!(partition_lag(Offset::Offset(45), 40, 45), 0, "all committed");
        assert_eq!(partition_lag(Offset::Offset(42), 40, 45), 3);
        assert_eq!(partition_lag(Offset::Offset(10), 40, 45), 5, "committed offset removed by retention");
        assert_eq!(partition_lag(Offset::Offset(50), 40, 45), 0, "a watermark read before the commit");
    }
}
