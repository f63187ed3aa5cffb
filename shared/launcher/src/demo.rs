//! Demo data for `make run`: a province with the Shaanxi profile (610000), a city under it
//! (Xi'an, 610100), and catalog resources with Chinese names, loaded through the public API.

use platform_auth::{Role, issuer::DevIssuer};
use serde_json::{Value, json};

pub const PROVINCE: &str = "610000";
pub const CITY: &str = "610100";

fn field(name: &str, data_type: &str, sensitivity: &str, pii: Option<&str>, description: &str) -> Value {
    let mut f = json!({"name": name, "data_type": data_type, "sensitivity": sensitivity, "description": description});
    if let Some(p) = pii {
        f["pii_kind"] = json!(p);
    }
    f
}

fn resources() -> Vec<(&'static str, Value)> {
    let collected = json!({"kind": "collected"});
    vec![
        (
            PROVINCE,
            json!({
                "name": "企业登记信息", "code": "SX-SCJG-0001", "source_unit": "陕西省市场监督管理局", "sector": "market_regulation",
                "format": "table", "update_frequency": "daily", "open_category": "conditional", "security_grade": "general",
                "quality_requirements": "统一社会信用代码完整率100%",
                "fields": [
                    field("credit_code", "text", "none", None, "统一社会信用代码"),
                    field("enterprise_name", "text", "none", None, "企业名称"),
                    field("legal_person_name", "text", "personal", Some("name"), "法定代表人姓名"),
                    field("legal_person_id", "text", "sensitive_personal", Some("id_card"), "法定代表人身份证号"),
                    field("contact_phone", "text", "personal", Some("phone"), "联系电话"),
                    field("registered_capital", "decimal", "none", None, "注册资本（万元）"),
                    field("district", "text", "none", None, "所在区县"),
                ],
                "provenance": collected,
            }),
        ),
        (
            PROVINCE,
            json!({
                "name": "公共交通刷卡数据", "code": "SX-JT-0002", "source_unit": "陕西省交通运输厅", "sector": "transport",
                "format": "table", "update_frequency": "real_time", "open_category": "unconditional", "security_grade": "general",
                "fields": [
                    field("line_no", "text", "none", None, "线路编号"),
                    field("station", "text", "none", None, "站点"),
                    field("boarding_time", "timestamp", "none", None, "上车时间"),
                    field("fare", "decimal", "none", None, "票价（元）"),
                ],
                "provenance": collected,
            }),
        ),
        (
            PROVINCE,
            json!({
                "name": "不动产登记信息", "code": "SX-ZRZY-0003", "source_unit": "陕西省自然资源厅", "sector": "natural_resources",
                "format": "table", "update_frequency": "weekly", "open_category": "conditional", "security_grade": "important",
                "fields": [
                    field("parcel_no", "text", "none", None, "不动产单元号"),
                    field("owner_name", "text", "personal", Some("name"), "权利人"),
                    field("area_m2", "decimal", "none", None, "面积（平方米）"),
                    field("usage", "text", "none", None, "用途"),
                ],
                "provenance": collected,
            }),
        ),
        (
            PROVINCE,
            json!({
                "name": "医保结算明细", "code": "SX-YB-0004", "source_unit": "陕西省医疗保障局", "sector": "health",
                "format": "table", "update_frequency": "daily", "open_category": "not_open", "security_grade": "core",
                "fields": [
                    field("patient_id", "text", "sensitive_personal", Some("id_card"), "参保人身份证号"),
                    field("amount", "decimal", "none", None, "结算金额"),
                ],
                "provenance": collected,
            }),
        ),
        (
            PROVINCE,
            json!({
                "name": "跨省共享社保缴纳信息", "code": "SX-RS-0005", "source_unit": "陕西省人力资源和社会保障厅", "sector": "social_security",
                "format": "table", "update_frequency": "monthly", "open_category": "conditional", "security_grade": "important",
                "fields": [
                    field("insured_id", "text", "sensitive_personal", Some("id_card"), "参保人身份证号"),
                    field("months_paid", "integer", "none", None, "缴费月数"),
                ],
                "provenance": {"kind": "shared_in", "provider": "甘肃省人力资源和社会保障厅", "provider_consent": false},
            }),
        ),
        (
            PROVINCE,
            json!({
                "name": "气象观测数据", "code": "SX-QX-0006", "source_unit": "陕西省气象局", "sector": "meteorology",
                "format": "table", "update_frequency": "real_time", "open_category": "unconditional", "security_grade": "general",
                "fields": [
                    field("station_id", "text", "none", None, "观测站编号"),
                    field("observed_at", "timestamp", "none", None, "观测时间"),
                    field("temperature_c", "decimal", "none", None, "气温（℃）"),
                    field("precipitation_mm", "decimal", "none", None, "降水量（毫米）"),
                ],
                "provenance": collected,
            }),
        ),
        (
            CITY,
            json!({
                "name": "西安市公交线路客流数据", "code": "XA-JT-0001", "source_unit": "西安市交通运输局", "sector": "transport",
                "format": "table", "update_frequency": "daily", "open_category": "unconditional", "security_grade": "general",
                "fields": [
                    field("line_no", "text", "none", None, "线路编号"),
                    field("date", "date", "none", None, "日期"),
                    field("passengers", "integer", "none", None, "客流人次"),
                ],
                "provenance": collected,
            }),
        ),
    ]
}

/// The demo users: one per role in the province, and the city's own departments.
pub fn users() -> Vec<(String, &'static str, Role)> {
    let mut out: Vec<(String, &'static str, Role)> =
        Role::ALL.iter().map(|r| (format!("TOKEN_{}", r.as_str().to_uppercase()), PROVINCE, *r)).collect();
    for r in [Role::IndustryDept, Role::DataAdmin, Role::ImplementingInstitution] {
        out.push((format!("TOKEN_CITY_{}", r.as_str().to_uppercase()), CITY, r));
    }
    out
}

pub fn token(issuer: &DevIssuer, jurisdiction: &str, role: Role) -> Result<String, String> {
    issuer.token(
        &format!("demo-{}-{jurisdiction}", role.as_str()),
        &format!("demo-org-{}", role.as_str()),
        jurisdiction,
        &[role],
    )
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Loads the demo catalog unless it is there already (codes are unique, so a rerun adds nothing).
pub async fn seed(catalog_url: &str, issuer: &DevIssuer) -> Result<usize, String> {
    let http = reqwest::Client::new();
    let mut created = 0;
    for (jurisdiction, content) in resources() {
        let dept = token(issuer, jurisdiction, Role::IndustryDept)?;
        let admin = token(issuer, jurisdiction, Role::DataAdmin)?;
        let registrar = token(issuer, jurisdiction, Role::ImplementingInstitution)?;
        let (status, body) =
            call(&http, reqwest::Method::POST, format!("{catalog_url}/resources"), &dept, Some(&content)).await?;
        match status {
            201 => {}
            409 => continue,
            _ => return Err(format!("demo resource {}: {status} {body}", content["name"])),
        }
        let id = body["id"].as_str().unwrap_or_default().to_string();
        call(&http, reqwest::Method::POST, format!("{catalog_url}/resources/{id}/submit"), &dept, None).await?;
        let (status, body) =
            call(&http, reqwest::Method::POST, format!("{catalog_url}/resources/{id}/publish"), &admin, None).await?;
        if status != 200 {
            return Err(format!("publishing demo resource: {status} {body}"));
        }
        if body["authorizable"] == true {
            call(&http, reqwest::Method::POST, format!("{catalog_url}/resources/{id}/registration"), &registrar, None)
                .await?;
        }
        if content["code"] == "SX-SCJG-0001" {
            let operator = token(issuer, PROVINCE, Role::Operator)?;
            let objection = json!({"resource_id": id, "field": "registered_capital", "description": "部分企业注册资本单位为元而非万元"});
            call(&http, reqwest::Method::POST, format!("{catalog_url}/objections"), &operator, Some(&objection))
                .await?;
        }
        created += 1;
    }
    Ok(created)
}

/// A Xi'an implementation plan over the city's demo resource, approved and awaiting filing with
/// the province (SX-19). Skipped when the city already has plans.
pub async fn seed_plan(catalog_url: &str, authorization_url: &str, issuer: &DevIssuer) -> Result<bool, String> {
    let http = reqwest::Client::new();
    let author = token(issuer, CITY, Role::ImplementingInstitution)?;
    let admin = token(issuer, CITY, Role::DataAdmin)?;
    let (_, existing) =
        call(&http, reqwest::Method::GET, format!("{authorization_url}/plans?limit=1"), &admin, None).await?;
    if existing["items"].as_array().is_some_and(|a| !a.is_empty()) {
        return Ok(false);
    }
    let (_, found) =
        call(&http, reqwest::Method::GET, format!("{catalog_url}/resources?q=XA-JT-0001"), &author, None).await?;
    let Some(resource) = found["items"].get(0).and_then(|r| r["id"].as_str()).map(str::to_string) else {
        return Err("the demo city resource XA-JT-0001 is missing".into());
    };
    let plan = json!({
        "name": "西安市公共交通数据授权运营实施方案",
        "necessity_feasibility": "公交客流数据社会需求大，具备开发利用条件",
        "operator_selection_conditions": "资金、管理、技术、服务、安全能力满足要求",
        "mode": "scenario",
        "data_scope": {"resource_ids": [resource], "description": "西安市公交线路客流数据，日更"},
        "term_and_implementation": "授权期限三年，2027年起分两期建设",
        "product_list": {"public_governance": ["公交线网优化分析"], "industry_development": ["商圈客流报告"]},
        "cost_revenue_sharing": "按成本加合理收益核算，收益按协议分配",
        "security_emergency": "开发环境内脱敏使用，应急预案报备",
        "rights_duties": "实施机构、运营机构权利义务以协议为准",
        "supervision_evaluation": "年度考核评价，结果与收益分配挂钩",
        "other": "无"
    });
    // Authorization learns the catalog through Kafka: retry until the resource is known.
    let mut created = None;
    for _ in 0..100 {
        let (status, body) =
            call(&http, reqwest::Method::POST, format!("{authorization_url}/plans"), &author, Some(&plan)).await?;
        if status == 201 {
            created = body["id"].as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let id = created.ok_or("authorization did not learn the demo resource in time")?;
    let why = json!({"reason": "演示数据"});
    call(&http, reqwest::Method::POST, format!("{authorization_url}/plans/{id}/submit"), &author, Some(&why)).await?;
    call(&http, reqwest::Method::POST, format!("{authorization_url}/plans/{id}/pass_feasibility"), &admin, Some(&why))
        .await?;
    let (status, body) =
        call(&http, reqwest::Method::POST, format!("{authorization_url}/plans/{id}/approve"), &admin, Some(&why))
            .await?;
    if status != 200 {
        return Err(format!("approving the demo plan: {status} {body}"));
    }
    // An agreement under the plan with the demo operator, revenue sharing with the finance
    // department's opinion (WF-15), signed (filing with the province due, SX-21) and active.
    let today = platform_calendar::today_in_china();
    let end = today.checked_add_months(chrono::Months::new(36)).unwrap_or(today);
    let agreement = json!({
        "plan_id": id,
        "operator_org": "demo-org-operator",
        "operator_name": "西安公共数据运营有限公司",
        "scope": [{"resource_id": resource, "fields": ["line_no", "date", "passengers"]}],
        "products": ["公交线网优化分析", "商圈客流报告"],
        "revenue_sharing": "收益按政府30%、运营机构70%分配，按年度考核结果动态调整",
        "term_start": today.to_string(),
        "term_end": end.to_string(),
    });
    let url = format!("{authorization_url}/agreements");
    let (status, body) = call(&http, reqwest::Method::POST, url, &author, Some(&agreement)).await?;
    if status != 201 {
        return Err(format!("the demo agreement: {status} {body}"));
    }
    let aid = body["id"].as_str().unwrap_or_default().to_string();
    let finance = token(issuer, CITY, Role::Finance)?;
    let opinion = json!({"opinion": "收益分配比例合理，同意"});
    let steps = [("finance-opinion", &finance, &opinion), ("sign", &author, &why), ("activate", &author, &why)];
    for (action, who, body) in steps {
        let url = format!("{authorization_url}/agreements/{aid}/{action}");
        let (status, answer) = call(&http, reqwest::Method::POST, url, who, Some(body)).await?;
        if status != 200 {
            return Err(format!("the demo agreement, {action}: {status} {answer}"));
        }
    }
    Ok(true)
}

/// The demo grant and dataset: the operator's staff member is registered and verified (NS-14),
/// requests the Xi'an bus-ridership data for one scenario, both approvals follow (WF-18), the
/// grant reaches the sandbox gateway as a workspace, and the data source unit loads a month of
/// ridership. Skipped when the operator already has a workspace.
pub async fn seed_sandbox(
    authorization_url: &str,
    sandbox_url: &str,
    issuer: &DevIssuer,
) -> Result<Option<String>, String> {
    let http = reqwest::Client::new();
    let operator = token(issuer, CITY, Role::Operator)?;
    let (_, existing) =
        call(&http, reqwest::Method::GET, format!("{sandbox_url}/workspaces?limit=1"), &operator, None).await?;
    if existing["items"].as_array().is_some_and(|a| !a.is_empty()) {
        return Ok(None);
    }
    let author = token(issuer, CITY, Role::ImplementingInstitution)?;
    let (_, agreements) =
        call(&http, reqwest::Method::GET, format!("{authorization_url}/agreements?limit=1"), &author, None).await?;
    let Some(agreement) = agreements["items"].get(0) else { return Err("the demo agreement is missing".into()) };
    let agreement_id = agreement["id"].as_str().unwrap_or_default().to_string();
    let resource = agreement["scope"][0]["resource_id"].as_str().unwrap_or_default().to_string();

    let staff = json!({
        "subject": format!("demo-operator-{CITY}"), "name": "张三", "id_document_tail": "123X",
        "confidentiality_agreement": {"reference": "保密协议-2026-001", "signed_on": platform_calendar::today_in_china()}
    });
    let url = format!("{authorization_url}/operator-staff");
    let (status, body) = call(&http, reqwest::Method::POST, url, &operator, Some(&staff)).await?;
    if status == 201 {
        let admin = token(issuer, CITY, Role::DataAdmin)?;
        let url =
            format!("{authorization_url}/operator-staff/{}/verification", body["id"].as_str().unwrap_or_default());
        call(&http, reqwest::Method::POST, url, &admin, Some(&json!({"reference": "实名核验-001"}))).await?;
    }
    let today = platform_calendar::today_in_china();
    let request = json!({
        "agreement_id": agreement_id,
        "scenario": "公交线网优化",
        "scope": [{"resource_id": resource, "fields": ["line_no", "date", "passengers"], "justifications": {}}],
        "development_plan": "按线路、日期聚合客流，输出线网优化建议",
        "valid_until": today.checked_add_months(chrono::Months::new(12)).unwrap_or(today).to_string()
    });
    let (status, body) =
        call(&http, reqwest::Method::POST, format!("{authorization_url}/data-requests"), &operator, Some(&request))
            .await?;
    if status != 201 {
        return Err(format!("the demo data request: {status} {body}"));
    }
    let rid = body["id"].as_str().unwrap_or_default().to_string();
    let ok = json!({"decision": "approve", "opinion": "同意"});
    for role in [Role::ImplementingInstitution, Role::DataSourceUnit] {
        let url = format!("{authorization_url}/data-requests/{rid}/decision");
        let (status, body) = call(&http, reqwest::Method::POST, url, &token(issuer, CITY, role)?, Some(&ok)).await?;
        if status != 200 {
            return Err(format!("approving the demo data request: {status} {body}"));
        }
    }
    // The grant travels over Kafka: wait for the workspace, then load the data into it.
    let mut grant = None;
    for _ in 0..150 {
        let (_, ws) =
            call(&http, reqwest::Method::GET, format!("{sandbox_url}/workspaces?limit=1"), &operator, None).await?;
        if let Some(id) = ws["items"].get(0).and_then(|w| w["grant_id"].as_str()) {
            grant = Some(id.to_string());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let grant = grant.ok_or("the sandbox gateway did not open the demo workspace in time")?;
    let mut csv = String::from("line_no,date,passengers\n");
    for day in 1..=30 {
        for line in 1..=40 {
            csv.push_str(&format!("{line}路,2026-11-{day:02},{}\n", 800 + (line * 37 + day * 11) % 1500));
        }
    }
    let loader = token(issuer, CITY, Role::DataSourceUnit)?;
    let resp = http
        .post(format!("{sandbox_url}/datasets/{resource}/loads?format=csv"))
        .bearer_auth(loader)
        .body(csv)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 201 {
        return Err(format!("loading the demo dataset: {}", resp.text().await.unwrap_or_default()));
    }
    Ok(Some(grant))
}
