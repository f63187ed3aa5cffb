//! JSON answers.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::plan::{PlanContents, PlanState};
use crate::errors::Result;
use crate::store::{PlanRow, PlanStep, ProfileRow};

pub use platform_runtime::paging::Page;

/// A jurisdiction and one version of its effective policy profile: every value with its rule.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JurisdictionProfile {
    pub jurisdiction: String,
    pub name: String,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub version: i32,
    /// The version of the jurisdiction's own profile file; `version` also moves when only a
    /// parent's file changed.
    pub file_version: i32,
    /// Each value as `{value, rule}`; a platform default also says where it comes from
    /// (`source`), and `rule` is `platform default` where no seed rule applies it at all.
    #[schema(value_type = Object)]
    pub values: serde_json::Value,
    /// The keys of `values` that no seed of this jurisdiction (or of a parent it inherits from)
    /// sets: the platform's defaults, for an official to confirm.
    pub platform_defaults: Vec<String>,
}

impl JurisdictionProfile {
    pub fn from_row(r: ProfileRow) -> Result<JurisdictionProfile> {
        let platform_defaults = r.profile()?.platform_defaults();
        let values = r.profile.get("values").cloned().unwrap_or_default();
        Ok(JurisdictionProfile {
            jurisdiction: r.jurisdiction,
            name: r.name,
            level: r.level,
            parent: r.parent,
            version: r.version,
            file_version: r.file_version,
            values,
            platform_defaults,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanStepView {
    pub seq: i32,
    pub revision: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: Uuid,
    pub jurisdiction: String,
    pub state: PlanState,
    pub revision: i32,
    /// The policy profile version the plan is made under; it keeps it when the profile changes.
    pub profile_version: i32,
    pub contents: PlanContents,
    /// Required contents still missing (SX-16); submission is refused until empty.
    pub missing_contents: Vec<String>,
    /// The contents in force while a change goes through the flow again (WF-11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_contents: Option<PlanContents>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<DateTime<Utc>>,
    /// China date by which the approved plan must be filed with the upper jurisdiction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filing_due: Option<NaiveDate>,
    pub filing_due_provisional: bool,
    /// SX-19 (one month) or WF-11 (20 working days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filing_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filed_late: Option<bool>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PlanStepView>,
}

impl Plan {
    pub fn from_row(r: PlanRow, steps: Vec<PlanStep>) -> Result<Plan> {
        let contents = r.contents()?;
        let approved_contents = r.approved_contents.clone().and_then(|v| serde_json::from_value(v).ok());
        Ok(Plan {
            id: r.id,
            jurisdiction: r.jurisdiction.clone(),
            state: r.state()?,
            revision: r.revision,
            profile_version: r.profile_version,
            missing_contents: contents.missing().into_iter().map(str::to_string).collect(),
            contents,
            approved_contents,
            approved_at: r.approved_at,
            filing_due: r.filing_due,
            filing_due_provisional: r.filing_due_provisional,
            filing_rule: r.filing_rule,
            filed_at: r.filed_at,
            filed_late: r.filed_late,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            steps: steps
                .into_iter()
                .map(|s| PlanStepView {
                    seq: s.seq,
                    revision: s.revision,
                    from_state: s.from_state,
                    to_state: s.to_state,
                    actor: s.actor,
                    reason: s.reason,
                    at: s.at,
                })
                .collect(),
        })
    }
}

/// A resource in an agreement's scope and the fields it may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeItem {
    pub resource_id: Uuid,
    /// Field names of the resource; every field must exist in the catalog's schema.
    pub fields: Vec<String>,
}

/// What the implementing institution writes into an agreement (SX-22).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementInput {
    /// The approved implementation plan the agreement implements.
    #[serde(default)]
    pub plan_id: Option<Uuid>,
    /// The operator selection this agreement concludes: allowed only for the awarded operator
    /// once the public notice has ended with no objection pending (WF-12 (四), NS-13).
    #[serde(default)]
    pub selection_id: Option<Uuid>,
    /// The operator's organisation id (the `org` claim of its staff's tokens).
    pub operator_org: String,
    pub operator_name: String,
    pub scope: Vec<ScopeItem>,
    /// Products and services, with their review requirements.
    pub products: Vec<String>,
    /// Revenue-sharing clauses; signing then needs the finance department's opinion (WF-15).
    #[serde(default)]
    pub revenue_sharing: Option<String>,
    pub term_start: NaiveDate,
    /// The last day in force (自…起至…止, inclusive): a term of N years from `term_start` ends on
    /// `term_start` + N years − 1 day; the agreement expires the day after.
    pub term_end: NaiveDate,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgreementStepView {
    pub seq: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agreement {
    pub id: Uuid,
    pub jurisdiction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_id: Option<Uuid>,
    pub operator_org: String,
    pub operator_name: String,
    pub state: crate::domain::agreement::AgreementState,
    pub scope: Vec<ScopeItem>,
    pub products: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_sharing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub finance_opinion: Option<serde_json::Value>,
    pub term_start: NaiveDate,
    /// The last day in force (自…起至…止, inclusive): a term of N years from `term_start` ends on
    /// `term_start` + N years − 1 day; the agreement expires the day after.
    pub term_end: NaiveDate,
    pub profile_version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<DateTime<Utc>>,
    /// Filing with the province (SX-21: cities, one month after signing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filing_due: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filing_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_requested_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<AgreementStepView>,
}

impl Agreement {
    pub fn from_row(a: crate::store::AgreementRow, steps: Vec<crate::store::AgreementStep>) -> Result<Agreement> {
        Ok(Agreement {
            state: a.state()?,
            scope: serde_json::from_value(a.scope.clone()).unwrap_or_default(),
            products: serde_json::from_value(a.products.clone()).unwrap_or_default(),
            id: a.id,
            jurisdiction: a.jurisdiction,
            plan_id: a.plan_id,
            selection_id: a.selection_id,
            operator_org: a.operator_org,
            operator_name: a.operator_name,
            revenue_sharing: a.revenue_sharing,
            finance_opinion: a.finance_opinion,
            term_start: a.term_start,
            term_end: a.term_end,
            profile_version: a.profile_version,
            signed_at: a.signed_at,
            filing_due: a.filing_due,
            filing_rule: a.filing_rule,
            filed_at: a.filed_at,
            renewal_requested_at: a.renewal_requested_at,
            termination_reason: a.termination_reason,
            created_at: a.created_at,
            updated_at: a.updated_at,
            steps: steps
                .into_iter()
                .map(|s| AgreementStepView {
                    seq: s.seq,
                    from_state: s.from_state,
                    to_state: s.to_state,
                    actor: s.actor,
                    reason: s.reason,
                    at: s.at,
                })
                .collect(),
        })
    }
}
