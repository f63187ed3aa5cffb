//! Bad input gets a 4xx problem that says what is wrong, and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{resource, start, token};
use platform_auth::Role;
use serde_json::json;

/// Rows, published versions and events written (each event bumps its resource's `event_seq`;
/// the outbox itself empties as the relay publishes).
const STATE_SQL: &str = "SELECT (SELECT count(*) FROM resources) + (SELECT count(*) FROM resource_versions) \
                         + (SELECT coalesce(sum(event_seq), 0) FROM resources)::bigint AS n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_problems_and_leave_the_database_unchanged() {
    let s = start().await;
    let published = s.published(resource("SX-1", "企业登记信息")).await;
    let before = s.count(STATE_SQL).await;
    let t = token(Role::IndustryDept);
    let url = format!("{}/resources", s.url);

    // Malformed JSON.
    let r = s
        .http
        .post(&url)
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "/problems/malformed-json");

    // An unknown enum value, named by its path.
    let mut bad = resource("SX-2", "企业登记信息2");
    bad["fields"][2]["sensitivity"] = json!("top_secret");
    let r = s.call("POST", "/resources", Some(&t), Some(bad)).await;
    assert_eq!((r.status, r.body["type"].as_str()), (400, Some("/problems/invalid-body")));
    assert_eq!(r.body["field"], "fields[2].sensitivity");
    assert!(r.body["detail"].as_str().unwrap().contains("top_secret"));

    // An unknown property is refused, not ignored.
    let mut extra = resource("SX-3", "x");
    extra["owner"] = json!("someone");
    let r = s.call("POST", "/resources", Some(&t), Some(extra)).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("owner"), "{}", r.body);

    // A semantic error names the field.
    let mut no_kind = resource("SX-4", "x");
    no_kind["fields"][1].as_object_mut().unwrap().remove("pii_kind");
    let r = s.call("POST", "/resources", Some(&t), Some(no_kind)).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("fields[1].pii_kind")));

    // An oversize body.
    let mut huge = resource("SX-5", "x");
    huge["quality_requirements"] = json!("质".repeat(400_000));
    let r = s.call("POST", "/resources", Some(&t), Some(huge)).await;
    assert_eq!((r.status, r.body["type"].as_str()), (413, Some("/problems/payload-too-large")));

    // A duplicate code in the jurisdiction.
    let r = s.call("POST", "/resources", Some(&t), Some(resource("SX-1", "另一个资源"))).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["field"].as_str()),
        (409, Some("/problems/duplicate-code"), Some("code"))
    );

    // An invalid state change.
    let r = s.as_role(Role::DataAdmin, "POST", &format!("/resources/{published}/publish"), None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (409, Some("/problems/invalid-state-transition")));
    assert!(r.body["detail"].as_str().unwrap().contains("submitted"), "{}", r.body);
    let r = s
        .as_role(Role::DataAdmin, "POST", &format!("/resources/{published}/withdraw"), Some(json!({"reason": "  "})))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("reason")));

    // Wrong content type, a bad path parameter, an unknown route.
    let r = s.http.post(&url).bearer_auth(&t).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = s.as_role(Role::Operator, "GET", "/resources/not-a-uuid", None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (400, Some("/problems/invalid-path")));
    let r = s.as_role(Role::Operator, "GET", "/no/such/route", None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (404, Some("/problems/no-route")));
    let r = s.as_role(Role::Operator, "GET", &format!("/resources/{}", uuid::Uuid::now_v7()), None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (404, Some("/problems/resource-not-found")));

    assert_eq!(s.count(STATE_SQL).await, before, "nothing was written");
}
