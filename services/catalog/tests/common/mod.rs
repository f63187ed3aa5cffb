//! Starts a catalog on a free port with its own database and topics, and talks to it over HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use platform_auth::Role;
use platform_runtime::Running;
use platform_settings::CommonSettings;
use platform_testkit as kit;
use serde_json::{Value, json};

pub const SHAANXI: &str = "610000";

pub struct Svc {
    pub running: Running,
    pub url: String,
    pub settings: CommonSettings,
    pub http: reqwest::Client,
}

pub async fn start() -> Svc {
    start_with(&[]).await
}

pub async fn start_with(extra: &[(&str, &str)]) -> Svc {
    let db = kit::database("catalog", catalog::MIGRATIONS).await;
    run(kit::settings(&db, extra)).await
}

async fn run(settings: CommonSettings) -> Svc {
    let running = catalog::run(settings.clone()).await.expect("catalog starts");
    let url = running.url();
    Svc { running, url, settings, http: platform_testkit::http_client() }
}

pub fn token(role: Role) -> String {
    token_in(role, SHAANXI)
}

/// A token of `role` in `jurisdiction` (subject `<role>-user`, organisation `org-<role>-user`).
pub fn token_in(role: Role, jurisdiction: &str) -> String {
    kit::token(&format!("{}-user", role.as_str()), jurisdiction, &[role])
}

pub use kit::Reply;

impl Svc {
    /// A second replica of this catalog: same database and topics, its own port and memory.
    pub async fn replica(&self) -> Svc {
        run(self.settings.clone()).await
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        kit::call(&self.http, &self.url, method, path, token, body).await
    }

    pub async fn as_role(&self, role: Role, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.as_role_in(role, SHAANXI, method, path, body).await
    }

    pub async fn as_role_in(&self, role: Role, j: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(&token_in(role, j)), body).await
    }

    /// Creates and submits a resource; returns its id.
    pub async fn submitted(&self, content: Value) -> String {
        self.submitted_in(SHAANXI, content).await
    }

    /// Creates and submits a resource in `jurisdiction`; returns its id.
    pub async fn submitted_in(&self, jurisdiction: &str, content: Value) -> String {
        let r = self.as_role_in(Role::IndustryDept, jurisdiction, "POST", "/resources", Some(content)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        let path = format!("/resources/{id}/submit");
        let r = self.as_role_in(Role::IndustryDept, jurisdiction, "POST", &path, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        id
    }

    /// Creates, submits and publishes a resource; returns its id.
    pub async fn published(&self, content: Value) -> String {
        self.published_in(SHAANXI, content).await
    }

    /// Creates, submits and publishes a resource in `jurisdiction`; returns its id.
    pub async fn published_in(&self, jurisdiction: &str, content: Value) -> String {
        let id = self.submitted_in(jurisdiction, content).await;
        let path = format!("/resources/{id}/publish");
        let r = self.as_role_in(Role::DataAdmin, jurisdiction, "POST", &path, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        id
    }

    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = platform_store::conn(&self.running.pool).await.unwrap();
        diesel::sql_query(sql).get_result::<N>(&mut *c).await.unwrap().n
    }

    /// Every envelope on `topic` until `n` have arrived.
    pub async fn read_events(&self, topic: &str, n: usize) -> Vec<platform_events::Envelope> {
        use rdkafka::Message as _;
        let reader = kit::topic_reader(&self.settings, topic);
        let mut out = Vec::new();
        while out.len() < n {
            let m = tokio::time::timeout(Duration::from_secs(20), reader.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} events on {topic}", out.len()))
                .unwrap();
            out.push(platform_events::Envelope::decode_checked(m.payload().unwrap()).unwrap());
        }
        out
    }
}

/// A resource as an industry department writes it.
pub fn resource(code: &str, name: &str) -> Value {
    json!({
        "name": name,
        "code": code,
        "source_unit": "陕西省市场监督管理局",
        "sector": "market_regulation",
        "format": "table",
        "update_frequency": "daily",
        "open_category": "conditional",
        "security_grade": "general",
        "fields": [
            {"name": "credit_code", "data_type": "text", "sensitivity": "none"},
            {"name": "legal_person_name", "data_type": "text", "sensitivity": "personal", "pii_kind": "name"},
            {"name": "legal_person_id", "data_type": "text", "sensitivity": "sensitive_personal", "pii_kind": "id_card"},
            {"name": "registered_capital", "data_type": "decimal", "sensitivity": "none"}
        ],
        "provenance": {"kind": "collected"}
    })
}
