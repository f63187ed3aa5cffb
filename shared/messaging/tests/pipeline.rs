//! The outbox → Kafka → inbox pipeline against a real PostgreSQL and a real Kafka-protocol broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures::future::BoxFuture;
use platform_events::{Envelope, EventMeta, catalog, topics};
use platform_messaging::{Consumer, Handler, HandlerError, MessagingMetrics, Relay, outbox};
use platform_settings::CommonSettings;
use platform_store::Pool;
use platform_testkit as kit;
use rdkafka::Message as _;
use tokio::sync::watch;

static MIGRATIONS: &[diesel_migrations::EmbeddedMigrations] = &[platform_messaging::MIGRATIONS];

/// Records each applied event as a row: the effect whose count proves exactly-once.
struct RecordEffect;

impl Handler for RecordEffect {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let ev: catalog::ObjectionEvent = env.payload_as().map_err(|e| HandlerError::Permanent(e.to_string()))?;
            if ev.reason == "poison" {
                return Err(HandlerError::Permanent("the reason is poison".into()));
            }
            diesel::sql_query("INSERT INTO effects (event_id, objection_id) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Text, _>(&env.event_id)
                .bind::<diesel::sql_types::Text, _>(&ev.objection_id)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

struct Setup {
    settings: CommonSettings,
    pool: Pool,
    metrics: MessagingMetrics,
    registry: platform_telemetry::Metrics,
}

async fn setup() -> Setup {
    let db = kit::database("messaging", MIGRATIONS).await;
    let settings = kit::settings(&db, &[]);
    let pool = platform_store::pool(&settings.database).unwrap();
    let mut c = platform_store::conn(&pool).await.unwrap();
    diesel::sql_query("CREATE TABLE effects (event_id TEXT NOT NULL, objection_id TEXT NOT NULL)")
        .execute(&mut *c)
        .await
        .unwrap();
    let registry = platform_telemetry::Metrics::new("messaging-test").unwrap();
    let metrics = MessagingMetrics::new(&registry).unwrap();
    Setup { settings, pool, metrics, registry }
}

fn event(objection: &str, reason: &str) -> Envelope {
    let payload =
        catalog::ObjectionEvent { objection_id: objection.into(), reason: reason.into(), ..Default::default() };
    Envelope::wrap(
        EventMeta {
            event_type: "catalog.quality.filed".into(),
            aggregate_id: objection.into(),
            aggregate_version: 1,
            producer: "test".into(),
            jurisdiction: "610000".into(),
        },
        &payload,
    )
}

async fn enqueue(s: &Setup, envs: &[Envelope]) {
    let mut c = platform_store::conn(&s.pool).await.unwrap();
    let topic = s.settings.kafka.topic(topics::CATALOG_QUALITY);
    let conn: &mut AsyncPgConnection = &mut c;
    conn.transaction::<_, diesel::result::Error, _>(async |c: &mut AsyncPgConnection| {
        for env in envs {
            outbox::enqueue(c, &topic, env).await?;
        }
        Ok(())
    })
    .await
    .unwrap();
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(s: &Setup, sql: &str) -> i64 {
    let mut c = platform_store::conn(&s.pool).await.unwrap();
    diesel::sql_query(sql).get_result::<Count>(&mut *c).await.unwrap().n
}

fn start_consumer(s: &Setup, stop: &watch::Sender<bool>) -> tokio::task::JoinHandle<()> {
    let topic = s.settings.kafka.topic(topics::CATALOG_QUALITY);
    let consumer = Consumer::new(
        "effects",
        &[&topic],
        s.pool.clone(),
        &s.settings.kafka,
        Arc::new(RecordEffect),
        s.metrics.clone(),
    )
    .unwrap();
    tokio::spawn(consumer.run(stop.subscribe()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publish_and_mark_publishes_twice_and_the_effect_happens_once() {
    let s = setup().await;
    enqueue(&s, &[event("o-1", "wrong value"), event("o-2", "missing rows")]).await;
    let relay = Relay::new(s.pool.clone(), &s.settings.kafka, s.metrics.clone()).unwrap();
    // First attempt publishes, then "crashes" before deleting the rows it sent.
    assert_eq!(relay.publish_batch(false).await.unwrap(), 2);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM outbox").await, 2);
    // The restarted relay publishes the same rows again and marks them.
    assert_eq!(relay.drain().await.unwrap(), 2);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM outbox").await, 0);

    // The topic really holds every event twice.
    let reader = kit::topic_reader(&s.settings, topics::CATALOG_QUALITY);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(20), reader.recv()).await.expect("4 messages").unwrap();
        seen.push(Envelope::decode_checked(m.payload().unwrap()).unwrap().event_id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 2);

    let (stop, _) = watch::channel(false);
    let task = start_consumer(&s, &stop);
    kit::eventually("4 deliveries consumed", Duration::from_secs(30), || async {
        (count(&s, "SELECT count(*) AS n FROM inbox").await == 2
            && s.metrics
                .consumed
                .with_label_values(&["effects", &s.settings.kafka.topic(topics::CATALOG_QUALITY), "duplicate"])
                .get()
                == 2)
            .then_some(())
    })
    .await;
    assert_eq!(count(&s, "SELECT count(*) AS n FROM effects").await, 2, "each effect exactly once");
    let _ = stop.send(true);
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_handled_is_dead_lettered_and_the_partition_keeps_flowing() {
    let s = setup().await;
    // Same aggregate key, so the same partition: the poison pill sits between two good events.
    let poison = event("o-9", "poison");
    let mut before = event("o-9", "first");
    let mut after = event("o-9", "after");
    before.aggregate_id = "same-key".into();
    after.aggregate_id = "same-key".into();
    let mut poison_same = poison.clone();
    poison_same.aggregate_id = "same-key".into();
    enqueue(&s, &[before, poison_same.clone(), after]).await;
    let relay = Relay::new(s.pool.clone(), &s.settings.kafka, s.metrics.clone()).unwrap();
    relay.drain().await.unwrap();

    // Undecodable bytes straight onto the topic, too.
    let producer: rdkafka::producer::FutureProducer =
        platform_messaging::client_config(&s.settings.kafka).create().unwrap();
    let topic = s.settings.kafka.topic(topics::CATALOG_QUALITY);
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&topic).key("same-key").payload(&b"\x01\x02garbage"[..]),
            Duration::from_secs(5),
        )
        .await
        .unwrap();

    let (stop, _) = watch::channel(false);
    let task = start_consumer(&s, &stop);
    kit::eventually("both good events applied", Duration::from_secs(30), || async {
        (count(&s, "SELECT count(*) AS n FROM effects").await == 2).then_some(())
    })
    .await;

    let dlq = kit::topic_reader(&s.settings, &platform_events::topics::dead_letter(topics::CATALOG_QUALITY));
    let mut errors = Vec::new();
    while errors.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(20), dlq.recv()).await.expect("2 dead letters").unwrap();
        use rdkafka::message::Headers as _;
        let h = m.headers().unwrap();
        let err = h
            .iter()
            .find(|h| h.key == "dlq.error")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).to_string());
        let src = h
            .iter()
            .find(|h| h.key == "dlq.topic")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).to_string());
        assert_eq!(src.as_deref(), Some(topic.as_str()));
        errors.push(err.unwrap());
    }
    assert!(errors.iter().any(|e| e.contains("poison")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("undecodable")), "{errors:?}");

    // What the dashboards and alerts read of a consumer is exported, lag included (measured for
    // every assigned partition every 5 s: tests/lag.rs).
    let used = include_str!("../../../charts/platform/metrics-used.txt");
    let text = kit::eventually("consumer lag reported", Duration::from_secs(20), || async {
        let text = s.registry.render();
        kit::metric_value(&text, "kafka_consumer_lag", &[("consumer", "effects")]).map(|_| text)
    })
    .await;
    for name in used.lines().map(str::trim).filter(|l| l.starts_with("kafka_")) {
        assert!(text.lines().any(|l| l.starts_with(&format!("{name}{{"))), "{name} not exported:\n{text}");
    }
    assert_eq!(kit::metric_value(&text, "kafka_dead_letters_total", &[("consumer", "effects")]), Some(2.0));
    let _ = stop.send(true);
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_is_a_child_of_the_producer_span_across_kafka() {
    let s = setup().await;
    let request_span = tracing::info_span!("http.request.test");
    let env = event("o-trace", "traced");
    {
        use tracing::Instrument as _;
        enqueue(&s, std::slice::from_ref(&env)).instrument(request_span.clone()).await;
    }
    drop(request_span);
    let relay = Relay::new(s.pool.clone(), &s.settings.kafka, s.metrics.clone()).unwrap();
    relay.drain().await.unwrap();
    let (stop, _) = watch::channel(false);
    let task = start_consumer(&s, &stop);
    kit::eventually("the event applied", Duration::from_secs(30), || async {
        (count(&s, "SELECT count(*) AS n FROM effects").await == 1).then_some(())
    })
    .await;
    let _ = stop.send(true);
    task.await.unwrap();

    let id = env.event_id.clone();
    let has_id = |sp: &kit::SpanData| {
        sp.attributes.iter().any(|kv| kv.key.as_str() == "messaging.message.id" && kv.value.as_str() == id)
    };
    let spans = kit::eventually("spans exported", Duration::from_secs(10), || async {
        let all = kit::spans();
        let publish = all.iter().find(|sp| sp.name == "outbox.publish" && has_id(sp)).cloned();
        let consume = all.iter().find(|sp| sp.name == "consume" && has_id(sp)).cloned();
        let request = all.iter().find(|sp| sp.name == "http.request.test").cloned();
        match (request, publish, consume) {
            (Some(r), Some(p), Some(c)) => Some((r, p, c)),
            _ => None,
        }
    })
    .await;
    let (request, publish, consume) = spans;
    assert_eq!(
        publish.span_context.trace_id(),
        request.span_context.trace_id(),
        "the relay continues the writer's trace"
    );
    assert_eq!(publish.parent_span_id, request.span_context.span_id());
    assert_eq!(consume.span_context.trace_id(), publish.span_context.trace_id(), "one trace across Kafka");
    assert_eq!(consume.parent_span_id, publish.span_context.span_id(), "the consumer's span is the producer's child");
}

/// One relay per database publishes (the session advisory lock on its own connection keeps
/// per-aggregate order across replicas); a standby takes over once the leader's connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_per_database_publishes_and_a_standby_takes_over_when_it_stops() {
    let s = setup().await;
    enqueue(&s, &[event("o-1", "first")]).await;
    let leader = Relay::new(s.pool.clone(), &s.settings.kafka, s.metrics.clone()).unwrap();
    let standby = Relay::new(s.pool.clone(), &s.settings.kafka, s.metrics.clone()).unwrap();
    assert_eq!(leader.drain().await.unwrap(), 1);
    enqueue(&s, &[event("o-2", "second")]).await;
    // The standby publishes nothing while the leader lives, and leaves the row to it.
    assert_eq!(standby.drain().await.unwrap(), 0);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM outbox").await, 1);
    drop(leader);
    let taken_over = kit::eventually("the standby leads", Duration::from_secs(10), || async {
        let n = standby.drain().await.unwrap();
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(taken_over, 1);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM outbox").await, 0);
}

/// A pooled connection the server closed is replaced: idle for longer than
/// `database.verify_idle_ms`, it is checked with `SELECT 1` before it is handed out; used a moment
/// ago, it is handed out unchecked, and at worst its first statement fails before the pool drops
/// it (usually the server's notice has already marked it broken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_by_the_server_is_replaced() {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    async fn pid(pool: &Pool) -> diesel::QueryResult<i32> {
        let mut c = platform_store::conn(pool).await.unwrap();
        Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(&mut *c).await?.pid)
    }
    let s = setup().await;
    let terminate = |victim: i32| {
        let pool = s.pool.clone();
        async move {
            let mut c = platform_store::conn(&pool).await.unwrap();
            diesel::sql_query(format!("SELECT pg_terminate_backend({victim})")).execute(&mut *c).await.unwrap();
            // The backend is gone once it no longer appears.
            kit::eventually("backend gone", Duration::from_secs(5), || async {
                let mut c = platform_store::conn(&pool).await.unwrap();
                let n = diesel::sql_query(format!(
                    "SELECT count(*)::int AS pid FROM pg_stat_activity WHERE pid = {victim}"
                ))
                .get_result::<Pid>(&mut *c)
                .await
                .unwrap()
                .pid;
                (n == 0).then_some(())
            })
            .await;
        }
    };
    for verify_idle_ms in [0, 600_000] {
        let mut settings = s.settings.database.clone();
        settings.pool_size = 1;
        settings.verify_idle_ms = verify_idle_ms;
        let pool = platform_store::pool(&settings).unwrap();
        let before = pid(&pool).await.unwrap();
        terminate(before).await;
        let after = match pid(&pool).await {
            Ok(p) => p,
            // Unchecked, the connection may be handed out before the client has read the
            // server's notice: its first statement fails, and the pool then drops it.
            Err(e) if verify_idle_ms > 0 => {
                assert!(e.to_string().contains("closed"), "{e}");
                pid(&pool).await.unwrap()
            }
            Err(e) => panic!("verify_idle_ms = {verify_idle_ms}: {e}"),
        };
        assert_ne!(before, after);
    }
}
