//! What an SRE pages on for messaging: outbox backlog and age, consumer lag, handler failures,
//! dead letters.

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts};

#[derive(Clone)]
pub struct MessagingMetrics {
    pub outbox_backlog: IntGauge,
    pub outbox_oldest_age: Gauge,
    pub outbox_published: IntCounterVec,
    pub outbox_publish_failures: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub consumed: IntCounterVec,
    pub handler_failures: IntCounterVec,
    pub dead_letters: IntCounterVec,
}

impl MessagingMetrics {
    pub fn new(m: &platform_telemetry::Metrics) -> Result<MessagingMetrics, prometheus::Error> {
        let mm = MessagingMetrics {
            outbox_backlog: IntGauge::new("outbox_backlog", "Outbox rows not yet published")?,
            outbox_oldest_age: Gauge::new("outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")?,
            outbox_published: IntCounterVec::new(
                Opts::new("outbox_published_total", "Events published by the relay"),
                &["topic"],
            )?,
            outbox_publish_failures: IntCounterVec::new(
                Opts::new("outbox_publish_failures_total", "Relay batches that failed to publish"),
                &["topic"],
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new("kafka_consumer_lag", "Messages behind the partition end, per consumer"),
                &["consumer", "topic", "partition"],
            )?,
            consumed: IntCounterVec::new(
                Opts::new("kafka_consumed_total", "Messages consumed, by outcome (applied, duplicate, dead_lettered)"),
                &["consumer", "topic", "outcome"],
            )?,
            handler_failures: IntCounterVec::new(
                Opts::new("kafka_handler_failures_total", "Handler attempts that failed"),
                &["consumer", "topic", "kind"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new("kafka_dead_letters_total", "Messages sent to a dead-letter topic"),
                &["consumer", "topic"],
            )?,
        };
        m.registry.register(Box::new(mm.outbox_backlog.clone()))?;
        m.registry.register(Box::new(mm.outbox_oldest_age.clone()))?;
        m.registry.register(Box::new(mm.outbox_published.clone()))?;
        m.registry.register(Box::new(mm.outbox_publish_failures.clone()))?;
        m.registry.register(Box::new(mm.consumer_lag.clone()))?;
        m.registry.register(Box::new(mm.consumed.clone()))?;
        m.registry.register(Box::new(mm.handler_failures.clone()))?;
        m.registry.register(Box::new(mm.dead_letters.clone()))?;
        Ok(mm)
    }

    /// Starts the publish counters of `topics` at zero, so dashboards and alerts see the series
    /// before the first event (and the first failure).
    pub fn declare_published(&self, topics: &[String]) {
        for t in topics {
            self.outbox_published.with_label_values(&[t]).inc_by(0);
            self.outbox_publish_failures.with_label_values(&[t]).inc_by(0);
        }
    }

    /// Starts a consumer's counters at zero for each of its topics.
    pub fn declare_consumer(&self, consumer: &str, topics: &[&str]) {
        for t in topics {
            for outcome in ["applied", "duplicate", "dead_lettered"] {
                self.consumed.with_label_values(&[consumer, t, outcome]).inc_by(0);
            }
            for kind in ["permanent", "transient", "database"] {
                self.handler_failures.with_label_values(&[consumer, t, kind]).inc_by(0);
            }
            self.dead_letters.with_label_values(&[consumer, t]).inc_by(0);
        }
    }
}
