//! An operator that finds harm to national security or the public interest, or an infringement of
//! personal information or trade secrets, stops the data operation concerned at once and reports
//! it truthfully to the data management department (NS-26 (三)). Its report suspends the grants
//! concerned and opens a supervision case that holds them: no new access is granted while it is
//! undecided, passing it reinstates them, failing it terminates the agreement (NS-26 (四)).

use chrono::Utc;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use platform_auth::Caller;
use platform_events::authorization::GrantChange;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::State;
use crate::errors::{Error, Result};
use crate::grants::{GrantMove, change_grants, note};
use crate::store::{AgreementRow, CaseRow, GrantRow, ProfileRow};

/// What the operator found (NS-26 (三)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Harm {
    NationalSecurity,
    PublicInterest,
    PersonalInformation,
    TradeSecret,
}

impl Harm {
    fn label(self) -> &'static str {
        match self {
            Harm::NationalSecurity => "harm to national security",
            Harm::PublicInterest => "harm to the public interest",
            Harm::PersonalInformation => "infringement of personal information",
            Harm::TradeSecret => "infringement of trade secrets",
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HarmReportInput {
    pub harm: Harm,
    /// The risk as found, truthfully (如实报告).
    pub description: String,
    /// The grants of the data operation concerned; every active grant of the agreement when empty.
    #[serde(default)]
    pub grant_ids: Vec<Uuid>,
}

/// The operator stops and reports, in one transaction: the grants concerned are suspended by a new
/// supervision case of the agreement's jurisdiction that names what was found.
pub async fn report(s: &State, caller: &Caller, agreement_id: Uuid, input: HarmReportInput) -> Result<CaseRow> {
    let description = input.description.trim().to_string();
    if description.is_empty() || description.chars().count() > 4000 {
        return Err(Error::Invalid { field: "description".into(), reason: "1 to 4000 characters".into() });
    }
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let case = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let a = AgreementRow::find(c, agreement_id, true).await?;
            if a.operator_org != caller.org() {
                return Err(Error::AgreementNotFound(agreement_id));
            }
            let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
            let rule = profile
                .values
                .harm_self_report
                .as_ref()
                .map(|r| r.rule.clone())
                .unwrap_or_else(|| platform_policy::PLATFORM_DEFAULT.into());
            let mut grants = GrantRow::of_agreement_for_update(c, a.id, &["active"]).await?;
            if !input.grant_ids.is_empty() {
                if let Some(other) = input.grant_ids.iter().find(|id| !grants.iter().any(|g| g.id == **id)) {
                    return Err(Error::Invalid {
                        field: "grant_ids".into(),
                        reason: format!("{other} is not an active grant of this agreement"),
                    });
                }
                grants.retain(|g| input.grant_ids.contains(&g.id));
            }
            let now = Utc::now();
            let grounds = format!("reported by the operator: {}: {description}", input.harm.label());
            let mut case = CaseRow {
                id: Uuid::now_v7(),
                jurisdiction: a.jurisdiction.clone(),
                operator_org: a.operator_org.clone(),
                agreement_id: a.id,
                grounds: grounds.clone(),
                state: "open".into(),
                access_rule: Some(rule.clone()),
                opened_by: caller.subject().into(),
                history: serde_json::json!([]),
                created_at: now,
                updated_at: now,
                rule: Some(rule.clone()),
                alert_id: None,
            };
            let m = GrantMove {
                to: "suspended",
                change: GrantChange::Suspended,
                case: Some(case.id),
                actor: caller.subject(),
                reason: &grounds,
                rule: &rule,
            };
            let n = change_grants(c, &prefix, grants, &m).await?;
            note(&mut case, caller.subject(), &format!("reported under {rule}; {n} grant(s) stopped"));
            case.insert(c).await?;
            Ok(case)
        })
        .await?;
    s.relay.wake();
    Ok(case)
}
