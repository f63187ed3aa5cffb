//! Renewal where the seeds differ: a partner applies within the last 3 months of its secondary
//! authorization and the primary operator re-signs from the next day (ZJK-17); Nanshan sets no
//! such window; Lanzhou renews only by the implementing institution's decision after the term
//! ended, on an evaluation (LZ-6, LZ-11), where Nanshan's operators apply during the term (NS-15).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Months, NaiveDate};
use common::{XIAN, effective_sub_authorization, operator, partner, start};
use platform_auth::Role;
use platform_events::{authorization as pb, topics};
use serde_json::{Value, json};

const ZHANGJIAKOU: &str = "130700";
const LANZHOU: &str = "620100";
const NANSHAN: &str = "440305";

fn today() -> NaiveDate {
    platform_calendar::today_in_china()
}

fn months(d: NaiveDate, n: u32) -> NaiveDate {
    d.checked_add_months(Months::new(n)).unwrap()
}

/// The last day in force of a term of `n` months from `d` (N years from D end on D + N years − 1 day).
fn last_day(d: NaiveDate, n: u32) -> NaiveDate {
    platform_calendar::add_months(d, n).pred_opt().unwrap()
}

/// An active agreement of `org-op` over `resource`'s line_no from `start` through `end`.
async fn agreement(p: &common::Platform, j: &str, resource: &str, start: NaiveDate, end: NaiveDate) -> String {
    let body = json!({
        "operator_org": "org-op", "operator_name": "运营机构", "products": ["客流分析"],
        "scope": [{"resource_id": resource, "fields": ["line_no"]}],
        "term_start": start.to_string(), "term_end": end.to_string()
    });
    let r = p.auth_as(Role::ImplementingInstitution, j, "POST", "/agreements", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    for step in ["sign", "activate"] {
        let path = format!("/agreements/{id}/{step}");
        let r = p.auth_as(Role::ImplementingInstitution, j, "POST", &path, Some(json!({"reason": "按程序"}))).await;
        assert_eq!(r.status, 200, "{step}: {}", r.body);
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_applies_in_the_last_3_months_and_the_primary_re_signs_from_the_next_day_zjk_17_nanshan_has_no_window()
 {
    let p = start().await;
    let base = p.auth.url();
    let res = p.resource(ZHANGJIAKOU, "ZJK-RN", "unconditional").await;
    // A five-year primary agreement, so that the partners' 3-year cap is what binds.
    let a = agreement(&p, ZHANGJIAKOU, &res, today(), last_day(today(), 60)).await;
    let early = effective_sub_authorization(&p, ZHANGJIAKOU, &a, &res, months(today(), 4)).await;
    let due = effective_sub_authorization(&p, ZHANGJIAKOU, &a, &res, months(today(), 2)).await;
    let (early, due_id) = (early["id"].as_str().unwrap().to_string(), due["id"].as_str().unwrap().to_string());
    let due_end: NaiveDate = due["term_end"].as_str().unwrap().parse().unwrap();

    // Four months before its end the partner is too early; only the partner applies.
    let r =
        p.call(&base, "POST", &format!("/sub-authorizations/{early}/renewal"), Some(&partner(ZHANGJIAKOU)), None).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/outside-renewal-window"), Some("ZJK-17")),
        "{}",
        r.body
    );
    // The primary does not re-sign what the partner has not applied for.
    let r = p
        .call(
            &base,
            "POST",
            &format!("/sub-authorizations/{early}/re-sign"),
            Some(&operator(ZHANGJIAKOU)),
            Some(json!({"term_end": last_day(months(today(), 4), 12)})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/renewal-not-applied-for"), Some("ZJK-17")),
        "{}",
        r.body
    );
    // Two months before: inside the window, once.
    let apply = format!("/sub-authorizations/{due_id}/renewal");
    let r = p.call(&base, "POST", &apply, Some(&partner(ZHANGJIAKOU)), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["renewal_requested_at"].is_string(), "{}", r.body);
    let r = p.call(&base, "POST", &apply, Some(&partner(ZHANGJIAKOU)), None).await;
    assert_eq!(r.status, 409, "{}", r.body);

    // The new term starts the day after the old one's last day and lasts at most 3 years.
    let start_d = due_end.succ_opt().unwrap();
    let re_sign = format!("/sub-authorizations/{due_id}/re-sign");
    let over = json!({"term_end": platform_calendar::add_months(start_d, 36)});
    let r = p.call(&base, "POST", &re_sign, Some(&operator(ZHANGJIAKOU)), Some(over)).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/term-not-allowed"), Some("ZJK-17")),
        "one day over three years: {}",
        r.body
    );
    let r = p
        .call(&base, "POST", &re_sign, Some(&operator(ZHANGJIAKOU)), Some(json!({"term_end": last_day(start_d, 36)})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let renewed = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        (r.body["term_start"].as_str(), r.body["term_end"].as_str(), r.body["renews"].as_str()),
        (Some(start_d.to_string().as_str()), Some(last_day(start_d, 36).to_string().as_str()), Some(due_id.as_str()))
    );
    // Reported to the coordination office before it takes effect, as any sub-authorization (ZJK-17).
    assert_eq!(r.body["state"], "pending_report");
    let r = p
        .call(&base, "POST", &re_sign, Some(&operator(ZHANGJIAKOU)), Some(json!({"term_end": last_day(start_d, 12)})))
        .await;
    assert_eq!(r.status, 409, "re-signed once: {}", r.body);
    let r = p
        .call(&base, "POST", &format!("/sub-authorizations/{renewed}/report"), Some(&operator(ZHANGJIAKOU)), None)
        .await;
    assert_eq!(r.body["state"], "effective", "{}", r.body);
    // Effective, but not yet in force: the partner asks under the old one until it ends.
    p.verified_staff(ZHANGJIAKOU, "partner", Role::Partner).await;
    let mut ask = common::request(&a, &res, &["line_no"], json!({}));
    ask["sub_authorization_id"] = json!(renewed);
    let r = p.call(&base, "POST", "/data-requests", Some(&partner(ZHANGJIAKOU)), Some(ask)).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/sub-authorization-not-started"), Some("ZJK-17")),
        "{}",
        r.body
    );
    let subs = p.call(&base, "GET", "/sub-authorizations", Some(&partner(ZHANGJIAKOU)), None).await;
    let old = subs.body.as_array().unwrap().iter().find(|s| s["id"] == due_id.as_str()).unwrap().clone();
    assert_eq!((old["state"].as_str(), old["renewed_as"].as_str()), (Some("effective"), Some(renewed.as_str())));

    // Published on authorization.agreement.v1 as a new sub-authorization, naming the one it renews.
    let events = p.events::<pb::SubAuthorizationEvent>(topics::AUTHORIZATION_AGREEMENT, 6).await;
    let of_new: Vec<_> = events.iter().filter(|(env, _)| env.aggregate_id == renewed).collect();
    use pb::SubAuthorizationChange as C;
    assert_eq!(of_new.iter().map(|(_, e)| e.change).collect::<Vec<_>>(), [C::Created as i32, C::Reported as i32]);
    let created = &of_new[0].1;
    assert_eq!((created.term_start.as_str(), created.rule.as_str()), (start_d.to_string().as_str(), "ZJK-17"));
    assert!(created.reason.contains(&due_id), "{}", created.reason);

    // Nanshan's service agreements (NS-19) set no window: four months before the end is no refusal.
    let ns = p.resource(NANSHAN, "NS-RN", "unconditional").await;
    let a = agreement(&p, NANSHAN, &ns, today(), last_day(today(), 36)).await;
    let sub = effective_sub_authorization(&p, NANSHAN, &a, &ns, months(today(), 4)).await;
    let sub = sub["id"].as_str().unwrap();
    let r = p.call(&base, "POST", &format!("/sub-authorizations/{sub}/renewal"), Some(&partner(NANSHAN)), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn evaluate(p: &common::Platform, j: &str, agreement: &str) -> String {
    let body = json!({
        "period": "本授权期", "result": "good", "summary": "运营规范，场景成效明显",
        "indicators": {"revenue": "年经营收入1200万元", "cost_control": "成本率下降8%", "profitability": "毛利率22%",
                       "contribution": "支撑城市治理场景3个"}
    });
    let r = p
        .auth_as(Role::ImplementingInstitution, j, "POST", &format!("/agreements/{agreement}/evaluations"), Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn decision(evaluation: &str, choice: &str) -> Value {
    json!({"evaluation_id": evaluation, "decision": choice, "market_demand": "文旅场景需求持续增长", "reason": "考核良好"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanzhou_renews_only_by_decision_after_expiry_on_an_evaluation_lz_6_where_nanshan_operators_apply_ns_15() {
    let p = start().await;
    let base = p.auth.url();
    let res = p.resource(LANZHOU, "LZ-RN", "unconditional").await;
    // Two agreements whose fixed two years (LZ-6) ended yesterday, and one still in its term.
    let began = today().checked_sub_months(Months::new(24)).unwrap();
    let renewed = agreement(&p, LANZHOU, &res, began, last_day(began, 24)).await;
    let refused = agreement(&p, LANZHOU, &res, began, last_day(began, 24)).await;
    let running = agreement(&p, LANZHOU, &res, today(), last_day(today(), 24)).await;
    let decide = |id: &str| format!("/agreements/{id}/renewal-decision");

    // During the term: the operator cannot apply, and the institution cannot decide yet.
    let r = p.call(&base, "POST", &format!("/agreements/{running}/renewal"), Some(&operator(LANZHOU)), None).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("LZ-6")), "{}", r.body);
    let e = evaluate(&p, LANZHOU, &running).await;
    let r =
        p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", &decide(&running), Some(decision(&e, "renew"))).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/renewal-decided-after-expiry"), Some("LZ-6")),
        "{}",
        r.body
    );

    assert!(authorization::agreements::expire_due(&p.state(), 10).await.unwrap() <= 2);
    for id in [&renewed, &refused] {
        let r = p.auth_as(Role::DataAdmin, LANZHOU, "GET", &format!("/agreements/{id}"), None).await;
        assert_eq!(r.body["state"], "expired", "{}", r.body);
    }
    // After expiry, but on no evaluation of this agreement (another's does not count).
    let r =
        p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", &decide(&renewed), Some(decision(&e, "renew"))).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str(), r.body["field"].as_str()),
        (422, Some("/problems/evaluation-missing"), Some("LZ-6"), Some("evaluation_id")),
        "{}",
        r.body
    );
    let e = evaluate(&p, LANZHOU, &renewed).await;
    let r =
        p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", &decide(&renewed), Some(decision(&e, "renew"))).await;
    assert_eq!(
        (r.status, r.body["decision"].as_str(), r.body["rule"].as_str()),
        (200, Some("renew"), Some("LZ-6")),
        "{}",
        r.body
    );
    let new_id = r.body["renewed_as"].as_str().unwrap().to_string();
    let r = p
        .auth_as(Role::ImplementingInstitution, LANZHOU, "POST", &decide(&renewed), Some(decision(&e, "refuse")))
        .await;
    assert_eq!(r.status, 409, "decided once: {}", r.body);

    // The renewal is a new agreement of the fixed two years, signed and activated as any.
    let r = p.auth_as(Role::DataAdmin, LANZHOU, "GET", &format!("/agreements/{new_id}"), None).await;
    assert_eq!(
        (r.body["state"].as_str(), r.body["term_start"].as_str(), r.body["term_end"].as_str()),
        (Some("draft"), Some(today().to_string().as_str()), Some(last_day(today(), 24).to_string().as_str())),
        "{}",
        r.body
    );
    assert!(r.body["steps"][0]["reason"].as_str().unwrap().contains(&renewed), "{}", r.body);
    for step in ["sign", "activate"] {
        let path = format!("/agreements/{new_id}/{step}");
        let r = p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", &path, Some(json!({"reason": "续签"}))).await;
        assert_eq!(r.status, 200, "{step}: {}", r.body);
    }
    let old = p.auth_as(Role::DataAdmin, LANZHOU, "GET", &format!("/agreements/{renewed}"), None).await;
    let last = old.body["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["to_state"], "expired");
    assert!(last["reason"].as_str().unwrap().contains(&new_id), "{last}");

    // A refusal makes no agreement.
    let e = evaluate(&p, LANZHOU, &refused).await;
    let r = p
        .auth_as(Role::ImplementingInstitution, LANZHOU, "POST", &decide(&refused), Some(decision(&e, "refuse")))
        .await;
    assert_eq!((r.status, r.body["decision"].as_str()), (200, Some("refuse")), "{}", r.body);
    assert!(r.body["renewed_as"].is_null());
    let listed = p.call(&base, "GET", "/agreements", Some(&operator(LANZHOU)), None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 4, "three made, one renewed: {}", listed.body);
    let evaluations =
        p.call(&base, "GET", &format!("/agreements/{refused}/evaluations"), Some(&operator(LANZHOU)), None).await;
    assert_eq!(evaluations.body[0]["result"], "good", "the operator sees its own evaluation: {}", evaluations.body);

    // Nanshan renews by application within the term (NS-15): there is nothing to decide after it.
    let ns = p.resource(NANSHAN, "NS-RD", "unconditional").await;
    let ended = agreement(&p, NANSHAN, &ns, began, last_day(began, 24)).await;
    authorization::agreements::expire_due(&p.state(), 10).await.unwrap();
    let e = evaluate(&p, NANSHAN, &ended).await;
    let r =
        p.auth_as(Role::ImplementingInstitution, NANSHAN, "POST", &decide(&ended), Some(decision(&e, "renew"))).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/renewal-not-by-decision"), Some("NS-15")),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_renewal_evaluation_and_harm_report_endpoint_refuses_a_missing_token_and_every_role_it_does_not_name() {
    let p = start().await;
    let res = p.resource(XIAN, "XA-RN", "unconditional").await;
    let a = agreement(&p, XIAN, &res, today(), last_day(today(), 24)).await;
    let sub = uuid::Uuid::now_v7();
    let evaluation = json!({
        "period": "2027", "result": "good", "summary": "s",
        "indicators": {"revenue": "r", "cost_control": "c", "profitability": "p", "contribution": "c"}
    });
    let institution = vec![Role::ImplementingInstitution];
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        ("POST", format!("/agreements/{a}/evaluations"), Some(evaluation), institution.clone()),
        (
            "GET",
            format!("/agreements/{a}/evaluations"),
            None,
            vec![Role::ImplementingInstitution, Role::DataAdmin, Role::Operator],
        ),
        ("POST", format!("/agreements/{a}/renewal-decision"), Some(decision(&sub.to_string(), "renew")), institution),
        (
            "POST",
            format!("/agreements/{a}/harm-report"),
            Some(json!({"harm": "personal_information", "description": "d"})),
            vec![Role::Operator],
        ),
        ("POST", format!("/sub-authorizations/{sub}/renewal"), None, vec![Role::Partner]),
        (
            "POST",
            format!("/sub-authorizations/{sub}/re-sign"),
            Some(json!({"term_end": today()})),
            vec![Role::Operator],
        ),
        ("POST", format!("/sub-authorizations/{sub}/terminate"), Some(json!({"reason": "违约"})), vec![Role::Operator]),
    ];
    p.assert_roles(XIAN, &endpoints).await;
}
