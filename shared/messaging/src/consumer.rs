//! Consumers that apply each event exactly once and never stall a partition.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use futures::future::BoxFuture;
use platform_events::Envelope;
use platform_settings::KafkaSettings;
use platform_store::Pool;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::lag::{LAG_REFRESH, LagReporter, RebalanceNotify};
use crate::metrics::MessagingMetrics;
use crate::schema::inbox;

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be applied (invalid content, a rule refuses it): dead-letter it now.
    #[error("{0}")]
    Permanent(String),
    /// It may work later (a conflict, a timeout): retried a few times, then dead-lettered.
    #[error("{0}")]
    Transient(String),
}

/// A payload that does not decode as the handler's type never will: dead-letter it.
impl From<platform_events::EnvelopeError> for HandlerError {
    fn from(e: platform_events::EnvelopeError) -> Self {
        HandlerError::Permanent(e.to_string())
    }
}

impl From<diesel::result::Error> for HandlerError {
    fn from(e: diesel::result::Error) -> Self {
        HandlerError::Transient(e.to_string())
    }
}

/// Applies one event inside the consumer's transaction (the inbox row is in the same one).
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        envelope: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// How long an applied event's id is remembered by default: longer than the business topics'
/// retention (30 days, k8s/kafka-topics.yaml), so even a consumer group reset to the earliest
/// offset finds every event it already applied. Consumers of the 186-day audit and filing topics
/// set their own with [`Consumer::with_inbox_retention`].
pub const INBOX_RETENTION: Duration = Duration::from_secs(31 * 24 * 3600);

/// Most messages applied in one transaction.
pub const MAX_BATCH: usize = 256;

/// The span of one message, a child of the producer's span carried in its headers.
fn message_span(msg: &BorrowedMessage<'_>, consumer: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.destination.name = %msg.topic(),
        messaging.kafka.partition = msg.partition(),
        messaging.kafka.offset = msg.offset(),
        messaging.consumer.group.name = %consumer,
        messaging.message.id = tracing::field::Empty,
    );
    crate::trace::set_parent_from(&span, &crate::trace::KafkaExtractor(msg.headers()));
    span
}

/// The inbox row, then the handler's effect, in the caller's transaction.
async fn apply_in(
    c: &mut AsyncPgConnection,
    consumer: &str,
    handler: &dyn Handler,
    msg: &BorrowedMessage<'_>,
    env: &Envelope,
) -> Result<Outcome, TxError> {
    let event_id = env.event_uuid().map_err(|e| TxError::Handler(HandlerError::Permanent(e.to_string())))?;
    if inbox_insert_batch(c, consumer, std::slice::from_ref(msg), &[event_id]).await?.is_empty() {
        return Ok(Outcome::Duplicate);
    }
    handler.handle(c, env).await.map_err(TxError::Handler)?;
    Ok(Outcome::Applied)
}

/// The inbox rows of a batch (or of one message) in one statement (arrays unnested; its text is fixed, so it is
/// prepared once per connection); returns the event ids it inserted, i.e. those not applied
/// before.
async fn inbox_insert_batch(
    c: &mut AsyncPgConnection,
    consumer: &str,
    msgs: &[BorrowedMessage<'_>],
    ids: &[uuid::Uuid],
) -> Result<std::collections::HashSet<uuid::Uuid>, TxError> {
    use diesel::sql_types::{Array, BigInt, Integer, Text, Uuid};
    #[derive(diesel::QueryableByName)]
    struct Inserted {
        #[diesel(sql_type = Uuid)]
        event_id: uuid::Uuid,
    }
    let topics: Vec<&str> = msgs.iter().map(|m| m.topic()).collect();
    let partitions: Vec<i32> = msgs.iter().map(|m| m.partition()).collect();
    let offsets: Vec<i64> = msgs.iter().map(|m| m.offset()).collect();
    let inserted: Vec<Inserted> = platform_store::Cached(
        diesel::sql_query(
            "INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset) \
             SELECT $1, e, t, p, o FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[]) AS u(e, t, p, o) \
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind::<Text, _>(consumer)
        .bind::<Array<Uuid>, _>(ids.to_vec())
        .bind::<Array<Text>, _>(topics)
        .bind::<Array<Integer>, _>(partitions)
        .bind::<Array<BigInt>, _>(offsets),
    )
    .load(c)
    .await?;
    Ok(inserted.into_iter().map(|r| r.event_id).collect())
}

/// A named consumer of some topics, in its own consumer group.
pub struct Consumer {
    name: String,
    pool: Pool,
    consumer: Arc<StreamConsumer<RebalanceNotify>>,
    /// The lag measurement's own client of the group (see [`crate::lag`]).
    lag_probe: Arc<BaseConsumer>,
    rebalanced: Arc<tokio::sync::Notify>,
    lag_refresh: Duration,
    dlq: FutureProducer,
    handler: Arc<dyn Handler>,
    metrics: MessagingMetrics,
    max_attempts: u32,
    inbox_retention: Duration,
}

enum Outcome {
    Applied,
    Duplicate,
}

enum TxError {
    Db(diesel::result::Error),
    Handler(HandlerError),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl Consumer {
    /// `name` identifies the consumer in the inbox, metrics and its group id
    /// (`<group_prefix>.<name>`).
    pub fn new(
        name: &str,
        topics: &[&str],
        pool: Pool,
        kafka: &KafkaSettings,
        handler: Arc<dyn Handler>,
        metrics: MessagingMetrics,
    ) -> Result<Consumer, String> {
        let rebalanced = Arc::new(tokio::sync::Notify::new());
        let consumer: StreamConsumer<RebalanceNotify> = crate::client_config(kafka)
            .set("group.id", format!("{}.{}", kafka.group_prefix, name))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", "10000")
            .create_with_context(RebalanceNotify(rebalanced.clone()))
            .map_err(|e| format!("consumer {name}: {e}"))?;
        consumer.subscribe(topics).map_err(|e| format!("consumer {name}: {e}"))?;
        // Lag is read through a client of the group that never joins it (see crate::lag).
        let lag_probe: BaseConsumer = crate::client_config(kafka)
            .set("group.id", format!("{}.{}", kafka.group_prefix, name))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("lag probe {name}: {e}"))?;
        let dlq = crate::client_config(kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .create::<FutureProducer>()
            .map_err(|e| format!("dead-letter producer {name}: {e}"))?;
        metrics.declare_consumer(name, topics);
        Ok(Consumer {
            name: name.to_string(),
            pool,
            consumer: Arc::new(consumer),
            lag_probe: Arc::new(lag_probe),
            rebalanced,
            lag_refresh: LAG_REFRESH,
            dlq,
            handler,
            metrics,
            max_attempts: 3,
            inbox_retention: INBOX_RETENTION,
        })
    }

    /// Remember applied event ids for `retention` instead of [`INBOX_RETENTION`].
    pub fn with_inbox_retention(mut self, retention: Duration) -> Self {
        self.inbox_retention = retention;
        self
    }

    /// Measure the lag of the assigned partitions every `every` instead of [`LAG_REFRESH`].
    pub fn with_lag_refresh(mut self, every: Duration) -> Self {
        self.lag_refresh = every;
        self
    }

    /// Deletes inbox rows older than the inbox retention: no redelivery can be older than the
    /// topics' retention, so their ids no longer need remembering.
    async fn prune_inbox(&self) {
        let Ok(mut c) = platform_store::conn(&self.pool).await else { return };
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(self.inbox_retention).unwrap_or_default();
        let deleted =
            diesel::delete(inbox::table.filter(inbox::consumer.eq(&self.name)).filter(inbox::processed_at.lt(cutoff)))
                .execute(&mut *c)
                .await;
        if let Err(e) = deleted {
            tracing::warn!(consumer = %self.name, error = %e, "inbox pruning failed");
        }
    }

    /// Consumes until `stop` turns true. Messages already waiting are taken together (up to
    /// [`MAX_BATCH`]) and applied in one transaction, so a busy consumer pays one commit per batch
    /// rather than per event; if any of them fails, the batch rolls back and they are applied one
    /// by one. Meanwhile the lag of every assigned partition is measured (see [`crate::lag`]);
    /// its series go when the consumer stops.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        use futures::FutureExt as _;
        let _lag = LagReporter {
            name: self.name.clone(),
            consumer: Arc::downgrade(&self.consumer),
            probe: self.lag_probe.clone(),
            metrics: self.metrics.clone(),
            every: self.lag_refresh,
            rebalanced: self.rebalanced.clone(),
        }
        .start();
        let mut last_prune = std::time::Instant::now();
        loop {
            if last_prune.elapsed() >= Duration::from_secs(600) {
                self.prune_inbox().await;
                last_prune = std::time::Instant::now();
            }
            let first = tokio::select! {
                m = self.consumer.recv() => m,
                _ = stop.changed() => return,
            };
            let first = match first {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(consumer = %self.name, error = %e, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(m)) => batch.push(m),
                    _ => break,
                }
            }
            self.process_batch(&batch).await;
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Applies waiting messages in one transaction. If any of them fails, the whole batch is
    /// rolled back and its messages take the one-by-one path (retries, dead letter) in order, so
    /// per-partition order is kept and a failure costs only the batch's retry.
    async fn process_batch(&self, batch: &[BorrowedMessage<'_>]) {
        if batch.len() > 1 {
            match self.apply_batch(batch).await {
                Ok(outcomes) => {
                    for (msg, outcome) in batch.iter().zip(&outcomes) {
                        let label = match outcome {
                            Outcome::Applied => "applied",
                            Outcome::Duplicate => "duplicate",
                        };
                        self.metrics.consumed.with_label_values(&[&self.name, msg.topic(), label]).inc();
                        if let Err(e) = self.consumer.store_offset_from_message(msg) {
                            tracing::warn!(consumer = %self.name, error = %e, "offset store failed");
                        }
                    }
                    if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Async) {
                        // Redelivery after a failed commit is harmless: the inbox makes it a duplicate.
                        tracing::warn!(consumer = %self.name, error = %e, "offset commit failed");
                    }
                    return;
                }
                Err(e) => tracing::debug!(consumer = %self.name, error = %e, "batch rolled back; applying one by one"),
            }
        }
        for msg in batch {
            self.process(msg).await;
        }
    }

    /// One transaction for the whole batch; any failure rolls all of it back.
    async fn apply_batch(&self, msgs: &[BorrowedMessage<'_>]) -> Result<Vec<Outcome>, String> {
        let mut conn = platform_store::conn(&self.pool).await.map_err(|e| e.to_string())?;
        let conn: &mut AsyncPgConnection = &mut conn;
        let name = self.name.as_str();
        let handler = self.handler.as_ref();
        conn.transaction::<_, TxError, _>(async move |c: &mut AsyncPgConnection| {
            let mut envs = Vec::with_capacity(msgs.len());
            for msg in msgs {
                let env = Envelope::decode_checked(msg.payload().unwrap_or_default())
                    .map_err(|e| TxError::Handler(HandlerError::Permanent(e.to_string())))?;
                let id = env.event_uuid().map_err(|e| TxError::Handler(HandlerError::Permanent(e.to_string())))?;
                envs.push((env, id));
            }
            // Every inbox row of the batch in one statement; only the events it inserted are new.
            let ids: Vec<uuid::Uuid> = envs.iter().map(|(_, id)| *id).collect();
            let mut fresh = inbox_insert_batch(c, name, msgs, &ids).await?;
            let mut outcomes = Vec::with_capacity(msgs.len());
            for (msg, (env, id)) in msgs.iter().zip(&envs) {
                // An event twice in one batch (a republish) is applied at its first occurrence.
                if !fresh.remove(id) {
                    outcomes.push(Outcome::Duplicate);
                    continue;
                }
                let span = message_span(msg, name);
                span.record("messaging.message.id", env.event_id.as_str());
                handler.handle(c, env).instrument(span).await.map_err(TxError::Handler)?;
                outcomes.push(Outcome::Applied);
            }
            Ok(outcomes)
        })
        .await
        .map_err(|e| match e {
            TxError::Db(e) => e.to_string(),
            TxError::Handler(e) => e.to_string(),
        })
    }

    /// Handles one message to the end: applied, duplicate or dead-lettered; then commits its offset.
    async fn process(&self, msg: &BorrowedMessage<'_>) {
        let topic = msg.topic().to_string();
        let span = message_span(msg, &self.name);
        async {
            let outcome = match Envelope::decode_checked(msg.payload().unwrap_or_default()) {
                Err(e) => Err(HandlerError::Permanent(format!("undecodable envelope: {e}"))),
                Ok(env) => {
                    tracing::Span::current().record("messaging.message.id", env.event_id.as_str());
                    self.apply_with_retries(msg, &env).await
                }
            };
            let label = match outcome {
                Ok(Outcome::Applied) => "applied",
                Ok(Outcome::Duplicate) => "duplicate",
                Err(e) => {
                    self.dead_letter(msg, &e).await;
                    "dead_lettered"
                }
            };
            self.metrics.consumed.with_label_values(&[&self.name, &topic, label]).inc();
            self.commit(msg).await;
        }
        .instrument(span)
        .await
    }

    async fn apply_with_retries(&self, msg: &BorrowedMessage<'_>, env: &Envelope) -> Result<Outcome, HandlerError> {
        let mut attempt = 0;
        let mut backoff = Duration::from_millis(50);
        loop {
            attempt += 1;
            match self.apply(msg, env).await {
                Ok(o) => return Ok(o),
                Err(TxError::Handler(HandlerError::Permanent(e))) => {
                    self.failure(msg.topic(), "permanent");
                    return Err(HandlerError::Permanent(e));
                }
                Err(TxError::Handler(HandlerError::Transient(e))) => {
                    self.failure(msg.topic(), "transient");
                    if attempt >= self.max_attempts {
                        return Err(HandlerError::Transient(format!("after {attempt} attempts: {e}")));
                    }
                }
                Err(TxError::Db(e)) => {
                    // The database itself failed (not the handler): nothing can be applied until it
                    // is back, so keep the message and retry rather than dead-letter it.
                    self.failure(msg.topic(), "database");
                    tracing::warn!(consumer = %self.name, error = %e, "database unavailable; retrying");
                    attempt = attempt.saturating_sub(1);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    fn failure(&self, topic: &str, kind: &str) {
        self.metrics.handler_failures.with_label_values(&[&self.name, topic, kind]).inc();
    }

    /// One transaction: the inbox row, then the handler's effect.
    async fn apply(&self, msg: &BorrowedMessage<'_>, env: &Envelope) -> Result<Outcome, TxError> {
        let mut conn = platform_store::conn(&self.pool)
            .await
            .map_err(|e| TxError::Db(diesel::result::Error::QueryBuilderError(e.to_string().into())))?;
        let name = self.name.as_str();
        let handler = self.handler.as_ref();
        let conn: &mut AsyncPgConnection = &mut conn;
        conn.transaction::<_, TxError, _>(async move |c: &mut AsyncPgConnection| {
            apply_in(c, name, handler, msg, env).await
        })
        .await
    }

    /// Sends the message, unchanged, to `<topic>.dlq` with the error in headers. Retries until the
    /// broker accepts it: a message is never dropped.
    async fn dead_letter(&self, msg: &BorrowedMessage<'_>, error: &HandlerError) {
        let dlq_topic = platform_events::topics::dead_letter(msg.topic());
        let error_text = error.to_string();
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        tracing::error!(consumer = %self.name, topic = msg.topic(), partition = msg.partition(), offset = msg.offset(),
            error = %error_text, "event dead-lettered");
        let mut delay = Duration::from_millis(100);
        loop {
            let mut headers = OwnedHeaders::new();
            if let Some(h) = msg.headers() {
                for header in h.iter() {
                    headers = headers.insert(rdkafka::message::Header { key: header.key, value: header.value });
                }
            }
            let headers = headers
                .insert(rdkafka::message::Header { key: "dlq.error", value: Some(error_text.as_bytes()) })
                .insert(rdkafka::message::Header { key: "dlq.topic", value: Some(msg.topic().as_bytes()) })
                .insert(rdkafka::message::Header { key: "dlq.partition", value: Some(partition.as_bytes()) })
                .insert(rdkafka::message::Header { key: "dlq.offset", value: Some(offset.as_bytes()) })
                .insert(rdkafka::message::Header { key: "dlq.consumer", value: Some(self.name.as_bytes()) });
            let mut record = FutureRecord::<[u8], [u8]>::to(&dlq_topic).headers(headers);
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            if let Some(p) = msg.payload() {
                record = record.payload(p);
            }
            match self.dlq.send(record, Duration::from_secs(10)).await {
                Ok(_) => {
                    self.metrics.dead_letters.with_label_values(&[&self.name, msg.topic()]).inc();
                    return;
                }
                Err((e, _)) => {
                    tracing::error!(consumer = %self.name, error = %e, "dead-letter publish failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Commits the offset after the message's database transaction (or dead letter) is done.
    async fn commit(&self, msg: &BorrowedMessage<'_>) {
        if let Err(e) = self.consumer.store_offset_from_message(msg) {
            tracing::warn!(consumer = %self.name, error = %e, "offset store failed");
        }
        if let Err(e) = self.consumer.commit_message(msg, CommitMode::Async) {
            // Redelivery after a failed commit is harmless: the inbox makes it a duplicate.
            tracing::warn!(consumer = %self.name, error = %e, "offset commit failed");
        }
    }
}
