//! How an operator's access stops: its own report of harm (NS-26), the coordination office's
//! unilateral termination after a poor evaluation that did not improve (ZJK-35), and exit at the
//! end of the term or by early termination (WF-27).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{XIAN, active_grant, approve_both, operator, request, start};
use platform_auth::Role;
use platform_events::{authorization as pb, topics};
use serde_json::{Value, json};

const NANSHAN: &str = "440305";
const ZHANGJIAKOU: &str = "130700";
const WEIFANG: &str = "370700";

fn today() -> chrono::NaiveDate {
    platform_calendar::today_in_china()
}

async fn grant(p: &common::Platform, j: &str, id: &str) -> Value {
    p.auth_as(Role::DataAdmin, j, "GET", &format!("/grants/{id}"), None).await.body
}

/// A second approved request of `org-op` under `agreement`: its grant id.
async fn another_grant(p: &common::Platform, j: &str, agreement: &str, res: &str) -> String {
    let ask = request(agreement, res, &["line_no"], json!({}));
    let r = p.call(&p.auth.url(), "POST", "/data-requests", Some(&operator(j)), Some(ask)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    approve_both(p, j, r.body["id"].as_str().unwrap()).await["grant_id"].as_str().unwrap().to_string()
}

async fn case_step(p: &common::Platform, j: &str, case: &str, action: &str, reason: &str) -> Value {
    let path = format!("/supervision-cases/{case}/{action}");
    let r = p.auth_as(Role::DataAdmin, j, "POST", &path, Some(json!({"reason": reason}))).await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_nanshan_an_operator_that_finds_harm_stops_the_grants_concerned_and_reports_ns_26() {
    let p = start().await;
    let base = p.auth.url();
    let (a, res, concerned) = active_grant(&p, NANSHAN, "NS-H").await;
    let other = another_grant(&p, NANSHAN, &a, &res).await;
    let report = json!({
        "harm": "personal_information", "description": "模型输出可能还原出乘客手机号", "grant_ids": [concerned]
    });
    let path = format!("/agreements/{a}/harm-report");
    // Only the agreement's operator reports on it.
    let stranger = platform_testkit::token("stranger", NANSHAN, &[Role::Operator]);
    let r = p.call(&base, "POST", &path, Some(&stranger), Some(report.clone())).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = p.call(&base, "POST", &path, Some(&operator(NANSHAN)), Some(report)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["rule"].as_str(), r.body["access_rule"].as_str()),
        (Some("open"), Some("NS-26"), Some("NS-26"))
    );
    let case = r.body["id"].as_str().unwrap().to_string();
    // The operation concerned stops at once; the rest goes on.
    let g = grant(&p, NANSHAN, &concerned).await;
    assert_eq!((g["state"].as_str(), g["suspended_by_case"].as_str()), (Some("suspended"), Some(case.as_str())));
    assert_eq!(grant(&p, NANSHAN, &other).await["state"], "active");
    // The district's data management department has the report, truthfully worded.
    let cases = p.auth_as(Role::DataAdmin, NANSHAN, "GET", "/supervision-cases", None).await;
    let listed = &cases.body["items"][0];
    assert_eq!(listed["id"], case.as_str());
    assert!(listed["grounds"].as_str().unwrap().contains("手机号"), "{listed}");
    // No new access while the department has not decided.
    let third = another_grant(&p, NANSHAN, &a, &res).await;
    assert_eq!(grant(&p, NANSHAN, &third).await["state"], "suspended");
    // The department decides: the risk is dealt with, the operation resumes.
    case_step(&p, NANSHAN, &case, "rectify", "已下线相关模型并复核").await;
    let passed = case_step(&p, NANSHAN, &case, "pass", "风险已消除").await;
    assert_eq!(passed["state"], "passed");
    for g in [&concerned, &third] {
        assert_eq!(grant(&p, NANSHAN, g).await["state"], "active", "{g}");
    }
    // The stop is published with its rule, for the development environment to close the workspace.
    let events = p.events::<pb::GrantEvent>(topics::AUTHORIZATION_GRANT, 6).await;
    let stop = events
        .iter()
        .find(|(env, e)| env.aggregate_id == concerned && e.change == pb::GrantChange::Suspended as i32)
        .expect("the stop is published");
    assert_eq!(stop.1.rule, "NS-26");

    // No seed of Xi'an sets the duty: the operator may still stop and report, as a platform measure.
    let (xa, _, xg) = active_grant(&p, XIAN, "XA-H").await;
    let body = json!({"harm": "national_security", "description": "发现境外异常访问"});
    let r = p.call(&base, "POST", &format!("/agreements/{xa}/harm-report"), Some(&operator(XIAN)), Some(body)).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (201, Some("platform default")), "{}", r.body);
    assert_eq!(grant(&p, XIAN, &xg).await["state"], "suspended", "every active grant when none is named");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zhangjiakou_terminates_unilaterally_after_a_poor_evaluation_does_not_improve_zjk_35_and_partners_lose_access()
{
    let p = start().await;
    let base = p.auth.url();
    let res = p.resource(ZHANGJIAKOU, "ZJK-X", "unconditional").await;
    let a = common::active_agreement(&p, ZHANGJIAKOU, &res, &["line_no"]).await;
    // A partner works under a reported sub-authorization (ZJK-11, ZJK-17).
    let (sub, approved) = common::partner_grant(&p, ZHANGJIAKOU, &a, &res).await;
    let g = approved["grant_id"].as_str().unwrap().to_string();
    let partner = common::partner(ZHANGJIAKOU);

    // ZJK-35 (四): a poor evaluation, a warning (rectification, access closed: ZJK-34), no improvement.
    let grounds = "年度评估结果较差，经约谈提醒（ZJK-35（四））";
    let case = common::open_case(&p, ZHANGJIAKOU, &a, grounds).await;
    let r = case_step(&p, ZHANGJIAKOU, &case, "rectify", "限期整改").await;
    assert_eq!(r["access_rule"], "ZJK-34");
    assert_eq!(grant(&p, ZHANGJIAKOU, &g).await["state"], "suspended");
    case_step(&p, ZHANGJIAKOU, &case, "fail", "约谈后仍无改善").await;

    let ag = p.auth_as(Role::DataAdmin, ZHANGJIAKOU, "GET", &format!("/agreements/{a}"), None).await;
    assert_eq!(ag.body["state"], "terminated", "{}", ag.body);
    assert!(ag.body["termination_reason"].as_str().unwrap().contains("约谈后仍无改善"));
    // The partner holds nothing beyond the primary's authorization: its access and its
    // sub-authorization end with it, and the logs are kept at least six months (ZJK-31).
    let pg = grant(&p, ZHANGJIAKOU, &g).await;
    assert_eq!((pg["state"].as_str(), pg["principal_org"].as_str()), (Some("revoked"), Some("org-partner")));
    let kept: chrono::NaiveDate = pg["logs_retained_until"].as_str().unwrap().parse().unwrap();
    assert!(kept >= platform_calendar::add_months(today(), 6));
    let subs = p.call(&base, "GET", "/sub-authorizations", Some(&partner), None).await;
    assert_eq!(subs.body[0]["state"], "ended", "{}", subs.body);
    let r = p.call(&base, "POST", &format!("/sub-authorizations/{sub}/renewal"), Some(&partner), None).await;
    assert_eq!(r.status, 409, "an ended sub-authorization is not renewed: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_weifang_an_operator_exits_when_its_term_ends_or_on_early_termination_wf_27() {
    let p = start().await;
    let base = p.auth.url();
    // WF-27 (一): the term ends.
    let (ended, res, g1) = active_grant(&p, WEIFANG, "WF-X1").await;
    p.count(&format!(
        "WITH u AS (UPDATE agreements SET term_end = current_date - 1 WHERE id = '{ended}' RETURNING 1) SELECT count(*) AS n FROM u"
    ))
    .await;
    assert!(authorization::agreements::expire_due(&p.state(), 10).await.unwrap() <= 1);
    let ag = p.auth_as(Role::DataAdmin, WEIFANG, "GET", &format!("/agreements/{ended}"), None).await;
    assert_eq!(ag.body["state"], "expired");
    let g = grant(&p, WEIFANG, &g1).await;
    assert_eq!(g["state"], "expired", "{g}");
    let kept: chrono::NaiveDate = g["logs_retained_until"].as_str().unwrap().parse().unwrap();
    assert!(kept >= platform_calendar::add_months(today(), 6), "WF-24: logs kept at least six months");
    let ask = request(&ended, &res, &["line_no"], json!({}));
    let r = p.call(&base, "POST", "/data-requests", Some(&operator(WEIFANG)), Some(ask)).await;
    assert_eq!(r.status, 409, "nothing more under an ended term: {}", r.body);

    // WF-27 (三): terminated early, e.g. after an administrative penalty.
    let a2 = common::active_agreement(&p, WEIFANG, &res, &["line_no"]).await;
    let g2 = another_grant(&p, WEIFANG, &a2, &res).await;
    let r = p
        .auth_as(
            Role::DataAdmin,
            WEIFANG,
            "POST",
            &format!("/agreements/{a2}/terminate"),
            Some(json!({"reason": "运营单位被责令停产停业（WF-27（三））"})),
        )
        .await;
    assert_eq!(r.body["state"], "terminated", "{}", r.body);
    assert_eq!(grant(&p, WEIFANG, &g2).await["state"], "revoked");

    // Each exit is published with the rule it ends the grant under.
    let events = p.events::<pb::GrantEvent>(topics::AUTHORIZATION_GRANT, 4).await;
    let rule_of = |id: &str, change: pb::GrantChange| {
        events.iter().find(|(env, e)| env.aggregate_id == id && e.change == change as i32).map(|(_, e)| e.rule.clone())
    };
    assert_eq!(rule_of(&g1, pb::GrantChange::Expired).as_deref(), Some("WF-27"));
    assert_eq!(rule_of(&g2, pb::GrantChange::Revoked).as_deref(), Some("WF-24"));
}

/// ZJK-35: 授权运营协调机制办公室或一级开发运营主体有权单方面终止协议 — the primary operator ends its
/// partner's sub-authorization on its own; the partner's access goes with it, the primary's stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_operator_ends_a_partners_sub_authorization_on_its_own_zjk_35_and_keeps_its_agreement() {
    let p = start().await;
    let base = p.auth.url();
    let res = p.resource(ZHANGJIAKOU, "ZJK-E", "unconditional").await;
    let a = common::active_agreement(&p, ZHANGJIAKOU, &res, &["line_no"]).await;
    let (sub, approved) = common::partner_grant(&p, ZHANGJIAKOU, &a, &res).await;
    let g = approved["grant_id"].as_str().unwrap().to_string();
    let path = format!("/sub-authorizations/{sub}/terminate");
    let why = json!({"reason": "合作方发生数据泄露事故（ZJK-35（二））"});
    // Neither the partner nor another operator ends it.
    let r = p.call(&base, "POST", &path, Some(&common::partner(ZHANGJIAKOU)), Some(why.clone())).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let stranger = platform_testkit::token("stranger", ZHANGJIAKOU, &[Role::Operator]);
    let r = p.call(&base, "POST", &path, Some(&stranger), Some(why.clone())).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = p.call(&base, "POST", &path, Some(&operator(ZHANGJIAKOU)), Some(why.clone())).await;
    assert_eq!(r.body["state"], "ended", "{}", r.body);
    assert!(r.body["end_reason"].as_str().unwrap().contains("ZJK-35"), "{}", r.body);
    let r = p.call(&base, "POST", &path, Some(&operator(ZHANGJIAKOU)), Some(why)).await;
    assert_eq!(r.status, 409, "ended once: {}", r.body);
    let pg = grant(&p, ZHANGJIAKOU, &g).await;
    assert_eq!(pg["state"], "revoked", "{pg}");
    let ag = p.auth_as(Role::DataAdmin, ZHANGJIAKOU, "GET", &format!("/agreements/{a}"), None).await;
    assert_eq!(ag.body["state"], "active");
    let events = p.events::<pb::GrantEvent>(topics::AUTHORIZATION_GRANT, 2).await;
    let revoked = events.iter().find(|(_, e)| e.change == pb::GrantChange::Revoked as i32).expect("revoked");
    assert_eq!((revoked.0.aggregate_id.as_str(), revoked.1.rule.as_str()), (g.as_str(), "ZJK-35"));
}
