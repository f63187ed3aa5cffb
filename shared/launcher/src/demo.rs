//! Demo data for `make run`: a province with the Shaanxi profile (610000), a city under it
//! (Xi'an, 610100), and catalog resources with Chinese names, loaded through the public API; the
//! other seed jurisdictions' resources too (their plans and agreements: `jurisdictions.rs`).

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

/// An unconditionally open, generally graded table its source unit collected:
/// `[name, code, source unit, sector, update frequency]`.
fn open_table(jurisdiction: &'static str, about: [&str; 5], fields: Vec<Value>) -> (&'static str, Value) {
    let [name, code, source_unit, sector, update_frequency] = about;
    let content = json!({
        "name": name, "code": code, "source_unit": source_unit, "sector": sector,
        "format": "table", "update_frequency": update_frequency, "open_category": "unconditional",
        "security_grade": "general", "fields": fields, "provenance": {"kind": "collected"},
    });
    (jurisdiction, content)
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
        open_table(
            "370700",
            ["潍坊市规模以上企业用电量数据", "WF-NY-0001", "国网潍坊供电公司", "energy", "monthly"],
            vec![
                field("credit_code", "text", "none", None, "统一社会信用代码"),
                field("industry", "text", "none", None, "所属行业"),
                field("month", "date", "none", None, "月份"),
                field("kwh", "decimal", "none", None, "用电量（千瓦时）"),
            ],
        ),
        open_table(
            "130700",
            ["张家口市新能源场站发电量数据", "ZJK-NY-0001", "张家口市能源局", "energy", "daily"],
            vec![
                field("station_id", "text", "none", None, "场站编号"),
                field("date", "date", "none", None, "日期"),
                field("output_mwh", "decimal", "none", None, "发电量（兆瓦时）"),
                // ZJK-15: personal information is never in an agreement's scope here.
                field("contact_name", "text", "personal", Some("name"), "场站联系人"),
            ],
        ),
        open_table(
            "620100",
            ["兰州市公交线路客流数据", "LZ-JT-0001", "兰州市交通运输局", "transport", "daily"],
            vec![
                field("line_no", "text", "none", None, "线路编号"),
                field("date", "date", "none", None, "日期"),
                field("passengers", "integer", "none", None, "客流人次"),
            ],
        ),
        open_table(
            "440305",
            ["南山区公交站点客流数据", "NS-JT-0001", "深圳市南山区交通运输局", "transport", "daily"],
            vec![
                field("line_no", "text", "none", None, "线路编号"),
                field("station", "text", "none", None, "站点"),
                field("date", "date", "none", None, "日期"),
                field("passengers", "integer", "none", None, "客流人次"),
            ],
        ),
    ]
}

/// The quality objections an operator of the resource's jurisdiction files on first load:
/// (resource code, field, description). Each is due the profile's working days later (LZ-5).
const OBJECTIONS: [(&str, &str, &str); 2] = [
    ("SX-SCJG-0001", "registered_capital", "部分企业注册资本单位为元而非万元"),
    ("LZ-JT-0001", "passengers", "部分线路连续多日客流为0，疑似漏采"),
];

/// The demo users: one per role in the province, and the city's own departments.
pub fn users() -> Vec<(String, &'static str, Role)> {
    let mut out: Vec<(String, &'static str, Role)> =
        Role::ALL.iter().map(|r| (format!("TOKEN_{}", r.as_str().to_uppercase()), PROVINCE, *r)).collect();
    for r in [Role::IndustryDept, Role::DataAdmin, Role::ImplementingInstitution] {
        out.push((format!("TOKEN_CITY_{}", r.as_str().to_uppercase()), CITY, r));
    }
    out
}

/// The demo subject of `role` in `jurisdiction` (also `platform token`'s default `--sub`).
pub fn subject(jurisdiction: &str, role: Role) -> String {
    format!("demo-{}-{jurisdiction}", role.as_str())
}

/// The demo organisation of `role` (also `platform token`'s default `--org`): the same in every
/// jurisdiction, so the demo operator holds an agreement in each.
pub fn org(role: Role) -> String {
    format!("demo-org-{}", role.as_str())
}

pub fn token(issuer: &DevIssuer, jurisdiction: &str, role: Role) -> Result<String, String> {
    issuer.token(&subject(jurisdiction, role), &org(role), jurisdiction, &[role])
}

pub async fn call(
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
        for (_, field, description) in OBJECTIONS.iter().filter(|(code, _, _)| content["code"] == *code) {
            let operator = token(issuer, jurisdiction, Role::Operator)?;
            let objection = json!({"resource_id": id, "field": field, "description": description});
            let url = format!("{catalog_url}/objections");
            let (status, body) = call(&http, reqwest::Method::POST, url, &operator, Some(&objection)).await?;
            if status != 201 {
                return Err(format!("the demo objection on {}: {status} {body}", content["code"]));
            }
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
    let resource = resource_id(&http, catalog_url, &author, "XA-JT-0001").await?;
    let plan = plan_contents(
        "西安市公共交通数据授权运营实施方案",
        "scenario",
        &resource,
        "西安市公交线路客流数据，日更",
        ["公交线网优化分析", "商圈客流报告"],
    );
    let id = approved_plan(&http, authorization_url, issuer, CITY, &plan).await?;
    // An agreement under the plan with the demo operator, revenue sharing with the finance
    // department's opinion (WF-15), signed (filing with the province due, SX-21) and active.
    let agreement = AgreementDraft {
        plan_id: Some(id.as_str()),
        operator_name: "西安公共数据运营有限公司",
        resource: &resource,
        fields: &["line_no", "date", "passengers"],
        products: &["公交线网优化分析", "商圈客流报告"],
        term_months: 36,
    };
    active_agreement(&http, authorization_url, issuer, CITY, &agreement).await?;
    Ok(true)
}

/// The id of the demo resource `code` in the catalog.
pub async fn resource_id(http: &reqwest::Client, catalog_url: &str, token: &str, code: &str) -> Result<String, String> {
    let (_, found) = call(http, reqwest::Method::GET, format!("{catalog_url}/resources?q={code}"), token, None).await?;
    let items = found["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .find(|r| r["code"] == code)
        .and_then(|r| r["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("the demo resource {code} is missing"))
}

/// A demo implementation plan with its twelve contents (SX-16) over one resource.
pub fn plan_contents(name: &str, mode: &str, resource: &str, scope: &str, products: [&str; 2]) -> Value {
    json!({
        "name": name,
        "necessity_feasibility": "公共数据社会需求大，具备开发利用条件",
        "operator_selection_conditions": "资金、管理、技术、服务、安全能力满足要求",
        "mode": mode,
        "data_scope": {"resource_ids": [resource], "description": scope},
        "term_and_implementation": "授权期限以协议为准，分两期建设",
        "product_list": {"public_governance": [products[0]], "industry_development": [products[1]]},
        "cost_revenue_sharing": "按成本加合理收益核算，收益按协议分配",
        "security_emergency": "开发环境内脱敏使用，应急预案报备",
        "rights_duties": "实施机构、运营机构权利义务以协议为准",
        "supervision_evaluation": "年度考核评价，结果与收益分配挂钩",
        "other": "无"
    })
}

/// POSTs `body` until authorization knows the resources it names: it learns the catalog through
/// Kafka, so a resource just published may not be there yet. Returns the created id.
async fn create_when_known(http: &reqwest::Client, url: String, token: &str, body: &Value) -> Result<String, String> {
    let mut last = (0, Value::Null);
    for _ in 0..150 {
        let (status, answer) = call(http, reqwest::Method::POST, url.clone(), token, Some(body)).await?;
        if status == 201 {
            return answer["id"].as_str().map(str::to_string).ok_or_else(|| format!("{url}: no id in {answer}"));
        }
        let waiting = ["/problems/unknown-resource", "/problems/not-authorizable"];
        if !waiting.iter().any(|t| answer["type"] == *t) {
            return Err(format!("{url}: {status} {answer}"));
        }
        last = (status, answer);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(format!("{url}: authorization did not learn the demo resource in time: {} {}", last.0, last.1))
}

/// POSTs each step in turn, each expected to answer 200.
async fn steps(http: &reqwest::Client, base: &str, steps: &[(&str, &str, &Value)]) -> Result<(), String> {
    for (action, who, body) in steps {
        let (status, answer) = call(http, reqwest::Method::POST, format!("{base}/{action}"), who, Some(*body)).await?;
        if status != 200 {
            return Err(format!("{base}/{action}: {status} {answer}"));
        }
    }
    Ok(())
}

/// Creates the plan in `jurisdiction` and takes it through feasibility review to approval
/// (filing with the upper level then due where the profile sets a deadline: SX-19, WF-11).
pub async fn approved_plan(
    http: &reqwest::Client,
    authorization_url: &str,
    issuer: &DevIssuer,
    jurisdiction: &str,
    plan: &Value,
) -> Result<String, String> {
    let author = token(issuer, jurisdiction, Role::ImplementingInstitution)?;
    let admin = token(issuer, jurisdiction, Role::DataAdmin)?;
    let (author, admin) = (author.as_str(), admin.as_str());
    let id = create_when_known(http, format!("{authorization_url}/plans"), author, plan).await?;
    let why = json!({"reason": "演示数据"});
    let base = format!("{authorization_url}/plans/{id}");
    steps(http, &base, &[("submit", author, &why), ("pass_feasibility", admin, &why), ("approve", admin, &why)])
        .await?;
    Ok(id)
}

/// What varies between the demo agreements; the rest is the same everywhere.
pub struct AgreementDraft<'a> {
    pub plan_id: Option<&'a str>,
    pub operator_name: &'a str,
    pub resource: &'a str,
    pub fields: &'a [&'a str],
    pub products: &'a [&'a str],
    /// From today: within the profile's longest term, or exactly its fixed term (LZ-6).
    pub term_months: u32,
}

/// An agreement with the demo operator in `jurisdiction`, revenue sharing with the finance
/// department's opinion (WF-15), signed and active from today. Returns its id.
pub async fn active_agreement(
    http: &reqwest::Client,
    authorization_url: &str,
    issuer: &DevIssuer,
    jurisdiction: &str,
    draft: &AgreementDraft<'_>,
) -> Result<String, String> {
    let today = platform_calendar::today_in_china();
    let body = json!({
        "plan_id": draft.plan_id,
        "operator_org": org(Role::Operator),
        "operator_name": draft.operator_name,
        "scope": [{"resource_id": draft.resource, "fields": draft.fields}],
        "products": draft.products,
        "revenue_sharing": "收益按政府30%、运营机构70%分配，按年度考核结果动态调整",
        "term_start": today.to_string(),
        // The last day in force: a term of N months from D ends on D + N months − 1 day.
        "term_end": authorization::domain::agreement::term_last_day(today, draft.term_months).to_string(),
    });
    let author = token(issuer, jurisdiction, Role::ImplementingInstitution)?;
    let id = create_when_known(http, format!("{authorization_url}/agreements"), &author, &body).await?;
    let finance = token(issuer, jurisdiction, Role::Finance)?;
    let opinion = json!({"opinion": "收益分配比例合理，同意"});
    let why = json!({"reason": "演示数据"});
    let base = format!("{authorization_url}/agreements/{id}");
    let (author, finance) = (author.as_str(), finance.as_str());
    steps(http, &base, &[("finance-opinion", finance, &opinion), ("sign", author, &why), ("activate", author, &why)])
        .await?;
    Ok(id)
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
