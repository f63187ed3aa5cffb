//! The deadline scheduler runs once in a cluster: replicas on one database take a PostgreSQL
//! session advisory lock, only its holder sweeps, and a standby takes over when it stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use authorization::scheduler::Leadership;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use platform_runtime::Running;
use platform_testkit as kit;

const TICK: Duration = Duration::from_millis(200);

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(r: &Running, sql: &str) -> i64 {
    let mut c = platform_store::conn(&r.pool).await.unwrap();
    diesel::sql_query(sql).get_result::<N>(&mut *c).await.unwrap().n
}

/// Inserts `n` active grants of one agreement whose validity ended yesterday.
async fn due_grants(r: &Running, n: i64) {
    let mut c = platform_store::conn(&r.pool).await.unwrap();
    let (agreement, request) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for sql in [
        format!(
            "INSERT INTO agreements (id, jurisdiction, operator_org, operator_name, state, scope, resource_ids, products, term_start, term_end, profile_version, created_by) \
             VALUES ('{agreement}', '610000', 'org-op', '运营机构', 'active', '[]', '{{}}', '[]', current_date - 100, current_date + 600, 1, 'test')"
        ),
        format!(
            "INSERT INTO data_requests (id, agreement_id, jurisdiction, requester_org, requested_by, scenario, scope, development_plan, valid_until, state, needs_joint_review, profile_version) \
             VALUES ('{request}', '{agreement}', '610000', 'org-op', 'op', 's', '[]', 'p', current_date + 100, 'approved', false, 1)"
        ),
        format!(
            "INSERT INTO grants (id, agreement_id, request_id, jurisdiction, principal_org, operator_org, scenario, scope, min_group_size, valid_from, valid_until, state, profile_version, log_retention_months) \
             SELECT gen_random_uuid(), '{agreement}', '{request}', '610000', 'org-op', 'org-op', '场景' || i, '[]', 10, current_date - 60, current_date - 2, 'active', 1, 6 \
             FROM generate_series(1, {n}) AS i"
        ),
    ] {
        diesel::sql_query(sql).execute(&mut *c).await.unwrap();
    }
}

async fn metric(r: &Running, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", r.url())).await.unwrap().text().await.unwrap();
    kit::metric_value(&text, name, &[]).unwrap_or(0.0)
}

/// Reads `reader` until `total` grant-expiry events have arrived in all, then a further second to
/// see that no more follow (an expiry published twice would show here).
async fn expiries_reach(reader: &rdkafka::consumer::StreamConsumer, seen: &mut usize, total: usize) {
    use rdkafka::Message as _;
    use rdkafka::message::Headers as _;
    let mut quiet_until = None;
    loop {
        let wait = match quiet_until {
            Some(t) => t - tokio::time::Instant::now(),
            None => Duration::from_secs(20),
        };
        let Ok(m) = tokio::time::timeout(wait, reader.recv()).await else {
            assert_eq!(*seen, total, "grant-expiry events published");
            return;
        };
        let m = m.unwrap();
        let expired = m.headers().is_some_and(|h| {
            h.iter().any(|h| h.key == "event_type" && h.value == Some(b"authorization.grant.expired".as_slice()))
        });
        if expired {
            *seen += 1;
            assert!(*seen <= total, "more expiry events than expired grants");
        }
        if *seen == total && quiet_until.is_none() {
            quiet_until = Some(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    }
}

async fn leads(r: &Running) -> bool {
    metric(r, "authorization_scheduler_leader").await == 1.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_holds_the_lead_until_it_resigns() {
    let db = kit::database("authorization", authorization::MIGRATIONS).await;
    let (mut a, mut b) = (Leadership::new(&db.url), Leadership::new(&db.url));
    assert!(a.lead().await);
    assert!(!b.lead().await, "the lock is held by the other session");
    assert!(a.lead().await, "the leader keeps it");
    a.resign().await;
    assert!(b.lead().await, "released on resignation");
    drop(b);
    // A session that ends (a replica that dies) releases the lock too.
    let mut c = Leadership::new(&db.url);
    let mut tries = 0;
    while !c.lead().await {
        tries += 1;
        assert!(tries < 100, "a closed session releases the lock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_never_both_sweep_and_the_standby_takes_over_when_the_leader_stops() {
    let prefix = kit::topic_prefix();
    let db = kit::database("authorization", authorization::MIGRATIONS).await;
    let reader = kit::topic_reader(&kit::settings_in(&db, &prefix, &[]), platform_events::topics::AUTHORIZATION_GRANT);
    let mut expiries = 0;
    let first = authorization::run_with_tick(kit::settings_in(&db, &prefix, &[]), TICK).await.unwrap();
    kit::eventually("the first replica leads", Duration::from_secs(10), || async { leads(&first).await.then_some(()) })
        .await;
    let second = authorization::run_with_tick(kit::settings_in(&db, &prefix, &[]), TICK).await.unwrap();
    due_grants(&first, 50).await;
    kit::eventually("the leader expires the due grants", Duration::from_secs(10), || async {
        (count(&first, "SELECT count(*) AS n FROM grants WHERE state = 'expired'").await == 50).then_some(())
    })
    .await;
    // Many ticks later the standby has never led nor swept.
    tokio::time::sleep(TICK * 10).await;
    assert!(leads(&first).await);
    assert_eq!(
        (
            metric(&second, "authorization_scheduler_leader").await,
            metric(&second, "authorization_scheduler_sweeps_total").await
        ),
        (0.0, 0.0),
        "the standby skips the sweeps"
    );
    assert!(metric(&first, "authorization_scheduler_sweeps_total").await >= 5.0);
    // Each grant expired once: one event each, and one step on its sequence.
    expiries_reach(&reader, &mut expiries, 50).await;
    assert_eq!(count(&first, "SELECT count(*) AS n FROM grants WHERE event_seq <> 1").await, 0);

    // The leader stops: the standby takes over and sweeps what falls due next.
    first.stop().await;
    kit::eventually("the standby takes over", Duration::from_secs(10), || async { leads(&second).await.then_some(()) })
        .await;
    due_grants(&second, 30).await;
    kit::eventually("the new leader expires the due grants", Duration::from_secs(10), || async {
        (count(&second, "SELECT count(*) AS n FROM grants WHERE state = 'expired'").await == 80).then_some(())
    })
    .await;
    expiries_reach(&reader, &mut expiries, 80).await;
    assert!(metric(&second, "authorization_scheduler_sweeps_total").await >= 1.0);
    second.stop().await;
}
