//! Jobs in a workspace through the service, with the in-process backend: an approved image's
//! SQL runs through every check a person's query passes, an unapproved image is refused
//! (ZJK-19), and suspension tears the job environment down (ZJK-34). Every submission is audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use platform_auth::Role;
use platform_events::authorization::{GrantChange, GrantState};
use platform_testkit as kit;
use serde_json::json;

#[tokio::test]
async fn approved_sql_jobs_run_checked_and_stop_with_the_workspace() {
    let p = start().await;
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;
    assert_eq!(p.load(&id, "csv", people_csv(120, 3)).await.status, 201);
    let g = grant(&[&id], 10);
    p.grant_event(&g, GrantChange::Granted, 1).await;
    let op = token(Role::Operator, XIAN);
    let path = format!("/workspaces/{}/jobs", g.id);

    let job = json!({"image": "platform/sql-job", "args": [
        "SELECT district, count(*) FROM xa_mz_0001 GROUP BY district ORDER BY district",
        "SELECT avg(age) FROM xa_mz_0001"
    ]});
    let r = p.call("POST", &path, Some(&op), Some(job)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let name = r.body["name"].as_str().unwrap().to_string();
    let done = kit::eventually("the job finishes", Duration::from_secs(20), || async {
        let r = p.call("GET", &format!("{path}/{name}"), Some(&op), None).await;
        (r.body["status"]["state"] != "running" && r.body["status"]["state"] != "pending").then_some(r.body)
    })
    .await;
    assert_eq!(done["status"]["state"], "succeeded", "{done}");
    assert_eq!(done["status"]["output"][0]["rows"].as_array().unwrap().len(), 3, "{done}");
    // The job's statements were checked and audited as the job's.
    assert_eq!(
        p.count(&format!("SELECT count(*) AS n FROM audit_log WHERE principal = 'job:{}' AND action = 'query'", g.id))
            .await,
        2
    );

    // A job that tries to take raw data out is stopped at its first refused statement.
    let r = p
        .call(
            "POST",
            &path,
            Some(&op),
            Some(json!({"image": "platform/sql-job", "args": ["SELECT id_card FROM xa_mz_0001"]})),
        )
        .await;
    let name = r.body["name"].as_str().unwrap().to_string();
    let failed = kit::eventually("the job fails", Duration::from_secs(20), || async {
        let r = p.call("GET", &format!("{path}/{name}"), Some(&op), None).await;
        (r.body["status"]["state"] == "failed").then_some(r.body)
    })
    .await;
    assert!(failed["status"]["reason"].as_str().unwrap().contains("ZJK-21"), "{failed}");

    // Only approved images (ZJK-19), refused before anything runs, and audited.
    let r = p.call("POST", &path, Some(&op), Some(json!({"image": "docker.io/evil/exfiltrate:latest"}))).await;
    assert_eq!((r.status, r.body["rule"].as_str()), (422, Some("ZJK-19")), "{}", r.body);
    assert_eq!(
        p.count(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'job' AND decision = 'refused' AND rule = 'ZJK-19'"
        )
        .await,
        1
    );

    // Another organisation sees no such workspace.
    let other = kit::token("someone", XIAN, &[Role::Operator]);
    assert_eq!(p.call("POST", &path, Some(&other), Some(json!({"image": "platform/sql-job"}))).await.status, 404);

    // Suspension: the environment is torn down and no job starts.
    let mut suspended = g.clone();
    suspended.state = GrantState::Suspended as i32;
    p.grant_event(&suspended, GrantChange::Suspended, 2).await;
    let r = p
        .call(
            "POST",
            &path,
            Some(&op),
            Some(json!({"image": "platform/sql-job", "args": ["SELECT count(*) FROM xa_mz_0001"]})),
        )
        .await;
    assert_eq!((r.status, r.body["rule"].as_str()), (409, Some("ZJK-34")), "{}", r.body);
}
