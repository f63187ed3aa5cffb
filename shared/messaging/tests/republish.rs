//! A broker that loses what it acknowledged (the local platform's embedded broker after a crash;
//! a lost Kafka cluster): a relay that keeps published events (`kafka.keep_published_s`) finds
//! the other cluster and publishes the kept events again, before anything new and in their
//! order, so consumers' read models converge (first-contact issue, item 4). Real PostgreSQL,
//! two real Kafka-protocol brokers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures::StreamExt as _;
use platform_events::{Envelope, EventMeta, catalog, topics};
use platform_messaging::{MessagingMetrics, Relay, outbox};
use platform_settings::CommonSettings;
use platform_testkit as kit;
use rdkafka::Message as _;
use tokio::sync::watch;

static MIGRATIONS: &[diesel_migrations::EmbeddedMigrations] = &[platform_messaging::MIGRATIONS];

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(pool: &platform_store::Pool, sql: &str) -> i64 {
    let mut c = platform_store::conn(pool).await.unwrap();
    diesel::sql_query(sql).get_result::<Count>(&mut *c).await.unwrap().n
}

fn event(i: usize) -> Envelope {
    let id = format!("objection-{i}");
    let payload = catalog::ObjectionEvent { objection_id: id.clone(), reason: "r".into(), ..Default::default() };
    Envelope::wrap(
        EventMeta {
            event_type: "catalog.quality.filed".into(),
            aggregate_id: id,
            aggregate_version: 1,
            producer: "test".into(),
            jurisdiction: "610000".into(),
        },
        &payload,
    )
}

async fn enqueue(settings: &CommonSettings, pool: &platform_store::Pool, range: std::ops::Range<usize>) -> Vec<String> {
    let mut c = platform_store::conn(pool).await.unwrap();
    let topic = settings.kafka.topic(topics::CATALOG_QUALITY);
    let envs: Vec<Envelope> = range.map(event).collect();
    let conn: &mut AsyncPgConnection = &mut c;
    conn.transaction::<_, diesel::result::Error, _>(async |c: &mut AsyncPgConnection| {
        for env in &envs {
            outbox::enqueue(c, &topic, env).await?;
        }
        Ok(())
    })
    .await
    .unwrap();
    envs.into_iter().map(|e| e.event_id).collect()
}

/// Every event id on the topic, in the order read per partition, until `n` arrived.
async fn read(settings: &CommonSettings, n: usize) -> Vec<(i32, String)> {
    let reader = kit::topic_reader(settings, topics::CATALOG_QUALITY);
    let mut stream = reader.stream();
    let mut seen = Vec::new();
    while seen.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events on the topic", seen.len()))
            .unwrap()
            .unwrap();
        let id = msg.headers().and_then(|h| {
            use rdkafka::message::Headers as _;
            h.iter()
                .find(|h| h.key == "event_id")
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        });
        seen.push((msg.partition(), id.unwrap()));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_acknowledged_events_gets_them_again_before_new_ones() {
    let db = kit::database("messaging", MIGRATIONS).await;
    let on_a = kit::settings(&db, &[("kafka.keep_published_s", "3600")]);
    let pool = platform_store::pool(&on_a.database).unwrap();
    let registry = platform_telemetry::Metrics::new("republish-test").unwrap();
    let metrics = MessagingMetrics::new(&registry).unwrap();

    let first = enqueue(&on_a, &pool, 0..20).await;
    let relay = Relay::new(pool.clone(), &on_a.kafka, metrics.clone()).unwrap();
    assert_eq!(relay.drain().await.unwrap(), 20);
    assert_eq!(count(&pool, "SELECT count(*) AS n FROM outbox").await, 0, "published rows leave the outbox");
    assert_eq!(count(&pool, "SELECT count(*) AS n FROM outbox_published").await, 20, "and are kept");
    drop(relay);

    // The broker is replaced by one that holds nothing (the embedded broker after a SIGKILL).
    let b = platform_broker::LocalBroker::start().unwrap();
    let topic = on_a.kafka.topic(topics::CATALOG_QUALITY);
    b.create_topic(&topic, 3).unwrap();
    let mut on_b = on_a.clone();
    on_b.kafka.brokers = b.bootstrap().to_string();
    let second = enqueue(&on_b, &pool, 20..25).await;

    let relay = Relay::new(pool.clone(), &on_b.kafka, metrics.clone()).unwrap();
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(relay.run(stopped));
    let seen = read(&on_b, 25).await;
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 25, "each event once on the new broker");
    assert!(first.iter().chain(&second).all(|id| ids.contains(id)), "none lost");
    // Per partition (an aggregate's order is its partition's), the kept events come first.
    for partition in 0..3 {
        let order: Vec<&String> = seen.iter().filter(|(p, _)| *p == partition).map(|(_, id)| id).collect();
        let first_new = order.iter().position(|id| second.contains(id)).unwrap_or(order.len());
        assert!(order[first_new..].iter().all(|id| second.contains(id)), "partition {partition}: {order:?}");
    }
    stop.send(true).unwrap();
    running.await.unwrap();

    // The same cluster again: nothing is republished (its cluster id and offsets are as kept).
    enqueue(&on_b, &pool, 25..26).await;
    let relay = Relay::new(pool.clone(), &on_b.kafka, metrics.clone()).unwrap();
    kit::eventually("the next relay to lead and publish", Duration::from_secs(20), || async {
        (relay.drain().await.unwrap() == 1).then_some(())
    })
    .await;
    let exposition = registry.render();
    assert_eq!(
        kit::metric_value(&exposition, "outbox_published_total", &[("topic", topic.as_str())]),
        Some(46.0),
        "20 on A; 20 again, 5 and 1 on B; nothing more:\n{exposition}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_events_are_forgotten_after_the_window_and_nothing_is_kept_by_default() {
    let db = kit::database("messaging", MIGRATIONS).await;
    let keep = kit::settings(&db, &[("kafka.keep_published_s", "1")]);
    let pool = platform_store::pool(&keep.database).unwrap();
    let metrics = MessagingMetrics::new(&platform_telemetry::Metrics::new("republish-window").unwrap()).unwrap();
    enqueue(&keep, &pool, 0..3).await;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(Relay::new(pool.clone(), &keep.kafka, metrics.clone()).unwrap().run(stopped));
    kit::eventually("the kept events to be forgotten", Duration::from_secs(20), || async {
        (count(&pool, "SELECT count(*) AS n FROM outbox").await == 0
            && count(&pool, "SELECT count(*) AS n FROM outbox_published").await == 0)
            .then_some(())
    })
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();

    let default = kit::settings(&db, &[]);
    enqueue(&default, &pool, 3..6).await;
    let relay = Relay::new(pool.clone(), &default.kafka, metrics).unwrap();
    assert_eq!(relay.drain().await.unwrap(), 3);
    assert_eq!(count(&pool, "SELECT count(*) AS n FROM outbox_published").await, 0, "nothing kept with 0");
}
