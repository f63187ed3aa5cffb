//! Starts catalog and the sandbox gateway on one broker prefix, each with its own database.
//! Grants are published the way the authorization service publishes them: full grants on
//! `authorization.grant.v1`, through `platform_testkit::publish`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use platform_auth::Role;
use platform_events::authorization::{Grant, GrantChange, GrantEvent, GrantState, ScopeItem};
use platform_events::{Envelope, EventMeta, topics};
use platform_runtime::Running;
use platform_settings::CommonSettings;
use platform_testkit as kit;
use serde_json::{Value, json};

pub const SHAANXI: &str = "610000";
pub const XIAN: &str = "610100";

pub struct Platform {
    pub catalog: Running,
    pub gateway: Running,
    pub settings: CommonSettings,
    pub http: reqwest::Client,
}

pub async fn start() -> Platform {
    let prefix = kit::topic_prefix();
    let cdb = kit::database("catalog", catalog::MIGRATIONS).await;
    let gdb = kit::database("sandbox", sandbox_gateway::MIGRATIONS).await;
    let catalog = catalog::run(kit::settings_in(&cdb, &prefix, &[])).await.expect("catalog starts");
    let settings = kit::settings_in(&gdb, &prefix, &[]);
    let gateway = sandbox_gateway::run(settings.clone()).await.expect("gateway starts");
    Platform { catalog, gateway, settings, http: platform_testkit::http_client() }
}

/// A token for `role`; its organisation is `org-<role>-<jurisdiction>`.
pub fn token(role: Role, jurisdiction: &str) -> String {
    kit::token(&format!("{}-{jurisdiction}", role.as_str()), jurisdiction, &[role])
}

pub fn org(role: Role, jurisdiction: &str) -> String {
    format!("org-{}-{jurisdiction}", role.as_str())
}

pub use kit::Reply;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The demo fields: a district, an age, an income, an ID-card number, a phone and a name.
pub fn person_fields() -> Value {
    json!([
        {"name": "district", "data_type": "text", "sensitivity": "none"},
        {"name": "age", "data_type": "integer", "sensitivity": "none"},
        {"name": "income", "data_type": "decimal", "sensitivity": "none"},
        {"name": "id_card", "data_type": "text", "sensitivity": "sensitive_personal", "pii_kind": "id_card"},
        {"name": "phone", "data_type": "text", "sensitivity": "personal", "pii_kind": "phone"},
        {"name": "name", "data_type": "text", "sensitivity": "personal", "pii_kind": "name"}
    ])
}

impl Platform {
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        kit::call(&self.http, &self.gateway.url(), method, path, token, body).await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let mut c = platform_store::conn(&self.gateway.pool).await.unwrap();
        diesel::sql_query(sql).get_result::<N>(&mut c).await.unwrap().n
    }

    pub async fn exec_sql(&self, sql: &str) -> Result<usize, diesel::result::Error> {
        let mut c = platform_store::conn(&self.gateway.pool).await.unwrap();
        diesel::sql_query(sql).execute(&mut c).await
    }

    /// Publishes a resource through the catalog and waits until the gateway knows it.
    pub async fn resource(&self, code: &str, open_category: &str, fields: Value) -> String {
        let base = self.catalog.url();
        let content = json!({
            "name": format!("资源{code}"), "code": code, "source_unit": "数源单位", "sector": "civil_affairs",
            "format": "table", "update_frequency": "daily", "open_category": open_category, "security_grade": "general",
            "fields": fields, "provenance": {"kind": "collected"}
        });
        let dept = token(Role::IndustryDept, XIAN);
        let r = kit::call(&self.http, &base, "POST", "/resources", Some(&dept), Some(content)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        kit::call(&self.http, &base, "POST", &format!("/resources/{id}/submit"), Some(&dept), None).await;
        let admin = token(Role::DataAdmin, XIAN);
        let r = kit::call(&self.http, &base, "POST", &format!("/resources/{id}/publish"), Some(&admin), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        kit::eventually("the gateway learns the resource", Duration::from_secs(30), || async {
            (self.count(&format!("SELECT count(*) AS n FROM resources WHERE id = '{id}'")).await == 1).then_some(())
        })
        .await;
        id
    }

    /// Streams `body` as a load of `resource` in `format`.
    pub async fn load(&self, resource: &str, format: &str, body: impl Into<reqwest::Body>) -> Reply {
        let r = self
            .http
            .post(format!("{}/datasets/{resource}/loads?format={format}", self.gateway.url()))
            .bearer_auth(token(Role::DataSourceUnit, XIAN))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let content_type =
            r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = r.text().await.unwrap();
        Reply { status, content_type, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// Publishes a grant event and waits until the gateway has applied it.
    pub async fn grant_event(&self, grant: &Grant, change: GrantChange, version: u64) {
        let ev = GrantEvent {
            change: change as i32,
            grant: Some(grant.clone()),
            actor: "test".into(),
            reason: "test".into(),
            ..Default::default()
        };
        let env = Envelope::wrap(
            EventMeta {
                event_type: "authorization.grant.changed".into(),
                aggregate_id: grant.id.clone(),
                aggregate_version: version,
                producer: "authorization".into(),
                jurisdiction: grant.jurisdiction.clone(),
            },
            &ev,
        );
        kit::publish(&self.settings, topics::AUTHORIZATION_GRANT, &env).await;
        let id = grant.id.clone();
        kit::eventually("the gateway applies the grant event", Duration::from_secs(30), || async {
            (self
                .count(&format!(
                    "SELECT count(*) AS n FROM workspaces WHERE grant_id = '{id}' AND event_version >= {version}"
                ))
                .await
                == 1)
                .then_some(())
        })
        .await;
    }

    pub async fn query(&self, grant: &Grant, sql: &str) -> Reply {
        self.query_as(&token(Role::Operator, XIAN), grant, sql).await
    }

    pub async fn query_as(&self, token: &str, grant: &Grant, sql: &str) -> Reply {
        self.call("POST", &format!("/workspaces/{}/queries", grant.id), Some(token), Some(json!({ "sql": sql }))).await
    }
}

/// A grant to the Xi'an operator over every field of `resources`, minimum group size `k`.
pub fn grant(resources: &[&str], k: u32) -> Grant {
    Grant {
        id: uuid::Uuid::now_v7().to_string(),
        agreement_id: uuid::Uuid::now_v7().to_string(),
        request_id: uuid::Uuid::now_v7().to_string(),
        jurisdiction: XIAN.into(),
        principal_org: org(Role::Operator, XIAN),
        scenario: "养老服务需求分析".into(),
        scope: resources.iter().map(|r| ScopeItem { resource_id: r.to_string(), fields: vec![] }).collect(),
        min_group_size: k,
        valid_from: "2026-01-01".into(),
        valid_until: "2027-12-31".into(),
        state: GrantState::Active as i32,
        profile_version: 1,
        log_retention_months: 6,
    }
}

/// CSV of `n` people over `districts` districts (district i holds the rows with `row % districts == i`).
pub fn people_csv(n: usize, districts: usize) -> String {
    let mut s = String::from("district,age,income,id_card,phone,name\n");
    for i in 0..n {
        s.push_str(&format!(
            "区{},{},{}.50,6101{:02}19800101{:04},139{:08},王{}\n",
            i % districts,
            20 + i % 50,
            3000 + i,
            i % districts,
            i,
            i,
            i
        ));
    }
    s
}
