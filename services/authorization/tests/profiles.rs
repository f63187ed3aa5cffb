//! Profile versions follow the resolved content: a change in a parent's file (the national
//! defaults) gives every jurisdiction that inherits it a new version, though their own files keep
//! their version; what was made under the old version keeps it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authorization::app::load_profiles;
use common::{XIAN, start};
use platform_auth::Role;
use platform_policy::Profiles;
use serde_json::json;

const NATIONAL: &str = include_str!("../../../shared/policy/profiles/000000-national.toml");
const OTHERS: [(&str, &str); 6] = [
    ("610000-shaanxi.toml", include_str!("../../../shared/policy/profiles/610000-shaanxi.toml")),
    ("610100-xian.toml", include_str!("../../../shared/policy/profiles/610100-xian.toml")),
    ("370700-weifang.toml", include_str!("../../../shared/policy/profiles/370700-weifang.toml")),
    ("130700-zhangjiakou.toml", include_str!("../../../shared/policy/profiles/130700-zhangjiakou.toml")),
    ("620100-lanzhou.toml", include_str!("../../../shared/policy/profiles/620100-lanzhou.toml")),
    ("440305-nanshan.toml", include_str!("../../../shared/policy/profiles/440305-nanshan.toml")),
];

/// The built-in files with the national file's text as given.
fn with_national(national: &str) -> Profiles {
    Profiles::from_files(std::iter::once(("000000-national.toml", national)).chain(OTHERS)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_file_change_gives_inheriting_profiles_a_new_version_and_records_keep_theirs() {
    let p = start().await;
    let plan = p.auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(json!({"name": "旧方案"}))).await;
    assert_eq!(plan.body["profile_version"], 1, "{}", plan.body);
    // The service loaded the built-in files at start; loading them again adds nothing.
    assert_eq!(load_profiles(&p.auth.pool, &Profiles::built_in().unwrap()).await.unwrap(), 0);

    // The national default changes; no file version moves (Xi'an and Shaanxi stay at 1).
    let old = "refusal_burst_threshold = { value = 20, rule = \"WF-30\",";
    assert!(NATIONAL.contains(old));
    let changed = NATIONAL.replace(old, "refusal_burst_threshold = { value = 15, rule = \"WF-30\",");
    let added = load_profiles(&p.auth.pool, &with_national(&changed)).await.unwrap();
    assert_eq!(added, 7, "every jurisdiction inherits the threshold");
    assert_eq!(load_profiles(&p.auth.pool, &with_national(&changed)).await.unwrap(), 0, "once");

    let now = p.auth_as(Role::DataAdmin, XIAN, "GET", "/jurisdictions/610100/profile", None).await;
    assert_eq!((now.body["version"].as_i64(), now.body["file_version"].as_i64()), (Some(2), Some(1)), "{}", now.body);
    let threshold = &now.body["values"]["refusal_burst_threshold"];
    assert_eq!((&threshold["value"], &threshold["rule"]), (&json!(15), &json!("WF-30")), "{threshold}");
    // No seed sets the number: it says where it comes from, and the view lists it.
    assert!(threshold["source"].is_string());
    assert!(now.body["platform_defaults"].as_array().unwrap().contains(&json!("refusal_burst_threshold")));
    let before = p.auth_as(Role::DataAdmin, XIAN, "GET", "/jurisdictions/610100/profile?version=1", None).await;
    assert_eq!(before.body["values"]["refusal_burst_threshold"]["value"], 20);
    let national = p.auth_as(Role::DataAdmin, XIAN, "GET", "/jurisdictions/000000/profile", None).await;
    assert_eq!((national.body["version"].as_i64(), national.body["file_version"].as_i64()), (Some(4), Some(3)));

    // The old plan keeps version 1; a new one is made under version 2.
    let id = plan.body["id"].as_str().unwrap();
    let old_plan = p.auth_as(Role::DataAdmin, XIAN, "GET", &format!("/plans/{id}"), None).await;
    assert_eq!(old_plan.body["profile_version"], 1);
    let new_plan =
        p.auth_as(Role::ImplementingInstitution, XIAN, "POST", "/plans", Some(json!({"name": "新方案"}))).await;
    assert_eq!(new_plan.body["profile_version"], 2, "{}", new_plan.body);

    // Going back to the shipped defaults is a change too: a third version, equal to the first.
    assert_eq!(load_profiles(&p.auth.pool, &Profiles::built_in().unwrap()).await.unwrap(), 7);
    let back = p.auth_as(Role::DataAdmin, XIAN, "GET", "/jurisdictions/610100/profile", None).await;
    assert_eq!(back.body["version"], 3);
    assert_eq!(back.body["values"], before.body["values"]);
}

/// Client generators and API fuzzers load every operation (first-contact issue, item 2).
#[test]
fn every_reference_in_the_openapi_document_resolves() {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(authorization::api::ApiDoc::openapi()).unwrap();
    platform_testkit::openapi::check("authorization", &doc);
}
