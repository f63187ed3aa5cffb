//! Registration numbers: unique and gap-free per jurisdiction and year, under concurrency (SX-6, ZJK-22).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{resource, start, token};
use platform_auth::Role;
use platform_events::{catalog as pb, topics};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_registrations_yield_fifty_distinct_gap_free_numbers() {
    let s = start().await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(s.published(resource(&format!("R-{i:02}"), &format!("资源{i}"))).await);
    }
    let t = token(Role::ImplementingInstitution);
    let calls = ids.iter().map(|id| {
        let (http, url, t) = (s.http.clone(), format!("{}/resources/{id}/registration", s.url), t.clone());
        async move {
            let r = http.post(url).bearer_auth(t).send().await.unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()
        }
    });
    let regs = futures::future::join_all(calls).await;
    let seqs: BTreeSet<i64> = regs.iter().map(|r| r["sequence"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=50).collect::<BTreeSet<_>>(), "distinct and gap-free");
    let numbers: BTreeSet<&str> = regs.iter().map(|r| r["number"].as_str().unwrap()).collect();
    assert_eq!(numbers.len(), 50);
    let year = regs[0]["year"].as_i64().unwrap();
    assert!(numbers.contains(format!("610000-{year}-R-000001").as_str()));

    // Registering again answers the same registration, and issues no number.
    let r =
        s.as_role(Role::ImplementingInstitution, "POST", &format!("/resources/{}/registration", ids[0]), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["number"], regs[0]["number"]);
    assert_eq!(s.count("SELECT last_seq AS n FROM registration_counters").await, 50);

    let r = s
        .as_role(Role::Reviewer, "GET", &format!("/registrations/{}", regs[7]["number"].as_str().unwrap()), None)
        .await;
    assert_eq!(r.body["subject_id"], regs[7]["subject_id"]);
    let r = s.as_role(Role::Reviewer, "GET", "/registrations?limit=20", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 20);
    assert!(r.body["next_cursor"].is_string());

    let events = s.read_events(topics::CATALOG_REGISTRATION, 50).await;
    let mut from_events: Vec<u64> =
        events.iter().map(|e| e.payload_as::<pb::RegistrationEvent>().unwrap().sequence).collect();
    from_events.sort();
    assert_eq!(from_events, (1..=50).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpublished_resource_is_not_registered_and_its_number_is_not_consumed() {
    let s = start().await;
    let r = s.as_role(Role::IndustryDept, "POST", "/resources", Some(resource("R-draft", "草稿资源"))).await;
    let draft = r.body["id"].as_str().unwrap().to_string();
    let r = s.as_role(Role::ImplementingInstitution, "POST", &format!("/resources/{draft}/registration"), None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (409, Some("/problems/not-published")));
    let id = s.published(resource("R-1", "已发布资源")).await;
    let r = s.as_role(Role::ImplementingInstitution, "POST", &format!("/resources/{id}/registration"), None).await;
    assert_eq!(r.body["sequence"], 1, "the refused attempt took no number");
}
