//! Scenario data requests, grants and supervision against a real catalog, PostgreSQL and broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::Months;
use common::{SHAANXI, active_agreement, approve_both, operator, request, start, token};
use platform_auth::Role;
use platform_events::{authorization as pb, topics};
use serde_json::{Value, json};

const NANSHAN: &str = "440305";
const ZHANGJIAKOU: &str = "130700";

fn today() -> chrono::NaiveDate {
    platform_calendar::today_in_china()
}

async fn grant_events(p: &common::Platform, n: usize) -> Vec<pb::GrantEvent> {
    use rdkafka::Message as _;
    let reader = platform_testkit::topic_reader(&p.auth_settings, topics::AUTHORIZATION_GRANT);
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), reader.recv()).await.expect("grant events").unwrap();
        out.push(
            platform_events::Envelope::decode_checked(m.payload().unwrap())
                .unwrap()
                .payload_as::<pb::GrantEvent>()
                .unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_scenario_request_becomes_a_grant_wf_18_published_with_the_full_grant() {
    let p = start().await;
    let res = p.resource(SHAANXI, "SX-G1", "unconditional").await;
    let agreement = active_agreement(&p, SHAANXI, &res, &["line_no", "phone"]).await;
    let base = p.auth.url();
    // Sensitive fields need a justification (NS-19); fields outside the agreement are refused.
    let r = p
        .call(
            &base,
            "POST",
            "/data-requests",
            Some(&operator(SHAANXI)),
            Some(request(&agreement, &res, &["line_no", "phone"], json!({}))),
        )
        .await;
    assert_eq!(
        (r.status, r.body["rule"].as_str(), r.body["field"].as_str()),
        (422, Some("NS-19"), Some("scope[0].justifications.phone")),
        "{}",
        r.body
    );
    let mut outside = request(&agreement, &res, &["line_no"], json!({}));
    outside["scope"][0]["fields"] = json!(["line_no", "date"]);
    let r = p.call(&base, "POST", "/data-requests", Some(&operator(SHAANXI)), Some(outside)).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/outside-agreement-scope"), Some("ZJK-5"))
    );
    let mut too_long = request(&agreement, &res, &["line_no"], json!({}));
    too_long["valid_until"] = json!(today().checked_add_months(Months::new(30)).unwrap().to_string());
    let r = p.call(&base, "POST", "/data-requests", Some(&operator(SHAANXI)), Some(too_long)).await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/beyond-agreement-term")));

    let r = p
        .call(
            &base,
            "POST",
            "/data-requests",
            Some(&operator(SHAANXI)),
            Some(request(&agreement, &res, &["line_no", "phone"], json!({"phone": "按手机号去重统计客流"}))),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rid = r.body["id"].as_str().unwrap().to_string();
    let approved = approve_both(&p, SHAANXI, &rid).await;
    let grant_id = approved["grant_id"].as_str().unwrap().to_string();
    let g = p.call(&base, "GET", &format!("/grants/{grant_id}"), Some(&operator(SHAANXI)), None).await;
    assert_eq!((g.body["state"].as_str(), g.body["min_group_size"].as_i64()), (Some("active"), Some(10)), "{}", g.body);

    let events = grant_events(&p, 1).await;
    assert_eq!(events[0].change, pb::GrantChange::Granted as i32);
    let grant = events[0].grant.clone().unwrap();
    assert_eq!(
        (grant.id, grant.principal_org.as_str(), grant.scope[0].fields.clone()),
        (grant_id, "org-op", vec!["line_no".to_string(), "phone".to_string()])
    );
    assert!(grant.log_retention_months >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditionally_open_data_in_nanshan_needs_a_compliance_report_and_a_joint_review_ns_20() {
    let p = start().await;
    let res = p.resource(NANSHAN, "NS-G1", "conditional").await;
    let agreement = active_agreement(&p, NANSHAN, &res, &["line_no"]).await;
    let base = p.auth.url();
    let r = p
        .call(
            &base,
            "POST",
            "/data-requests",
            Some(&operator(NANSHAN)),
            Some(request(&agreement, &res, &["line_no"], json!({}))),
        )
        .await;
    assert_eq!(r.body["needs_joint_review"], true, "{}", r.body);
    let rid = r.body["id"].as_str().unwrap().to_string();
    let ok = json!({"decision": "approve", "opinion": "同意"});
    for role in [Role::ImplementingInstitution, Role::DataSourceUnit] {
        let r = p.auth_as(role, NANSHAN, "POST", &format!("/data-requests/{rid}/decision"), Some(ok.clone())).await;
        assert_eq!(r.body["state"], "submitted", "no grant before the joint review: {}", r.body);
    }
    let members = json!({"decision": "approve", "members": [
        {"member": "张三", "org": "区政务服务和数据管理局", "opinion": "同意"},
        {"member": "李四", "org": "区财政局", "opinion": "同意"},
        {"member": "王五", "org": "区公安分局", "opinion": "同意，注意脱敏"}]});
    let r = p
        .auth_as(Role::DataAdmin, NANSHAN, "POST", &format!("/data-requests/{rid}/joint-review"), Some(members.clone()))
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("NS-20")), "the report comes first: {}", r.body);
    let r = p
        .call(
            &base,
            "POST",
            &format!("/data-requests/{rid}/compliance-report"),
            Some(&operator(NANSHAN)),
            Some(json!({"report": "合规审查报告：数据用途合法、最小必要"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r =
        p.auth_as(Role::DataAdmin, NANSHAN, "POST", &format!("/data-requests/{rid}/joint-review"), Some(members)).await;
    assert_eq!(r.body["state"], "approved", "{}", r.body);
    assert_eq!(r.body["joint_review"]["members"].as_array().unwrap().len(), 3, "each member's opinion is kept");
    // In Shaanxi conditional data needs no joint review.
    let sx = p.resource(SHAANXI, "SX-G2", "conditional").await;
    let a2 = active_agreement(&p, SHAANXI, &sx, &["line_no"]).await;
    let r = p
        .call(
            &base,
            "POST",
            "/data-requests",
            Some(&operator(SHAANXI)),
            Some(request(&a2, &sx, &["line_no"], json!({}))),
        )
        .await;
    assert_eq!(r.body["needs_joint_review"], false);
}

/// In Zhangjiakou the partner develops (ZJK-13): its approved request under a new reported
/// sub-authorization of `agreement`.
async fn partner_request(p: &common::Platform, agreement: &str, res: &str) -> Value {
    common::partner_grant(p, ZHANGJIAKOU, agreement, res).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_zhangjiakou_the_primary_operator_gets_no_data_of_its_own_zjk_13_elsewhere_it_does() {
    let p = start().await;
    let base = p.auth.url();
    let zjk = p.resource(ZHANGJIAKOU, "ZJK-P", "unconditional").await;
    let a = active_agreement(&p, ZHANGJIAKOU, &zjk, &["line_no"]).await;
    let own = request(&a, &zjk, &["line_no"], json!({}));
    let r = p.call(&base, "POST", "/data-requests", Some(&operator(ZHANGJIAKOU)), Some(own)).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/primary-operator-does-not-develop"), Some("ZJK-13")),
        "{}",
        r.body
    );
    // Its partner develops, under a reported sub-authorization (ZJK-11, ZJK-17).
    let approved = partner_request(&p, &a, &zjk).await;
    assert!(approved["grant_id"].is_string(), "{approved}");
    // Nanshan and Shaanxi set no such limit: the operator's own request becomes a grant.
    for (j, code) in [(NANSHAN, "NS-P"), (SHAANXI, "SX-P")] {
        let (_, _, grant) = common::active_grant(&p, j, code).await;
        let g = p.auth_as(Role::DataAdmin, j, "GET", &format!("/grants/{grant}"), None).await;
        assert_eq!((g.body["principal_org"].as_str(), g.body["state"].as_str()), (Some("org-op"), Some("active")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rectification_in_zhangjiakou_suspends_every_grant_of_the_operator_zjk_34_and_passing_reinstates_them() {
    let p = start().await;
    let r1 = p.resource(ZHANGJIAKOU, "ZJK-G1", "unconditional").await;
    let r2 = p.resource(ZHANGJIAKOU, "ZJK-G2", "unconditional").await;
    let a1 = active_agreement(&p, ZHANGJIAKOU, &r1, &["line_no"]).await;
    let a2 = active_agreement(&p, ZHANGJIAKOU, &r2, &["line_no"]).await;
    let base = p.auth.url();
    // The grants under the primary's agreements are its partners' (ZJK-13).
    partner_request(&p, &a1, &r1).await;
    partner_request(&p, &a2, &r2).await;
    let cid = common::open_case(&p, ZHANGJIAKOU, &a1, "超范围使用数据").await;
    let r = p
        .auth_as(
            Role::DataAdmin,
            ZHANGJIAKOU,
            "POST",
            &format!("/supervision-cases/{cid}/rectify"),
            Some(json!({"reason": "限期整改"})),
        )
        .await;
    assert_eq!(
        (r.body["state"].as_str(), r.body["access_rule"].as_str()),
        (Some("rectification"), Some("ZJK-34")),
        "{}",
        r.body
    );
    let grants = p.call(&base, "GET", "/grants", Some(&operator(ZHANGJIAKOU)), None).await;
    assert!(
        grants.body["items"].as_array().unwrap().iter().all(|g| g["state"] == "suspended"),
        "both agreements' grants: {}",
        grants.body
    );
    let r = p
        .auth_as(
            Role::DataAdmin,
            ZHANGJIAKOU,
            "POST",
            &format!("/supervision-cases/{cid}/pass"),
            Some(json!({"reason": "整改到位"})),
        )
        .await;
    assert_eq!(r.body["state"], "passed");
    let grants = p.call(&base, "GET", "/grants", Some(&operator(ZHANGJIAKOU)), None).await;
    assert!(grants.body["items"].as_array().unwrap().iter().all(|g| g["state"] == "active"));
    let changes: Vec<i32> = grant_events(&p, 6).await.iter().map(|e| e.change).collect();
    use pb::GrantChange as C;
    assert_eq!(changes.iter().filter(|c| **c == C::Suspended as i32).count(), 2);
    assert_eq!(changes.iter().filter(|c| **c == C::Reinstated as i32).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_new_access_during_rectification_with_access_closed_zjk_34_sx_23_until_the_case_passes() {
    let p = start().await;
    // Zhangjiakou closes access (ZJK-34); Shaanxi closes it where the department decides
    // (SX-23); Nanshan leaves it open here. A request approved during rectification:
    let zjk = p.resource(ZHANGJIAKOU, "ZJK-N", "unconditional").await;
    let za = active_agreement(&p, ZHANGJIAKOU, &zjk, &["line_no"]).await;
    let (sa, sres, _) = common::active_grant(&p, SHAANXI, "SX-N").await;
    let (na, nres, _) = common::active_grant(&p, NANSHAN, "NS-N").await;
    let mut cases = Vec::new();
    for (j, a, close) in [(ZHANGJIAKOU, &za, false), (SHAANXI, &sa, true), (NANSHAN, &na, false)] {
        let case = p
            .auth_as(
                Role::DataAdmin,
                j,
                "POST",
                "/supervision-cases",
                Some(json!({"agreement_id": a, "grounds": "违规"})),
            )
            .await;
        let cid = case.body["id"].as_str().unwrap().to_string();
        let why = json!({"reason": "限期整改", "close_access": close});
        let r = p.auth_as(Role::DataAdmin, j, "POST", &format!("/supervision-cases/{cid}/rectify"), Some(why)).await;
        assert_eq!(r.body["state"], "rectification", "{}", r.body);
        cases.push((j, cid, r.body["access_rule"].clone()));
    }
    assert_eq!(
        cases.iter().map(|(_, _, rule)| rule.clone()).collect::<Vec<_>>(),
        [json!("ZJK-34"), json!("SX-23"), Value::Null]
    );
    let zg = partner_request(&p, &za, &zjk).await["grant_id"].as_str().unwrap().to_string();
    let sg = operator_grant(&p, SHAANXI, &sa, &sres).await;
    let ng = operator_grant(&p, NANSHAN, &na, &nres).await;
    let state = |j: &'static str, g: String| grant_state(&p, j, g);
    let (z, zcase) = state(ZHANGJIAKOU, zg.clone()).await;
    let (s, scase) = state(SHAANXI, sg.clone()).await;
    let (n, _) = state(NANSHAN, ng.clone()).await;
    assert_eq!((z.as_str(), s.as_str(), n.as_str()), ("suspended", "suspended", "active"));
    assert_eq!((zcase, scase), (json!(cases[0].1), json!(cases[1].1)), "held by the case that closed access");
    // Passing the case reinstates it with the others.
    for (j, cid, _) in &cases[..2] {
        let r = p
            .auth_as(
                Role::DataAdmin,
                j,
                "POST",
                &format!("/supervision-cases/{cid}/pass"),
                Some(json!({"reason": "整改到位"})),
            )
            .await;
        assert_eq!(r.body["state"], "passed", "{}", r.body);
    }
    assert_eq!(state(ZHANGJIAKOU, zg).await.0, "active");
    assert_eq!(state(SHAANXI, sg).await.0, "active");
}

/// The operator's own approved request under `agreement`: the grant's id.
async fn operator_grant(p: &common::Platform, j: &str, agreement: &str, res: &str) -> String {
    let ask = request(agreement, res, &["line_no"], json!({}));
    let r = p.call(&p.auth.url(), "POST", "/data-requests", Some(&operator(j)), Some(ask)).await;
    approve_both(p, j, r.body["id"].as_str().unwrap()).await["grant_id"].as_str().unwrap().to_string()
}

/// A grant's state and the case that holds it suspended.
async fn grant_state(p: &common::Platform, j: &str, g: String) -> (String, Value) {
    let r = p.auth_as(Role::DataAdmin, j, "GET", &format!("/grants/{g}"), None).await;
    (r.body["state"].as_str().unwrap().to_string(), r.body["suspended_by_case"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rectification_terminates_revokes_and_keeps_logs_six_months_sx_23_sx_33_wf_24() {
    let p = start().await;
    let (a, res, grant_id) = common::active_grant(&p, SHAANXI, "SX-G3").await;
    let base = p.auth.url();
    let case = p
        .auth_as(
            Role::DataAdmin,
            SHAANXI,
            "POST",
            "/supervision-cases",
            Some(json!({"agreement_id": a, "grounds": "安全事件"})),
        )
        .await;
    let cid = case.body["id"].as_str().unwrap().to_string();
    // Shaanxi may close access (SX-23): a decision per case. Left open here.
    let r = p
        .auth_as(
            Role::DataAdmin,
            SHAANXI,
            "POST",
            &format!("/supervision-cases/{cid}/rectify"),
            Some(json!({"reason": "整改"})),
        )
        .await;
    assert!(r.body.get("access_rule").is_none_or(|v| v.is_null()), "{}", r.body);
    let g = p.auth_as(Role::DataAdmin, SHAANXI, "GET", &format!("/grants/{grant_id}"), None).await;
    assert_eq!(g.body["state"], "active");
    let r = p
        .auth_as(
            Role::DataAdmin,
            SHAANXI,
            "POST",
            &format!("/supervision-cases/{cid}/fail"),
            Some(json!({"reason": "整改不到位"})),
        )
        .await;
    assert_eq!(r.body["state"], "failed", "{}", r.body);
    let g = p.auth_as(Role::DataAdmin, SHAANXI, "GET", &format!("/grants/{grant_id}"), None).await;
    assert_eq!(g.body["state"], "revoked");
    let kept: chrono::NaiveDate = g.body["logs_retained_until"].as_str().unwrap().parse().unwrap();
    assert!(kept >= platform_calendar::add_months(today(), 6), "logs kept at least six months");
    let ag = p.auth_as(Role::DataAdmin, SHAANXI, "GET", &format!("/agreements/{a}"), None).await;
    assert_eq!(ag.body["state"], "terminated");
    // The operator's data request on the terminated agreement is refused.
    let r = p
        .call(
            &base,
            "POST",
            "/data-requests",
            Some(&operator(SHAANXI)),
            Some(request(&a, &res, &["line_no"], json!({}))),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_is_published_through_the_outbox_and_a_restart_before_publishing_loses_nothing() {
    let prefix = platform_testkit::topic_prefix();
    let cdb = platform_testkit::database("catalog", catalog::MIGRATIONS).await;
    let adb = platform_testkit::database("authorization", authorization::MIGRATIONS).await;
    let catalog = catalog::run(platform_testkit::settings_in(&cdb, &prefix, &[])).await.unwrap();
    let good = platform_testkit::settings_in(&adb, &prefix, &[]);
    let auth = authorization::run(good.clone()).await.unwrap();
    let p = common::Platform { catalog, auth, auth_settings: good.clone(), http: platform_testkit::http_client() };
    let (a, _, _) = common::active_grant(&p, SHAANXI, "SX-R").await;
    let common::Platform { catalog, auth, .. } = p;
    auth.stop().await;

    // The same database, served by an instance that cannot reach the broker: the suspension is
    // committed with its outbox row, and nothing is published.
    let unreachable = platform_testkit::settings_in(
        &adb,
        &prefix,
        &[("kafka.brokers", "127.0.0.1:1"), ("kafka.message_timeout_ms", "1000")],
    );
    let cut_off = authorization::run(unreachable).await.unwrap();
    let http = platform_testkit::http_client();
    let case = http
        .post(format!("{}/supervision-cases", cut_off.url()))
        .bearer_auth(token(Role::DataAdmin, SHAANXI))
        .json(&json!({"agreement_id": a, "grounds": "违规"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let r = http
        .post(format!("{}/supervision-cases/{}/rectify", cut_off.url(), case["id"].as_str().unwrap()))
        .bearer_auth(token(Role::DataAdmin, SHAANXI))
        .json(&json!({"reason": "整改", "close_access": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    cut_off.stop().await;

    // A restart with the broker back publishes what was committed.
    let auth = authorization::run(good.clone()).await.unwrap();
    let p = common::Platform { catalog, auth, auth_settings: good, http };
    let changes: Vec<i32> = grant_events(&p, 2).await.iter().map(|e| e.change).collect();
    assert_eq!(changes, [pb::GrantChange::Granted as i32, pb::GrantChange::Suspended as i32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_expire_on_time_once_with_their_event_and_logs_kept() {
    let p = start().await;
    let (_, _, grant_id) = common::active_grant(&p, SHAANXI, "SX-E").await;
    p.count(&format!("WITH u AS (UPDATE grants SET valid_until = current_date - 1 WHERE id = '{grant_id}' RETURNING 1) SELECT count(*) AS n FROM u")).await;
    let state = authorization::app::State {
        pool: p.auth.pool.clone(),
        relay: p.auth.relay.clone(),
        calendar: platform_calendar::Calendar::official(),
        topic_prefix: p.auth_settings.kafka.topic_prefix.clone(),
    };
    // This sweep and the service's own may race: together they expire the grant exactly once.
    let (a1, a2) =
        tokio::join!(authorization::grants::expire_due(&state, 100), authorization::grants::expire_due(&state, 100));
    assert!(a1.unwrap() + a2.unwrap() <= 1);
    let g = p.auth_as(Role::DataAdmin, SHAANXI, "GET", &format!("/grants/{grant_id}"), None).await;
    assert_eq!(g.body["state"], "expired", "{}", g.body);
    assert_eq!(g.body["event_seq"], 2, "granted, then expired once");
    let kept: chrono::NaiveDate = g.body["logs_retained_until"].as_str().unwrap().parse().unwrap();
    assert!(kept >= platform_calendar::add_months(today(), 6));
    let events = grant_events(&p, 2).await;
    assert_eq!(events[1].change, pb::GrantChange::Expired as i32);
    assert_eq!(events[1].grant.clone().unwrap().state, pb::GrantState::Expired as i32);
}

fn sub_authorization(resource: &str, fields: &[&str], months: u32) -> Value {
    json!({
        "partner_org": "org-partner", "partner_name": "二级开发运营主体",
        "scenario": "景区客流预测",
        "scope": [{"resource_id": resource, "fields": fields}],
        "term_start": today().to_string(),
        "term_end": today().checked_add_months(Months::new(months)).unwrap().to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tiers_a_partner_works_under_a_reported_sub_authorization_zjk_17_and_never_sub_authorizes_zjk_11() {
    let p = start().await;
    let res = p.resource(ZHANGJIAKOU, "ZJK-T", "unconditional").await;
    // A 24-month primary agreement; partners get at most its scope and term, and 36 months.
    let a = active_agreement(&p, ZHANGJIAKOU, &res, &["line_no"]).await;
    let base = p.auth.url();
    let path = format!("/agreements/{a}/sub-authorizations");
    let partner = platform_testkit::token("partner", ZHANGJIAKOU, &[Role::Partner]);
    let r = p.call(&base, "POST", &path, Some(&partner), Some(sub_authorization(&res, &["line_no"], 12))).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("ZJK-11")), "{}", r.body);
    let r =
        p.call(&base, "POST", &path, Some(&operator(ZHANGJIAKOU)), Some(sub_authorization(&res, &["phone"], 12))).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("ZJK-17")), "beyond the primary's scope: {}", r.body);
    let r = p
        .call(&base, "POST", &path, Some(&operator(ZHANGJIAKOU)), Some(sub_authorization(&res, &["line_no"], 30)))
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("ZJK-17")), "beyond the primary's term: {}", r.body);
    let r = p
        .call(&base, "POST", &path, Some(&operator(ZHANGJIAKOU)), Some(sub_authorization(&res, &["line_no"], 12)))
        .await;
    assert_eq!((r.status, r.body["state"].as_str()), (201, Some("pending_report")), "{}", r.body);
    let sub = r.body["id"].as_str().unwrap().to_string();

    let mut ask = request(&a, &res, &["line_no"], json!({}));
    ask["sub_authorization_id"] = json!(sub);
    let r = p.call(&base, "POST", "/data-requests", Some(&partner), Some(ask.clone())).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("ZJK-17")), "not before it is reported: {}", r.body);
    let r =
        p.call(&base, "POST", &format!("/sub-authorizations/{sub}/report"), Some(&operator(ZHANGJIAKOU)), None).await;
    assert_eq!(r.body["state"], "effective", "{}", r.body);
    let r = p.call(&base, "POST", "/data-requests", Some(&partner), Some(ask)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    p.verified_staff(ZHANGJIAKOU, "partner", Role::Partner).await;
    let approved = approve_both(&p, ZHANGJIAKOU, r.body["id"].as_str().unwrap()).await;
    let g = p
        .call(&base, "GET", &format!("/grants/{}", approved["grant_id"].as_str().unwrap()), Some(&partner), None)
        .await;
    assert_eq!(
        (g.body["principal_org"].as_str(), g.body["operator_org"].as_str()),
        (Some("org-partner"), Some("org-op"))
    );
    // A partner without a sub-authorization has nothing to ask under.
    let r =
        p.call(&base, "POST", "/data-requests", Some(&partner), Some(request(&a, &res, &["line_no"], json!({})))).await;
    assert_eq!(r.status, 404);

    // A second one ends with its term (the scheduler's sweep, once); the first with the agreement.
    let r = p
        .call(&base, "POST", &path, Some(&operator(ZHANGJIAKOU)), Some(sub_authorization(&res, &["line_no"], 6)))
        .await;
    let short = r.body["id"].as_str().unwrap().to_string();
    p.count(&format!(
        "WITH u AS (UPDATE sub_authorizations SET term_end = current_date - 1 WHERE id = '{short}' RETURNING 1) SELECT count(*) AS n FROM u"
    ))
    .await;
    let state = p.state();
    let (first, second) = tokio::join!(
        authorization::sub_authorizations::end_due(&state, 10),
        authorization::sub_authorizations::end_due(&state, 10)
    );
    // The service's own sweep may have run already; together they end it once.
    assert!(first.unwrap() + second.unwrap() <= 1, "ended at most once by these");
    let r = p
        .auth_as(
            Role::DataAdmin,
            ZHANGJIAKOU,
            "POST",
            &format!("/agreements/{a}/terminate"),
            Some(json!({"reason": "严重违约"})),
        )
        .await;
    assert_eq!(r.body["state"], "terminated", "{}", r.body);
    let subs = p.call(&base, "GET", "/sub-authorizations", Some(&operator(ZHANGJIAKOU)), None).await;
    let ended: Vec<_> =
        subs.body.as_array().unwrap().iter().map(|s| (s["state"].clone(), s["end_reason"].is_string())).collect();
    assert_eq!(ended, [(json!("ended"), true), (json!("ended"), true)], "{}", subs.body);

    // Each step on authorization.agreement.v1, keyed by the sub-authorization, in its order.
    let events = p.events::<pb::SubAuthorizationEvent>(topics::AUTHORIZATION_AGREEMENT, 5).await;
    let of = |id: &str| -> Vec<(String, u64, i32, i32)> {
        events
            .iter()
            .filter(|(env, _)| env.aggregate_id == id)
            .map(|(env, e)| (env.event_type.clone(), env.aggregate_version, e.change, e.state))
            .collect()
    };
    use pb::{SubAuthorizationChange as C, SubAuthorizationState as St};
    let ev = |t: &str, v: u64, c: C, s: St| (format!("authorization.sub_authorization.{t}"), v, c as i32, s as i32);
    assert_eq!(
        of(&sub),
        [
            ev("created", 1, C::Created, St::PendingReport),
            ev("reported", 2, C::Reported, St::Effective),
            ev("ended", 3, C::Ended, St::Ended)
        ]
    );
    assert_eq!(of(&short), [ev("created", 1, C::Created, St::PendingReport), ev("ended", 2, C::Ended, St::Ended)]);
    let reported = events.iter().find(|(_, e)| e.change == C::Reported as i32).unwrap();
    assert!(reported.1.reported_at.is_some());
    assert_eq!(
        (reported.1.agreement_id.as_str(), reported.1.partner_org.as_str(), reported.1.rule.as_str()),
        (a.as_str(), "org-partner", "ZJK-17")
    );
    let ends: Vec<_> =
        events.iter().filter(|(_, e)| e.change == C::Ended as i32).map(|(_, e)| e.reason.clone()).collect();
    assert!(
        ends.iter().any(|r| r.starts_with("term ended on")) && ends.iter().any(|r| r.contains("严重违约")),
        "{ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weifang_forbids_sub_authorization_wf_26() {
    let p = start().await;
    let res = p.resource("370700", "WF-S", "unconditional").await;
    let a = active_agreement(&p, "370700", &res, &["line_no"]).await;
    let r = p
        .call(
            &p.auth.url(),
            "POST",
            &format!("/agreements/{a}/sub-authorizations"),
            Some(&operator("370700")),
            Some(sub_authorization(&res, &["line_no"], 12)),
        )
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("WF-26")), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_names_only_registered_real_name_verified_staff_under_confidentiality_ns_14() {
    let p = start().await;
    let res = p.resource(NANSHAN, "NS-STAFF", "unconditional").await;
    let a = active_agreement(&p, NANSHAN, &res, &["line_no"]).await;
    let base = p.auth.url();
    let staff_list = p.call(&base, "GET", "/operator-staff", Some(&operator(NANSHAN)), None).await;
    let op_staff = staff_list.body["items"][0]["id"].as_str().unwrap().to_string();
    // The person leaves: a grant asked for by them is refused.
    let r =
        p.call(&base, "POST", &format!("/operator-staff/{op_staff}/deregister"), Some(&operator(NANSHAN)), None).await;
    assert_eq!(r.body["state"], "deregistered", "{}", r.body);
    let ask = p
        .call(
            &base,
            "POST",
            "/data-requests",
            Some(&operator(NANSHAN)),
            Some(request(&a, &res, &["line_no"], json!({}))),
        )
        .await;
    let rid = ask.body["id"].as_str().unwrap().to_string();
    let ok = json!({"decision": "approve", "opinion": "同意"});
    let decision = format!("/data-requests/{rid}/decision");
    let decide = |role| p.auth_as(role, NANSHAN, "POST", &decision, Some(ok.clone()));
    assert_eq!(decide(Role::ImplementingInstitution).await.body["state"], "submitted");
    let r = decide(Role::DataSourceUnit).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str(), r.body["field"].as_str()),
        (422, Some("/problems/staff-not-registered"), Some("NS-14"), Some("requested_by")),
        "{}",
        r.body
    );
    // Registration needs the signed confidentiality agreement and the document's last characters.
    let person = |reference: &str, tail: &str| {
        json!({"subject": "op", "name": "李四", "id_document_tail": tail,
               "confidentiality_agreement": {"reference": reference, "signed_on": today().to_string()}})
    };
    let r = p.call(&base, "POST", "/operator-staff", Some(&operator(NANSHAN)), Some(person(" ", "0017"))).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str(), r.body["field"].as_str()),
        (422, Some("NS-14"), Some("confidentiality_agreement"))
    );
    let r = p.call(&base, "POST", "/operator-staff", Some(&operator(NANSHAN)), Some(person("保密-7", "17"))).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("NS-14")));
    let r = p.call(&base, "POST", "/operator-staff", Some(&operator(NANSHAN)), Some(person("保密-7", "0017"))).await;
    assert_eq!((r.status, r.body["state"].as_str()), (201, Some("registered")), "{}", r.body);
    let again =
        p.call(&base, "POST", "/operator-staff", Some(&operator(NANSHAN)), Some(person("保密-7", "0017"))).await;
    assert_eq!(again.status, 409);
    let staff = r.body["id"].as_str().unwrap().to_string();
    let r = decide(Role::DataSourceUnit).await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/staff-not-verified")), "{}", r.body);
    // Another jurisdiction's department cannot verify; Nanshan's records the verification.
    let path = format!("/operator-staff/{staff}/verification");
    let r = p.auth_as(Role::DataAdmin, SHAANXI, "POST", &path, Some(json!({"reference": "备案-9"}))).await;
    assert_eq!(r.status, 404);
    let r = p.auth_as(Role::DataAdmin, NANSHAN, "POST", &path, Some(json!({"reference": "备案-9"}))).await;
    assert_eq!(r.body["state"], "verified", "{}", r.body);
    let r = decide(Role::DataSourceUnit).await;
    assert_eq!(r.body["state"], "approved", "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_endpoint_refuses_a_missing_token_and_every_role_it_does_not_name() {
    let p = start().await;
    let id = p.verified_staff(NANSHAN, "op", Role::Operator).await.unwrap();
    let person = json!({"subject": "x", "name": "x", "id_document_tail": "0001",
        "confidentiality_agreement": {"reference": "r", "signed_on": today().to_string()}});
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        ("POST", "/operator-staff".into(), Some(person), vec![Role::Operator, Role::Partner]),
        (
            "GET",
            "/operator-staff".into(),
            None,
            vec![Role::Operator, Role::Partner, Role::DataAdmin, Role::ImplementingInstitution],
        ),
        ("POST", format!("/operator-staff/{id}/verification"), Some(json!({"reference": "r"})), vec![Role::DataAdmin]),
        (
            "POST",
            format!("/operator-staff/{id}/deregister"),
            None,
            vec![Role::Operator, Role::Partner, Role::DataAdmin],
        ),
    ];
    p.assert_roles(NANSHAN, &endpoints).await;
}
