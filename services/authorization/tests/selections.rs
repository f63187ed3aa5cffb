//! Operator selection against a real catalog, PostgreSQL and broker: announcement, applications
//! before the deadline (WF-12, NS-12), eligibility by profile (WF-13, ZJK-12, NS-11, LZ-3),
//! scores, award, public notice with objections (WF-12, NS-13), and the agreement only after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Months, NaiveDate};
use common::{SHAANXI, WEIFANG, start};
use platform_auth::Role;
use platform_events::{authorization as pb, topics};
use serde_json::{Value, json};

const NANSHAN: &str = "440305";
const LANZHOU: &str = "620100";

fn today() -> NaiveDate {
    platform_calendar::today_in_china()
}

fn operator(name: &str, jurisdiction: &str) -> String {
    platform_testkit::token(name, jurisdiction, &[Role::Operator])
}

fn announcement(resource: &str, mode: &str, deadline: NaiveDate) -> Value {
    json!({
        "title": "公共交通数据授权运营", "mode": mode, "method": "open_tender",
        "resource_ids": [resource], "scope_description": "公交线路、客流（日更）",
        "conditions": "信用良好，近三年无网络或数据安全事件", "criteria": "技术70分，商务30分",
        "application_deadline": deadline.to_string()
    })
}

fn clean() -> Value {
    json!({"credit_rating": "AAA", "data_operation_since": "2019-01-01", "security_incidents": [], "listed_dishonest": false})
}

fn application(declaration: Value) -> Value {
    json!({"applicant_name": "数据运营有限公司", "declaration": declaration})
}

fn agreement(resource: &str, org: &str, selection: &str) -> Value {
    json!({
        "selection_id": selection, "operator_org": org, "operator_name": "数据运营有限公司",
        "scope": [{"resource_id": resource, "fields": ["line_no"]}], "products": ["客流分析报告"],
        "term_start": today().to_string(), "term_end": today().checked_add_months(Months::new(24)).unwrap().to_string()
    })
}

/// Moves a date column of a selection to yesterday, as if that much time had passed.
async fn elapse(p: &common::Platform, selection: &str, column: &str) {
    let yesterday = today().pred_opt().unwrap();
    p.count(&format!(
        "WITH u AS (UPDATE selections SET {column} = '{yesterday}' WHERE id = '{selection}' RETURNING 1) SELECT count(*) AS n FROM u"
    ))
    .await;
}

async fn announce(p: &common::Platform, jurisdiction: &str, resource: &str, mode: &str) -> String {
    let deadline = today().checked_add_months(Months::new(1)).unwrap();
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            jurisdiction,
            "POST",
            "/selections",
            Some(announcement(resource, mode, deadline)),
        )
        .await;
    assert_eq!((r.status, r.body["state"].as_str()), (201, Some("open")), "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn apply(
    p: &common::Platform,
    jurisdiction: &str,
    who: &str,
    selection: &str,
    declaration: Value,
) -> common::Reply {
    let path = format!("/selections/{selection}/applications");
    p.call(&p.auth.url(), "POST", &path, Some(&operator(who, jurisdiction)), Some(application(declaration))).await
}

async fn inst(p: &common::Platform, path: &str, body: Option<Value>) -> common::Reply {
    p.auth_as(Role::ImplementingInstitution, WEIFANG, "POST", path, body).await
}

async fn score(p: &common::Platform, jurisdiction: &str, selection: &str, app: &str, score: f64) -> common::Reply {
    p.auth_as(
        Role::ImplementingInstitution,
        jurisdiction,
        "POST",
        &format!("/selections/{selection}/applications/{app}/evaluation"),
        Some(json!({"score": score, "opinion": "符合评审标准"})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weifang_selection_runs_from_announcement_through_public_notice_to_the_agreement_wf_12_wf_13() {
    let p = &start().await;
    let res = p.resource(WEIFANG, "WF-SEL", "unconditional").await;
    let base = p.auth.url();
    // The announcement: a mode Weifang allows (WF-9), a deadline ahead (WF-12).
    let ahead = today().checked_add_months(Months::new(1)).unwrap();
    let r = inst(p, "/selections", Some(announcement(&res, "two_tier", ahead))).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("WF-9")), "{}", r.body);
    let r = inst(p, "/selections", Some(announcement(&res, "whole", today()))).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str(), r.body["field"].as_str()),
        (422, Some("WF-12"), Some("application_deadline"))
    );
    let sel = announce(p, WEIFANG, &res, "whole").await;
    let a = apply(p, WEIFANG, "op-a", &sel, clean()).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let b = apply(p, WEIFANG, "op-b", &sel, clean()).await;
    assert_eq!(b.status, 201, "{}", b.body);
    let r = apply(p, WEIFANG, "op-a", &sel, clean()).await;
    assert_eq!(r.status, 409, "one application per organisation");
    // WF-13: any network or data security incident in the last three years excludes.
    let two_years_ago = today().checked_sub_months(Months::new(24)).unwrap();
    let mut incident = clean();
    incident["security_incidents"] = json!([{"on": two_years_ago.to_string()}]);
    let r = apply(p, WEIFANG, "op-c", &sel, incident).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/operator-ineligible"), Some("WF-13")),
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"]["ineligible"][0]["requirement"], "security_incidents");
    let mut bad = clean();
    bad["credit_rating"] = json!("ZZZ");
    let r = apply(p, WEIFANG, "op-c", &sel, bad).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("declaration.credit_rating")));

    // Scores come after the deadline, so every application is weighed together.
    let (app_a, app_b) = (a.body["id"].as_str().unwrap().to_string(), b.body["id"].as_str().unwrap().to_string());
    let r = score(p, WEIFANG, &sel, &app_a, 90.0).await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/applications-still-open")));
    elapse(p, &sel, "application_deadline").await;
    let r = apply(p, WEIFANG, "op-late", &sel, clean()).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/application-deadline-passed"), Some("WF-12")),
        "{}",
        r.body
    );
    let award_path = format!("/selections/{sel}/award");
    let award = |app: &str| inst(p, &award_path, Some(json!({"application_id": app, "reason": "评审"})));
    assert_eq!(score(p, WEIFANG, &sel, &app_a, 90.0).await.status, 200);
    let r = award(&app_a).await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/evaluation-incomplete")), "{}", r.body);
    let r = score(p, WEIFANG, &sel, &app_b, 120.0).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("score")));
    assert_eq!(score(p, WEIFANG, &sel, &app_b, 80.0).await.status, 200);
    let r = award(&app_b).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("WF-12")), "the best score wins: {}", r.body);
    let r = award(&app_a).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The notice runs for the profile's period in working days on the official calendar.
    let ends = platform_calendar::Calendar::official().add_working_days(today(), 3).date;
    assert_eq!(
        (r.body["state"].as_str(), r.body["notice_ends"].as_str(), r.body["notice_rule"].as_str()),
        (Some("notice"), Some(ends.to_string().as_str()), Some("WF-12"))
    );

    // No agreement while the notice runs.
    let make = |org: &str| inst(p, "/agreements", Some(agreement(&res, org, &sel)));
    let r = make("org-op-a").await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/public-notice-running"), Some("WF-12")),
        "{}",
        r.body
    );
    let objection = p
        .call(
            &base,
            "POST",
            &format!("/selections/{sel}/objections"),
            Some(&operator("op-b", WEIFANG)),
            Some(json!({"grounds": "中选单位业绩材料不实"})),
        )
        .await;
    assert_eq!(objection.status, 201, "{}", objection.body);
    elapse(p, &sel, "notice_ends").await;
    let r = p
        .call(
            &base,
            "POST",
            &format!("/selections/{sel}/objections"),
            Some(&operator("op-b", WEIFANG)),
            Some(json!({"grounds": "再次异议"})),
        )
        .await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/objection-period-over")), "{}", r.body);
    let r = make("org-op-a").await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/objection-pending")), "{}", r.body);
    let view = p.auth_as(Role::Operator, WEIFANG, "GET", &format!("/selections/{sel}"), None).await;
    assert_eq!((view.body["agreement_allowed"].as_bool(), view.body["applications"].as_u64()), (Some(false), Some(2)));
    let oid = objection.body["id"].as_str().unwrap();
    let r = p
        .auth_as(
            Role::DataAdmin,
            WEIFANG,
            "POST",
            &format!("/selections/{sel}/objections/{oid}/decision"),
            Some(json!({"upheld": false, "reason": "经核实材料真实"})),
        )
        .await;
    assert_eq!(r.body["state"], "dismissed", "{}", r.body);
    let view = p.auth_as(Role::Operator, WEIFANG, "GET", &format!("/selections/{sel}"), None).await;
    assert_eq!(view.body["agreement_allowed"], true, "{}", view.body);
    // Only with the awarded operator.
    let r = make("org-op-b").await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/not-the-awarded-operator")));
    let r = make("org-op-a").await;
    assert_eq!((r.status, r.body["selection_id"].as_str()), (201, Some(sel.as_str())), "{}", r.body);
    let view = p.auth_as(Role::DataAdmin, WEIFANG, "GET", &format!("/selections/{sel}"), None).await;
    assert_eq!(
        (view.body["state"].as_str(), view.body["agreement_id"].as_str()),
        (Some("concluded"), r.body["id"].as_str())
    );
    let agreement_id = r.body["id"].as_str().unwrap().to_string();
    let r = make("org-op-a").await;
    assert_eq!(r.status, 422, "one agreement per selection: {}", r.body);

    // Each public step reached authorization.selection.v1 (for disclosure, WF-25), in order.
    let events = p.events::<pb::SelectionEvent>(topics::AUTHORIZATION_SELECTION, 4).await;
    let steps: Vec<_> =
        events.iter().map(|(env, e)| (env.event_type.as_str(), env.aggregate_version, e.step)).collect();
    use pb::SelectionStep as St;
    assert_eq!(
        steps,
        [
            ("authorization.selection.announced", 1, St::Announced as i32),
            ("authorization.selection.awarded", 2, St::Awarded as i32),
            ("authorization.selection.objection_decided", 3, St::ObjectionDecided as i32),
            ("authorization.selection.concluded", 4, St::Concluded as i32),
        ]
    );
    let (announced, awarded, decided, concluded) = (&events[0].1, &events[1].1, &events[2].1, &events[3].1);
    assert_eq!(
        (announced.selection_id.as_str(), announced.method.as_str(), announced.resource_ids.clone()),
        (sel.as_str(), "open_tender", vec![res.clone()])
    );
    assert_eq!(announced.application_deadline, ahead.to_string());
    // The award carries its public notice: who, and objections until when under which rule.
    assert_eq!(
        (
            awarded.awarded_org.as_str(),
            awarded.awarded_name.as_str(),
            awarded.awarded_score,
            awarded.objection_deadline.as_str(),
            awarded.notice_rule.as_str(),
            awarded.state
        ),
        ("org-op-a", "数据运营有限公司", 90.0, ends.to_string().as_str(), "WF-12", pb::SelectionState::Notice as i32)
    );
    assert_eq!(
        (
            decided.objection_id.as_str(),
            decided.objection_upheld,
            decided.reason.as_str(),
            decided.awarded_org.as_str()
        ),
        (oid, false, "经核实材料真实", "org-op-a")
    );
    assert_eq!(
        (concluded.agreement_id.as_str(), concluded.state),
        (agreement_id.as_str(), pb::SelectionState::Concluded as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_nanshan_a_listed_dishonest_applicant_is_refused_ns_11_and_an_upheld_objection_annuls_the_award_ns_13() {
    let p = start().await;
    let res = p.resource(NANSHAN, "NS-SEL", "unconditional").await;
    let sel = announce(&p, NANSHAN, &res, "two_tier").await;
    let mut listed = clean();
    listed["listed_dishonest"] = json!(true);
    let r = apply(&p, NANSHAN, "op-x", &sel, listed).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("NS-11")), "{}", r.body);
    // Nanshan sets no incident look-back: an incident last year does not exclude there.
    let mut incident = clean();
    incident["security_incidents"] =
        json!([{"on": today().checked_sub_months(Months::new(6)).unwrap().to_string(), "major": true}]);
    let a = apply(&p, NANSHAN, "op-a", &sel, incident).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let app = a.body["id"].as_str().unwrap().to_string();
    elapse(&p, &sel, "application_deadline").await;
    assert_eq!(score(&p, NANSHAN, &sel, &app, 75.0).await.status, 200);
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            NANSHAN,
            "POST",
            &format!("/selections/{sel}/award"),
            Some(json!({"application_id": app, "reason": "综合评审第一"})),
        )
        .await;
    assert_eq!(r.body["notice_rule"], "NS-13", "{}", r.body);
    let o = p
        .auth_as(
            Role::Partner,
            NANSHAN,
            "POST",
            &format!("/selections/{sel}/objections"),
            Some(json!({"grounds": "资质不符"})),
        )
        .await;
    assert_eq!(o.status, 201, "{}", o.body);
    let r = p
        .auth_as(
            Role::DataAdmin,
            NANSHAN,
            "POST",
            &format!("/selections/{sel}/objections/{}/decision", o.body["id"].as_str().unwrap()),
            Some(json!({"upheld": true, "reason": "异议成立"})),
        )
        .await;
    assert_eq!(r.body["state"], "upheld", "{}", r.body);
    let view = p.auth_as(Role::DataAdmin, NANSHAN, "GET", &format!("/selections/{sel}"), None).await;
    assert_eq!(
        (view.body["state"].as_str(), view.body.get("awarded_org").and_then(Value::as_str)),
        (Some("open"), None)
    );
    // The upheld objection is published with the award annulled (NS-13).
    let events = p.events::<pb::SelectionEvent>(topics::AUTHORIZATION_SELECTION, 3).await;
    let decided = &events[2].1;
    assert_eq!(
        (
            decided.step,
            decided.objection_upheld,
            decided.state,
            decided.awarded_org.as_str(),
            decided.objection_deadline.as_str()
        ),
        (pb::SelectionStep::ObjectionDecided as i32, true, pb::SelectionState::Open as i32, "", "")
    );
    elapse(&p, &sel, "application_deadline").await;
    let r = p
        .auth_as(Role::ImplementingInstitution, NANSHAN, "POST", "/agreements", Some(agreement(&res, "org-op-a", &sel)))
        .await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/selection-not-awarded")), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanzhou_requires_aa_credit_and_a_year_of_data_operation_lz_3_where_shaanxi_sets_no_threshold() {
    let p = start().await;
    let lz = p.resource(LANZHOU, "LZ-SEL", "unconditional").await;
    let sx = p.resource(SHAANXI, "SX-SEL", "unconditional").await;
    let lz_sel = announce(&p, LANZHOU, &lz, "scenario").await;
    let sx_sel = announce(&p, SHAANXI, &sx, "whole").await;
    let weak = json!({"credit_rating": "AA-", "data_operation_since": today().checked_sub_months(Months::new(6)).unwrap().to_string()});
    let r = apply(&p, LANZHOU, "op", &lz_sel, weak.clone()).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("LZ-3")), "{}", r.body);
    let failed: Vec<&str> =
        r.body["errors"]["ineligible"].as_array().unwrap().iter().map(|i| i["requirement"].as_str().unwrap()).collect();
    assert_eq!(failed, ["credit_rating", "data_operation_since"]);
    let r = apply(&p, SHAANXI, "op", &sx_sel, weak).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let strong = json!({"credit_rating": "AA", "data_operation_since": "2020-01-01"});
    let r = apply(&p, LANZHOU, "op", &lz_sel, strong).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_selection_endpoint_refuses_a_missing_token_and_every_role_it_does_not_name() {
    let p = start().await;
    let res = p.resource(WEIFANG, "WF-SEL-R", "unconditional").await;
    let sel = announce(&p, WEIFANG, &res, "whole").await;
    let zero = uuid::Uuid::nil();
    let ahead = today().checked_add_months(Months::new(1)).unwrap();
    let ii = vec![Role::ImplementingInstitution];
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        ("POST", "/selections".into(), Some(announcement(&res, "whole", ahead)), ii.clone()),
        ("GET", "/selections".into(), None, Role::ALL.to_vec()),
        ("GET", format!("/selections/{sel}"), None, Role::ALL.to_vec()),
        ("POST", format!("/selections/{sel}/applications"), Some(application(clean())), vec![Role::Operator]),
        ("GET", format!("/selections/{sel}/applications"), None, vec![Role::ImplementingInstitution, Role::DataAdmin]),
        (
            "POST",
            format!("/selections/{sel}/applications/{zero}/evaluation"),
            Some(json!({"score": 1.0, "opinion": "o"})),
            ii.clone(),
        ),
        ("POST", format!("/selections/{sel}/award"), Some(json!({"application_id": zero, "reason": "r"})), ii.clone()),
        ("POST", format!("/selections/{sel}/objections"), Some(json!({"grounds": "g"})), Role::ALL.to_vec()),
        (
            "POST",
            format!("/selections/{sel}/objections/{zero}/decision"),
            Some(json!({"upheld": false, "reason": "r"})),
            vec![Role::DataAdmin],
        ),
    ];
    p.assert_roles(WEIFANG, &endpoints).await;
}
