//! `make bench`: the foundation's figures, each next to a baseline measured in the same run.
//!
//! (a) outbox pipeline rate — resources published through the catalog's own write path, relayed
//!     to Kafka and applied by a consumer (inbox + effect) in another database — against a bare
//!     diesel insert loop into the same database with the same concurrency (measured before and
//!     after; the faster counts); target ratio ≥ 0.7. The publications come right after the
//!     submissions through the same replica, so each starts from the row the replica holds
//!     (`database.recent_rows`); the same run also prints a replica holding nothing (a read first).
//! (b) commit-to-consumer latency p50/p99 at 500 events/s; target p99 < 50 ms.
//! (c) HTTP search p50/p99 at 1,000 requests/s over 100,000 resources (open loop: latency counts
//!     from each request's scheduled time); target p99 < 20 ms; `/healthz` at the same rate as the
//!     baseline.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures::future::BoxFuture;
use loadtest::{Target, median, pct, record, verdict};
use platform_auth::Role;
use platform_events::{Envelope, topics};
use platform_messaging::{Consumer, Handler, HandlerError, MessagingMetrics};
use platform_testkit as kit;
use tokio::sync::watch;

/// Records when each event was applied, in the consumer's transaction.
struct Timed {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Handler for Timed {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            platform_store::Cached(
                diesel::sql_query("INSERT INTO effects (aggregate_id) VALUES ($1)")
                    .bind::<diesel::sql_types::Text, _>(&env.aggregate_id),
            )
            .execute(conn)
            .await?;
            self.seen.lock().unwrap().insert(env.aggregate_id.clone(), Instant::now());
            Ok(())
        })
    }
}

fn caller(role: Role) -> platform_auth::Caller {
    let claims = platform_auth::Claims {
        sub: format!("bench-{}", role.as_str()),
        org: "bench".into(),
        jurisdiction: "610000".into(),
        roles: vec![role.as_str().into()],
        exp: u64::MAX / 2,
        iat: None,
        iss: None,
        aud: None,
    };
    platform_auth::Caller::new(claims)
}

fn content(i: usize) -> catalog::domain::resource::ResourceContent {
    let v = serde_json::json!({
        "name": format!("基准资源{i}"), "code": format!("B-{i}"), "source_unit": "基准单位", "sector": "bench",
        "format": "table", "update_frequency": "daily", "open_category": "conditional", "security_grade": "general",
        "fields": [{"name": "a", "data_type": "text", "sensitivity": "none"},
                   {"name": "b", "data_type": "text", "sensitivity": "personal", "pii_kind": "phone"}],
        "provenance": {"kind": "collected"}
    });
    serde_json::from_value(v).unwrap()
}

struct Rig {
    catalog: platform_runtime::Running,
    state: catalog::app::State,
    consumer_pool: platform_store::Pool,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    stop: watch::Sender<bool>,
}

async fn rig() -> Rig {
    let db = kit::database("catalog", catalog::MIGRATIONS).await;
    let settings = kit::settings(&db, &[("database.pool_size", "16"), ("http.workers", "2")]);
    let running = catalog::run(settings.clone()).await.unwrap();
    let state = catalog::app::State {
        pool: running.pool.clone(),
        relay: running.relay.clone(),
        profiles: Arc::new(platform_policy::Profiles::built_in().unwrap()),
        calendar: platform_calendar::Calendar::official(),
        topic_prefix: settings.kafka.topic_prefix.clone(),
        recent: Arc::new(platform_store::RecentRows::new("resources", &settings.database)),
    };
    // The consumer lives in a database of its own, as another service would.
    static CONSUMER: &[diesel_migrations::EmbeddedMigrations] = &[platform_messaging::MIGRATIONS];
    let cdb = kit::database("bench_consumer", CONSUMER).await;
    let csettings = kit::settings(&cdb, &[("database.pool_size", "4")]);
    let consumer_pool = platform_store::pool(&csettings.database).unwrap();
    let mut c = platform_store::conn(&consumer_pool).await.unwrap();
    diesel::sql_query("CREATE TABLE effects (aggregate_id TEXT NOT NULL)").execute(&mut *c).await.unwrap();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let registry = platform_telemetry::Metrics::new("bench").unwrap();
    let consumer = Consumer::new(
        "bench",
        &[&settings.kafka.topic(topics::CATALOG_RESOURCE)],
        consumer_pool.clone(),
        &settings.kafka,
        Arc::new(Timed { seen: seen.clone() }),
        MessagingMetrics::new(&registry).unwrap(),
    )
    .unwrap();
    let (stop, rx) = watch::channel(false);
    tokio::spawn(consumer.run(rx));
    Rig { catalog: running, state, consumer_pool, seen, stop }
}

impl Rig {
    /// The catalog's use cases as a replica that holds no recent rows: every change reads first.
    fn cold(&self) -> catalog::app::State {
        catalog::app::State {
            recent: Arc::new(platform_store::RecentRows::with_limits("resources", 0, Duration::ZERO)),
            ..self.state.clone()
        }
    }

    /// Creates `n` submitted resources (drafted and submitted through the catalog's use cases).
    async fn submitted(&self, from: usize, n: usize) -> Vec<uuid::Uuid> {
        let dept = caller(Role::IndustryDept);
        let mut ids = Vec::with_capacity(n);
        for i in from..from + n {
            let r = catalog::app::create_resource(&self.state, &dept, content(i)).await.unwrap();
            catalog::app::submit_resource(&self.state, &dept, r.id).await.unwrap();
            ids.push(r.id);
        }
        ids
    }

    async fn applied(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A bare diesel insert loop of resource rows: `n` rows from `writers` connections. Plain diesel
/// prepares the INSERT of a derived `Insertable` again on every call (one round trip more);
/// `prepared` keeps it prepared per connection (`platform_store::Cached`), as the publish path's
/// statements are.
async fn bare_inserts(rig: &Rig, n: usize, writers: usize, base: usize, prepared: bool) -> f64 {
    let pool = rig.state.pool.clone();
    let started = Instant::now();
    let tasks = (0..writers).map(|w| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut c = platform_store::conn(&pool).await.unwrap();
            for i in 0..n / writers {
                let row = catalog::store::ResourceRow::draft(
                    uuid::Uuid::now_v7(),
                    "610000",
                    "bench",
                    &content(base + 1_000_000 + w * n + i),
                );
                if prepared {
                    use catalog::store::schema::resources;
                    platform_store::Cached(diesel::insert_into(resources::table).values(&row))
                        .execute(&mut *c)
                        .await
                        .unwrap();
                } else {
                    row.insert(&mut c).await.unwrap();
                }
            }
        })
    });
    futures::future::join_all(tasks).await;
    (n / writers * writers) as f64 / started.elapsed().as_secs_f64()
}

/// (a) pipeline rate: `n` resources published through `state` by `writers` concurrent writers,
/// until the consumer applied every event.
async fn pipeline_rate(rig: &Rig, state: &catalog::app::State, n: usize, writers: usize, base: usize) -> f64 {
    let ids = rig.submitted(base, n / writers * writers).await;
    let before = rig.applied().await;
    let started = Instant::now();
    let chunks: Vec<Vec<uuid::Uuid>> = ids.chunks(n / writers).map(|c| c.to_vec()).collect();
    let tasks = chunks.into_iter().map(|chunk| {
        let state = state.clone();
        tokio::spawn(async move {
            let admin = caller(Role::DataAdmin);
            for id in chunk {
                catalog::app::publish_resource(&state, &admin, id).await.unwrap();
            }
        })
    });
    futures::future::join_all(tasks).await;
    let written = started.elapsed();
    while rig.applied().await < before + ids.len() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pipeline = ids.len() as f64 / started.elapsed().as_secs_f64();
    let writes = ids.len() as f64 / written.as_secs_f64();
    println!(
        "    publications committed at {writes:.0}/s; the consumer finished {:.0} ms after the last commit",
        (started.elapsed() - written).as_secs_f64() * 1000.0,
    );
    pipeline
}

/// The publish writes without any messaging: the same one-statement guarded write as
/// `publish_resource` (state change, version history), starting from the row the replica holds
/// since the submission, minus the outbox row; no relay or consumer work follows.
async fn publish_writes_without_outbox(rig: &Rig, n: usize, writers: usize, base: usize) -> f64 {
    let ids = rig.submitted(base + 2_000_000, n / writers * writers).await;
    let started = Instant::now();
    let tasks = ids.chunks(n / writers).map(|c| c.to_vec()).map(|chunk| {
        let state = rig.state.clone();
        tokio::spawn(async move {
            let mut pooled = platform_store::conn(&state.pool).await.unwrap();
            for id in chunk {
                let conn: &mut AsyncPgConnection = &mut pooled;
                let (mut row, xmin) = match state.recent.take(&id) {
                    Some(held) => held,
                    None => catalog::store::ResourceRow::find_versioned(conn, id).await.unwrap(),
                };
                row.state = "published".into();
                row.version += 1;
                row.published_at = Some(chrono_now());
                row.updated_at = chrono_now();
                let mut write = platform_messaging::AtomicWrite::guarded(row.guarded_update(xmin));
                write.write(row.version_row("bench").unwrap());
                assert!(matches!(write.commit(conn).await.unwrap(), platform_messaging::Committed::Done { .. }));
            }
        })
    });
    futures::future::join_all(tasks).await;
    ids.len() as f64 / started.elapsed().as_secs_f64()
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// (b) commit-to-consumer latency at `rate` events/s for `secs` seconds.
async fn latency_at(rig: &Rig, rate: u64, secs: u64, base: usize) -> (f64, f64, usize) {
    let total = (rate * secs) as usize;
    let ids = rig.submitted(base, total).await;
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for (i, id) in ids.into_iter().enumerate() {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let state = rig.state.clone();
        let committed = committed.clone();
        handles.push(tokio::spawn(async move {
            catalog::app::publish_resource(&state, &caller(Role::DataAdmin), id).await.unwrap();
            committed.lock().unwrap().insert(id.to_string(), Instant::now());
        }));
    }
    futures::future::join_all(handles).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = {
            let seen = rig.seen.lock().unwrap();
            committed.lock().unwrap().keys().all(|k| seen.contains_key(k))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = rig.seen.lock().unwrap();
    let mut lat: Vec<f64> = committed
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(k, c)| seen.get(k).map(|s| s.saturating_duration_since(*c).as_secs_f64() * 1000.0))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    (pct(&lat, 0.50), pct(&lat, 0.99), lat.len())
}

/// 100,000 published resources with Chinese names, inserted in bulk.
async fn load_resources(pool: &platform_store::Pool, n: usize) {
    let mut c = platform_store::conn(pool).await.unwrap();
    let sql = format!(
        "INSERT INTO resources (id, jurisdiction, code, name, source_unit, sector, format, update_frequency, open_category, \
         security_grade, fields, provenance, state, version, authorizable, created_by, published_at) \
         SELECT uuidv7_like(i), '610000', 'L-' || i, \
           (ARRAY['西安市','宝鸡市','咸阳市','渭南市','延安市','汉中市','榆林市','安康市','商洛市','铜川市'])[1 + i % 10] || \
           (ARRAY['企业登记','公交刷卡','不动产登记','医保结算','气象观测','社保缴纳','税务申报','用电','用水','交通违法'])[1 + (i / 10) % 10] || \
           '数据' || i, '基准单位', (ARRAY['market_regulation','transport','health','meteorology'])[1 + i % 4], 'table', 'daily', \
           (ARRAY['unconditional','conditional','not_open'])[1 + i % 3], 'general', \
           '[{{\"name\":\"a\",\"data_type\":\"text\",\"sensitivity\":\"none\"}}]'::jsonb, '{{\"kind\":\"collected\"}}'::jsonb, \
           'published', 1, i % 3 <> 2, 'bench', now() \
         FROM generate_series(1, {n}) AS i"
    );
    diesel::sql_query(
        "CREATE OR REPLACE FUNCTION uuidv7_like(i bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS \
         $$ SELECT (lpad(to_hex(1700000000000 + i), 12, '0') || '7000' || '8000' || lpad(to_hex(i), 12, '0'))::uuid $$",
    )
    .execute(&mut *c)
    .await
    .unwrap();
    diesel::sql_query(sql).execute(&mut *c).await.unwrap();
    // The catalog as it is once autovacuum has seen the load (statistics, visibility map, the
    // trigram index's pending entries merged), rather than autovacuum working through 100,000
    // new rows and the dead versions (a) left while (c) measures.
    diesel::sql_query("VACUUM (ANALYZE) resources").execute(&mut *c).await.unwrap();
}

/// Open-loop load: request i is due at start + i/rate; latency counts from that time.
async fn http_at(urls: Vec<String>, token: String, rate: u64, secs: u64) -> (f64, f64, usize, usize) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let total = (rate * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, url, token) = (http.clone(), urls[i % urls.len()].clone(), token.clone());
        handles.push(tokio::spawn(async move {
            let ok = http.get(url).bearer_auth(token).send().await.map(|r| r.status().is_success()).unwrap_or(false);
            (due.elapsed().as_secs_f64() * 1000.0, ok)
        }));
    }
    let results = futures::future::join_all(handles).await;
    let mut lat: Vec<f64> = Vec::with_capacity(total);
    let mut errors = 0;
    for (l, ok) in results.into_iter().flatten() {
        lat.push(l);
        if !ok {
            errors += 1;
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (pct(&lat, 0.50), pct(&lat, 0.99), lat.len(), errors)
}

/// An authorization service with one active agreement over one resource, for (d) and (e).
struct AuthRig {
    running: platform_runtime::Running,
    state: authorization::app::State,
    agreement: uuid::Uuid,
    resource: uuid::Uuid,
}

async fn auth_rig() -> AuthRig {
    let db = kit::database("authorization", authorization::MIGRATIONS).await;
    let settings = kit::settings(&db, &[("database.pool_size", "16"), ("http.workers", "2")]);
    let running = authorization::run(settings.clone()).await.unwrap();
    let state = authorization::app::State {
        pool: running.pool.clone(),
        relay: running.relay.clone(),
        calendar: platform_calendar::Calendar::official(),
        topic_prefix: settings.kafka.topic_prefix.clone(),
    };
    let (agreement, resource) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // Rows made here record the profile version in force (versions follow the profile files).
    let mut c = platform_store::conn(&state.pool).await.unwrap();
    for sql in [
        format!(
            "INSERT INTO catalog_resources (id, jurisdiction, code, name, version, open_category, authorizable, withdrawn, fields, event_version) \
             VALUES ('{resource}', '610000', 'B-1', '基准资源', 1, 'unconditional', true, false, \
             '[{{\"name\":\"a\",\"sensitivity\":\"SENSITIVITY_NONE\"}}]', 1)"
        ),
        format!(
            "INSERT INTO agreements (id, jurisdiction, operator_org, operator_name, state, scope, resource_ids, products, term_start, term_end, profile_version, created_by) \
             VALUES ('{agreement}', '610000', 'org-bench', '基准运营机构', 'active', '[{{\"resource_id\":\"{resource}\",\"fields\":[\"a\"]}}]', \
             ARRAY['{resource}'::uuid], '[\"p\"]', current_date - 30, current_date + 700, (SELECT max(version) FROM profile_versions WHERE jurisdiction = '610000'), 'bench')"
        ),
    ] {
        diesel::sql_query(sql).execute(&mut *c).await.unwrap();
    }
    AuthRig { running, state, agreement, resource }
}

impl AuthRig {
    /// Adds `n` grants, `due` of them past their validity.
    async fn add_grants(&self, n: usize, due: usize) {
        let mut c = platform_store::conn(&self.state.pool).await.unwrap();
        let request = uuid::Uuid::now_v7();
        diesel::sql_query(format!(
            "INSERT INTO data_requests (id, agreement_id, jurisdiction, requester_org, requested_by, scenario, scope, development_plan, valid_until, state, needs_joint_review, profile_version) \
             VALUES ('{request}', '{}', '610000', 'org-bench', 'bench', 's', '[]', 'p', current_date + 600, 'approved', false, (SELECT max(version) FROM profile_versions WHERE jurisdiction = '610000'))",
            self.agreement
        ))
        .execute(&mut *c)
        .await
        .unwrap();
        diesel::sql_query(format!(
            "INSERT INTO grants (id, agreement_id, request_id, jurisdiction, principal_org, operator_org, scenario, scope, min_group_size, valid_from, valid_until, state, profile_version, log_retention_months) \
             SELECT gen_random_uuid(), '{}', '{request}', '610000', 'org-bench', 'org-bench', '场景' || i, '[]', 10, current_date - 60, \
               CASE WHEN i <= {due} THEN current_date - 1 ELSE current_date + 30 END, 'active', \
               (SELECT max(version) FROM profile_versions WHERE jurisdiction = '610000'), 6 \
             FROM generate_series(1, {n}) AS i",
            self.agreement
        ))
        .execute(&mut *c)
        .await
        .unwrap();
        diesel::sql_query("ANALYZE grants").execute(&mut *c).await.unwrap();
    }

    async fn sweep(&self) -> (usize, Duration) {
        let started = Instant::now();
        let n = authorization::grants::expire_due(&self.state, authorization::grants::SWEEP_BATCH).await.unwrap();
        (n, started.elapsed())
    }
}

/// Registers the operator's person `op` (with the signed confidentiality agreement) and has the
/// data management department verify them: a grant names verified staff only (NS-14).
async fn verified_staff(http: &reqwest::Client, base: &str, operator: &str) {
    let body = serde_json::json!({
        "subject": "op", "name": "基准人员", "id_document_tail": "123X",
        "confidentiality_agreement": {"reference": "保密协议-基准", "signed_on": platform_calendar::today_in_china()}
    });
    let r = http.post(format!("{base}/operator-staff")).bearer_auth(operator).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "register staff");
    let staff: serde_json::Value = r.json().await.unwrap();
    let admin = kit::token("admin", "610000", &[Role::DataAdmin]);
    let r = http
        .post(format!("{base}/operator-staff/{}/verification", staff["id"].as_str().unwrap()))
        .bearer_auth(admin)
        .json(&serde_json::json!({"reference": "备案-基准"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "verify staff");
}

/// (e) scenario request → two approvals → grant, over HTTP, `clients` at a time.
async fn request_to_grant(rig: &AuthRig, total: usize, clients: usize) -> f64 {
    let base = rig.running.url();
    let operator = kit::token("op", "610000", &[Role::Operator]);
    // The operator token's org is `org-op`; the rig's agreement belongs to it for this run.
    {
        let mut c = platform_store::conn(&rig.state.pool).await.unwrap();
        diesel::sql_query(format!("UPDATE agreements SET operator_org = 'org-op' WHERE id = '{}'", rig.agreement))
            .execute(&mut *c)
            .await
            .unwrap();
    }
    let institution = kit::token("inst", "610000", &[Role::ImplementingInstitution]);
    let source = kit::token("src", "610000", &[Role::DataSourceUnit]);
    let http = reqwest::Client::new();
    verified_staff(&http, &base, &operator).await;
    let body = serde_json::json!({
        "agreement_id": rig.agreement, "scenario": "基准场景",
        "scope": [{"resource_id": rig.resource, "fields": ["a"]}],
        "development_plan": "p", "valid_until": (chrono::Utc::now() + chrono::Duration::days(100)).date_naive().to_string()
    });
    let started = Instant::now();
    let tasks = (0..clients).map(|_| {
        let (http, base, body) = (http.clone(), base.clone(), body.clone());
        let (operator, institution, source) = (operator.clone(), institution.clone(), source.clone());
        tokio::spawn(async move {
            for _ in 0..total / clients {
                let r: serde_json::Value = http
                    .post(format!("{base}/data-requests"))
                    .bearer_auth(&operator)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let id = r["id"].as_str().unwrap_or_else(|| panic!("the data request was refused: {r}")).to_string();
                let ok = serde_json::json!({"decision": "approve", "opinion": "同意"});
                for t in [&institution, &source] {
                    let r = http
                        .post(format!("{base}/data-requests/{id}/decision"))
                        .bearer_auth(t)
                        .json(&ok)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                }
            }
        })
    });
    futures::future::join_all(tasks).await;
    (total / clients * clients) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(4000);
    // BENCH_ONLY=authorization runs (d) and (e) alone.
    if std::env::var("BENCH_ONLY").as_deref() != Ok("authorization") {
        catalog_benches(n).await;
    }
    // BENCH_ONLY=catalog runs (a) to (c), BENCH_ONLY=pipeline (a) alone.
    if !matches!(std::env::var("BENCH_ONLY").as_deref(), Ok("pipeline" | "catalog")) {
        authorization_benches().await;
    }
}

async fn catalog_benches(n: usize) {
    let rig = rig().await;
    // Warm up connections, the relay and the consumer group.
    let warm = rig.submitted(900_000, 50).await;
    for id in &warm {
        catalog::app::publish_resource(&rig.state, &caller(Role::DataAdmin), *id).await.unwrap();
    }
    while rig.applied().await < warm.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    println!("== platform foundation benchmarks (2-core machine, PostgreSQL and broker on the same host) ==");
    // One writer is the literal "insert loop"; eight concurrent writers show what group commit
    // does for each side. Each phase publishes `n` resources (4,000 by default: long enough for
    // this noisy machine).
    for (writers, events, base) in [(1, n, 10_000_000), (8, n, 20_000_000)] {
        let domain = publish_writes_without_outbox(&rig, events, writers, base).await;
        // The baseline is measured before and after the pipeline and the faster run counts, so
        // a slow moment of this shared machine cannot flatter the ratio.
        let bare_before = bare_inserts(&rig, events, writers, base, false).await;
        let pipeline = pipeline_rate(&rig, &rig.state, events, writers, base).await;
        let bare_after = bare_inserts(&rig, events, writers, base + 3_000_000, false).await;
        let bare = bare_before.max(bare_after);
        let ratio = pipeline / bare;
        println!(
            "(a) {writers} writer(s): outbox pipeline {pipeline:.0} events/s published->consumed vs a bare diesel insert loop of the same resource rows {bare:.0} rows/s ({events} each side; the baseline ran at {bare_before:.0} before and {bare_after:.0} after)"
        );
        let met = record(&format!("a.pipeline_ratio_{writers}w"), ratio, "ratio", Target::AtLeast(0.7));
        println!("    ratio {ratio:.2} (target >= 0.70): {}", verdict(met));
        record(&format!("a.pipeline_events_per_s_{writers}w"), pipeline, "events/s", Target::None);
        println!(
            "    the same publish writes without outbox, relay or consumer: {domain:.0}/s; pipeline/that {:.2} (the cost of messaging itself)",
            pipeline / domain
        );
        let cold = pipeline_rate(&rig, &rig.cold(), events, writers, base + 5_000_000).await;
        println!(
            "    a replica that holds no recent rows (every publication reads its row first, 2 round trips): {cold:.0} events/s, ratio {:.2}",
            cold / bare
        );
        let prepared = bare_inserts(&rig, events, writers, base + 6_000_000, true).await;
        println!(
            "    for reference, the insert loop with its statement prepared once per connection: {prepared:.0} rows/s; pipeline/that {:.2}",
            pipeline / prepared
        );
    }
    // BENCH_ONLY=pipeline stops after (a).
    if std::env::var("BENCH_ONLY").as_deref() == Ok("pipeline") {
        return;
    }

    // Latency figures are repeated three times and each run printed: one run of a noisy machine
    // is not a figure (issue 19).
    let mut p99s = Vec::new();
    for run in 1..=3 {
        // Each run publishes resources of its own (resource codes are unique).
        let (p50, p99, count) = latency_at(&rig, 500, 10, run * 100_000).await;
        println!(
            "(b) run {run}: commit-to-consumer latency at 500 events/s over 10 s ({count} events): p50 {p50:.1} ms, p99 {p99:.1} ms"
        );
        p99s.push(p99);
    }
    let p99 = median(&p99s);
    let met = record("b.commit_to_consumer_p99_ms", p99, "ms", Target::AtMost(50.0));
    println!("(b) median p99 of 3 runs {p99:.1} ms (target p99 < 50 ms): {}", verdict(met));

    load_resources(&rig.state.pool, 100_000).await;
    let base = rig.catalog.url();
    let token = kit::token("bench-operator", "610000", &[Role::Operator]);
    let queries: Vec<String> = [
        "/resources?q=%E4%BC%81%E4%B8%9A%E7%99%BB%E8%AE%B0", // 企业登记
        "/resources?q=%E5%AE%9D%E9%B8%A1%E5%B8%82%E7%94%A8%E6%B0%B4", // 宝鸡市用水
        "/resources?sector=transport&limit=20",
        "/resources?open_category=conditional&authorizable=true",
        "/resources?q=%E6%95%B0%E6%8D%AE12345", // 数据12345
        "/resources",
    ]
    .iter()
    .map(|q| format!("{base}{q}"))
    .collect();
    let rate: u64 = std::env::var("BENCH_SEARCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let (mut search, mut health, mut failed) = (Vec::new(), Vec::new(), 0);
    for run in 1..=3 {
        let (h50, h99, hn, _) = http_at(vec![format!("{base}/healthz")], token.clone(), rate, 5).await;
        let (s50, s99, sn, errors) = http_at(queries.clone(), token.clone(), rate, 10).await;
        println!(
            "(c) run {run}: HTTP search at {rate} req/s over 100,000 resources ({sn} requests, {errors} errors): p50 {s50:.1} ms, p99 {s99:.1} ms; /healthz ({hn} requests) p50 {h50:.1} ms, p99 {h99:.1} ms"
        );
        search.push(s99);
        health.push(h99);
        failed += errors;
    }
    let (s99, h99) = (median(&search), median(&health));
    let met = record("c.search_p99_ms", s99, "ms", Target::AtMost(20.0)) && failed == 0;
    record("c.healthz_p99_ms", h99, "ms", Target::None);
    println!(
        "(c) median p99 of 3 runs: search {s99:.1} ms, {failed} errors (target p99 < 20 ms, no errors): {}; /healthz {h99:.1} ms, ratio {:.1}",
        verdict(met),
        s99 / h99
    );

    let _ = rig.stop.send(true);
    drop(rig.consumer_pool);
    rig.catalog.stop().await;
}

async fn authorization_benches() {
    // (d) the grant expiry sweep: cost follows the number due, not the number stored.
    let small = auth_rig().await;
    small.add_grants(10_000, 1_000).await;
    let (n1, t1) = small.sweep().await;
    small.running.stop().await;
    let big = auth_rig().await;
    big.add_grants(100_000, 1_000).await;
    let (n2, t2) = big.sweep().await;
    let all = auth_rig().await;
    all.add_grants(100_000, 100_000).await;
    let (n4, t4) = all.sweep().await;
    all.running.stop().await;
    big.add_grants(100_000, 10_000).await;
    let (n3, t3) = big.sweep().await;
    println!(
        "(d) grant expiry sweep: {n1} due of 10,000 stored {:.0} ms; {n2} due of 100,000 stored {:.0} ms (stored x10: x{:.1}); \
         {n3} due of 200,000 stored {:.0} ms (due x10: x{:.1}); all {n4} of 100,000 due {:.2} s (target < 5 s): {}",
        t1.as_secs_f64() * 1000.0,
        t2.as_secs_f64() * 1000.0,
        t2.as_secs_f64() / t1.as_secs_f64(),
        t3.as_secs_f64() * 1000.0,
        t3.as_secs_f64() / t2.as_secs_f64(),
        t4.as_secs_f64(),
        verdict(record("d.sweep_100k_due_s", t4.as_secs_f64(), "s", Target::AtMost(5.0)))
    );

    // (e) request -> grant over HTTP.
    let rate = request_to_grant(&big, 400, 8).await;
    record("e.grants_per_s", rate, "grants/s", Target::None);
    println!(
        "(e) scenario request -> two approvals -> grant over HTTP, 8 clients: {rate:.0} grants/s (3 requests each)"
    );
    big.running.stop().await;
}
