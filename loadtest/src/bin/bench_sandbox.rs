//! `make bench`, sandbox gateway part (issue 4), each figure next to its baseline from the same run:
//!
//! (f) aggregate queries over a 1,000,000-row dataset through the gateway (check, rewrite,
//!     workspace role, suppression, audit, metering, HTTP) next to the same SQL run directly on
//!     PostgreSQL over the same workspace table — target: median ratio ≤ 1.2;
//! (g) the check-and-rewrite step alone — target: p99 < 1 ms;
//! (h) revocation: grant event produced → first refused query, with 1,000 other workspaces open
//!     — target: p99 < 25 ms (issue 19);
//! (i) overlap control (issue 22): the (f) queries through the gateway on a grant with 1,000
//!     earlier released answers, next to the statement the gateway ran before it had overlap
//!     control, directly on PostgreSQL — target: median ratio ≤ 1.3; and the memory the row sets
//!     of 1,000 answers take.
//!
//! Plus the load throughput of the 1,000,000 rows (streamed CSV into COPY), for the record.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl as _;
use loadtest::{Target, median, pct, record, sorted, verdict};
use platform_auth::Role;
use platform_events::authorization::{Grant, GrantChange, GrantEvent, GrantState, ScopeItem};
use platform_events::{Envelope, EventMeta, topics};
use platform_testkit as kit;
use serde_json::json;

const JURISDICTION: &str = "610100";

const FIELDS: &str = r#"[
  {"name":"district","data_type":"text","sensitivity":"none","pii_kind":"none"},
  {"name":"age","data_type":"integer","sensitivity":"none","pii_kind":"none"},
  {"name":"income","data_type":"decimal","sensitivity":"none","pii_kind":"none"},
  {"name":"id_card","data_type":"text","sensitivity":"sensitive_personal","pii_kind":"id_card"},
  {"name":"phone","data_type":"text","sensitivity":"personal","pii_kind":"phone"}
]"#;

/// The aggregate queries of (f).
const QUERIES: &[&str] = &[
    "SELECT district, count(*), avg(age) FROM people GROUP BY district",
    "SELECT district, count(DISTINCT id_card) FROM people WHERE age > 40 GROUP BY district",
    "SELECT age, sum(income), count(*) FROM people GROUP BY age ORDER BY age",
    "SELECT count(*), avg(income) FROM people WHERE district = '区3'",
    "SELECT district, max(income), min(age) FROM people WHERE income > 5000 AND age < 60 GROUP BY district",
];

struct Rig {
    gateway: platform_runtime::Running,
    http: reqwest::Client,
    /// One producer for every grant event (a new one first spends ~100 ms connecting).
    publisher: kit::Publisher,
}

impl Rig {
    async fn resource(&self, code: &str) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        let mut c = platform_store::conn(&self.gateway.pool).await.unwrap();
        // The catalog's read model, as catalog.resource.v1 would leave it.
        diesel::sql_query(format!(
            "INSERT INTO resources (id, jurisdiction, code, name, version, open_category, withdrawn, fields, event_version) \
             VALUES ('{id}', '{JURISDICTION}', '{code}', '人口样本', 1, 'conditional', false, '{FIELDS}'::jsonb, 1)"
        ))
        .execute(&mut c)
        .await
        .unwrap();
        id
    }

    async fn load_rows(&self, resource: uuid::Uuid, rows: usize) -> f64 {
        let mut csv = String::with_capacity(rows * 60);
        csv.push_str("district,age,income,id_card,phone\n");
        for i in 0..rows {
            csv.push_str(&format!(
                "区{},{},{}.25,6101{:02}1980{:08},139{:08}\n",
                i % 16,
                18 + i % 70,
                1000 + (i * 7919) % 9000,
                i % 30,
                i,
                i
            ));
        }
        let started = Instant::now();
        let r = self
            .http
            .post(format!("{}/datasets/{resource}/loads?format=csv", self.gateway.url()))
            .bearer_auth(kit::token("loader", JURISDICTION, &[Role::DataSourceUnit]))
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
        rows as f64 / started.elapsed().as_secs_f64()
    }

    async fn grant_event(&self, grant: &Grant, change: GrantChange, version: u64) {
        let ev = GrantEvent { change: change as i32, grant: Some(grant.clone()), ..Default::default() };
        let env = Envelope::wrap(
            EventMeta {
                event_type: "authorization.grant.changed".into(),
                aggregate_id: grant.id.clone(),
                aggregate_version: version,
                producer: "bench".into(),
                jurisdiction: JURISDICTION.into(),
            },
            &ev,
        );
        self.publisher.publish(topics::AUTHORIZATION_GRANT, &env).await;
    }

    async fn opened(&self, grant: &Grant) {
        let url = format!("{}/workspaces/{}", self.gateway.url(), grant.id);
        let token = operator();
        for _ in 0..3000 {
            let r = self.http.get(&url).bearer_auth(&token).send().await.unwrap();
            if r.status().is_success() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("workspace {} did not open", grant.id);
    }

    async fn query(&self, grant: &Grant, sql: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}/workspaces/{}/queries", self.gateway.url(), grant.id))
            .bearer_auth(operator())
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }
}

fn operator() -> String {
    kit::token("op", JURISDICTION, &[Role::Operator])
}

fn grant(resource: uuid::Uuid) -> Grant {
    Grant {
        id: uuid::Uuid::now_v7().to_string(),
        agreement_id: uuid::Uuid::now_v7().to_string(),
        jurisdiction: JURISDICTION.into(),
        principal_org: "org-op".into(),
        scenario: "bench".into(),
        scope: vec![ScopeItem { resource_id: resource.to_string(), fields: vec![] }],
        min_group_size: 10,
        valid_until: "2027-12-31".into(),
        state: GrantState::Active as i32,
        log_retention_months: 6,
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows: usize = std::env::var("BENCH_SANDBOX_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let db = kit::database("sandbox_bench", sandbox_gateway::MIGRATIONS).await;
    let settings = kit::settings(&db, &[("database.pool_size", "8"), ("http.workers", "2")]);
    let gateway = sandbox_gateway::run(settings.clone()).await.unwrap();
    let rig = Rig { gateway, http: reqwest::Client::new(), publisher: kit::Publisher::new(&settings) };

    // The dataset and its workspace.
    let big = rig.resource("people").await;
    let rate = rig.load_rows(big, rows).await;
    println!("sandbox load: {rows} rows streamed as CSV into COPY at {rate:.0} rows/s");
    let g = grant(big);
    let started = Instant::now();
    rig.grant_event(&g, GrantChange::Granted, 1).await;
    rig.opened(&g).await;
    println!(
        "sandbox workspace of {rows} masked rows opened {:.1} s after the grant event",
        started.elapsed().as_secs_f64()
    );

    // (f) through the gateway vs directly on PostgreSQL, alternating, same table.
    let schema = format!("ws_{}", uuid::Uuid::parse_str(&g.id).unwrap().simple());
    let (direct, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    direct.batch_execute(&format!("SET search_path = {schema}")).await.unwrap();
    let rounds = 7;
    let mut ratios = Vec::new();
    println!("(f) aggregate queries over {rows} rows, median of {rounds} runs each (gateway vs direct PostgreSQL):");
    for sql in QUERIES {
        let (mut via, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, body) = rig.query(&g, sql).await;
            assert_eq!(status, 200, "{sql}: {body}");
            via.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            direct.query(*sql, &[]).await.unwrap();
            raw.push(t.elapsed().as_secs_f64());
        }
        let (v, r) = (pct(&sorted(via), 0.5), pct(&sorted(raw), 0.5));
        ratios.push(v / r);
        println!("    {:>7.1} ms vs {:>7.1} ms  ratio {:.2}  {sql}", v * 1e3, r * 1e3, v / r);
    }
    let ratio = pct(&sorted(ratios), 0.5);
    let met = record("f.gateway_over_direct_ratio", ratio, "ratio", Target::AtMost(1.2));
    println!("(f) median ratio gateway/direct: {ratio:.2} (target <= 1.2: {})", verdict(met));

    overlap_control(&rig, &direct, big, rows).await;

    // (g) the check and rewrite alone, on the workspace's own relations.
    let relations = vec![sandbox_gateway::check::Relation {
        name: "people".into(),
        unconditional: false,
        columns: ["district", "age", "income", "id_card", "phone"]
            .iter()
            .map(|c| sandbox_gateway::check::Column {
                name: c.to_string(),
                sensitive: c.contains("id") || *c == "phone",
            })
            .collect(),
    }];
    let mut times = Vec::with_capacity(20_000);
    for i in 0..20_000 {
        let sql = QUERIES[i % QUERIES.len()];
        let t = Instant::now();
        let checked = sandbox_gateway::check::check(sql, &relations, 10_000);
        times.push(t.elapsed().as_secs_f64());
        assert!(checked.is_ok());
    }
    let times = sorted(times);
    let (p50, p99) = (pct(&times, 0.5) * 1e3, pct(&times, 0.99) * 1e3);
    let met = record("g.check_p99_ms", p99, "ms", Target::AtMost(1.0));
    println!("(g) check and rewrite: p50 {p50:.3} ms, p99 {p99:.3} ms (target p99 < 1 ms: {})", verdict(met));

    // (h) revocation: event produced → first refused query, over small workspaces, with
    // BENCH_OPEN_WORKSPACES (1,000) other workspaces open beside them.
    let small = rig.resource("people_small").await;
    rig.load_rows(small, 2_000).await;
    let open: usize = std::env::var("BENCH_OPEN_WORKSPACES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let started = Instant::now();
    let others: Vec<Grant> = (0..open).map(|_| grant(small)).collect();
    for g in &others {
        rig.grant_event(g, GrantChange::Granted, 1).await;
    }
    for g in &others {
        rig.opened(g).await;
    }
    println!("(h) {open} other workspaces opened in {:.1} s", started.elapsed().as_secs_f64());
    let mut p99s = Vec::new();
    for run in 1..=3 {
        let mut lat = Vec::new();
        for _ in 0..20 {
            let g = grant(small);
            rig.grant_event(&g, GrantChange::Granted, 1).await;
            rig.opened(&g).await;
            let mut revoked = g.clone();
            revoked.state = GrantState::Revoked as i32;
            let t = Instant::now();
            rig.grant_event(&revoked, GrantChange::Revoked, 2).await;
            loop {
                let (status, _) = rig.query(&g, "SELECT district, count(*) FROM people_small GROUP BY district").await;
                if status == 409 {
                    break;
                }
                assert_eq!(status, 200);
                if t.elapsed() > Duration::from_secs(30) {
                    panic!("revocation not seen after 30 s");
                }
            }
            lat.push(t.elapsed().as_secs_f64());
        }
        let lat = sorted(lat);
        let (p50, p99) = (pct(&lat, 0.5) * 1e3, pct(&lat, 0.99) * 1e3);
        println!("(h) run {run}: revocation to first refused query, 20 grants: p50 {p50:.0} ms, p99 {p99:.0} ms");
        p99s.push(p99);
    }
    let p99 = median(&p99s);
    let met = record("h.revocation_p99_ms", p99, "ms", Target::AtMost(25.0));
    println!(
        "(h) median p99 of 3 runs with {open} workspaces open: {p99:.0} ms (target p99 < 25 ms: {})",
        verdict(met)
    );
    rig.gateway.stop().await;
}

/// (i): a grant whose history holds `BENCH_OVERLAP_ANSWERS` (1,000) released answers, the
/// workspace's (district, age) cells (about 900 rows each over 1,000,000 rows), written the way
/// the gateway writes them; then the (f) queries through the gateway on that grant against the
/// statement the gateway ran before overlap control (`check_with(…, false)`), directly.
async fn overlap_control(rig: &Rig, direct: &tokio_postgres::Client, resource: uuid::Uuid, rows: usize) {
    let answers: usize = std::env::var("BENCH_OVERLAP_ANSWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let g = grant(resource);
    rig.grant_event(&g, GrantChange::Granted, 1).await;
    rig.opened(&g).await;
    let grant_id = uuid::Uuid::parse_str(&g.id).unwrap();
    let schema = format!("ws_{}", grant_id.simple());
    let mut c = platform_store::conn(&rig.gateway.pool).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Rels {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        relations: serde_json::Value,
    }
    let rels: Rels = diesel::sql_query(format!("SELECT relations FROM workspaces WHERE grant_id = '{grant_id}'"))
        .get_result(&mut c)
        .await
        .unwrap();
    let stored: Vec<sandbox_gateway::workspaces::StoredRelation> = serde_json::from_value(rels.relations).unwrap();
    let versions = sandbox_gateway::store::released::data_versions(&stored);
    let cells = direct
        .query(
            &format!("SELECT array_agg(__sbx_rid) FROM {schema}.people GROUP BY district, age ORDER BY district, age"),
            &[],
        )
        .await
        .unwrap();
    let mut sets = Vec::with_capacity(answers);
    for (i, row) in cells.iter().cycle().take(answers).enumerate() {
        let mut set = sandbox_gateway::domain::overlap::RowSet::new();
        // Past the cells' count the same cells again, each as another answer's group.
        sandbox_gateway::domain::overlap::add_rows(&mut set, 0, row.get::<_, Vec<Option<i32>>>(0));
        sets.push((-(answers as i64) + i as i64, set));
    }
    let bytes: usize = sets.iter().map(|(_, s)| s.serialized_size()).sum();
    let cell_rows = sets.iter().map(|(_, s)| s.len()).sum::<u64>() / sets.len().max(1) as u64;
    for chunk in sets.chunks(200) {
        let mut tx = platform_store::conn(&rig.gateway.pool).await.unwrap();
        for (seq, set) in chunk {
            sandbox_gateway::store::released::ReleasedGroups::append(
                &mut tx,
                grant_id,
                &versions,
                *seq,
                std::slice::from_ref(set),
            )
            .await
            .unwrap();
        }
    }
    // One large group for scale: a district (1/16 of the rows), as (f)'s first query releases it.
    let district = direct
        .query(&format!("SELECT array_agg(__sbx_rid) FROM {schema}.people WHERE district = '区3'"), &[])
        .await
        .unwrap();
    let mut large = sandbox_gateway::domain::overlap::RowSet::new();
    sandbox_gateway::domain::overlap::add_rows(&mut large, 0, district[0].get::<_, Vec<Option<i32>>>(0));
    println!(
        "(i) memory: the row sets of {answers} answers of {cell_rows} rows each hold {:.1} MiB ({:.1} KiB per 1,000 rows \
         released); one of {} rows (a district) {:.0} KiB, so 1,000 such answers {:.0} MiB",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / (answers as f64 * cell_rows as f64 / 1000.0),
        large.len(),
        large.serialized_size() as f64 / 1024.0,
        large.serialized_size() as f64 * 1000.0 / 1048576.0
    );

    let relations: Vec<sandbox_gateway::check::Relation> = stored.iter().map(|r| r.for_check()).collect();
    direct.batch_execute(&format!("SET search_path = {schema}")).await.unwrap();
    let rounds = 5;
    let mut ratios = Vec::new();
    println!(
        "(i) the (f) queries over {rows} rows with {answers} earlier answers in the grant's history, median of {rounds} runs:"
    );
    for sql in QUERIES {
        let before = sandbox_gateway::check::check_with(sql, &relations, 10_000, false).unwrap().sql;
        let (mut via, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, body) = rig.query(&g, sql).await;
            assert_eq!(status, 200, "{sql}: {body}");
            assert_eq!(body["overlaps"].as_array().map(Vec::len), Some(0), "{sql}: {body}");
            via.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            direct.query(&before, &[]).await.unwrap();
            raw.push(t.elapsed().as_secs_f64());
        }
        let (v, r) = (pct(&sorted(via), 0.5), pct(&sorted(raw), 0.5));
        ratios.push(v / r);
        println!("    {:>7.1} ms vs {:>7.1} ms  ratio {:.2}  {sql}", v * 1e3, r * 1e3, v / r);
    }
    let ratio = pct(&sorted(ratios), 0.5);
    let met = record("i.overlap_control_ratio", ratio, "ratio", Target::AtMost(1.3));
    println!(
        "(i) median ratio gateway with overlap control / the statement before it: {ratio:.2} (target <= 1.3: {})",
        verdict(met)
    );
}
