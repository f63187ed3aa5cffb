//! The gateway end to end against a real PostgreSQL and broker: loads, workspaces per grant,
//! masking, checked queries with suppression, suspension, destruction, audit and metering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use platform_auth::Role;
use platform_events::authorization::GrantChange;
use platform_events::sandbox::{AuditEvent, AuditKind, UsageEvent};
use platform_events::{Envelope, topics};
use platform_testkit as kit;
use prost::Message as _;
use rdkafka::Message as _;
use serde_json::json;

async fn people(p: &Platform, rows: usize, districts: usize) -> String {
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;
    let r = p.load(&id, "csv", people_csv(rows, districts)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    id
}

fn relation(p: &str) -> String {
    let _ = p;
    "xa_mz_0001".into()
}

#[tokio::test]
async fn a_load_is_all_or_nothing_and_lists_rejected_lines_zjk_20() {
    let p = start().await;
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;
    let bad = "district,age,income,id_card,phone,name\n区1,30,1.5,a,b,c\n区2,thirty,2,a,b,c\n\"区3\",40,x,a,b,c\n";
    let r = p.load(&id, "csv", bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["type"].as_str().unwrap().rsplit('/').next(), Some("load-rejected"));
    assert_eq!(r.body["rule"], "ZJK-20");
    let lines: Vec<u64> = r.body["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4]);
    assert!(r.body["errors"][0]["reason"].as_str().unwrap().contains("age"));
    assert_eq!(p.count("SELECT count(*) AS n FROM datasets").await, 0, "nothing stored");
    assert_eq!(p.count("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'staged'").await, 0, "no table left");

    let r = p.load(&id, "csv", "district,age,unknown\n").await;
    assert_eq!(r.status, 422);
    assert!(r.body["errors"].to_string().contains("unknown"), "{}", r.body);

    let r = p.load(&id, "csv", people_csv(100, 4)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["dataset"]["version"], 1);
    assert_eq!(r.body["dataset"]["row_count"], 100);
    let jsonl = "{\"district\":\"区9\",\"age\":33,\"income\":1.25,\"id_card\":\"610101199001010011\",\"phone\":\"13900000000\",\"name\":\"李四\"}\n\n{\"district\":\"区9\",\"age\":null}\n";
    let r = p.load(&id, "jsonl", jsonl).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["dataset"]["version"].as_i64(), r.body["dataset"]["row_count"].as_i64()), (Some(2), Some(2)));
    let r = p.load(&id, "jsonl", "{\"district\": [1]}\nnot json\n").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);

    let unknown = uuid::Uuid::now_v7();
    assert_eq!(p.load(&unknown.to_string(), "csv", "a\n").await.status, 404);
    let versions =
        p.call("GET", &format!("/datasets/{id}/versions"), Some(&token(Role::DataSourceUnit, XIAN)), None).await;
    assert_eq!(versions.body.as_array().unwrap().len(), 2);
}

/// What real data source units send (first-contact issue, item 3): a byte-order mark before the
/// header, a NUL byte inside a field, JSON numbers for text fields. Each is either read as meant
/// or refused as bad input naming the line and field (ZJK-20), never a 5xx.
#[tokio::test]
async fn uploads_as_source_units_send_them_zjk_20() {
    let p = start().await;
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;

    let with_bom = format!("\u{feff}{}", people_csv(20, 2));
    let r = p.load(&id, "csv", with_bom).await;
    assert_eq!(r.status, 201, "a leading BOM is not part of the first column: {}", r.body);
    assert_eq!(r.body["dataset"]["row_count"], 20);

    let nul = "district,age,income,id_card,phone,name\n区1,30,1.5,a,b,c\n区2,31,2,a\u{0}b,b,c\n";
    let r = p.load(&id, "csv", nul).await;
    assert_eq!(r.status, 422, "a NUL byte is bad input, not an unavailable store: {}", r.body);
    assert_eq!(r.body["errors"][0]["line"], 3);
    let reason = r.body["errors"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("id_card") && reason.contains("NUL"), "{reason}");

    let jsonl = "\u{feff}{\"district\":\"区9\",\"age\":33,\"income\":\"1.25\",\"id_card\":\"610101199001010011\",\"phone\":\"13900000000\",\"name\":\"李四\"}\n";
    let r = p.load(&id, "jsonl", jsonl).await;
    assert_eq!(r.status, 201, "a BOM before JSON lines, a decimal as a string: {}", r.body);

    let numbers = "{\"district\":\"区9\",\"age\":33,\"id_card\":110101199001011234}\n{\"district\":\"区9\",\"age\":\"33\"}\n{\"district\":true}\n";
    let r = p.load(&id, "jsonl", numbers).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    let at = |i: usize| (errors[i]["line"].as_u64().unwrap(), errors[i]["reason"].as_str().unwrap().to_string());
    assert_eq!(errors.len(), 3, "{}", r.body);
    assert!(at(0).0 == 1 && at(0).1.contains("id_card") && at(0).1.contains("number"), "{:?}", at(0));
    assert!(at(1).0 == 2 && at(1).1.contains("age") && at(1).1.contains("string"), "{:?}", at(1));
    assert!(at(2).0 == 3 && at(2).1.contains("district"), "{:?}", at(2));
    let versions = p.count(&format!("SELECT count(*) AS n FROM datasets WHERE resource_id = '{id}'")).await;
    assert_eq!(versions, 2, "only the two accepted loads are stored");
}

#[tokio::test]
async fn a_grant_opens_a_masked_workspace_and_aggregates_run_zjk_19() {
    let p = start().await;
    let id = people(&p, 200, 4).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let ws = p.call("GET", &format!("/workspaces/{}", g.id), Some(&token(Role::Operator, XIAN)), None).await;
    assert_eq!(ws.status, 200, "{}", ws.body);
    assert_eq!(ws.body["state"], "open");
    let cols = &ws.body["relations"][0]["columns"];
    assert_eq!(cols[3]["name"], "id_card");
    assert_eq!(cols[3]["mask"], "id_card");

    // The workspace holds masked copies: region code, 3+4 phone digits, the surname.
    let schema = format!("ws_{}", uuid::Uuid::parse_str(&g.id).unwrap().simple());
    let masked = p
        .count(&format!(
            "SELECT count(*) AS n FROM {schema}.{} WHERE id_card ~ '^6101[0-9]{{2}}\\*{{12}}$' AND phone ~ '^139\\*{{4}}[0-9]{{4}}$' AND name ~ '^王\\*+$'",
            relation(&id)
        ))
        .await;
    assert_eq!(masked, 200);

    let r = p
        .query(&g, "SELECT district, count(*) AS people, count(DISTINCT id_card) AS ids, avg(age) FROM xa_mz_0001 GROUP BY district ORDER BY district")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["columns"], json!(["district", "people", "ids", "avg"]));
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["rows"][0][0], "区0");
    assert_eq!(r.body["rows"][0][1], 50);
    assert_eq!(r.body["suppressed_groups"], 0);
    assert_eq!(r.body["fields"], json!(["xa_mz_0001.age", "xa_mz_0001.district", "xa_mz_0001.id_card"]));

    // Another organisation's token, even an operator's, is refused and audited.
    let other = kit::token("someone", XIAN, &[Role::Operator]);
    let r = p.query_as(&other, &g, "SELECT count(*) FROM xa_mz_0001").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["rule"], "ZJK-21");
    assert!(
        p.count("SELECT count(*) AS n FROM audit_log WHERE principal = 'someone' AND decision = 'refused'").await == 1
    );
}

#[tokio::test]
async fn small_groups_are_suppressed_with_their_cover_wf_26() {
    let p = start().await;
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;
    // 区0: 40 rows, 区1: 30, 区2: 3 (small), 区3: 12 rows.
    let mut csv = String::from("district,age,income,id_card,phone,name\n");
    for (d, n) in [(0, 40), (1, 30), (2, 3), (3, 12)] {
        for i in 0..n {
            csv.push_str(&format!("区{d},{},1,6101011980010{d}{i:04},1390000{i:04},王{i}\n", 20 + i));
        }
    }
    assert_eq!(p.load(&id, "csv", csv).await.status, 201);
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;

    let r = p.query(&g, "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district ORDER BY district").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let districts: Vec<&str> = r.body["rows"].as_array().unwrap().iter().map(|row| row[0].as_str().unwrap()).collect();
    // 区2 is too small; alone it could be derived from the total, so the next smallest (区3) goes too.
    assert_eq!(districts, vec!["区0", "区1"]);
    assert_eq!(r.body["suppressed_groups"], 2);
    assert_eq!(r.body["min_group_rule"], "WF-26");

    // GROUP BY a unique key: every group has one row, all suppressed.
    let r = p.query(&g, "SELECT income + age AS k, count(*) FROM xa_mz_0001 WHERE district = '区2' GROUP BY k").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rows"], json!([]));

    // A WHERE that singles out one person: the count of one is suppressed.
    let r = p.query(&g, "SELECT count(*) FROM xa_mz_0001 WHERE district = '区0' AND age = 25").await;
    assert_eq!(r.body["rows"], json!([]), "{}", r.body);

    // Differencing two overlapping queries: all of 区0 (40) and all but one (39). The second
    // leaves out fewer than k rows, so it is suppressed and the difference cannot be taken.
    let all = p.query(&g, "SELECT count(*), avg(income) FROM xa_mz_0001 WHERE district = '区0'").await;
    assert_eq!(all.body["rows"][0][0], 40, "{}", all.body);
    let but_one =
        p.query(&g, "SELECT count(*), avg(income) FROM xa_mz_0001 WHERE district = '区0' AND age <> 25").await;
    assert_eq!(but_one.body["rows"], json!([]), "{}", but_one.body);
    assert_eq!(but_one.body["suppressed_groups"], 1);
    // The same with a single condition, per district: every district loses one person to
    // `age <> 25` (or is small), so every group goes (group totals from the reusable statement).
    for _ in 0..2 {
        let r = p.query(&g, "SELECT district, count(*) FROM xa_mz_0001 WHERE age <> 25 GROUP BY district").await;
        assert_eq!((r.body["rows"].clone(), r.body["suppressed_groups"].as_u64()), (json!([]), Some(4)), "{}", r.body);
    }
    // And a single condition that leaves out a whole group's worth or nothing passes.
    let r = p
        .query(&g, "SELECT district, count(*) FROM xa_mz_0001 WHERE age < 100 GROUP BY district ORDER BY district")
        .await;
    assert_eq!(r.body["rows"], json!([["区0", 40], ["区1", 30]]), "{}", r.body);

    // LIMIT cannot enumerate groups one by one past the suppression either.
    let r = p.query(&g, "SELECT age, count(*) FROM xa_mz_0001 GROUP BY age ORDER BY age LIMIT 1").await;
    assert_eq!(r.body["rows"], json!([]), "{}", r.body);
    assert!(p.count("SELECT count(*) AS n FROM audit_log WHERE decision = 'suppressed' AND rule = 'WF-26'").await >= 4);
}

#[tokio::test]
async fn suspension_closes_at_once_and_reinstatement_reopens_zjk_34() {
    let p = start().await;
    let id = people(&p, 100, 2).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let sql = "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district";
    assert_eq!(p.query(&g, sql).await.status, 200);

    // Queries race the suspension: each either finishes before it is recorded or is refused;
    // none that starts after it runs.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let http = p.http.clone();
            let url = format!("{}/workspaces/{}/queries", p.gateway.url(), g.id);
            let tok = token(Role::Operator, XIAN);
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for _ in 0..40 {
                    let r = kit::call(&http, &url, "POST", "", Some(&tok), Some(json!({ "sql": sql }))).await;
                    outcomes.push(r.status);
                    if r.status == 409 {
                        break;
                    }
                }
                outcomes
            })
        })
        .collect();
    let mut suspended = g.clone();
    suspended.state = platform_events::authorization::GrantState::Suspended as i32;
    p.grant_event(&suspended, GrantChange::Suspended, 2).await;
    // From here on the event is recorded: every query is refused.
    let r = p.query(&g, sql).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["rule"], "ZJK-34");
    for racer in racers {
        for status in racer.await.unwrap() {
            assert!(status == 200 || status == 409, "a racing query either ran or was refused, got {status}");
        }
    }
    let closed_at = p.count("SELECT max(seq) AS n FROM audit_log WHERE action = 'close'").await;
    let late = p
        .count(&format!("SELECT count(*) AS n FROM audit_log WHERE action = 'query' AND decision = 'allowed' AND seq > {closed_at} AND rows_read > 0 AND at_micros > (SELECT at_micros FROM audit_log WHERE seq = {closed_at}) + 1000000"))
        .await;
    assert_eq!(late, 0, "no query ran well after the close");

    let mut active = g.clone();
    active.state = platform_events::authorization::GrantState::Active as i32;
    p.grant_event(&active, GrantChange::Reinstated, 3).await;
    assert_eq!(p.query(&g, sql).await.status, 200);
}

/// Denning's tracker, the attack the first-contact review ran: over 1,000 people with minimum
/// 10, `A OR B` (30 people), `A` (15) and `B` (18) are each allowed on their own, and
/// `A + B − (A OR B)` would give the count and income total of the 3 people in `A AND B`, a
/// group the gateway suppresses when asked directly. Overlap control refuses the third answer
/// naming the earlier one it collides with (WF-26, ZJK-21), whoever of the grant's
/// organisation asks it, after a restart too; the history goes with the workspace (ZJK-31).
#[tokio::test]
async fn a_tracker_split_across_users_and_a_restart_is_refused_at_its_third_answer_wf_26() {
    let mut p = start().await;
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;
    assert_eq!(p.load(&id, "csv", people_csv(1000, 10)).await.status, 201);
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let total = |cond: &str| format!("SELECT count(*) AS n, sum(income) AS income FROM xa_mz_0001 WHERE {cond}");
    // income is 3000.50 + row: A = rows 0–14, B = rows 12–29, A AND B = rows 12–14.
    let (a, b) = ("income < 3015", "income > 3012 AND income < 3030");

    let direct = p.query(&g, &total("income > 3012 AND income < 3015")).await;
    assert_eq!((direct.status, direct.body["suppressed_groups"].as_u64()), (200, Some(1)), "{}", direct.body);

    let union = p.query(&g, &total(&format!("{a} OR ({b})"))).await;
    assert_eq!((union.status, union.body["rows"][0][0].as_i64()), (200, Some(30)), "{}", union.body);
    let first = p.query(&g, &total(a)).await;
    assert_eq!((first.status, first.body["rows"][0][0].as_i64()), (200, Some(15)), "{}", first.body);
    let first_seq = first.body["audit_seq"].as_i64().unwrap();

    // The gateway restarts: the history is in its database, not in the old process.
    p.gateway.stop().await;
    p.gateway = sandbox_gateway::run(p.settings.clone()).await.expect("gateway restarts");

    // A partner working for the same organisation asks the third question.
    let partner = kit::harness().issuer.token("partner-1", &org(Role::Operator, XIAN), XIAN, &[Role::Partner]).unwrap();
    let third = p.query_as(&partner, &g, &total(b)).await;
    assert_eq!(third.status, 422, "{}", third.body);
    let refusal = &third.body["errors"][0];
    assert_eq!((refusal["check"].as_str(), refusal["rule"].as_str()), (Some("overlap"), Some("ZJK-21")));
    let message = refusal["message"].as_str().unwrap();
    assert!(message.contains(&format!("#{first_seq}")), "names the earlier answer: {message}");
    assert!(!message.contains("3012.5") && !message.contains("3013.5"), "never the rows: {message}");
    let audited = p
        .count(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'query' AND decision = 'refused' AND rule = 'ZJK-21'",
        )
        .await;
    assert_eq!(audited, 1, "the refusal is in the audit log");

    // Groups clear of the earlier answers are released; a grouped answer loses only the groups
    // that collide (ages 20–49 each hold one of rows 0–29, which `A OR B` described).
    let clear = p.query(&g, "SELECT age, count(*) FROM xa_mz_0001 WHERE age >= 50 GROUP BY age").await;
    assert_eq!(clear.status, 200, "{}", clear.body);
    assert_eq!(
        (clear.body["rows"].as_array().map(Vec::len), clear.body["suppressed_groups"].as_u64()),
        (Some(20), Some(0))
    );
    let grouped = p.query(&g, "SELECT age, count(*) FROM xa_mz_0001 GROUP BY age").await;
    assert_eq!(grouped.status, 200, "{}", grouped.body);
    let overlaps = grouped.body["overlaps"].as_array().unwrap();
    assert_eq!(overlaps.len(), 30, "{}", grouped.body);
    assert!(overlaps.iter().all(|o| o["earlier_audit_seqs"].as_array().is_some_and(|s| !s.is_empty())));
    let ages: Vec<i64> = grouped.body["rows"].as_array().unwrap().iter().filter_map(|r| r[0].as_i64()).collect();
    assert_eq!(ages.len(), 20, "{}", grouped.body);
    assert!(ages.iter().all(|a| *a >= 50), "{ages:?}");

    let released = p.count(&format!("SELECT count(*) AS n FROM released_groups WHERE grant_id = '{}'", g.id)).await;
    assert!(released >= 3, "each released group is kept ({released})");
    let mut revoked = g.clone();
    revoked.state = platform_events::authorization::GrantState::Revoked as i32;
    p.grant_event(&revoked, GrantChange::Revoked, 2).await;
    let kept = p.count(&format!("SELECT count(*) AS n FROM released_groups WHERE grant_id = '{}'", g.id)).await;
    assert_eq!(kept, 0, "the history is destroyed with the workspace");
}

/// A workspace made before relations carried row ids (a `make run` directory of an earlier
/// version) is rebuilt when the gateway starts, so its aggregates keep answering under overlap
/// control.
#[tokio::test]
async fn a_workspace_without_row_ids_is_rebuilt_at_start() {
    let mut p = start().await;
    let id = people(&p, 120, 3).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let schema = format!("ws_{}", uuid::Uuid::parse_str(&g.id).unwrap().simple());
    p.exec_sql(&format!("ALTER TABLE {schema}.{} DROP COLUMN __sbx_rid", relation(&id))).await.unwrap();
    let sql = "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district";
    assert_ne!(p.query(&g, sql).await.status, 200, "an old relation cannot give row ids");
    p.gateway.stop().await;
    p.gateway = sandbox_gateway::run(p.settings.clone()).await.expect("gateway restarts");
    let r = p.query(&g, sql).await;
    assert_eq!((r.status, r.body["rows"].as_array().map(Vec::len)), (200, Some(3)), "{}", r.body);
}

#[tokio::test]
async fn revocation_destroys_the_workspace_and_records_it_zjk_31() {
    let p = start().await;
    let id = people(&p, 120, 3).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let schema = format!("ws_{}", uuid::Uuid::parse_str(&g.id).unwrap().simple());
    assert_eq!(p.count(&format!("SELECT count(*) AS n FROM pg_namespace WHERE nspname = '{schema}'")).await, 1);
    let reader = kit::topic_reader(&p.settings, topics::SANDBOX_AUDIT);

    let mut revoked = g.clone();
    revoked.state = platform_events::authorization::GrantState::Revoked as i32;
    p.grant_event(&revoked, GrantChange::Revoked, 2).await;
    assert_eq!(p.count(&format!("SELECT count(*) AS n FROM pg_namespace WHERE nspname = '{schema}'")).await, 0);
    assert_eq!(p.count(&format!("SELECT count(*) AS n FROM pg_roles WHERE rolname = '{schema}'")).await, 0);
    assert_eq!(p.count("SELECT count(*) AS n FROM workspaces WHERE state = 'destroyed' AND logs_kept_until > now() + interval '5 months'").await, 1);
    let r = p.call("GET", "/destructions", Some(&token(Role::DataAdmin, XIAN)), None).await;
    assert_eq!(r.status, 200);
    let d = &r.body["items"][0];
    assert_eq!(d["rule"], "ZJK-31");
    assert_eq!(d["tables"][0]["rows"], 120);
    assert_eq!(d["tables"][0]["content_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(p.query(&g, "SELECT count(*) FROM xa_mz_0001").await.status, 409);

    // The destruction record is published for supervision.
    let ev = kit::eventually("the destruction event", Duration::from_secs(30), || async {
        let m = tokio::time::timeout(Duration::from_millis(500), reader.recv()).await.ok()?.ok()?;
        let env = Envelope::decode(m.payload()?).ok()?;
        let ev: AuditEvent = env.payload_as().ok()?;
        (ev.kind() == AuditKind::Destruction).then_some(ev)
    })
    .await;
    assert_eq!(ev.destroyed[0].rows, 120);

    // A redelivered revocation changes nothing.
    p.grant_event(&revoked, GrantChange::Revoked, 2).await;
    assert_eq!(p.count("SELECT count(*) AS n FROM destructions").await, 1);
}

#[tokio::test]
async fn tampering_with_one_audit_row_is_found_at_that_row_wf_30() {
    let p = start().await;
    let id = people(&p, 60, 2).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    for _ in 0..3 {
        p.query(&g, "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district").await;
    }
    p.query(&g, "SELECT id_card FROM xa_mz_0001").await;
    let admin = token(Role::DataAdmin, XIAN);
    let v = p.call("GET", "/audit/verify", Some(&admin), None).await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["intact"], true, "{}", v.body);
    let checked = v.body["checked"].as_i64().unwrap();
    assert!(checked >= 6, "{}", v.body);

    // The service's own role cannot change history: the trigger refuses.
    assert!(p.exec_sql("UPDATE audit_log SET decision = 'allowed' WHERE seq = 3").await.is_err());
    assert!(p.exec_sql("DELETE FROM audit_log WHERE seq = 3").await.is_err());

    // Someone who bypasses the trigger (a superuser disabling it) is still caught, at that row.
    let mut c = platform_store::conn(&p.gateway.pool).await.unwrap();
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    c.transaction::<_, diesel::result::Error, _>(async |c| {
        diesel::sql_query("SET LOCAL session_replication_role = replica").execute(c).await?;
        diesel::sql_query("UPDATE audit_log SET query = 'SELECT 1' WHERE seq = 4").execute(c).await?;
        Ok(())
    })
    .await
    .unwrap();
    let v = p.call("GET", "/audit/verify", Some(&admin), None).await;
    assert_eq!(v.body["intact"], false);
    assert_eq!(v.body["first_broken_seq"], 4, "{}", v.body);
}

#[tokio::test]
async fn each_executed_query_is_metered_and_refusal_bursts_alert_wf_30() {
    let p = start().await;
    let id = people(&p, 60, 2).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let usage = kit::topic_reader(&p.settings, topics::SANDBOX_USAGE);
    let audit = kit::topic_reader(&p.settings, topics::SANDBOX_AUDIT);
    let r = p.query(&g, "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district").await;
    assert_eq!(r.status, 200);
    let seq = r.body["audit_seq"].as_u64().unwrap();
    let ev = kit::eventually("a usage event", Duration::from_secs(30), || async {
        let m = tokio::time::timeout(Duration::from_millis(500), usage.recv()).await.ok()?.ok()?;
        let env = Envelope::decode(m.payload()?).ok()?;
        env.payload_as::<UsageEvent>().ok()
    })
    .await;
    assert_eq!((ev.audit_seq, ev.grant_id.as_str(), ev.rows_scanned, ev.rows_returned), (seq, g.id.as_str(), 60, 2));

    // The national profile's threshold (20, WF-30): twenty refusals raise one alert.
    for _ in 0..21 {
        assert_eq!(p.query(&g, "SELECT name FROM xa_mz_0001").await.status, 422);
    }
    let alert = kit::eventually("a refusal-burst alert", Duration::from_secs(30), || async {
        let m = tokio::time::timeout(Duration::from_millis(500), audit.recv()).await.ok()?.ok()?;
        let env = Envelope::decode(m.payload()?).ok()?;
        let ev: AuditEvent = env.payload_as().ok()?;
        (ev.kind() == AuditKind::RefusalBurst).then_some(ev)
    })
    .await;
    assert_eq!((alert.threshold, alert.rule.as_str()), (20, "WF-30"));
    assert_eq!(p.count("SELECT count(*) AS n FROM refusal_alerts").await, 1, "one alert per window");

    // What the dashboard and the alerts read is exported, with the service label.
    let m = p.http.get(format!("{}/metrics", p.gateway.url())).send().await.unwrap().text().await.unwrap();
    let svc = [("service", "sandbox-gateway")];
    assert_eq!(kit::metric_value(&m, "sandbox_queries_total", &[svc[0], ("decision", "allowed")]), Some(1.0));
    assert_eq!(kit::metric_value(&m, "sandbox_queries_total", &[svc[0], ("decision", "refused")]), Some(21.0));
    assert_eq!(kit::metric_value(&m, "sandbox_refusal_bursts_total", &svc), Some(1.0));
    assert!(
        kit::metric_value(&m, "sandbox_refusals_total", &[("check", "sensitive-field"), ("rule", "ZJK-21")])
            >= Some(21.0)
    );
    for family in [
        "sandbox_query_duration_seconds_count",
        "sandbox_check_duration_seconds_count",
        "sandbox_suppressed_groups_total",
        "sandbox_loaded_rows_total",
        "sandbox_audit_chain_broken",
        "sandbox_open_workspaces",
    ] {
        assert!(kit::metric_value(&m, family, &svc).is_some(), "{family} is exported");
    }
    assert!(kit::metric_value(&m, "sandbox_loads_total", &[svc[0], ("outcome", "stored")]) >= Some(1.0));
}

#[tokio::test]
async fn every_endpoint_refuses_the_roles_it_does_not_name() {
    let p = start().await;
    let id = uuid::Uuid::now_v7();
    let cases: Vec<(&str, String, &[Role])> = vec![
        ("POST", format!("/datasets/{id}/loads?format=csv"), sandbox_gateway::api::LOADERS),
        ("GET", format!("/datasets/{id}/versions"), sandbox_gateway::api::DATASET_READERS),
        ("GET", "/workspaces".into(), &[Role::Operator, Role::Partner, Role::DataAdmin, Role::PlatformAdmin]),
        ("GET", format!("/workspaces/{id}"), &[Role::Operator, Role::Partner, Role::DataAdmin, Role::PlatformAdmin]),
        ("POST", format!("/workspaces/{id}/queries"), sandbox_gateway::api::QUERIERS),
        ("POST", format!("/workspaces/{id}/checks"), sandbox_gateway::api::QUERIERS),
        ("POST", format!("/workspaces/{id}/jobs"), sandbox_gateway::api::QUERIERS),
        ("GET", format!("/workspaces/{id}/jobs/job-1"), sandbox_gateway::api::QUERIERS),
        ("GET", "/audit".into(), sandbox_gateway::api::SUPERVISORS),
        ("GET", "/audit/verify".into(), sandbox_gateway::api::SUPERVISORS),
        ("GET", "/destructions".into(), sandbox_gateway::api::SUPERVISORS),
    ];
    for (method, path, allowed) in cases {
        let body = (method == "POST").then(|| {
            if path.ends_with("/jobs") { json!({ "image": "platform/sql-job" }) } else { json!({ "sql": "SELECT 1" }) }
        });
        let r = p.call(method, &path, None, body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} without a token");
        for role in Role::ALL {
            let r = p.call(method, &path, Some(&token(role, XIAN)), body.clone()).await;
            if allowed.contains(&role) {
                assert_ne!(r.status, 403, "{method} {path} as {role:?}: {}", r.body);
            } else {
                assert_eq!(r.status, 403, "{method} {path} as {role:?}: {}", r.body);
            }
        }
    }
}

#[tokio::test]
async fn logs_stay_for_the_retention_period_then_are_purged_keeping_the_chain_wf_24() {
    let p = start().await;
    let id = people(&p, 40, 2).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    p.query(&g, "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district").await;
    let mut revoked = g.clone();
    revoked.state = platform_events::authorization::GrantState::Revoked as i32;
    p.grant_event(&revoked, GrantChange::Revoked, 2).await;
    let mine = format!("grant_id = '{}'", g.id);
    let kept = p.count(&format!("SELECT count(*) AS n FROM audit_log WHERE {mine}")).await;
    assert!(kept >= 3, "open, query, destroy are recorded");

    // Within the retention period nothing may be purged, not even by the service.
    let mut c = platform_store::conn(&p.gateway.pool).await.unwrap();
    assert_eq!(sandbox_gateway::audit::purge_expired(&mut c).await.unwrap(), 0);
    let early = format!(
        "UPDATE audit_log SET purged_at = now(), query = '', principal = '', principal_org = '', result_digest = '' WHERE {mine}"
    );
    assert!(p.exec_sql(&early).await.is_err(), "the trigger refuses an early purge");

    // Once the period has passed, the purge clears the content and the chain still verifies.
    p.exec_sql(&format!("UPDATE workspaces SET logs_kept_until = now() - interval '1 day' WHERE {mine}"))
        .await
        .unwrap();
    assert_eq!(sandbox_gateway::audit::purge_expired(&mut c).await.unwrap() as i64, kept);
    assert_eq!(
        p.count(&format!("SELECT count(*) AS n FROM audit_log WHERE {mine} AND query = '' AND purged_at IS NOT NULL"))
            .await,
        kept
    );
    let v = p.call("GET", "/audit/verify", Some(&token(Role::PlatformAdmin, XIAN)), None).await;
    assert_eq!(v.body["intact"], true, "{}", v.body);
    // A purged record may not be changed further.
    assert!(p.exec_sql(&format!("UPDATE audit_log SET decision = 'allowed' WHERE {mine}")).await.is_err());
}

#[tokio::test]
async fn one_trace_follows_a_query_through_http_the_database_and_kafka() {
    let p = start().await;
    let id = people(&p, 40, 2).await;
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let r = p.query(&g, "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district").await;
    assert_eq!(r.status, 200);
    let attr = |sp: &kit::SpanData, key: &str| {
        sp.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().to_string())
    };
    let (query, execute, append, publish) = kit::eventually("the query's spans", Duration::from_secs(20), || async {
        let all = kit::spans();
        let query = all
            .iter()
            .find(|s| s.name == "sandbox.query" && attr(s, "grant").as_deref() == Some(g.id.as_str()))?
            .clone();
        let child = |name: &str| {
            all.iter().find(|s| s.name == name && s.parent_span_id == query.span_context.span_id()).cloned()
        };
        let publish = all
            .iter()
            .find(|s| s.name == "outbox.publish" && s.span_context.trace_id() == query.span_context.trace_id())
            .cloned();
        Some((query.clone(), child("sandbox.execute")?, child("sandbox.audit_append")?, publish?))
    })
    .await;
    assert_eq!(attr(&execute, "db.system").as_deref(), Some("postgresql"));
    assert_eq!(append.span_context.trace_id(), query.span_context.trace_id());

    assert_eq!(
        publish.span_context.trace_id(),
        query.span_context.trace_id(),
        "the audit and usage events continue the trace"
    );
}

/// Client generators and API fuzzers load every operation (first-contact issue, item 2).
#[test]
fn every_reference_in_the_openapi_document_resolves() {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(sandbox_gateway::api::ApiDoc::openapi()).unwrap();
    platform_testkit::openapi::check("sandbox-gateway", &doc);
}
