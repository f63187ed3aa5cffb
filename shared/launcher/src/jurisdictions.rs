//! Demo data for every seed jurisdiction, each under its own profile: besides Shaanxi and Xi'an
//! (`demo.rs`), Weifang (370700), Zhangjiakou (130700), Lanzhou (620100) and Nanshan (440305)
//! each get an implementation plan where their profile sets a filing deadline for one (WF-11),
//! and an active agreement with the demo operator over their own resource, its term as long as
//! the profile allows (WF-12: 5 years; NS-15: 3; LZ-6: a fixed 2). What differs shows at once:
//! Weifang refuses a sub-authorization of it (WF-26), Zhangjiakou's waits for its report
//! (ZJK-17), Nanshan's takes effect (NS-19); Lanzhou's resource carries an open objection due
//! 15 working days later (LZ-5). Everything goes through the services' HTTP APIs.

use platform_auth::{Role, issuer::DevIssuer};
use platform_policy::Profiles;
use serde_json::Value;

use crate::demo::{self, AgreementDraft};

/// The jurisdictions `make run` loads, each with the demo resource its agreement covers (for
/// 610000, the resource the README's term comparison uses).
pub const LOADED: [(&str, &str); 6] = [
    (demo::PROVINCE, "SX-JT-0002"),
    (demo::CITY, "XA-JT-0001"),
    ("370700", "WF-NY-0001"),
    ("130700", "ZJK-NY-0001"),
    ("620100", "LZ-JT-0001"),
    ("440305", "NS-JT-0001"),
];

/// One jurisdiction's demo plan and agreement: what the profile does not decide.
struct Demo {
    code: &'static str,
    resource: &'static str,
    plan_name: &'static str,
    operator_name: &'static str,
    fields: &'static [&'static str],
    products: [&'static str; 2],
    /// ZJK: as long as a secondary authorization may last (ZJK-17), so the partner's can match it.
    term_months: u32,
}

const DEMOS: [Demo; 4] = [
    Demo {
        code: "370700",
        resource: "WF-NY-0001",
        plan_name: "潍坊市公共数据整体授权运营实施方案",
        operator_name: "潍坊市公共数据运营有限公司",
        fields: &["industry", "month", "kwh"],
        products: ["企业用电景气指数", "产业链用能分析报告"],
        term_months: 60,
    },
    Demo {
        code: "130700",
        resource: "ZJK-NY-0001",
        plan_name: "张家口市新能源数据授权运营实施方案",
        operator_name: "张家口数据集团有限公司",
        fields: &["station_id", "date", "output_mwh"],
        products: ["新能源消纳监测", "绿电交易参考报告"],
        term_months: 36,
    },
    Demo {
        code: "620100",
        resource: "LZ-JT-0001",
        plan_name: "兰州市公交客流场景授权运营实施方案",
        operator_name: "兰州公共数据运营有限公司",
        fields: &["line_no", "date", "passengers"],
        products: ["公交线网优化分析", "客流热力报告"],
        term_months: 24,
    },
    Demo {
        code: "440305",
        resource: "NS-JT-0001",
        plan_name: "南山区公交数据授权运营实施方案",
        operator_name: "南山数据运营有限公司",
        fields: &["line_no", "station", "date", "passengers"],
        products: ["站点客流分析", "商圈客流报告"],
        term_months: 36,
    },
];

/// What one loaded jurisdiction holds: the ids `platform.env` names.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub code: &'static str,
    pub resource: String,
    pub plan: Option<String>,
    pub agreement: Option<String>,
}

/// The first item of a list the caller sees, in creation order, that `keep` accepts.
async fn first(
    http: &reqwest::Client,
    url: String,
    token: &str,
    keep: fn(&Value) -> bool,
) -> Result<Option<String>, String> {
    let (status, page) = demo::call(http, reqwest::Method::GET, url.clone(), token, None).await?;
    if status != 200 {
        return Err(format!("{url}: {status} {page}"));
    }
    let items = page["items"].as_array().cloned().unwrap_or_default();
    Ok(items.iter().find(|i| keep(i)).and_then(|i| i["id"].as_str()).map(str::to_string))
}

/// The demo operator's active agreement.
fn active(a: &Value) -> bool {
    a["state"] == "active" && a["operator_org"] == demo::org(Role::Operator).as_str()
}

/// What `code` holds now: its demo resource, first plan and active agreement.
async fn find(
    http: &reqwest::Client,
    catalog_url: &str,
    authorization_url: &str,
    issuer: &DevIssuer,
    (code, resource): (&'static str, &str),
) -> Result<Loaded, String> {
    let author = demo::token(issuer, code, Role::ImplementingInstitution)?;
    let admin = demo::token(issuer, code, Role::DataAdmin)?;
    Ok(Loaded {
        code,
        resource: demo::resource_id(http, catalog_url, &author, resource).await?,
        plan: first(http, format!("{authorization_url}/plans"), &admin, |_| true).await?,
        agreement: first(http, format!("{authorization_url}/agreements"), &author, active).await?,
    })
}

/// Seeds what each of the four jurisdictions lacks (a rerun adds nothing), then reports what
/// every loaded jurisdiction holds. The catalog resources are loaded before (`demo::seed`).
pub async fn seed(
    catalog_url: &str,
    authorization_url: &str,
    issuer: &DevIssuer,
    profiles: &Profiles,
) -> Result<Vec<Loaded>, String> {
    let http = reqwest::Client::new();
    for d in &DEMOS {
        let found = find(&http, catalog_url, authorization_url, issuer, (d.code, d.resource)).await?;
        if found.agreement.is_some() {
            continue;
        }
        let profile = profiles.resolve(d.code).map_err(|e| e.to_string())?;
        // A plan where the profile has one filed with the upper level (WF-11), in its first mode.
        let plan = match (&found.plan, &profile.values.plan_filing_deadline) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(_)) => {
                let mode = profile.values.modes.as_ref().and_then(|m| m.value.first().cloned()).unwrap_or_default();
                let scope = format!("{}，按协议范围使用", d.resource);
                let contents = demo::plan_contents(d.plan_name, &mode, &found.resource, &scope, d.products);
                Some(demo::approved_plan(&http, authorization_url, issuer, d.code, &contents).await?)
            }
            (None, None) => None,
        };
        let draft = AgreementDraft {
            plan_id: plan.as_deref(),
            operator_name: d.operator_name,
            resource: &found.resource,
            fields: d.fields,
            products: &d.products,
            term_months: d.term_months,
        };
        demo::active_agreement(&http, authorization_url, issuer, d.code, &draft)
            .await
            .map_err(|e| format!("the demo agreement of {}: {e}", d.code))?;
    }
    let mut loaded = Vec::new();
    for entry in LOADED {
        loaded.push(find(&http, catalog_url, authorization_url, issuer, entry).await?);
    }
    Ok(loaded)
}

/// `platform.env` lines: the jurisdictions loaded, with their names, and their demo ids.
pub fn env(loaded: &[Loaded], profiles: &Profiles) -> Vec<(String, String)> {
    let codes: Vec<&str> = loaded.iter().map(|l| l.code).collect();
    let mut out = vec![("JURISDICTIONS".to_string(), codes.join(","))];
    for l in loaded {
        let name = profiles.jurisdiction(l.code).map(|j| j.name.clone()).unwrap_or_default();
        out.push((format!("JURISDICTION_{}", l.code), name));
        out.push((format!("RESOURCE_{}", l.code), l.resource.clone()));
        if let Some(p) = &l.plan {
            out.push((format!("PLAN_{}", l.code), p.clone()));
        }
        if let Some(a) = &l.agreement {
            out.push((format!("AGREEMENT_{}", l.code), a.clone()));
        }
    }
    out
}

/// `--check`: a token printed by `platform token` (this very binary, as a person runs it) lets
/// the operator of each loaded jurisdiction read its agreement, and Lanzhou's data
/// administration its objection, due in working days (LZ-5).
pub async fn check_printed_tokens(
    dir: &std::path::Path,
    authorization_url: &str,
    catalog_url: &str,
    loaded: &[Loaded],
) -> Result<(), String> {
    let http = reqwest::Client::new();
    for l in loaded {
        let Some(agreement) = &l.agreement else { continue };
        let token = printed_token(dir, l.code, "operator")?;
        let url = format!("{authorization_url}/agreements/{agreement}");
        let (status, body) = demo::call(&http, reqwest::Method::GET, url, &token, None).await?;
        if status != 200 || body["jurisdiction"] != l.code {
            return Err(format!("a printed operator token of {} cannot read its agreement: {status} {body}", l.code));
        }
    }
    let token = printed_token(dir, "620100", "data_admin")?;
    let (status, body) =
        demo::call(&http, reqwest::Method::GET, format!("{catalog_url}/objections"), &token, None).await?;
    if status != 200 || body["items"][0]["deadline_rule"] != "LZ-5" {
        return Err(format!("Lanzhou's demo objection is not visible with a printed token: {status} {body}"));
    }
    Ok(())
}

fn printed_token(dir: &std::path::Path, jurisdiction: &str, role: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(["token", "--dir"])
        .arg(dir)
        .args(["--jurisdiction", jurisdiction, "--role", role])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("platform token failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
