//! Resources end to end: the review flow, versions, events, authorizability, search.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Svc, resource, start};
use platform_auth::Role;
use platform_events::{catalog as pb, topics};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_is_drafted_reviewed_published_versioned_and_withdrawn_zjk_7() {
    let s = start().await;
    let r = s.as_role(Role::IndustryDept, "POST", "/resources", Some(resource("SX-SCJG-001", "企业登记信息"))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["state"], "draft");
    let id = r.body["id"].as_str().unwrap().to_string();

    // A draft cannot be published before it is submitted.
    let r = s.as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/publish"), None).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["type"], "/problems/invalid-state-transition");

    let r = s.as_role(Role::IndustryDept, "POST", &format!("/resources/{id}/submit"), None).await;
    assert_eq!(r.body["state"], "submitted");
    let r = s
        .as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/reject"), Some(json!({"reason": "字段说明不完整"})))
        .await;
    assert_eq!(
        (r.body["state"].as_str(), r.body["rejection_reason"].as_str()),
        (Some("rejected"), Some("字段说明不完整"))
    );
    let mut edited = resource("SX-SCJG-001", "企业登记信息");
    edited["quality_requirements"] = json!("统一社会信用代码完整率100%");
    let r = s.as_role(Role::IndustryDept, "PUT", &format!("/resources/{id}"), Some(edited)).await;
    assert_eq!(r.body["state"], "draft", "{}", r.body);
    s.as_role(Role::IndustryDept, "POST", &format!("/resources/{id}/submit"), None).await;
    let r = s.as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/publish"), None).await;
    assert_eq!((r.body["state"].as_str(), r.body["version"].as_i64()), (Some("published"), Some(1)), "{}", r.body);

    // A published resource is not edited in place.
    let r =
        s.as_role(Role::IndustryDept, "PUT", &format!("/resources/{id}"), Some(resource("SX-SCJG-001", "改名"))).await;
    assert_eq!(r.status, 409);

    // It changes by a new version.
    let mut v2 = resource("SX-SCJG-001", "企业登记信息（含变更记录）");
    v2["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "change_date", "data_type": "date", "sensitivity": "none"}));
    let r = s
        .as_role(
            Role::IndustryDept,
            "POST",
            &format!("/resources/{id}/revision"),
            Some(json!({"content": v2, "note": "增加变更日期"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["pending_revision"]["name"], "企业登记信息（含变更记录）");
    let r = s.as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/revision/publish"), None).await;
    assert_eq!((r.body["version"].as_i64(), r.body["name"].as_str()), (Some(2), Some("企业登记信息（含变更记录）")));
    let r = s.as_role(Role::Operator, "GET", &format!("/resources/{id}/versions"), None).await;
    let versions = r.body.as_array().unwrap();
    assert_eq!(versions.len(), 2, "history is kept");
    assert_eq!(versions[0]["content"]["name"], "企业登记信息");

    let r = s
        .as_role(
            Role::DataAdmin,
            "POST",
            &format!("/resources/{id}/withdraw"),
            Some(json!({"reason": "数据源停止更新"})),
        )
        .await;
    assert_eq!(r.body["state"], "withdrawn");

    // Published, versioned, withdrawn: in order, with the field schema, one aggregate.
    let events = s.read_events(topics::CATALOG_RESOURCE, 3).await;
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["catalog.resource.published", "catalog.resource.versioned", "catalog.resource.withdrawn"]);
    assert!(events.iter().all(|e| e.aggregate_id == id && e.producer == "catalog" && e.jurisdiction == "610000"));
    assert_eq!(events.iter().map(|e| e.aggregate_version).collect::<Vec<_>>(), [1, 2, 3]);
    let versioned: pb::ResourceEvent = events[1].payload_as().unwrap();
    let res = versioned.resource.unwrap();
    assert_eq!(res.version, 2);
    assert_eq!(res.fields.len(), 5);
    let id_field = res.fields.iter().find(|f| f.name == "legal_person_id").unwrap();
    assert_eq!(id_field.sensitivity, pb::Sensitivity::SensitivePersonal as i32);
    assert_eq!(id_field.pii_kind, pb::PiiKind::IdCard as i32);
    let withdrawn: pb::ResourceEvent = events[2].payload_as().unwrap();
    assert!(withdrawn.resource.unwrap().withdrawn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_open_and_unconsented_shared_in_resources_are_published_but_not_authorizable_ns_2_sx_5() {
    let s = start().await;
    let mut closed = resource("SX-GA-009", "户籍人口信息");
    closed["open_category"] = json!("not_open");
    let closed_id = s.published(closed).await;
    let r = s.as_role(Role::Operator, "GET", &format!("/resources/{closed_id}"), None).await;
    assert_eq!(
        (r.body["authorizable"].as_bool(), r.body["not_authorizable_rule"].as_str()),
        (Some(false), Some("NS-2"))
    );

    let mut shared = resource("SX-GX-010", "跨省共享社保信息");
    shared["provenance"] =
        json!({"kind": "shared_in", "provider": "甘肃省人力资源和社会保障厅", "provider_consent": false});
    let shared_id = s.published(shared.clone()).await;
    let r = s.as_role(Role::Operator, "GET", &format!("/resources/{shared_id}"), None).await;
    assert_eq!(r.body["not_authorizable_rule"], "SX-5");

    // Neither can be registered for authorized operation; the refusal cites the rule.
    for (id, rule) in [(&closed_id, "NS-2"), (&shared_id, "SX-5")] {
        let r = s.as_role(Role::ImplementingInstitution, "POST", &format!("/resources/{id}/registration"), None).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(
            (r.body["type"].as_str(), r.body["rule"].as_str()),
            (Some("/problems/not-authorizable"), Some(rule))
        );
    }

    // The event tells consumers (authorization) the same.
    let events = s.read_events(topics::CATALOG_RESOURCE, 2).await;
    // Two resources, two keys: their partitions (and so the order read here) may differ.
    let mut rules: Vec<String> = events
        .iter()
        .map(|e| e.payload_as::<pb::ResourceEvent>().unwrap().resource.unwrap().not_authorizable_rule)
        .collect();
    rules.sort();
    assert_eq!(rules, ["NS-2", "SX-5"]);

    // With consent (a new version), it becomes authorizable.
    shared["provenance"]["provider_consent"] = json!(true);
    s.as_role(
        Role::IndustryDept,
        "POST",
        &format!("/resources/{shared_id}/revision"),
        Some(json!({"content": shared, "note": "已取得提供方同意"})),
    )
    .await;
    let r = s.as_role(Role::DataAdmin, "POST", &format!("/resources/{shared_id}/revision/publish"), None).await;
    assert_eq!(r.body["authorizable"], true, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_chinese_substrings_filters_and_pages_by_keyset() {
    let s = start().await;
    let names = [
        "西安市企业登记信息",
        "西安市公交刷卡数据",
        "陕西省企业纳税信息",
        "陕西省医保结算数据",
        "西安市不动产登记信息",
    ];
    for (i, n) in names.iter().enumerate() {
        let mut r = resource(&format!("R-{i}"), n);
        if i == 3 {
            r["sector"] = json!("health");
            r["open_category"] = json!("not_open");
        }
        s.published(r).await;
    }
    // A draft is not in the public catalog.
    s.as_role(Role::IndustryDept, "POST", "/resources", Some(resource("R-draft", "西安市企业草稿"))).await;

    let find = |q: &'static str| {
        let s: &Svc = &s;
        async move {
            let r = s.as_role(Role::Partner, "GET", q, None).await;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find("/resources?q=%E4%BC%81%E4%B8%9A").await, ["西安市企业登记信息", "陕西省企业纳税信息"]); // 企业
    assert_eq!(find("/resources?q=%E7%99%BB%E8%AE%B0").await, ["西安市企业登记信息", "西安市不动产登记信息"]); // 登记
    assert_eq!(find("/resources?sector=health").await, ["陕西省医保结算数据"]);
    assert_eq!(find("/resources?authorizable=false").await, ["陕西省医保结算数据"]);
    assert_eq!(find("/resources?open_category=not_open&authorizable=true").await, Vec::<String>::new());
    // LIKE wildcards are matched literally.
    assert_eq!(find("/resources?q=%25").await, Vec::<String>::new());

    // Keyset pages of 2 cover all 5 published, in order, without repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/resources?limit=2&cursor={c}"),
            None => "/resources?limit=2".to_string(),
        };
        let r = s.as_role(Role::Operator, "GET", &path, None).await;
        for item in r.body["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, names);

    // Drafts: only the jurisdiction's own departments may list them.
    let r = s.as_role(Role::IndustryDept, "GET", "/resources?state=draft", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = s.as_role(Role::Operator, "GET", "/resources?state=draft", None).await;
    assert_eq!(r.status, 403);
    let r = s.as_role(Role::Operator, "GET", "/resources?cursor=not-a-cursor", None).await;
    assert_eq!((r.status, r.body["field"].as_str()), (400, Some("cursor")));
    let r = s.as_role(Role::Operator, "GET", "/resources?limit=100000", None).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("limit")));
    let r = s.as_role(Role::Operator, "GET", "/resources?open_category=secret", None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (400, Some("/problems/invalid-query")));
}

/// Changes of one resource race without a lock (one guarded statement each, ZJK-7): of eight
/// concurrent publications exactly one commits — one version, one event — and every other is
/// decided again on the published state and refused as an invalid transition, never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publications_of_one_resource_commit_once_and_the_rest_are_refused_zjk_7() {
    let s = start().await;
    let id = s.submitted(resource("RACE-1", "并发发布资源")).await;
    let path = format!("/resources/{id}/publish");
    let replies = futures::future::join_all((0..8).map(|_| s.as_role(Role::DataAdmin, "POST", &path, None))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 409, 409, 409, 409, 409, 409, 409],
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status == 409) {
        assert_eq!(r.body["type"], "/problems/invalid-state-transition", "{}", r.body);
    }
    assert_eq!(s.count(&format!("SELECT count(*) AS n FROM resource_versions WHERE resource_id = '{id}'")).await, 1);
    assert_eq!(s.count(&format!("SELECT event_seq AS n FROM resources WHERE id = '{id}'")).await, 1);
    let events = s.read_events(platform_events::topics::CATALOG_RESOURCE, 1).await;
    assert_eq!(events[0].aggregate_id, id);
    assert_eq!(events[0].aggregate_version, 1);
}

/// Two replicas of the catalog on one database. Each holds the rows it just wrote
/// (`database.recent_rows`), so a replica's next change of a resource skips its read; when the
/// other replica changed the resource in between, the held row is behind: the change is decided
/// again on the database's row, never written over it or refused because of the old one (ZJK-7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_holding_an_older_row_decides_again_on_the_current_one_zjk_7() {
    let a = start().await;
    let b = a.replica().await;
    let id = a.submitted(resource("REPLICA-1", "两副本资源")).await; // a holds it as submitted

    // b rejects it; a still holds the submitted row.
    let r = b
        .as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/reject"), Some(json!({"reason": "字段说明不全"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Editing a submitted resource is refused, a rejected one is allowed: a decides on the current row.
    let mut edited = resource("REPLICA-1", "两副本资源（修订）");
    edited["quality_requirements"] = json!("每日更新");
    let r = a.as_role(Role::IndustryDept, "PUT", &format!("/resources/{id}"), Some(edited)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "draft");
    assert_eq!(r.body["name"], "两副本资源（修订）");

    // a holds the draft; b submits it. a's submission, decided on its draft, is refused by the
    // guard and decided again on the submitted row: 409, and nothing written twice.
    let r = b.as_role(Role::IndustryDept, "POST", &format!("/resources/{id}/submit"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = a.as_role(Role::IndustryDept, "POST", &format!("/resources/{id}/submit"), None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/invalid-state-transition", "{}", r.body);

    // a's reviewer opens the resource and publishes it, then withdraws it: both changes start
    // from the row a holds (read by the GET, then written by the publication).
    let r = a.as_role(Role::DataAdmin, "GET", &format!("/resources/{id}"), None).await;
    assert_eq!(r.body["state"], "submitted", "{}", r.body);
    let r = a.as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/publish"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = a
        .as_role(Role::DataAdmin, "POST", &format!("/resources/{id}/withdraw"), Some(json!({"reason": "来源单位撤回"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(a.count(&format!("SELECT event_seq AS n FROM resources WHERE id = '{id}'")).await, 2);
    assert_eq!(a.count(&format!("SELECT count(*) AS n FROM resource_versions WHERE resource_id = '{id}'")).await, 1);
    let events = a.read_events(topics::CATALOG_RESOURCE, 2).await;
    let changes: Vec<(u64, i32)> =
        events.iter().map(|e| (e.aggregate_version, e.payload_as::<pb::ResourceEvent>().unwrap().change)).collect();
    assert_eq!(changes, [(1, pb::ResourceChange::Published as i32), (2, pb::ResourceChange::Withdrawn as i32)]);

    // What a did, as an SRE sees it: two held rows found stale, two used.
    let metrics = reqwest::get(format!("{}/metrics", a.url)).await.unwrap().text().await.unwrap();
    let count = |outcome: &str| {
        platform_testkit::metric_value(
            &metrics,
            "db_recent_rows_total",
            &[("table", "resources"), ("outcome", outcome)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(count("stale"), 2.0, "{metrics}");
    assert_eq!(count("hit"), 2.0, "{metrics}");
    b.running.stop().await;
}

/// WF-16: data whose authorized operation endangers or may endanger national security or harm the
/// public interest is not authorized. Core data is by law the data that concerns national security
/// and major public interests (数据安全法 第二十一条): published for the catalog, never in scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_data_is_published_but_never_authorized_wf_16() {
    const WEIFANG: &str = "370700";
    let s = start().await;
    let mut core = resource("WF-GA-001", "重点目标分布信息");
    core["security_grade"] = json!("core");
    let core_id = s.published_in(WEIFANG, core.clone()).await;
    let mut important = resource("WF-JT-002", "公交线路客流");
    important["security_grade"] = json!("important");
    let important_id = s.published_in(WEIFANG, important).await;
    let r = get(&s, &core_id).await;
    assert_eq!(
        (r.body["state"].as_str(), r.body["authorizable"].as_bool(), r.body["not_authorizable_rule"].as_str()),
        (Some("published"), Some(false), Some("WF-16")),
        "{}",
        r.body
    );
    assert_eq!(get(&s, &important_id).await.body["authorizable"], true, "important data is not excluded by grade");

    let r = register(&s, &core_id).await;
    assert_eq!(
        (r.status, r.body["type"].as_str(), r.body["rule"].as_str()),
        (422, Some("/problems/not-authorizable"), Some("WF-16")),
        "{}",
        r.body
    );
    assert_eq!(register(&s, &important_id).await.status, 201);
    // Not open and core: the first exclusion (NS-2) is the one cited.
    core["code"] = json!("WF-GA-003");
    core["open_category"] = json!("not_open");
    let both = s.published_in(WEIFANG, core).await;
    assert_eq!(get(&s, &both).await.body["not_authorizable_rule"], "NS-2");

    // The event tells authorization, which refuses the resource in an agreement's scope.
    let events = s.read_events(topics::CATALOG_RESOURCE, 3).await;
    let published: Vec<_> = events
        .iter()
        .map(|e| e.payload_as::<pb::ResourceEvent>().unwrap().resource.unwrap())
        .filter(|r| r.id == core_id)
        .map(|r| (r.authorizable, r.not_authorizable_rule))
        .collect();
    assert!(published.contains(&(false, "WF-16".to_string())), "{published:?}");
}

async fn get(s: &Svc, id: &str) -> common::Reply {
    s.as_role_in(Role::Operator, "370700", "GET", &format!("/resources/{id}"), None).await
}

async fn register(s: &Svc, id: &str) -> common::Reply {
    s.as_role_in(Role::ImplementingInstitution, "370700", "POST", &format!("/resources/{id}/registration"), None).await
}
