//! What the API answers: JSON views of the catalog's records.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::objection::ObjectionState;
use crate::domain::resource::{ResourceContent, ResourceState};
use crate::errors::Result;
use crate::store::{ObjectionRow, RegistrationRow, ResourceRow, StepRow, VersionRow};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resource {
    pub id: Uuid,
    pub jurisdiction: String,
    pub state: ResourceState,
    /// Published version; 0 before the first publication.
    pub version: i32,
    /// False for not-open data and for shared-in data without the provider's consent.
    pub authorizable: bool,
    /// The rule that makes the resource not authorizable (NS-2, SX-5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_authorizable_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
    /// A proposed next version awaiting the data management department.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_revision: Option<ResourceContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_note: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub content: ResourceContent,
}

impl Resource {
    pub fn from_row(r: &ResourceRow) -> Result<Resource> {
        Ok(Resource {
            id: r.id,
            jurisdiction: r.jurisdiction.clone(),
            state: r.state()?,
            version: r.version,
            authorizable: r.authorizable,
            not_authorizable_rule: r.not_authorizable_rule.clone(),
            rejection_reason: r.rejection_reason.clone(),
            withdrawal_reason: r.withdrawal_reason.clone(),
            pending_revision: r.pending_revision()?,
            revision_note: r.revision_note.clone(),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
            content: r.content()?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceVersion {
    pub version: i32,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

impl From<VersionRow> for ResourceVersion {
    fn from(v: VersionRow) -> Self {
        ResourceVersion {
            version: v.version,
            published_by: v.published_by,
            published_at: v.published_at,
            content: v.content,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    /// `<jurisdiction>-<year>-<R|P>-<six-digit sequence>`, gap-free per jurisdiction and year.
    pub number: String,
    pub jurisdiction: String,
    pub year: i32,
    pub sequence: i64,
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub subject_version: i32,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
}

impl From<RegistrationRow> for Registration {
    fn from(r: RegistrationRow) -> Self {
        Registration {
            number: r.number,
            jurisdiction: r.jurisdiction,
            year: r.year,
            sequence: r.seq,
            subject_kind: r.subject_kind,
            subject_id: r.subject_id,
            subject_version: r.subject_version,
            registered_by: r.registered_by,
            registered_at: r.registered_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectionStep {
    pub seq: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub actor_org: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl From<StepRow> for ObjectionStep {
    fn from(s: StepRow) -> Self {
        ObjectionStep {
            seq: s.seq,
            from_state: s.from_state,
            to_state: s.to_state,
            actor: s.actor,
            actor_org: s.actor_org,
            reason: s.reason,
            at: s.at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Objection {
    pub id: Uuid,
    pub resource_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub jurisdiction: String,
    pub description: String,
    pub state: ObjectionState,
    pub filed_by: String,
    pub filed_org: String,
    /// China date by which it must be handled (LZ-5).
    pub due_date: NaiveDate,
    /// True when the due date crosses a year whose official holidays are not loaded yet.
    pub due_date_provisional: bool,
    /// The rule that sets the deadline.
    pub deadline_rule: String,
    pub overdue: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<ObjectionStep>,
}

impl Objection {
    pub fn from_row(o: ObjectionRow, today: NaiveDate, steps: Vec<StepRow>) -> Result<Objection> {
        let state = o.state()?;
        Ok(Objection {
            overdue: crate::domain::objection::is_overdue(state, o.due_date, today),
            id: o.id,
            resource_id: o.resource_id,
            field: o.field,
            jurisdiction: o.jurisdiction,
            description: o.description,
            state,
            filed_by: o.filed_by,
            filed_org: o.filed_org,
            due_date: o.due_date,
            due_date_provisional: o.due_date_provisional,
            deadline_rule: o.deadline_rule,
            created_at: o.created_at,
            updated_at: o.updated_at,
            steps: steps.into_iter().map(Into::into).collect(),
        })
    }
}
