//! The development environment's audit on sandbox.audit.v1: refusal bursts open supervision cases
//! (WF-30), destructions are recorded against their grants (ZJK-31), chain heads are ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{SHAANXI, active_grant, start};
use platform_auth::Role;
use platform_events::sandbox::{AuditEvent, AuditKind, DestroyedTable};
use platform_events::{Envelope, EventMeta, Message as _, topics};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

/// The gateway's envelope around an audit event, keyed as it keys them.
fn envelope(ev: &AuditEvent, key: &str) -> Vec<u8> {
    let kind = ev.kind().as_str_name().trim_start_matches("AUDIT_KIND_").to_lowercase();
    Envelope::wrap(
        EventMeta {
            event_type: format!("sandbox.audit.{kind}"),
            aggregate_id: key.into(),
            aggregate_version: 1,
            producer: "sandbox-gateway".into(),
            jurisdiction: ev.jurisdiction.clone(),
        },
        ev,
    )
    .encode_to_vec()
}

fn burst(principal: &str, org: &str, refusals: u32) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::RefusalBurst as i32,
        principal: principal.into(),
        principal_org: org.into(),
        jurisdiction: SHAANXI.into(),
        decision: "refused".into(),
        rule: "WF-30".into(),
        refusals,
        threshold: 20,
        reason: format!("{refusals} refused queries within the window (threshold 20)"),
        at: Some(platform_events::timestamp(chrono::Utc::now())),
        ..Default::default()
    }
}

async fn send(producer: &FutureProducer, topic: &str, key: &str, bytes: &[u8]) {
    producer.send(FutureRecord::to(topic).key(key).payload(bytes), Duration::from_secs(5)).await.unwrap();
}

async fn admin_get(p: &common::Platform, path: &str) -> Value {
    let r = p.auth_as(Role::DataAdmin, SHAANXI, "GET", path, None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_burst_opens_one_case_against_the_operator_wf_30_and_a_destruction_is_recorded_zjk_31() {
    let p = start().await;
    let (agreement, _, grant) = active_grant(&p, SHAANXI, "SX-S1").await;

    let producer: FutureProducer = platform_messaging::client_config(&p.auth_settings.kafka).create().unwrap();
    let topic = p.auth_settings.kafka.topic(topics::SANDBOX_AUDIT);
    // The same alert delivered twice (a redelivery: one event id), a chain head, then a second
    // alert on the same key: once it has opened its case, both deliveries before it are applied.
    let first = envelope(&burst("op", "org-op", 25), "op");
    send(&producer, &topic, "op", &first).await;
    send(&producer, &topic, "op", &first).await;
    let head = AuditEvent {
        kind: AuditKind::ChainHead as i32,
        seq: 7,
        hash: "ab".repeat(32),
        principal: "op".into(),
        principal_org: "org-op".into(),
        jurisdiction: SHAANXI.into(),
        ..Default::default()
    };
    send(&producer, &topic, "op", &envelope(&head, "op")).await;
    send(&producer, &topic, "op", &envelope(&burst("op", "org-op", 31), "op")).await;
    // An organisation with no grant and no agreement here: kept, unmatched.
    send(&producer, &topic, "stranger", &envelope(&burst("stranger", "org-stranger", 22), "stranger")).await;
    let destruction = AuditEvent {
        kind: AuditKind::Destruction as i32,
        seq: 9,
        grant_id: grant.clone(),
        principal_org: "org-op".into(),
        jurisdiction: SHAANXI.into(),
        decision: "done".into(),
        rule: "ZJK-31".into(),
        destroyed: vec![DestroyedTable { relation: "t_line".into(), rows: 120, content_sha256: "cd".repeat(32) }],
        reason: "grant revoked".into(),
        at: Some(platform_events::timestamp(chrono::Utc::now())),
        ..Default::default()
    };
    send(&producer, &topic, &grant, &envelope(&destruction, &grant)).await;

    let cases = platform_testkit::eventually("two cases opened", Duration::from_secs(30), || async {
        let body = admin_get(&p, "/supervision-cases").await;
        let items = body["items"].as_array().unwrap().clone();
        (items.len() >= 2).then_some(items)
    })
    .await;
    assert_eq!(cases.len(), 2, "one case per alert, the redelivery opens none: {cases:?}");
    for c in &cases {
        assert_eq!(
            (c["rule"].as_str(), c["agreement_id"].as_str(), c["operator_org"].as_str(), c["state"].as_str()),
            (Some("WF-30"), Some(agreement.as_str()), Some("org-op"), Some("open")),
            "{c}"
        );
        assert_eq!(c["opened_by"], "sandbox.audit.v1");
    }
    assert!(cases[0]["grounds"].as_str().unwrap().contains("25 refused queries"), "{}", cases[0]);
    assert!(cases[0]["grounds"].as_str().unwrap().contains("threshold of 20"), "{}", cases[0]);
    assert!(cases[1]["grounds"].as_str().unwrap().contains("31 refused queries"), "{}", cases[1]);

    let unmatched = platform_testkit::eventually("the stranger's alert kept", Duration::from_secs(30), || async {
        let body = admin_get(&p, "/supervision-alerts?unmatched=true").await;
        let items = body["items"].as_array().unwrap().clone();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(unmatched.len(), 1, "{unmatched:?}");
    assert_eq!(
        (unmatched[0]["principal_org"].as_str(), unmatched[0]["refusals"].as_i64()),
        (Some("org-stranger"), Some(22))
    );
    // And counted, for the dashboard: someone has to look at it.
    let url = format!("{}/metrics", p.auth.url());
    platform_testkit::eventually("authorization_sandbox_alerts_unmatched = 1", Duration::from_secs(30), || async {
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        (platform_testkit::metric_value(&text, "authorization_sandbox_alerts_unmatched", &[]) == Some(1.0))
            .then_some(())
    })
    .await;
    let all = admin_get(&p, "/supervision-alerts").await;
    let linked: Vec<&str> = all["items"].as_array().unwrap().iter().filter_map(|a| a["case_id"].as_str()).collect();
    assert_eq!(linked.len(), 2, "each matched alert names its own case: {all}");
    assert_ne!(linked[0], linked[1]);
    let case = admin_get(&p, &format!("/supervision-cases/{}", linked[0])).await;
    assert_eq!(case["alert_id"], all["items"][0]["id"]);
    // The case goes on like any other: rectification under the profile (SX-23: a decision).
    let r = p
        .auth_as(
            Role::DataAdmin,
            SHAANXI,
            "POST",
            &format!("/supervision-cases/{}/rectify", linked[0]),
            Some(json!({"reason": "限期整改", "close_access": true})),
        )
        .await;
    assert_eq!(r.body["state"], "rectification", "{}", r.body);

    let destroyed = platform_testkit::eventually("the destruction recorded", Duration::from_secs(30), || async {
        let g = admin_get(&p, &format!("/grants/{grant}")).await;
        g["destroyed_at"].is_string().then_some(g)
    })
    .await;
    assert_eq!(destroyed["destruction"]["tables"][0]["rows"], 120);
    assert_eq!(destroyed["destruction"]["rule"], "ZJK-31");
    // The chain head opened nothing and recorded nothing.
    assert_eq!(p.count("SELECT count(*) AS n FROM sandbox_alerts").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supervision_endpoint_refuses_a_missing_token_and_every_role_it_does_not_name() {
    let p = start().await;
    let case = uuid::Uuid::now_v7();
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        ("GET", "/supervision-cases".into(), None, vec![Role::DataAdmin]),
        ("GET", format!("/supervision-cases/{case}"), None, vec![Role::DataAdmin]),
        ("GET", "/supervision-alerts".into(), None, vec![Role::DataAdmin]),
        (
            "POST",
            "/supervision-cases".into(),
            Some(json!({"agreement_id": uuid::Uuid::now_v7(), "grounds": "g"})),
            vec![Role::DataAdmin],
        ),
        ("POST", format!("/supervision-cases/{case}/rectify"), Some(json!({"reason": "r"})), vec![Role::DataAdmin]),
    ];
    p.assert_roles(SHAANXI, &endpoints).await;
}
