//! Publishes the outbox to Kafka.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _};
use platform_settings::KafkaSettings;
use platform_store::Pool;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use tokio::sync::{Mutex, Notify, watch};
use tracing::Instrument as _;

use crate::metrics::MessagingMetrics;
use crate::schema::{outbox, outbox_published, relay_cluster};
use diesel::sql_types::{Array, BigInt, Integer, Text};

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
    /// How long published events are kept for a broker that loses them (`kafka.keep_published_s`;
    /// zero deletes them once acknowledged).
    keep: Duration,
    /// Set when the relay starts leading and every [`CLUSTER_CHECK`]: compare the brokers with
    /// what they acknowledged before the next batch.
    check_cluster: AtomicBool,
}

/// How often a relay that keeps published events checks that the brokers still hold them.
const CLUSTER_CHECK: Duration = Duration::from_secs(10);

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
            keep: Duration::from_secs(kafka.keep_published_s),
            check_cluster: AtomicBool::new(true),
        })
    }

    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Runs until `stop` turns true: publishes whenever woken, and every poll period.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_stats = Instant::now() - Duration::from_secs(60);
        let mut last_check = Instant::now();
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
                if !self.keep.is_zero() {
                    let _ = self.purge_kept().await;
                    if last_check.elapsed() >= CLUSTER_CHECK {
                        self.check_cluster.store(true, Ordering::Relaxed);
                        last_check = Instant::now();
                    }
                }
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
            self.check_cluster.store(true, Ordering::Relaxed);
        }
        if !self.keep.is_zero() && self.check_cluster.swap(false, Ordering::Relaxed) {
            // Before anything new: what the broker lost goes out first, in its order.
            if let Err(e) = self.republish_if_lost(c).await {
                self.check_cluster.store(true, Ordering::Relaxed);
                return Err(e);
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
        let acked = self.publish_all(&rows).await?;
        if mark_sent {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            if self.keep.is_zero() {
                platform_store::Cached(diesel::delete(outbox::table.filter(outbox::id.eq_any(ids)))).execute(c).await?;
            } else {
                let (partitions, offsets): (Vec<i32>, Vec<i64>) = acked.into_iter().unzip();
                platform_store::Cached(
                    diesel::sql_query(KEEP_PUBLISHED)
                        .bind::<Array<BigInt>, _>(ids)
                        .bind::<Array<Integer>, _>(partitions)
                        .bind::<Array<BigInt>, _>(offsets),
                )
                .execute(c)
                .await?;
            }
        }
        Ok(rows.len())
    }

    /// Sends every row and waits for every acknowledgement: where each landed, in row order.
    async fn publish_all(&self, rows: &[Row]) -> Result<Vec<(i32, i64)>, RelayError> {
        let sends = rows.iter().map(|row| publish(&self.producer, &self.metrics, row));
        futures::future::join_all(sends).await.into_iter().collect()
    }

    /// The cluster the producer is connected to, as the brokers name it.
    async fn cluster_id(&self) -> Result<String, RelayError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_cluster_id(Duration::from_secs(5)))
            .await
            .map_err(|e| RelayError::Kafka(e.to_string()))?
            .ok_or_else(|| RelayError::Kafka("the brokers did not name their cluster".into()))
    }

    /// Whether the brokers hold everything acknowledged to this database's relay: the same
    /// cluster as last time, and every partition's high watermark past the last kept offset.
    async fn broker_lost_events(&self, c: &mut AsyncPgConnection, cluster: &str) -> Result<bool, RelayError> {
        let known: Option<String> = relay_cluster::table.select(relay_cluster::cluster_id).first(c).await.optional()?;
        let Some(known) = known else { return Ok(false) };
        if known != cluster {
            tracing::warn!(known = %known, now = %cluster, "the Kafka cluster changed; republishing kept events");
            return Ok(true);
        }
        let last: Vec<(String, i32, Option<i64>)> = outbox_published::table
            .group_by((outbox_published::topic, outbox_published::kafka_partition))
            .select((
                outbox_published::topic,
                outbox_published::kafka_partition,
                diesel::dsl::max(outbox_published::kafka_offset),
            ))
            .load(c)
            .await?;
        let producer = self.producer.clone();
        let short = tokio::task::spawn_blocking(move || {
            last.into_iter().find_map(|(topic, partition, offset)| {
                let (_, high) = producer.client().fetch_watermarks(&topic, partition, Duration::from_secs(5)).ok()?;
                (high <= offset.unwrap_or(-1)).then_some((topic, partition, high))
            })
        })
        .await
        .map_err(|e| RelayError::Kafka(e.to_string()))?;
        if let Some((topic, partition, high)) = &short {
            tracing::warn!(topic, partition, high, "a partition lacks acknowledged events; republishing kept events");
        }
        Ok(short.is_some())
    }

    /// Publishes the kept events again, oldest first, if the brokers lost any; then records the
    /// cluster. The inboxes absorb what the brokers did still hold.
    async fn republish_if_lost(&self, c: &mut AsyncPgConnection) -> Result<usize, RelayError> {
        let cluster = self.cluster_id().await?;
        let mut total = 0;
        if self.broker_lost_events(c, &cluster).await? {
            let mut after = 0_i64;
            loop {
                let rows: Vec<Row> = outbox_published::table
                    .filter(outbox_published::id.gt(after))
                    .order(outbox_published::id)
                    .limit(self.batch)
                    .select((
                        outbox_published::id,
                        outbox_published::event_id,
                        outbox_published::topic,
                        outbox_published::message_key,
                        outbox_published::event_type,
                        outbox_published::payload,
                        outbox_published::trace_headers,
                    ))
                    .load(c)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.id;
                let acked = self.publish_all(&rows).await?;
                let (partitions, offsets): (Vec<i32>, Vec<i64>) = acked.into_iter().unzip();
                diesel::sql_query(
                    "UPDATE outbox_published p SET kafka_partition = a.part, kafka_offset = a.off \
                     FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS a(id, part, off) WHERE p.id = a.id",
                )
                .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                .bind::<Array<Integer>, _>(partitions)
                .bind::<Array<BigInt>, _>(offsets)
                .execute(c)
                .await?;
                total += rows.len();
            }
            tracing::warn!(events = total, "republished the kept events the brokers had lost");
        }
        diesel::sql_query(
            "INSERT INTO relay_cluster (cluster_id) VALUES ($1) \
             ON CONFLICT (singleton) DO UPDATE SET cluster_id = excluded.cluster_id, seen_at = now()",
        )
        .bind::<Text, _>(cluster)
        .execute(c)
        .await?;
        Ok(total)
    }

    /// Forgets kept events older than the window.
    async fn purge_kept(&self) -> Result<(), RelayError> {
        let mut conn = platform_store::conn(&self.pool).await?;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(self.keep).unwrap_or(chrono::Duration::MAX);
        diesel::delete(outbox_published::table.filter(outbox_published::published_at.lt(cutoff)))
            .execute(&mut *conn)
            .await?;
        Ok(())
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

/// Moves published rows to `outbox_published` with where the broker put each (one statement).
const KEEP_PUBLISHED: &str = "WITH sent AS (DELETE FROM outbox WHERE id = ANY($1) RETURNING *) \
     INSERT INTO outbox_published (id, event_id, topic, message_key, event_type, payload, trace_headers, created_at, \
     kafka_partition, kafka_offset) \
     SELECT s.id, s.event_id, s.topic, s.message_key, s.event_type, s.payload, s.trace_headers, s.created_at, a.part, a.off \
     FROM sent s JOIN unnest($1::bigint[], $2::int[], $3::bigint[]) AS a(id, part, off) ON a.id = s.id";

diesel::define_sql_function! {
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// Publishes one row in a span that continues the trace of the request that wrote it; returns
/// the partition and offset the broker acknowledged.
async fn publish(producer: &FutureProducer, metrics: &MessagingMetrics, row: &Row) -> Result<(i32, i64), RelayError> {
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
            Ok(delivery) => {
                metrics.outbox_published.with_label_values(&[&row.topic]).inc();
                Ok((delivery.partition, delivery.offset))
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
