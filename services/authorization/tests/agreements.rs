//! Agreements against a real catalog, PostgreSQL and broker: terms by profile (SX-22, NS-15,
//! LZ-6), fields (ZJK-15), finance opinion (WF-15), filing (SX-21), life cycle and expiry, renewal
//! windows (NS-15, ZJK-17).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Months, NaiveDate};
use common::{SHAANXI, XIAN, start};
use platform_auth::Role;
use platform_events::{authorization as pb, topics};
use serde_json::{Value, json};

const NANSHAN: &str = "440305";
const ZHANGJIAKOU: &str = "130700";

fn today() -> NaiveDate {
    platform_calendar::today_in_china()
}

fn agreement(resource: &str, fields: &[&str], start: NaiveDate, end: NaiveDate) -> Value {
    json!({
        "operator_org": "org-operator",
        "operator_name": "陕西数据运营有限公司",
        "scope": [{"resource_id": resource, "fields": fields}],
        "products": ["交通客流分析报告"],
        "term_start": start.to_string(),
        "term_end": end.to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_year_term_passes_in_shaanxi_sx_22_and_fails_in_nanshan_ns_15() {
    let p = start().await;
    let sx = p.resource(SHAANXI, "SX-T", "conditional").await;
    let ns = p.resource(NANSHAN, "NS-T", "conditional").await;
    let start_d = today();
    let end = start_d.checked_add_months(Months::new(48)).unwrap();
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            SHAANXI,
            "POST",
            "/agreements",
            Some(agreement(&sx, &["line_no"], start_d, end)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            NANSHAN,
            "POST",
            "/agreements",
            Some(agreement(&ns, &["line_no"], start_d, end)),
        )
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/term-not-allowed"), Some("NS-15")),
        "{}",
        r.body
    );
    assert_eq!(r.body["field"], "term_end");
    // Three years from D are in force through D + 3 years − 1 day (自…起至…止); one day more is refused.
    let three = start_d.checked_add_months(Months::new(36)).unwrap();
    for (end, expected) in [(three, (422, Some("NS-15"))), (three.pred_opt().unwrap(), (201, None))] {
        let body = agreement(&ns, &["line_no"], start_d, end);
        let r = p.auth_as(Role::ImplementingInstitution, NANSHAN, "POST", "/agreements", Some(body)).await;
        assert_eq!((r.status, r.body["rule"].as_str()), expected, "ending {end}: {}", r.body);
    }
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            SHAANXI,
            "POST",
            "/agreements",
            Some(agreement(&sx, &["line_no"], start_d, start_d)),
        )
        .await;
    assert_eq!(r.status, 422, "the term must end after it starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zhangjiakou_never_has_personal_fields_in_scope_zjk_15_and_fields_must_exist() {
    let p = start().await;
    let zjk = p.resource(ZHANGJIAKOU, "ZJK-1", "conditional").await;
    let (s, e) = (today(), today().checked_add_months(Months::new(24)).unwrap());
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            ZHANGJIAKOU,
            "POST",
            "/agreements",
            Some(agreement(&zjk, &["line_no", "phone"], s, e)),
        )
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/field-not-allowed"), Some("ZJK-15")),
        "{}",
        r.body
    );
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            ZHANGJIAKOU,
            "POST",
            "/agreements",
            Some(agreement(&zjk, &["line_no"], s, e)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Elsewhere the same field is in scope (masked in the sandbox), not refused.
    let xa = p.resource(XIAN, "XA-1", "conditional").await;
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            "/agreements",
            Some(agreement(&xa, &["line_no", "phone"], s, e)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = p
        .auth_as(Role::ImplementingInstitution, XIAN, "POST", "/agreements", Some(agreement(&xa, &["nope"], s, e)))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("scope[0].fields")));
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = p
        .auth_as(Role::ImplementingInstitution, XIAN, "POST", "/agreements", Some(agreement(&unknown, &["a"], s, e)))
        .await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/unknown-resource")));
    let closed = p.resource(XIAN, "XA-closed", "not_open").await;
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            "/agreements",
            Some(agreement(&closed, &["line_no"], s, e)),
        )
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("NS-2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_sharing_needs_the_finance_opinion_wf_15_then_a_city_files_within_a_month_sx_21_and_the_life_cycle_is_published()
 {
    let p = start().await;
    let xa = p.resource(XIAN, "XA-2", "conditional").await;
    let mut body = agreement(&xa, &["line_no"], today(), today().checked_add_months(Months::new(36)).unwrap());
    body["revenue_sharing"] = json!("政府与运营机构按3:7分配");
    let r = p.auth_as(Role::ImplementingInstitution, XIAN, "POST", "/agreements", Some(body)).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let why = json!({"reason": "按程序"});
    let r = p
        .auth_as(Role::ImplementingInstitution, XIAN, "POST", &format!("/agreements/{id}/sign"), Some(why.clone()))
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("WF-15")), "{}", r.body);
    let r = p
        .auth_as(
            Role::Finance,
            XIAN,
            "POST",
            &format!("/agreements/{id}/finance-opinion"),
            Some(json!({"opinion": "分配比例合理，同意"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = p
        .auth_as(Role::ImplementingInstitution, XIAN, "POST", &format!("/agreements/{id}/sign"), Some(why.clone()))
        .await;
    assert_eq!(r.body["state"], "signed", "{}", r.body);
    assert_eq!(
        (r.body["filing_due"].as_str(), r.body["filing_rule"].as_str()),
        (Some(platform_calendar::add_months(today(), 1).to_string().as_str()), Some("SX-21"))
    );
    for (role, action, state) in [
        (Role::ImplementingInstitution, "activate", "active"),
        (Role::DataAdmin, "suspend", "suspended"),
        (Role::DataAdmin, "reinstate", "active"),
        (Role::DataAdmin, "terminate", "terminated"),
    ] {
        let r = p.auth_as(role, XIAN, "POST", &format!("/agreements/{id}/{action}"), Some(why.clone())).await;
        assert_eq!(r.body["state"], state, "{action}: {}", r.body);
    }
    let r = p.auth_as(Role::DataAdmin, XIAN, "POST", &format!("/agreements/{id}/reinstate"), Some(why)).await;
    assert_eq!(r.status, 409, "a terminated agreement stays terminated");

    let reader = platform_testkit::topic_reader(&p.auth_settings, topics::AUTHORIZATION_AGREEMENT);
    let mut states = Vec::new();
    while states.len() < 7 {
        use rdkafka::Message as _;
        let m = tokio::time::timeout(std::time::Duration::from_secs(20), reader.recv())
            .await
            .expect("agreement events")
            .unwrap();
        let env = platform_events::Envelope::decode_checked(m.payload().unwrap()).unwrap();
        states.push(env.payload_as::<pb::AgreementEvent>().unwrap().state);
    }
    use pb::AgreementState as S;
    assert_eq!(
        states,
        [S::Draft, S::Draft, S::Signed, S::Active, S::Suspended, S::Active, S::Terminated].map(|s| s as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreements_expire_on_time_once_and_renewal_is_asked_only_inside_the_window_ns_15() {
    let p = start().await;
    let ns = p.resource(NANSHAN, "NS-R", "conditional").await;
    let why = json!({"reason": "按程序"});
    let mut ids = Vec::new();
    // Ended yesterday; ends in 3 months (inside Nanshan's 6-month window); ends in a year.
    for end in [
        today().pred_opt().unwrap(),
        today().checked_add_months(Months::new(3)).unwrap(),
        today().checked_add_months(Months::new(12)).unwrap(),
    ] {
        let start_d = end.checked_sub_months(Months::new(24)).unwrap();
        let r = p
            .auth_as(
                Role::ImplementingInstitution,
                NANSHAN,
                "POST",
                "/agreements",
                Some(agreement(&ns, &["line_no"], start_d, end)),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        p.auth_as(Role::ImplementingInstitution, NANSHAN, "POST", &format!("/agreements/{id}/sign"), Some(why.clone()))
            .await;
        let r = p
            .auth_as(
                Role::ImplementingInstitution,
                NANSHAN,
                "POST",
                &format!("/agreements/{id}/activate"),
                Some(why.clone()),
            )
            .await;
        assert_eq!(r.body["state"], "active", "{}", r.body);
        ids.push(id);
    }
    let state = authorization::app::State {
        pool: p.auth.pool.clone(),
        relay: p.auth.relay.clone(),
        calendar: platform_calendar::Calendar::official(),
        topic_prefix: p.auth_settings.kafka.topic_prefix.clone(),
    };
    // The service's own sweep may have run already; together they expire it exactly once.
    let first = authorization::agreements::expire_due(&state, 10).await.unwrap();
    let second = authorization::agreements::expire_due(&state, 10).await.unwrap();
    assert!(first <= 1 && second == 0);
    let r = p.auth_as(Role::DataAdmin, NANSHAN, "GET", &format!("/agreements/{}", ids[0]), None).await;
    assert_eq!(r.body["state"], "expired");
    let expiries = r.body["steps"].as_array().unwrap().iter().filter(|s| s["to_state"] == "expired").count();
    assert_eq!(expiries, 1, "expired once");
    for id in &ids[1..] {
        let r = p.auth_as(Role::DataAdmin, NANSHAN, "GET", &format!("/agreements/{id}"), None).await;
        assert_eq!(r.body["state"], "active");
    }
    let operator = platform_testkit::token("op", NANSHAN, &[Role::Operator]);
    let base = p.auth.url();
    // The operator's token carries org `org-op`: give the agreements that organisation.
    p.count("WITH u AS (UPDATE agreements SET operator_org = 'org-op' RETURNING 1) SELECT count(*) AS n FROM u").await;
    let r = p.call(&base, "POST", &format!("/agreements/{}/renewal", ids[1]), Some(&operator), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["renewal_requested_at"].is_string());
    let r = p.call(&base, "POST", &format!("/agreements/{}/renewal", ids[2]), Some(&operator), None).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("NS-15")), "{}", r.body);
    let r = p.call(&base, "GET", "/agreements", Some(&operator), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3, "an operator sees its own agreements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agreement_endpoint_refuses_a_missing_token_and_every_role_it_does_not_name() {
    let p = start().await;
    let xa = p.resource(XIAN, "XA-3", "conditional").await;
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            "/agreements",
            Some(agreement(&xa, &["line_no"], today(), today().checked_add_months(Months::new(12)).unwrap())),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let why = json!({"reason": "r"});
    let readers = vec![Role::ImplementingInstitution, Role::DataAdmin, Role::Operator, Role::Finance];
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        (
            "POST",
            "/agreements".into(),
            Some(agreement(&xa, &["line_no"], today(), today().checked_add_months(Months::new(12)).unwrap())),
            vec![Role::ImplementingInstitution],
        ),
        ("GET", "/agreements".into(), None, readers.clone()),
        ("GET", format!("/agreements/{id}"), None, readers.clone()),
        ("POST", format!("/agreements/{id}/finance-opinion"), Some(json!({"opinion": "o"})), vec![Role::Finance]),
        ("POST", format!("/agreements/{id}/renewal"), None, vec![Role::Operator]),
        ("POST", format!("/agreements/{id}/sign"), Some(why.clone()), vec![Role::ImplementingInstitution]),
        ("POST", format!("/agreements/{id}/activate"), Some(why.clone()), vec![Role::ImplementingInstitution]),
        ("POST", format!("/agreements/{id}/suspend"), Some(why.clone()), vec![Role::DataAdmin]),
        ("POST", format!("/agreements/{id}/reinstate"), Some(why.clone()), vec![Role::DataAdmin]),
        ("POST", format!("/agreements/{id}/terminate"), Some(why.clone()), vec![Role::DataAdmin]),
        ("POST", format!("/agreements/{id}/expire"), Some(why.clone()), vec![]),
    ];
    p.assert_roles(XIAN, &endpoints).await;
}
