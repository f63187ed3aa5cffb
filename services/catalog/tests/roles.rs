//! Every endpoint states its roles: no token is a 401, a wrong role a 403, for each one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{resource, start, token};
use platform_auth::Role;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_a_missing_token_and_wrong_roles() {
    let s = start().await;
    let id = s.published(resource("R-1", "企业登记信息")).await;
    let r =
        s.as_role(Role::Operator, "POST", "/objections", Some(json!({"resource_id": id, "description": "x"}))).await;
    let oid = r.body["id"].as_str().unwrap().to_string();
    let reason = json!({"reason": "r"});
    let all: Vec<Role> = Role::ALL.to_vec();
    let readers = all.clone();
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        ("POST", "/resources".into(), Some(resource("R-2", "x")), vec![Role::IndustryDept]),
        ("GET", "/resources".into(), None, readers.clone()),
        ("GET", format!("/resources/{id}"), None, readers.clone()),
        ("PUT", format!("/resources/{id}"), Some(resource("R-1", "x")), vec![Role::IndustryDept]),
        ("POST", format!("/resources/{id}/submit"), None, vec![Role::IndustryDept]),
        ("POST", format!("/resources/{id}/publish"), None, vec![Role::DataAdmin]),
        ("POST", format!("/resources/{id}/reject"), Some(reason.clone()), vec![Role::DataAdmin]),
        ("POST", format!("/resources/{id}/withdraw"), Some(reason.clone()), vec![Role::DataAdmin]),
        ("GET", format!("/resources/{id}/versions"), None, readers.clone()),
        (
            "POST",
            format!("/resources/{id}/revision"),
            Some(json!({"content": resource("R-1", "x"), "note": "n"})),
            vec![Role::IndustryDept],
        ),
        ("POST", format!("/resources/{id}/revision/publish"), None, vec![Role::DataAdmin]),
        ("POST", format!("/resources/{id}/revision/reject"), Some(reason.clone()), vec![Role::DataAdmin]),
        ("POST", format!("/resources/{id}/registration"), None, vec![Role::ImplementingInstitution]),
        ("GET", "/registrations".into(), None, readers.clone()),
        ("GET", "/registrations/610000-2026-R-000001".into(), None, readers.clone()),
        (
            "POST",
            "/objections".into(),
            Some(json!({"resource_id": id, "description": "x"})),
            vec![Role::Operator, Role::Partner],
        ),
        (
            "GET",
            "/objections".into(),
            None,
            vec![Role::IndustryDept, Role::DataAdmin, Role::DataSourceUnit, Role::Operator, Role::Partner],
        ),
        (
            "GET",
            format!("/objections/{oid}"),
            None,
            vec![Role::IndustryDept, Role::DataAdmin, Role::DataSourceUnit, Role::Operator, Role::Partner],
        ),
        ("POST", format!("/objections/{oid}/accept"), Some(reason.clone()), vec![Role::IndustryDept, Role::DataAdmin]),
        ("POST", format!("/objections/{oid}/reject"), Some(reason.clone()), vec![Role::IndustryDept, Role::DataAdmin]),
        (
            "POST",
            format!("/objections/{oid}/rectify"),
            Some(reason.clone()),
            vec![Role::DataSourceUnit, Role::IndustryDept],
        ),
    ];
    let no_roles = platform_testkit::token("nobody", common::SHAANXI, &[]);
    for (method, path, body, allowed) in &endpoints {
        let r = s.call(method, path, None, body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} without a token");
        assert_eq!(r.content_type, "application/problem+json");
        let r = s.call(method, path, Some("not.a.token"), body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path} with a garbage token");
        for role in Role::ALL.iter().filter(|r| !allowed.contains(r)) {
            let r = s.call(method, path, Some(&token(*role)), body.clone()).await;
            assert_eq!(r.status, 403, "{method} {path} as {}: {}", role.as_str(), r.body);
            assert_eq!(r.body["type"], "/problems/forbidden");
        }
        if allowed.len() == Role::ALL.len() {
            let r = s.call(method, path, Some(&no_roles), body.clone()).await;
            assert_eq!(r.status, 403, "{method} {path} with no role");
        }
    }
    // A department of another jurisdiction cannot act on this one's resources.
    let xian = platform_testkit::token("xian-admin", "610100", &[Role::DataAdmin]);
    let r = s.call("POST", &format!("/resources/{id}/withdraw"), Some(&xian), Some(reason)).await;
    assert_eq!((r.status, r.body["type"].as_str()), (403, Some("/problems/jurisdiction-mismatch")));
}
