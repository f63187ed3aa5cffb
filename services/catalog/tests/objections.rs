//! Quality objections: due in the profile's working days (LZ-5), every step recorded, overdue listed and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{resource, start};
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
