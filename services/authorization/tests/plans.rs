//! Implementation plans against a real catalog, PostgreSQL and broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SHAANXI, WEIFANG, XIAN, complete_plan, start};
use platform_auth::Role;
use platform_events::{authorization as pb, topics};
use serde_json::json;

fn today() -> chrono::NaiveDate {
    platform_calendar::today_in_china()
}

async fn walk_to_approved(p: &common::Platform, jurisdiction: &str, id: &str) -> serde_json::Value {
    let why = json!({"reason": "按程序办理"});
    let r = p
        .auth_as(Role::ImplementingInstitution, jurisdiction, "POST", &format!("/plans/{id}/submit"), Some(why.clone()))
        .await;
    assert_eq!((r.status, r.body["state"].as_str()), (200, Some("feasibility_review")), "{}", r.body);
    let r = p
        .auth_as(Role::DataAdmin, jurisdiction, "POST", &format!("/plans/{id}/pass_feasibility"), Some(why.clone()))
        .await;
    assert_eq!(r.body["state"], "deliberation", "{}", r.body);
    let r = p.auth_as(Role::DataAdmin, jurisdiction, "POST", &format!("/plans/{id}/approve"), Some(why)).await;
    assert_eq!(r.body["state"], "approved", "{}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_plan_needs_twelve_contents_sx_16_goes_through_review_sx_17_sx_18_and_is_filed_within_a_month_sx_19() {
    let p = start().await;
    let res = p.resource(XIAN, "XA-JT-1", "conditional").await;

    // A draft may be incomplete; submission is refused and lists what is missing (SX-16).
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            "/plans",
            Some(json!({"name": "西安市公共交通数据授权运营", "mode": "scenario"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["missing_contents"].as_array().unwrap().len(), 10);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            &format!("/plans/{id}/submit"),
            Some(json!({"reason": "提交"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/plan-incomplete"), Some("SX-16"))
    );
    assert!(r.body["detail"].as_str().unwrap().contains("(八)"), "{}", r.body);
    assert_eq!(r.body["errors"]["missing"].as_array().unwrap().len(), 10);

    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "PUT",
            &format!("/plans/{id}"),
            Some(complete_plan("西安市公共交通数据授权运营", "scenario", &[&res])),
        )
        .await;
    assert_eq!((r.status, r.body["missing_contents"].as_array().unwrap().len()), (200, 0), "{}", r.body);
    // No approval before review.
    let r =
        p.auth_as(Role::DataAdmin, XIAN, "POST", &format!("/plans/{id}/approve"), Some(json!({"reason": "x"}))).await;
    assert_eq!(r.status, 409);

    let approved = walk_to_approved(&p, XIAN, &id).await;
    let due = platform_calendar::add_months(today(), 1);
    assert_eq!(
        (approved["filing_due"].as_str(), approved["filing_rule"].as_str()),
        (Some(due.to_string().as_str()), Some("SX-19"))
    );

    let r = p
        .auth_as(
            Role::DataAdmin,
            XIAN,
            "POST",
            &format!("/plans/{id}/file"),
            Some(json!({"reason": "已报省数据和政务服务局备案"})),
        )
        .await;
    assert_eq!((r.body["state"].as_str(), r.body["filed_late"].as_bool()), (Some("filed"), Some(false)), "{}", r.body);
    let states: Vec<&str> =
        r.body["steps"].as_array().unwrap().iter().map(|s| s["to_state"].as_str().unwrap()).collect();
    assert_eq!(states, ["draft", "feasibility_review", "deliberation", "approved", "filed"]);

    let reader = platform_testkit::topic_reader(&p.auth_settings, topics::AUTHORIZATION_PLAN);
    let mut seen = Vec::new();
    while seen.len() < 5 {
        use rdkafka::Message as _;
        let m = tokio::time::timeout(std::time::Duration::from_secs(20), reader.recv())
            .await
            .expect("plan events")
            .unwrap();
        let env = platform_events::Envelope::decode_checked(m.payload().unwrap()).unwrap();
        seen.push(env.payload_as::<pb::PlanEvent>().unwrap());
    }
    assert_eq!(seen.iter().map(|e| e.state).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(seen[3].filing_due, due.to_string());
    assert_eq!(seen[3].filing_rule, "SX-19");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weifang_files_in_20_working_days_wf_11_and_allows_only_whole_authorization_wf_9() {
    let p = start().await;
    let res = p.resource(WEIFANG, "WF-1", "unconditional").await;
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            WEIFANG,
            "POST",
            "/plans",
            Some(complete_plan("潍坊市公共数据授权运营", "scenario", &[&res])),
        )
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/mode-not-allowed"), Some("WF-9"))
    );
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            WEIFANG,
            "POST",
            "/plans",
            Some(complete_plan("潍坊市公共数据授权运营", "whole", &[&res])),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let approved = walk_to_approved(&p, WEIFANG, &id).await;
    let due = platform_calendar::Calendar::official().add_working_days(today(), 20);
    assert_eq!(approved["filing_due"], due.date.to_string());
    assert_eq!(approved["filing_rule"], "WF-11");
    // The same mode is allowed in Shaanxi (SX-12).
    let sx = p.resource(SHAANXI, "SX-1", "unconditional").await;
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            SHAANXI,
            "POST",
            "/plans",
            Some(complete_plan("陕西省交通", "scenario", &[&sx])),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_plan_has_no_filing_and_a_change_re_enters_the_whole_flow_wf_11() {
    let p = start().await;
    let a = p.resource(SHAANXI, "SX-A", "conditional").await;
    let b = p.resource(SHAANXI, "SX-B", "unconditional").await;
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            SHAANXI,
            "POST",
            "/plans",
            Some(complete_plan("陕西省数据授权运营", "whole", &[&a])),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let approved = walk_to_approved(&p, SHAANXI, &id).await;
    assert!(approved.get("filing_due").is_none(), "{approved}");
    let r =
        p.auth_as(Role::DataAdmin, SHAANXI, "POST", &format!("/plans/{id}/file"), Some(json!({"reason": "x"}))).await;
    assert_eq!(r.status, 409);

    // Changing the data scope: the approved contents stay in force, the change starts at draft.
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            SHAANXI,
            "POST",
            &format!("/plans/{id}/change"),
            Some(
                json!({"contents": complete_plan("陕西省数据授权运营", "whole", &[&a, &b]), "reason": "扩大数据范围"}),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str(), r.body["revision"].as_i64()),
        (200, Some("draft"), Some(2)),
        "{}",
        r.body
    );
    assert_eq!(r.body["approved_contents"]["data_scope"]["resource_ids"].as_array().unwrap().len(), 1);
    let r = p
        .auth_as(Role::DataAdmin, SHAANXI, "POST", &format!("/plans/{id}/approve"), Some(json!({"reason": "x"})))
        .await;
    assert_eq!(r.status, 409, "a change is approved only through the flow again");
    let again = walk_to_approved(&p, SHAANXI, &id).await;
    assert_eq!(again["approved_contents"]["data_scope"]["resource_ids"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_scope_must_be_known_authorizable_resources_of_the_jurisdiction_ns_2() {
    let p = start().await;
    let closed = p.resource(XIAN, "XA-closed", "not_open").await;
    let other = p.resource(WEIFANG, "WF-other", "unconditional").await;
    let own = p.resource(XIAN, "XA-own", "conditional").await;
    let before = p.count("SELECT count(*) AS n FROM plans").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            "/plans",
            Some(complete_plan("x", "scenario", &[&own, &unknown])),
        )
        .await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/unknown-resource")));
    assert_eq!(r.body["errors"]["resource_ids"][0], unknown);
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            XIAN,
            "POST",
            "/plans",
            Some(complete_plan("x", "scenario", &[&closed])),
        )
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("NS-2")));
    let r = p
        .auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(complete_plan("x", "scenario", &[&other])))
        .await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/foreign-resource")));
    // A province plan may cover its cities' resources.
    let r = p
        .auth_as(Role::ImplementingInstitution, SHAANXI, "POST", "/plans", Some(complete_plan("x", "whole", &[&own])))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(p.count("SELECT count(*) AS n FROM plans").await, before + 1, "refused plans wrote nothing");
    let r =
        p.auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(json!({"name": "x", "budget": 1}))).await;
    assert_eq!(r.status, 400, "unknown contents are refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_filings_are_listed_and_counted() {
    let p = start().await;
    let res = p.resource(XIAN, "XA-1", "conditional").await;
    let r = p
        .auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(complete_plan("x", "scenario", &[&res])))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let approved = walk_to_approved(&p, XIAN, &id).await;
    let due: chrono::NaiveDate = approved["filing_due"].as_str().unwrap().parse().unwrap();
    let r = p.auth_as(Role::DataAdmin, XIAN, "GET", &format!("/plans?filing_overdue_as_of={due}"), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "due the whole due day");
    let r = p
        .auth_as(
            Role::DataAdmin,
            XIAN,
            "GET",
            &format!("/plans?filing_overdue_as_of={}", due.succ_opt().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    p.count(&format!("WITH u AS (UPDATE plans SET filing_due = current_date - 3 WHERE id = '{id}' RETURNING 1) SELECT count(*) AS n FROM u")).await;
    let text = platform_testkit::eventually("the overdue gauge", std::time::Duration::from_secs(30), || async {
        let text = reqwest::get(format!("{}/metrics", p.auth.url())).await.unwrap().text().await.unwrap();
        (platform_testkit::metric_value(&text, "authorization_plan_filings_overdue", &[]) == Some(1.0)).then_some(text)
    })
    .await;
    // The dashboards' and alerts' authorization series, and its consumer's counters, are exported.
    let used = include_str!("../../../charts/platform/metrics-used.txt");
    for name in used.lines().map(str::trim).filter(|l| l.starts_with("authorization_") || *l == "kafka_consumed_total")
    {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "{name} not exported"
        );
    }
    let r =
        p.auth_as(Role::DataAdmin, XIAN, "POST", &format!("/plans/{id}/file"), Some(json!({"reason": "补报"}))).await;
    assert_eq!(r.body["filed_late"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_are_served_with_their_rules_ns_15_lz_6_and_mark_platform_defaults() {
    let p = start().await;
    let r = p.auth_as(Role::Operator, SHAANXI, "GET", "/jurisdictions/440305/profile", None).await;
    assert_eq!(r.body["values"]["max_agreement_term_months"], json!({"value": 36, "rule": "NS-15"}));
    let r = p.auth_as(Role::Partner, SHAANXI, "GET", "/jurisdictions/620100/profile", None).await;
    assert_eq!(r.body["values"]["max_agreement_term_months"], json!({"value": 24, "rule": "LZ-6"}));
    // What no seed sets is marked, so that an official knows what to confirm: Lanzhou's 2 years
    // are its own (LZ-6); masking personal information is the platform's (NS-2 sets no masking).
    let defaults = r.body["platform_defaults"].as_array().unwrap().clone();
    assert!(!defaults.contains(&json!("max_agreement_term_months")), "{defaults:?}");
    assert!(defaults.contains(&json!("personal_information_in_scope")), "{defaults:?}");
    assert_eq!(r.body["values"]["personal_information_in_scope"]["rule"], "platform default");
    let r = p.auth_as(Role::Partner, SHAANXI, "GET", "/jurisdictions/130700/profile", None).await;
    let cap = &r.body["values"]["max_agreement_term_months"];
    assert_eq!((&cap["value"], &cap["rule"]), (&json!(60), &json!("platform default")), "not SX-22: {cap}");
    assert!(r.body["platform_defaults"].as_array().unwrap().contains(&json!("max_agreement_term_months")));
    let r = p.auth_as(Role::Partner, SHAANXI, "GET", "/jurisdictions", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 7);
    let r = p.auth_as(Role::Partner, SHAANXI, "GET", "/jurisdictions/999999/profile", None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (422, Some("/problems/unknown-jurisdiction")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_a_missing_token_and_every_role_it_does_not_name() {
    let p = start().await;
    let r = p.auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(json!({"name": "x"}))).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let why = json!({"reason": "r"});
    let authors = vec![Role::ImplementingInstitution];
    let admins = vec![Role::DataAdmin];
    let readers = vec![Role::ImplementingInstitution, Role::DataAdmin];
    let endpoints: Vec<(&str, String, Option<serde_json::Value>, Vec<Role>)> = vec![
        ("GET", "/jurisdictions".into(), None, Role::ALL.to_vec()),
        ("GET", "/jurisdictions/610000/profile".into(), None, Role::ALL.to_vec()),
        ("POST", "/plans".into(), Some(json!({"name": "y"})), authors.clone()),
        ("GET", "/plans".into(), None, readers.clone()),
        ("GET", format!("/plans/{id}"), None, readers.clone()),
        ("PUT", format!("/plans/{id}"), Some(json!({"name": "z"})), authors.clone()),
        ("POST", format!("/plans/{id}/change"), Some(json!({"contents": {}, "reason": "r"})), authors.clone()),
        ("POST", format!("/plans/{id}/submit"), Some(why.clone()), authors.clone()),
        ("POST", format!("/plans/{id}/pass_feasibility"), Some(why.clone()), admins.clone()),
        ("POST", format!("/plans/{id}/return"), Some(why.clone()), admins.clone()),
        ("POST", format!("/plans/{id}/approve"), Some(why.clone()), admins.clone()),
        ("POST", format!("/plans/{id}/file"), Some(why.clone()), admins.clone()),
    ];
    p.assert_roles(XIAN, &endpoints).await;
    // Another jurisdiction's plan is not visible.
    let r = p.auth_as(Role::DataAdmin, WEIFANG, "GET", &format!("/plans/{id}"), None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_listed_in_keyset_pages() {
    let p = start().await;
    for name in ["甲", "乙", "丙"] {
        let r = p.auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(json!({"name": name}))).await;
        assert_eq!(r.status, 201);
    }
    let first = p.auth_as(Role::DataAdmin, XIAN, "GET", "/plans?limit=2", None).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = p.auth_as(Role::DataAdmin, XIAN, "GET", &format!("/plans?limit=2&cursor={cursor}"), None).await;
    let names: Vec<&str> =
        second.body["items"].as_array().unwrap().iter().map(|i| i["contents"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["丙"]);
    assert!(second.body.get("next_cursor").is_none());
    let r = p.auth_as(Role::DataAdmin, XIAN, "GET", "/plans?limit=0", None).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("limit")));
    let r = p.auth_as(Role::DataAdmin, XIAN, "GET", "/plans?cursor=x", None).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("cursor")));
}

/// LZ-4: Lanzhou authorizes by scenario only (依场景授权, 一场景一议): a whole or by-sector plan and a
/// whole-mode selection are refused under LZ-4; a scenario plan goes through, and Weifang's whole
/// mode (WF-9) is the opposite case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanzhou_authorizes_by_scenario_only_lz_4_where_weifang_authorizes_whole_wf_9() {
    const LANZHOU: &str = "620100";
    let p = start().await;
    let lz = p.resource(LANZHOU, "LZ-M", "unconditional").await;
    for mode in ["whole", "sector", "two_tier"] {
        let body = complete_plan("兰州市公共数据授权运营", mode, &[&lz]);
        let r = p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", "/plans", Some(body)).await;
        assert_eq!(
            (r.status, r.body["type"].as_str(), r.body["rule"].as_str(), r.body["field"].as_str()),
            (422, Some("/problems/mode-not-allowed"), Some("LZ-4"), Some("mode")),
            "{mode}: {}",
            r.body
        );
    }
    let body = complete_plan("兰州市文旅场景授权运营", "scenario", &[&lz]);
    let r = p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", "/plans", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let approved = walk_to_approved(&p, LANZHOU, r.body["id"].as_str().unwrap()).await;
    assert_eq!(approved["contents"]["mode"], "scenario");
    // The operator selection follows the same profile value.
    let deadline = today().checked_add_days(chrono::Days::new(10)).unwrap().to_string();
    let announce = |mode: &str| {
        json!({
            "title": "文旅场景授权运营", "mode": mode, "method": "open_tender", "resource_ids": [lz],
            "scope_description": "景区客流（日更）", "conditions": "信用评级AA以上", "criteria": "技术70分，商务30分",
            "application_deadline": deadline
        })
    };
    let r = p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", "/selections", Some(announce("whole"))).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("LZ-4")), "{}", r.body);
    let r = p.auth_as(Role::ImplementingInstitution, LANZHOU, "POST", "/selections", Some(announce("scenario"))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Weifang is the other way round: whole only (WF-9).
    let wf = p.resource(WEIFANG, "WF-M", "unconditional").await;
    let r = p
        .auth_as(Role::ImplementingInstitution, WEIFANG, "POST", "/plans", Some(complete_plan("潍坊", "whole", &[&wf])))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}
