//! Starts catalog and authorization on one broker prefix, each with its own database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Months;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use platform_auth::Role;
use platform_runtime::Running;
use platform_settings::CommonSettings;
use platform_testkit as kit;
use serde_json::{Value, json};

pub const SHAANXI: &str = "610000";
pub const XIAN: &str = "610100";
pub const WEIFANG: &str = "370700";

pub struct Platform {
    pub catalog: Running,
    pub auth: Running,
    pub auth_settings: CommonSettings,
    pub http: reqwest::Client,
}

pub async fn start() -> Platform {
    let prefix = kit::topic_prefix();
    let cdb = kit::database("catalog", catalog::MIGRATIONS).await;
    let adb = kit::database("authorization", authorization::MIGRATIONS).await;
    let catalog = catalog::run(kit::settings_in(&cdb, &prefix, &[])).await.expect("catalog starts");
    let auth_settings = kit::settings_in(&adb, &prefix, &[]);
    let auth = authorization::run(auth_settings.clone()).await.expect("authorization starts");
    Platform { catalog, auth, auth_settings, http: platform_testkit::http_client() }
}

pub fn token(role: Role, jurisdiction: &str) -> String {
    kit::token(&format!("{}-{jurisdiction}", role.as_str()), jurisdiction, &[role])
}

pub use kit::Reply;

impl Platform {
    pub async fn call(&self, base: &str, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        kit::call(&self.http, base, method, path, token, body).await
    }

    pub async fn auth_as(
        &self,
        role: Role,
        jurisdiction: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.call(&self.auth.url(), method, path, Some(&token(role, jurisdiction)), body).await
    }

    /// Publishes a catalog resource in `jurisdiction` and waits until authorization knows it.
    pub async fn resource(&self, jurisdiction: &str, code: &str, open_category: &str) -> String {
        let base = self.catalog.url();
        let content = json!({
            "name": format!("资源{code}"), "code": code, "source_unit": "数源单位", "sector": "transport",
            "format": "table", "update_frequency": "daily", "open_category": open_category, "security_grade": "general",
            "fields": [{"name": "line_no", "data_type": "text", "sensitivity": "none"},
                       {"name": "phone", "data_type": "text", "sensitivity": "personal", "pii_kind": "phone"}],
            "provenance": {"kind": "collected"}
        });
        let dept = token(Role::IndustryDept, jurisdiction);
        let r = self.call(&base, "POST", "/resources", Some(&dept), Some(content)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        self.call(&base, "POST", &format!("/resources/{id}/submit"), Some(&dept), None).await;
        let r = self
            .call(&base, "POST", &format!("/resources/{id}/publish"), Some(&token(Role::DataAdmin, jurisdiction)), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        kit::eventually("authorization learns the resource", Duration::from_secs(30), || async {
            (self.count(&format!("SELECT count(*) AS n FROM catalog_resources WHERE id = '{id}'")).await == 1)
                .then_some(())
        })
        .await;
        id
    }

    /// Registers `sub` (a token subject; its org is `org-{sub}`) as staff with a signed
    /// confidentiality agreement and has the data management department verify them (NS-14).
    /// Returns the staff id, or `None` if they were registered already.
    pub async fn verified_staff(&self, jurisdiction: &str, sub: &str, role: Role) -> Option<String> {
        let body = json!({
            "subject": sub, "name": "张三", "id_document_tail": "123X",
            "confidentiality_agreement": {"reference": "保密协议-001", "signed_on": platform_calendar::today_in_china()}
        });
        let own = kit::token(sub, jurisdiction, &[role]);
        let r = self.call(&self.auth.url(), "POST", "/operator-staff", Some(&own), Some(body)).await;
        if r.status == 409 {
            return None;
        }
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        let path = format!("/operator-staff/{id}/verification");
        let r =
            self.auth_as(Role::DataAdmin, jurisdiction, "POST", &path, Some(json!({"reference": "备案-001"}))).await;
        assert_eq!(r.body["state"], "verified", "{}", r.body);
        Some(id)
    }

    /// Each endpoint (method, path, body, the roles it names) answers 401 without a token and 403
    /// to every other role and to a token with no role.
    pub async fn assert_roles(&self, jurisdiction: &str, endpoints: &[(&str, String, Option<Value>, Vec<Role>)]) {
        let base = self.auth.url();
        let nobody = kit::token("nobody", jurisdiction, &[]);
        for (method, path, body, allowed) in endpoints {
            let r = self.call(&base, method, path, None, body.clone()).await;
            assert_eq!(r.status, 401, "{method} {path} without a token");
            for role in Role::ALL.iter().filter(|r| !allowed.contains(r)) {
                let r = self.call(&base, method, path, Some(&token(*role, jurisdiction)), body.clone()).await;
                assert_eq!(r.status, 403, "{method} {path} as {}", role.as_str());
            }
            let r = self.call(&base, method, path, Some(&nobody), body.clone()).await;
            assert_eq!(r.status, 403, "{method} {path} with no role");
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = platform_store::conn(&self.auth.pool).await.unwrap();
        diesel::sql_query(sql).get_result::<N>(&mut *c).await.unwrap().n
    }
}

/// A complete plan (all twelve SX-16 contents) over `resources`.
pub fn complete_plan(name: &str, mode: &str, resources: &[&str]) -> Value {
    json!({
        "name": name,
        "necessity_feasibility": "公共交通数据需求旺盛，具备开发条件",
        "operator_selection_conditions": "注册资本不低于5000万元，具备数据安全能力",
        "mode": mode,
        "data_scope": {"resource_ids": resources, "description": "日更，质量达标"},
        "term_and_implementation": "授权期限三年，分两期建设",
        "product_list": {"public_governance": ["交通拥堵指数"], "industry_development": ["客流分析报告"]},
        "cost_revenue_sharing": "成本核算后按比例分配",
        "security_emergency": "数据脱敏、应急预案",
        "rights_duties": "各方权利义务见协议",
        "supervision_evaluation": "年度考核评价",
        "other": "无"
    })
}

/// An active agreement for operator org `org-op` over `resource` (fields line_no and phone where
/// the profile allows them).
pub async fn active_agreement(p: &Platform, jurisdiction: &str, resource: &str, fields: &[&str]) -> String {
    let body = json!({
        "operator_org": "org-op", "operator_name": "运营机构",
        "scope": [{"resource_id": resource, "fields": fields}],
        "products": ["分析报告"],
        "term_start": platform_calendar::today_in_china().to_string(),
        "term_end": platform_calendar::today_in_china().checked_add_months(Months::new(24)).unwrap().to_string()
    });
    let r = p.auth_as(Role::ImplementingInstitution, jurisdiction, "POST", "/agreements", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let why = json!({"reason": "按程序"});
    p.auth_as(
        Role::ImplementingInstitution,
        jurisdiction,
        "POST",
        &format!("/agreements/{id}/sign"),
        Some(why.clone()),
    )
    .await;
    let r = p
        .auth_as(Role::ImplementingInstitution, jurisdiction, "POST", &format!("/agreements/{id}/activate"), Some(why))
        .await;
    assert_eq!(r.body["state"], "active", "{}", r.body);
    // The operator's person who asks is verified staff (NS-14).
    p.verified_staff(jurisdiction, "op", Role::Operator).await;
    id
}

pub fn operator(jurisdiction: &str) -> String {
    platform_testkit::token("op", jurisdiction, &[Role::Operator])
}

pub fn request(agreement: &str, resource: &str, fields: &[&str], justifications: Value) -> Value {
    json!({
        "agreement_id": agreement,
        "scenario": "公交线网优化",
        "scope": [{"resource_id": resource, "fields": fields, "justifications": justifications}],
        "development_plan": "按线路聚合客流，输出优化建议",
        "valid_until": platform_calendar::today_in_china().checked_add_months(Months::new(6)).unwrap().to_string()
    })
}

pub async fn approve_both(p: &Platform, jurisdiction: &str, request: &str) -> Value {
    let ok = json!({"decision": "approve", "opinion": "同意"});
    let r = p
        .auth_as(
            Role::ImplementingInstitution,
            jurisdiction,
            "POST",
            &format!("/data-requests/{request}/decision"),
            Some(ok.clone()),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("submitted")),
        "one approval is not enough (WF-18): {}",
        r.body
    );
    let r = p
        .auth_as(Role::DataSourceUnit, jurisdiction, "POST", &format!("/data-requests/{request}/decision"), Some(ok))
        .await;
    assert_eq!(r.body["state"], "approved", "{}", r.body);
    r.body
}

/// A published resource `code` in `jurisdiction`, an active agreement of `org-op` over its field
/// line_no, and a grant to the operator's verified person `op`: (agreement, resource, grant) ids.
pub async fn active_grant(p: &Platform, jurisdiction: &str, code: &str) -> (String, String, String) {
    let res = p.resource(jurisdiction, code, "unconditional").await;
    let agreement = active_agreement(p, jurisdiction, &res, &["line_no"]).await;
    let req = p
        .call(
            &p.auth.url(),
            "POST",
            "/data-requests",
            Some(&operator(jurisdiction)),
            Some(request(&agreement, &res, &["line_no"], json!({}))),
        )
        .await;
    let grant =
        approve_both(p, jurisdiction, req.body["id"].as_str().unwrap()).await["grant_id"].as_str().unwrap().to_string();
    (agreement, res, grant)
}

impl Platform {
    /// The service's state, to run its sweeps by hand.
    pub fn state(&self) -> authorization::app::State {
        authorization::app::State {
            pool: self.auth.pool.clone(),
            relay: self.auth.relay.clone(),
            calendar: platform_calendar::Calendar::official(),
            topic_prefix: self.auth_settings.kafka.topic_prefix.clone(),
        }
    }

    /// The first `n` events of payload `P` on `topic` (others on it skipped), with their envelopes.
    pub async fn events<P: platform_events::EventPayload>(
        &self,
        topic: &str,
        n: usize,
    ) -> Vec<(platform_events::Envelope, P)> {
        use rdkafka::Message as _;
        let reader = kit::topic_reader(&self.auth_settings, topic);
        let mut out = Vec::new();
        while out.len() < n {
            let m = tokio::time::timeout(Duration::from_secs(20), reader.recv()).await.expect("events").unwrap();
            let env = platform_events::Envelope::decode_checked(m.payload().unwrap()).unwrap();
            if let Ok(payload) = env.payload_as::<P>() {
                out.push((env, payload));
            }
        }
        out
    }
}

/// An effective sub-authorization of `org-partner` under `agreement` over `resource`'s line_no,
/// from today through `end` (reported to the coordination office where the profile asks, ZJK-17).
pub async fn effective_sub_authorization(
    p: &Platform,
    jurisdiction: &str,
    agreement: &str,
    resource: &str,
    end: chrono::NaiveDate,
) -> Value {
    let body = json!({
        "partner_org": "org-partner", "partner_name": "二级开发运营主体", "scenario": "景区客流预测",
        "scope": [{"resource_id": resource, "fields": ["line_no"]}],
        "term_start": platform_calendar::today_in_china().to_string(), "term_end": end.to_string()
    });
    let base = p.auth.url();
    let path = format!("/agreements/{agreement}/sub-authorizations");
    let r = p.call(&base, "POST", &path, Some(&operator(jurisdiction)), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    if r.body["state"] != "pending_report" {
        return r.body;
    }
    let path = format!("/sub-authorizations/{}/report", r.body["id"].as_str().unwrap());
    let r = p.call(&base, "POST", &path, Some(&operator(jurisdiction)), None).await;
    assert_eq!(r.body["state"], "effective", "{}", r.body);
    r.body
}

pub fn partner(jurisdiction: &str) -> String {
    platform_testkit::token("partner", jurisdiction, &[Role::Partner])
}

/// The partner (verified staff) asks under a new twelve-month sub-authorization of `agreement`
/// and both approve: (the sub-authorization's id, the approved request).
pub async fn partner_grant(p: &Platform, jurisdiction: &str, agreement: &str, resource: &str) -> (String, Value) {
    let end = platform_calendar::today_in_china().checked_add_months(Months::new(12)).unwrap();
    let sub = effective_sub_authorization(p, jurisdiction, agreement, resource, end).await;
    let sub = sub["id"].as_str().unwrap().to_string();
    p.verified_staff(jurisdiction, "partner", Role::Partner).await;
    let mut ask = request(agreement, resource, &["line_no"], json!({}));
    ask["sub_authorization_id"] = json!(sub);
    let r = p.call(&p.auth.url(), "POST", "/data-requests", Some(&partner(jurisdiction)), Some(ask)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let approved = approve_both(p, jurisdiction, r.body["id"].as_str().unwrap()).await;
    (sub, approved)
}

/// The data management department opens a supervision case against `agreement`'s operator: its id.
pub async fn open_case(p: &Platform, jurisdiction: &str, agreement: &str, grounds: &str) -> String {
    let body = json!({"agreement_id": agreement, "grounds": grounds});
    let r = p.auth_as(Role::DataAdmin, jurisdiction, "POST", "/supervision-cases", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}
