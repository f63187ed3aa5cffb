//! Operator staff (运营人员): NS-14 requires the operator's staff to be real-name verified,
//! reviewed and filed, and to sign confidentiality agreements; WF-30 requires confidentiality
//! agreements with every employee. An operator or partner registers each person with the signed
//! agreement; the data management department records the real-name verification and filing; a
//! grant is made only for a staff member in that state ([`require_verified`]). The platform
//! applies NS-14, the strictest, everywhere.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use platform_auth::{Caller, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::{PageRequest, State};
use crate::errors::{Error, Result};
use crate::views::Page;

diesel::table! {
    operator_staff (id) {
        id -> Uuid,
        jurisdiction -> Text,
        org -> Text,
        subject -> Text,
        name -> Text,
        id_document_tail -> Text,
        confidentiality_agreement -> Jsonb,
        state -> Text,
        verification -> Nullable<Jsonb>,
        registered_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

/// A registered staff member of an operator or partner.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema)]
#[diesel(table_name = operator_staff, treat_none_as_null = true)]
pub struct StaffMember {
    pub id: Uuid,
    pub jurisdiction: String,
    /// The organisation (the `org` claim of the person's token).
    pub org: String,
    /// The person's account (the `sub` claim of their token).
    pub subject: String,
    pub name: String,
    pub id_document_tail: String,
    #[schema(value_type = Object)]
    pub confidentiality_agreement: serde_json::Value,
    /// registered | verified | deregistered
    pub state: String,
    #[schema(value_type = Object)]
    pub verification: Option<serde_json::Value>,
    pub registered_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The confidentiality agreement the person signed (NS-14, WF-30).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfidentialityAgreement {
    pub reference: String,
    pub signed_on: NaiveDate,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffInput {
    pub subject: String,
    /// The real name, as the identity document gives it.
    pub name: String,
    /// The last four characters of the identity document.
    pub id_document_tail: String,
    pub confidentiality_agreement: ConfidentialityAgreement,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationInput {
    /// The real-name verification and filing record (审查备案).
    pub reference: String,
}

pub const REGISTRARS: &[Role] = &[Role::Operator, Role::Partner];
pub const VERIFIERS: &[Role] = &[Role::DataAdmin];
pub const DEREGISTRARS: &[Role] = &[Role::Operator, Role::Partner, Role::DataAdmin];
pub const READERS: &[Role] = &[Role::Operator, Role::Partner, Role::DataAdmin, Role::ImplementingInstitution];

fn ns_14(slug: &'static str, field: &str, reason: impl Into<String>) -> Error {
    Error::Refused { slug, field: Some(field.into()), reason: reason.into(), rule: "NS-14".into() }
}

fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(Error::Invalid { field: field.into(), reason: format!("1 to {max} characters") });
    }
    Ok(v.to_string())
}

/// An operator or partner registers one of its people, with the signed confidentiality agreement.
pub async fn register(s: &State, caller: &Caller, input: StaffInput) -> Result<StaffMember> {
    let subject = text("subject", &input.subject, 200)?;
    let name = text("name", &input.name, 100)?;
    let tail = input.id_document_tail.trim();
    if tail.chars().count() != 4 || !tail.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ns_14(
            "real-name-missing",
            "id_document_tail",
            "the last four characters of the identity document",
        ));
    }
    let agreement = &input.confidentiality_agreement;
    if agreement.reference.trim().is_empty() || agreement.signed_on > platform_calendar::today_in_china() {
        return Err(ns_14(
            "confidentiality-agreement-missing",
            "confidentiality_agreement",
            "staff sign a confidentiality agreement before they are registered",
        ));
    }
    let now = Utc::now();
    let row = StaffMember {
        id: Uuid::now_v7(),
        jurisdiction: caller.jurisdiction().into(),
        org: caller.org().into(),
        subject,
        name,
        id_document_tail: tail.to_uppercase(),
        confidentiality_agreement: serde_json::to_value(agreement).unwrap_or_default(),
        state: "registered".into(),
        verification: None,
        registered_by: caller.subject().into(),
        created_at: now,
        updated_at: now,
    };
    let mut c = platform_store::conn(&s.pool).await?;
    let n = diesel::insert_into(operator_staff::table).values(&row).on_conflict_do_nothing().execute(&mut *c).await?;
    if n == 0 {
        return Err(Error::Conflict { state: "registered".into(), reason: "this person is registered already".into() });
    }
    Ok(row)
}

/// Changes one staff member in a transaction, if `visible` to the caller and in an allowed state.
async fn change(
    s: &State,
    id: Uuid,
    visible: impl FnOnce(&StaffMember) -> bool + Send,
    apply: impl FnOnce(&mut StaffMember) -> Result<()> + Send,
) -> Result<StaffMember> {
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let mut row = operator_staff::table
            .find(id)
            .select(StaffMember::as_select())
            .for_update()
            .first(c)
            .await
            .optional()?
            .filter(|r| visible(r))
            .ok_or(Error::StaffNotFound(id))?;
        apply(&mut row)?;
        row.updated_at = Utc::now();
        diesel::update(operator_staff::table.find(id)).set(&row).execute(c).await?;
        Ok(row)
    })
    .await
}

/// The data management department records the real-name verification and filing (NS-14).
pub async fn verify(s: &State, caller: &Caller, id: Uuid, input: VerificationInput) -> Result<StaffMember> {
    let reference = text("reference", &input.reference, 200)?;
    let jurisdiction = caller.jurisdiction().to_string();
    change(
        s,
        id,
        move |r| r.jurisdiction == jurisdiction,
        |r| {
            if r.state != "registered" {
                return Err(Error::Conflict {
                    state: r.state.clone(),
                    reason: "only a registered person is verified".into(),
                });
            }
            r.state = "verified".into();
            r.verification =
                Some(serde_json::json!({ "by": caller.subject(), "reference": reference, "at": Utc::now() }));
            Ok(())
        },
    )
    .await
}

/// The person leaves: the organisation itself or the data management department deregisters them.
pub async fn deregister(s: &State, caller: &Caller, id: Uuid) -> Result<StaffMember> {
    let admin = caller.has(Role::DataAdmin);
    let (org, jurisdiction) = (caller.org().to_string(), caller.jurisdiction().to_string());
    change(
        s,
        id,
        move |r| if admin { r.jurisdiction == jurisdiction } else { r.org == org },
        |r| {
            if r.state == "deregistered" {
                return Err(Error::Conflict { state: r.state.clone(), reason: "already deregistered".into() });
            }
            r.state = "deregistered".into();
            Ok(())
        },
    )
    .await
}

/// Staff the caller may see: its own organisation's, or its jurisdiction's for departments.
pub async fn list(s: &State, caller: &Caller, cursor: Option<&str>, limit: Option<i64>) -> Result<Page<StaffMember>> {
    let req = PageRequest::parse(cursor, limit)?;
    let department = caller.has(Role::DataAdmin) || caller.has(Role::ImplementingInstitution);
    let mut q = operator_staff::table.select(StaffMember::as_select()).into_boxed();
    q = if department {
        q.filter(operator_staff::jurisdiction.eq(caller.jurisdiction().to_string()))
    } else {
        q.filter(operator_staff::org.eq(caller.org().to_string()))
    };
    if let Some(a) = req.after {
        q = q.filter(operator_staff::id.gt(a));
    }
    let mut c = platform_store::conn(&s.pool).await?;
    let rows = q.order(operator_staff::id.asc()).limit(req.fetch()).load(&mut *c).await?;
    req.page(rows, |r| r.id, Ok)
}

/// A grant names a person of `org`: they must be registered, real-name verified and bound by a
/// confidentiality agreement (NS-14, WF-30).
pub async fn require_verified(c: &mut AsyncPgConnection, org: &str, subject: &str) -> Result<()> {
    let state: Option<String> = operator_staff::table
        .filter(operator_staff::org.eq(org))
        .filter(operator_staff::subject.eq(subject))
        .filter(operator_staff::state.ne("deregistered"))
        .select(operator_staff::state)
        .first(c)
        .await
        .optional()?;
    match state.as_deref() {
        Some("verified") => Ok(()),
        Some(_) => Err(ns_14(
            "staff-not-verified",
            "requested_by",
            format!("`{subject}` of `{org}` is registered but not real-name verified and filed"),
        )),
        None => Err(ns_14(
            "staff-not-registered",
            "requested_by",
            format!("`{subject}` of `{org}` is not registered staff with a confidentiality agreement"),
        )),
    }
}
