//! Publishes the outbox to Kafka.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _};
use platform_settings::KafkaSettings;
use platform_store::Pool;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{Mutex, Notify, watch};
use tracing::Instrument as _;

use crate::metrics::MessagingMetrics;
use crate::schema::outbox;

/// Advisory-lock key: one relay per database publishes at a time ("outbox" in ASCII). The relay
/// that holds it (a session lock on its own connection) is the database's relay until that
/// connection ends; the others try again at every wake-up and poll.
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
    /// The relay's own connection (taken out of the pool), once made.
    conn: Mutex<Option<Leader>>,
}

/// The relay's connection and whether it holds the relay lock on it.
struct Leader {
    conn: AsyncPgConnection,
    leads: bool,
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
            conn: Mutex::new(None),
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

    /// Publishes one batch (oldest first) and, if `mark_sent`, deletes its rows once the broker
    /// acknowledged every one of them; if any send failed, none is deleted and all are published
    /// again later. With `mark_sent = false` it behaves as a relay that crashed after publishing:
    /// the rows stay and will be published again (tests use this to prove the consumer's
    /// deduplication). Returns 0 without publishing while another replica's relay holds the lock.
    ///
    /// Two statements per batch on the relay's own connection, no transaction: a crash between
    /// the sends and the deletion republishes, which the consumers' inbox absorbs. The deletion
    /// does not wait for its WAL flush (`synchronous_commit = off` on this connection) for the
    /// same reason: a deletion lost in a database crash only republishes — at least once either
    /// way, one fsync fewer per batch.
    pub async fn publish_batch(&self, mark_sent: bool) -> Result<usize, RelayError> {
        let mut held = self.conn.lock().await;
        if held.is_none() {
            let pooled = platform_store::conn(&self.pool).await?;
            let mut conn = platform_store::PooledConn::take(pooled);
            conn.batch_execute("SET synchronous_commit = off").await?;
            *held = Some(Leader { conn, leads: false });
        }
        let Some(leader) = held.as_mut() else { return Ok(0) };
        let result = self.publish_as_leader(leader, mark_sent).await;
        if let Err(RelayError::Db(_)) = &result {
            // The connection may be gone, and the lock with it: start over with a new one.
            *held = None;
        }
        result
    }

    async fn publish_as_leader(&self, leader: &mut Leader, mark_sent: bool) -> Result<usize, RelayError> {
        let c = &mut leader.conn;
        if !leader.leads {
            leader.leads = diesel::select(pg_try_advisory_lock(RELAY_LOCK)).get_result(c).await?;
            if !leader.leads {
                return Ok(0);
            }
        }
        let rows: Vec<Row> = outbox::table
            .order(outbox::id)
            .limit(self.batch)
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
        let sends = rows.iter().map(|row| publish(&self.producer, &self.metrics, row));
        let results = futures::future::join_all(sends).await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(e);
        }
        if mark_sent {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            platform_store::Cached(diesel::delete(outbox::table.filter(outbox::id.eq_any(ids)))).execute(c).await?;
        }
        Ok(rows.len())
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
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
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
