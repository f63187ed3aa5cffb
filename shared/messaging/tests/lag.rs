//! Consumer lag for every assigned partition from its assignment on, whether or not messages
//! flow, against a real PostgreSQL and a real Kafka-protocol broker (issue 20): what the lag alert
//! of charts/platform/rules/platform-rules.yaml needs to fire for a consumer stuck from the start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use futures::future::BoxFuture;
use platform_events::{Envelope, EventMeta, Message as _, catalog, topics};
use platform_messaging::{Consumer, Handler, HandlerError, MessagingMetrics};
use platform_settings::CommonSettings;
use platform_testkit as kit;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

static MIGRATIONS: &[diesel_migrations::EmbeddedMigrations] = &[platform_messaging::MIGRATIONS];

/// How often the consumers of these tests measure their lag.
const REFRESH: Duration = Duration::from_millis(200);
/// The consumer's name (its group and its `consumer` label).
const CONSUMER: &str = "lagging";
/// The test topics' partitions (kit::topic_prefix).
const PARTITIONS: [&str; 3] = ["0", "1", "2"];

/// Applies nothing until its gate opens: a consumer prevented from applying what it receives.
struct Gate(watch::Receiver<bool>);

impl Handler for Gate {
    fn handle<'a>(&'a self, _: &'a mut AsyncPgConnection, _: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let _ = self.0.clone().wait_for(|open| *open).await;
            Ok(())
        })
    }
}

/// One replica of the consumer, with a registry of its own, as each pod has.
struct Replica {
    registry: platform_telemetry::Metrics,
    topic: String,
}

impl Replica {
    fn start(s: &CommonSettings, gate: &watch::Sender<bool>, stop: &watch::Sender<bool>) -> Replica {
        let registry = platform_telemetry::Metrics::new("messaging-test").unwrap();
        let metrics = MessagingMetrics::new(&registry).unwrap();
        let topic = s.kafka.topic(topics::CATALOG_QUALITY);
        let pool = platform_store::pool(&s.database).unwrap();
        let consumer = Consumer::new(CONSUMER, &[&topic], pool, &s.kafka, Arc::new(Gate(gate.subscribe())), metrics)
            .unwrap()
            .with_lag_refresh(REFRESH);
        tokio::spawn(consumer.run(stop.subscribe()));
        Replica { registry, topic }
    }

    /// The exported lag of each partition (`None`: no series), as Prometheus scrapes it.
    fn lags(&self) -> Vec<Option<f64>> {
        let text = self.registry.render();
        PARTITIONS
            .iter()
            .map(|p| {
                kit::metric_value(
                    &text,
                    "kafka_consumer_lag",
                    &[("consumer", CONSUMER), ("topic", &self.topic), ("partition", p)],
                )
            })
            .collect()
    }

    /// Waits until the exported lags are `want` (per partition), or fails naming `what`.
    async fn wait_for(&self, what: &str, want: [Option<f64>; 3]) {
        kit::eventually(what, Duration::from_secs(30), || async { (self.lags() == want).then_some(()) }).await
    }

    /// What the lag alert's expression computes for this consumer and topic:
    /// `sum by (service, consumer, topic) (max by (…, partition) (kafka_consumer_lag))`.
    fn alert_value(&self) -> f64 {
        self.lags().into_iter().flatten().sum()
    }
}

/// The threshold of the lag alert, read from the rule the chart ships, so the test follows it.
fn lag_alert_threshold() -> f64 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../charts/platform/rules/platform-rules.yaml");
    let rules = std::fs::read_to_string(path).unwrap();
    let rule = rules.split("- alert: ").find(|r| r.starts_with("PlatformKafkaConsumerLagHigh")).expect("the lag alert");
    let expr = rule.split("\n        for:").next().unwrap();
    assert!(
        expr.contains("sum by (service, consumer, topic)") && expr.contains("kafka_consumer_lag"),
        "the test computes the alert as a sum per consumer and topic of kafka_consumer_lag; the rule now says {expr}"
    );
    expr.rsplit_once('>').expect("a threshold").1.trim().parse().expect("a number")
}

async fn setup() -> CommonSettings {
    let db = kit::database("messaging", MIGRATIONS).await;
    kit::settings(&db, &[])
}

fn event(n: usize) -> Vec<u8> {
    let id = format!("o-{n}");
    let payload = catalog::ObjectionEvent { objection_id: id.clone(), reason: "late".into(), ..Default::default() };
    let meta = EventMeta {
        event_type: "catalog.quality.filed".into(),
        aggregate_id: id,
        aggregate_version: 1,
        producer: "test".into(),
        jurisdiction: "610000".into(),
    };
    Envelope::wrap(meta, &payload).encode_to_vec()
}

/// Produces `n` events to the replica's topic at once, spread over its partitions by key.
async fn produce(s: &CommonSettings, topic: &str, n: usize) {
    let producer: FutureProducer = platform_messaging::client_config(&s.kafka).set("linger.ms", "5").create().unwrap();
    let events: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("k-{i}"), event(i))).collect();
    let sends = events
        .iter()
        .map(|(key, bytes)| producer.send(FutureRecord::to(topic).key(key).payload(bytes), Duration::from_secs(10)));
    for sent in futures::future::join_all(sends).await {
        sent.map_err(|(e, _)| e).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_with_assigned_partitions_and_no_traffic_exports_lag_zero_for_each() {
    let s = setup().await;
    let (gate, _) = watch::channel(true);
    let (stop, _) = watch::channel(false);
    let r = Replica::start(&s, &gate, &stop);
    r.wait_for("lag 0 on every partition", [Some(0.0); 3]).await;
    // The consumer stops: it owns no partition any more, and reports none.
    stop.send(true).unwrap();
    r.wait_for("no lag series after the stop", [None; 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_consumer_cannot_apply_shows_as_lag_and_enough_of_them_fire_the_lag_alert() {
    let s = setup().await;
    let threshold = lag_alert_threshold();
    let (gate, _) = watch::channel(false);
    let (stop, _) = watch::channel(false);
    let r = Replica::start(&s, &gate, &stop);
    r.wait_for("lag 0 before any message", [Some(0.0); 3]).await;

    // One message, held by the handler: never committed, so its partition stays one behind.
    let produced = Instant::now();
    produce(&s, &r.topic, 1).await;
    kit::eventually("lag 1", Duration::from_secs(10), || async { (r.alert_value() == 1.0).then_some(()) }).await;
    // Within one refresh period plus the measurement's broker round trips (generous for a busy CI).
    let seen_after = produced.elapsed();
    assert!(seen_after < REFRESH * 10, "lag 1 showed after {seen_after:?}, refresh period {REFRESH:?}");
    assert!(r.alert_value() <= threshold, "one message behind does not fire the alert (threshold {threshold})");

    // Enough further messages to pass the alert's threshold: its expression turns true.
    let more = threshold as usize;
    produce(&s, &r.topic, more).await;
    let behind = kit::eventually("the lag alert's condition", Duration::from_secs(20), || async {
        let v = r.alert_value();
        (v > threshold).then_some(v)
    })
    .await;
    assert_eq!(behind, (more + 1) as f64, "every produced message counts, none more");

    // The handler is released: everything is applied, committed, and the lag falls back to 0.
    gate.send(true).unwrap();
    r.wait_for("lag 0 after catching up", [Some(0.0); 3]).await;
    stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_takes_partitions_and_the_first_stops_reporting_the_revoked_ones() {
    let s = setup().await;
    let (gate, _) = watch::channel(true);
    let (stop, _) = watch::channel(false);
    let first = Replica::start(&s, &gate, &stop);
    first.wait_for("the first replica reports all 3 partitions", [Some(0.0); 3]).await;

    let second = Replica::start(&s, &gate, &stop);
    // After the rebalance each partition is reported by exactly one replica.
    kit::eventually("the partitions split between the replicas", Duration::from_secs(40), || async {
        let split = first.lags().iter().zip(second.lags()).all(|(a, b)| a.is_some() != b.is_some());
        let both = first.lags().iter().any(Option::is_some) && second.lags().iter().any(Option::is_some);
        (split && both).then_some(())
    })
    .await;
    stop.send(true).unwrap();
}
