//! Publishes the outbox to Kafka.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _};
use platform_settings::KafkaSettings;
use platform_store::Pool;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{Notify, watch};
use tracing::Instrument as _;

use crate::metrics::MessagingMetrics;
use crate::schema::outbox;

/// Advisory-lock key: one relay per database publishes at a time ("outbox" in ASCII).
const RELAY_LOCK: i64 = 0x6f75_7462_6f78;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("pool: {0}")]
    Pool(#[from] platform_store::StoreError),
    #[error("kafka: {0}")]
    Kafka(String),
}

#[derive(Queryable)]
struct Row {
    id: i64,
    event_id: uuid::Uuid,
    topic: String,
    message_key: String,
    event_type: String,
    payload: Vec<u8>,
    trace_headers: serde_json::Value,
}

/// Wakes the relay after a commit, so events leave within milliseconds rather than a poll period.
#[derive(Clone, Default)]
pub struct RelayHandle {
    notify: Arc<Notify>,
}

impl RelayHandle {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

pub struct Relay {
    pool: Pool,
    producer: FutureProducer,
    metrics: MessagingMetrics,
    handle: RelayHandle,
    batch: i64,
    poll: Duration,
    /// How long the relay waits after a wake-up before draining.
    linger: Duration,
}

impl Relay {
    pub fn new(pool: Pool, kafka: &KafkaSettings, metrics: MessagingMetrics) -> Result<Relay, RelayError> {
        let producer = crate::client_config(kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", kafka.linger_ms.to_string())
            .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
            .create::<FutureProducer>()
            .map_err(|e| RelayError::Kafka(e.to_string()))?;
        Ok(Relay {
            pool,
            producer,
            metrics,
            handle: RelayHandle::default(),
            batch: 500,
            poll: Duration::from_millis(250),
            linger: Duration::from_millis(3),
        })
    }

    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Runs until `stop` turns true: publishes whenever woken, and every poll period.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_stats = Instant::now() - Duration::from_secs(60);
        loop {
            match self.drain().await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            if last_stats.elapsed() >= Duration::from_secs(1) {
                let _ = self.update_backlog().await;
                last_stats = Instant::now();
            }
            tokio::select! {
                _ = self.handle.notify.notified() => {
                    // Let the commits of a burst gather into one batch: one relay transaction
                    // and one produce round for many events instead of one each.
                    tokio::time::sleep(self.linger).await;
                }
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                let _ = self.drain().await;
                return;
            }
        }
    }

    /// Publishes batches until the outbox is empty; returns how many events were published.
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut total = 0;
        loop {
            let n = self.publish_batch(true).await?;
            total += n;
            if n < self.batch as usize {
                return Ok(total);
            }
        }
    }

    /// Publishes one batch in a transaction and, if `mark_sent`, deletes its rows in that
    /// transaction: they commit as gone only once the broker acknowledged every one of them (a
    /// failed send rolls the deletion back). With `mark_sent = false` it behaves as a relay that
    /// crashed after publishing: the rows stay and will be published again (tests use this to
    /// prove the consumer's deduplication).
    ///
    /// The deletion's commit is not waited for on disk (`synchronous_commit = off`): if the
    /// database crashed before flushing it, the rows would come back and be published again,
    /// which the consumers' inbox already absorbs — at least once either way, one fsync fewer
    /// per batch.
    pub async fn publish_batch(&self, mark_sent: bool) -> Result<usize, RelayError> {
        let mut pooled = platform_store::conn(&self.pool).await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let batch = self.batch;
        let producer = &self.producer;
        let metrics = &self.metrics;
        let published = conn
            .transaction::<_, RelayError, _>(async move |c: &mut AsyncPgConnection| {
                let locked: bool = diesel::select(pg_try_advisory_xact_lock(RELAY_LOCK)).get_result(c).await?;
                if !locked {
                    return Ok(0);
                }
                let rows: Vec<Row> = outbox::table
                    .order(outbox::id)
                    .limit(batch)
                    .select((
                        outbox::id,
                        outbox::event_id,
                        outbox::topic,
                        outbox::message_key,
                        outbox::event_type,
                        outbox::payload,
                        outbox::trace_headers,
                    ))
                    .load(c)
                    .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let sends = rows.iter().map(|row| publish(producer, metrics, row));
                let results = futures::future::join_all(sends).await;
                if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
                    return Err(e);
                }
                if mark_sent {
                    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                    diesel::delete(outbox::table.filter(outbox::id.eq_any(ids))).execute(c).await?;
                    c.batch_execute("SET LOCAL synchronous_commit = off").await?;
                }
                Ok(rows.len())
            })
            .await?;
        Ok(published)
    }

    async fn update_backlog(&self) -> Result<(), RelayError> {
        let mut conn = platform_store::conn(&self.pool).await?;
        let (count, oldest): (i64, Option<chrono::DateTime<chrono::Utc>>) = outbox::table
            .select((diesel::dsl::count_star(), diesel::dsl::min(outbox::created_at)))
            .get_result(&mut *conn)
            .await?;
        self.metrics.outbox_backlog.set(count);
        let age = oldest.map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
        self.metrics.outbox_oldest_age.set(age);
        Ok(())
    }
}

diesel::define_sql_function! {
    fn pg_try_advisory_xact_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// Publishes one row in a span that continues the trace of the request that wrote it.
async fn publish(producer: &FutureProducer, metrics: &MessagingMetrics, row: &Row) -> Result<(), RelayError> {
    let span = tracing::info_span!(
        "outbox.publish",
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.destination.name = %row.topic,
        messaging.message.id = %row.event_id,
        event_type = %row.event_type,
    );
    crate::trace::set_parent_from(&span, &crate::trace::JsonExtractor(&row.trace_headers));
    let trace_headers = crate::trace::context_headers(&span);
    async {
        let event_id = row.event_id.to_string();
        let headers = OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: "event_id", value: Some(event_id.as_bytes()) })
            .insert(rdkafka::message::Header { key: "event_type", value: Some(row.event_type.as_bytes()) });
        let headers = crate::trace::add_headers(headers, &trace_headers);
        let record = FutureRecord::to(&row.topic).key(&row.message_key).payload(&row.payload).headers(headers);
        match producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => {
                metrics.outbox_published.with_label_values(&[&row.topic]).inc();
                Ok(())
            }
            Err((e, _)) => {
                metrics.outbox_publish_failures.with_label_values(&[&row.topic]).inc();
                Err(RelayError::Kafka(e.to_string()))
            }
        }
    }
    .instrument(span.clone())
    .await
}
