//! Quality objections: due in the profile's working days (LZ-5), every step recorded, overdue listed and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SHAANXI, resource, start};
use platform_auth::Role;
use platform_events::{catalog as pb, topics};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objection_is_filed_accepted_and_rectified_with_every_step_recorded_lz_5() {
    let s = start().await;
    let id = s.published(resource("R-1", "企业登记信息")).await;
    let r = s
        .as_role(
            Role::Operator,
            "POST",
            "/objections",
            Some(json!({"resource_id": id, "field": "registered_capital", "description": "注册资本单位错误"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["state"].as_str(), r.body["deadline_rule"].as_str()), (Some("open"), Some("LZ-5")));
    let oid = r.body["id"].as_str().unwrap().to_string();
    let filed = chrono::Utc::now().with_timezone(&platform_calendar::CST).date_naive();
    let due = platform_calendar::Calendar::official().add_working_days(filed, 15);
    assert_eq!(r.body["due_date"], due.date.to_string());
    assert_eq!(r.body["due_date_provisional"], due.provisional);

    // Rectifying before accepting is not a valid step.
    let r = s
        .as_role(Role::DataSourceUnit, "POST", &format!("/objections/{oid}/rectify"), Some(json!({"reason": "已更正"})))
        .await;
    assert_eq!(r.status, 409);
    let r = s
        .as_role(Role::IndustryDept, "POST", &format!("/objections/{oid}/accept"), Some(json!({"reason": "情况属实"})))
        .await;
    assert_eq!(r.body["state"], "accepted", "{}", r.body);
    let r = s
        .as_role(
            Role::DataSourceUnit,
            "POST",
            &format!("/objections/{oid}/rectify"),
            Some(json!({"reason": "已按元为单位重新推送"})),
        )
        .await;
    assert_eq!(r.body["state"], "rectified");
    let steps = r.body["steps"].as_array().unwrap();
    let trail: Vec<(&str, &str)> =
        steps.iter().map(|s| (s["to_state"].as_str().unwrap(), s["actor"].as_str().unwrap())).collect();
    assert_eq!(
        trail,
        [("open", "operator-user"), ("accepted", "industry_dept-user"), ("rectified", "data_source_unit-user")]
    );

    // An unknown field is refused.
    let r = s
        .as_role(
            Role::Partner,
            "POST",
            "/objections",
            Some(json!({"resource_id": id, "field": "nope", "description": "x"})),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("field")));

    let events = s.read_events(topics::CATALOG_QUALITY, 3).await;
    let states: Vec<i32> = events.iter().map(|e| e.payload_as::<pb::ObjectionEvent>().unwrap().state).collect();
    assert_eq!(
        states,
        [pb::ObjectionState::Open as i32, pb::ObjectionState::Accepted as i32, pb::ObjectionState::Rectified as i32]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_objections_are_listed_and_counted() {
    let s = start().await;
    let id = s.published(resource("R-1", "企业登记信息")).await;
    let mut ids = Vec::new();
    for d in ["缺少记录", "编码重复", "更新不及时"] {
        let r =
            s.as_role(Role::Partner, "POST", "/objections", Some(json!({"resource_id": id, "description": d}))).await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let due: chrono::NaiveDate = s.as_role(Role::DataAdmin, "GET", &format!("/objections/{}", ids[0]), None).await.body
        ["due_date"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // One is rejected (handled), so only two can be overdue.
    s.as_role(
        Role::DataAdmin,
        "POST",
        &format!("/objections/{}/reject", ids[2]),
        Some(json!({"reason": "非数据质量问题"})),
    )
    .await;
    let on_due = s.as_role(Role::DataAdmin, "GET", &format!("/objections?overdue_as_of={due}"), None).await;
    assert_eq!(on_due.body["items"].as_array().unwrap().len(), 0, "due the whole due day");
    let after = due.succ_opt().unwrap();
    let r = s.as_role(Role::DataAdmin, "GET", &format!("/objections?overdue_as_of={after}"), None).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["overdue"] == true));

    // The gauge counts what is overdue today: age two objections past their due date.
    s.count(&format!("WITH u AS (UPDATE objections SET due_date = current_date - 30 WHERE id IN ('{}', '{}') RETURNING 1) SELECT count(*) AS n FROM u", ids[0], ids[2])).await;
    let metrics = platform_testkit::eventually("the overdue gauge", std::time::Duration::from_secs(30), || async {
        let text = reqwest::get(format!("{}/metrics", s.url)).await.unwrap().text().await.unwrap();
        (platform_testkit::metric_value(&text, "catalog_objections_overdue", &[]) == Some(1.0)).then_some(text)
    })
    .await;
    assert_eq!(platform_testkit::metric_value(&metrics, "catalog_resources", &[("state", "published")]), Some(1.0));

    // Operators see only their organisation's objections.
    let r = s.as_role(Role::Operator, "GET", "/objections", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = s.as_role(Role::Partner, "GET", "/objections", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
}

/// Files an objection in `j` as `role`: its answer.
async fn object(s: &common::Svc, role: Role, j: &str, resource: &str, description: &str) -> serde_json::Value {
    let body = json!({"resource_id": resource, "description": description});
    let r = s.as_role_in(role, j, "POST", "/objections", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn step(s: &common::Svc, role: Role, j: &str, id: &str, action: &str, reason: &str) -> common::Reply {
    s.as_role_in(role, j, "POST", &format!("/objections/{id}/{action}"), Some(json!({"reason": reason}))).await
}

/// The ids of the objections pending past their due date on `day`, as a department of `j` lists them.
async fn overdue_on(s: &common::Svc, j: &str, day: chrono::NaiveDate) -> Vec<String> {
    let r = s.as_role_in(Role::DataAdmin, j, "GET", &format!("/objections?overdue_as_of={day}"), None).await;
    r.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// SX-26: the operator finds a quality problem (空白、残缺、错误); the data management department
/// takes it up, and the source unit (公共数据资源提供单位) fixes it within the set deadline. Shaanxi's
/// seed sets no number: the platform's 15 working days apply, past which the problem is listed
/// as overdue until the source unit fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quality_problem_an_operator_finds_is_fixed_by_the_source_unit_within_the_deadline_sx_26() {
    let s = start().await;
    let id = s.published(resource("SX-Q-1", "企业登记信息")).await;
    let filed = object(&s, Role::Operator, SHAANXI, &id, "2024年度注册资本字段大量空白").await;
    let oid = filed["id"].as_str().unwrap().to_string();
    let due: chrono::NaiveDate = filed["due_date"].as_str().unwrap().parse().unwrap();
    let expected = platform_calendar::Calendar::official().add_working_days(platform_calendar::today_in_china(), 15);
    assert_eq!((due, filed["deadline_rule"].as_str()), (expected.date, Some("LZ-5")), "the platform default");
    let r = step(&s, Role::DataAdmin, SHAANXI, &oid, "accept", "属实，交数源单位整改").await;
    assert_eq!(r.body["state"], "accepted", "{}", r.body);
    // The operator reports; it does not fix the source's data.
    let r = step(&s, Role::Operator, SHAANXI, &oid, "rectify", "自行补全").await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Not fixed by the deadline: listed as overdue the day after, not on the due day itself.
    assert!(overdue_on(&s, SHAANXI, due).await.is_empty());
    assert_eq!(overdue_on(&s, SHAANXI, due.succ_opt().unwrap()).await, std::slice::from_ref(&oid));
    // A source unit of another jurisdiction cannot close it.
    let r = step(&s, Role::DataSourceUnit, "370700", &oid, "rectify", "已补全").await;
    assert!(matches!(r.status, 403 | 404), "{}", r.body);
    let r = step(&s, Role::DataSourceUnit, SHAANXI, &oid, "rectify", "已补全2024年度注册资本并重新推送").await;
    assert_eq!(r.body["state"], "rectified", "{}", r.body);
    let last = r.body["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "data_source_unit-user");
    assert!(overdue_on(&s, SHAANXI, due.succ_opt().unwrap()).await.is_empty(), "fixed: no longer overdue");
}

/// WF-8: the implementing unit (in Weifang the data management department, WF-3) verifies
/// objections — an unfounded one is rejected with its reason, a verified one goes to the source
/// unit — and follows up the source unit's fix within the deadline (督促…在规定期限内完成整改).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weifang_verifies_objections_and_urges_the_source_unit_to_fix_verified_ones_in_time_wf_8() {
    const WEIFANG: &str = "370700";
    let s = start().await;
    let mut content = resource("WF-Q-1", "市场主体登记信息");
    content["source_unit"] = json!("潍坊市市场监督管理局");
    let id = s.published_in(WEIFANG, content).await;
    let verified = object(&s, Role::Partner, WEIFANG, &id, "统一社会信用代码校验位错误").await;
    let unfounded = object(&s, Role::Partner, WEIFANG, &id, "希望增加股东出资明细").await;
    let (v, u) = (verified["id"].as_str().unwrap().to_string(), unfounded["id"].as_str().unwrap().to_string());
    let due: chrono::NaiveDate = verified["due_date"].as_str().unwrap().parse().unwrap();
    // Shaanxi's department does not handle Weifang's objections, nor list them.
    let r = step(&s, Role::DataAdmin, SHAANXI, &v, "accept", "属实").await;
    assert!(matches!(r.status, 403 | 404), "{}", r.body);
    assert!(overdue_on(&s, SHAANXI, due.succ_opt().unwrap()).await.is_empty());

    let r = step(&s, Role::DataAdmin, WEIFANG, &u, "reject", "非数据质量问题，属新增数据需求").await;
    assert_eq!(r.body["state"], "rejected", "{}", r.body);
    let r = step(&s, Role::DataAdmin, WEIFANG, &v, "accept", "经核实属实").await;
    assert_eq!(r.body["state"], "accepted", "{}", r.body);
    // What is still to fix after the deadline is what the department urges: the verified one only.
    assert_eq!(overdue_on(&s, WEIFANG, due.succ_opt().unwrap()).await, std::slice::from_ref(&v));
    let r = step(&s, Role::DataSourceUnit, WEIFANG, &v, "rectify", "已修正校验位并重新推送").await;
    assert_eq!(r.body["state"], "rectified", "{}", r.body);
    let trail: Vec<_> = r.body["steps"].as_array().unwrap().iter().map(|s| s["to_state"].clone()).collect();
    assert_eq!(trail, [json!("open"), json!("accepted"), json!("rectified")], "reportable, traceable, accountable");
    // The filer is answered either way.
    let r = s.as_role_in(Role::Partner, WEIFANG, "GET", &format!("/objections/{u}"), None).await;
    assert_eq!(r.body["steps"].as_array().unwrap().last().unwrap()["reason"], "非数据质量问题，属新增数据需求");
}
