//! JSON answers.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::plan::{PlanContents, PlanState};
use crate::errors::Result;
use crate::store::{PlanRow, PlanStep, ProfileRow};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A jurisdiction and one version of its effective policy profile: every value with its rule.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JurisdictionProfile {
    pub jurisdiction: String,
    pub name: String,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub version: i32,
    #[schema(value_type = Object)]
    pub values: serde_json::Value,
}

impl JurisdictionProfile {
    pub fn from_row(r: ProfileRow) -> Result<JurisdictionProfile> {
        let values = r.profile.get("values").cloned().unwrap_or_default();
        Ok(JurisdictionProfile {
            jurisdiction: r.jurisdiction,
            name: r.name,
            level: r.level,
            parent: r.parent,
            version: r.version,
            values,
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
