//! Supervision from the development environment, consumed from `sandbox.audit.v1` with the inbox
//! row in the same transaction, so a redelivered event changes nothing twice:
//! - a refusal burst (WF-30: every operator action is recorded and reviewable) opens a supervision
//!   case against the operator whose agreement the alerted organisation's grants fall under (the
//!   primary operator's for a partner, ZJK-17), citing WF-30 with the refusals and the threshold;
//!   every alert is kept, and one that matches no agreement stays listed as unmatched;
//! - a destruction record (ZJK-31) marks the grant destroyed;
//! - a chain head (one per audit append, the busiest kind) is skipped before its payload is read.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::future::BoxFuture;
use platform_auth::Caller;
use platform_events::Envelope;
use platform_events::sandbox::{AuditEvent, AuditKind};
use platform_messaging::{Handler, HandlerError};
use serde::Serialize;
use uuid::Uuid;

use crate::app::{PageRequest, State};
use crate::errors::{Error, Result};
use crate::store::{AgreementRow, CaseRow, GrantRow};
use crate::views::Page;

diesel::table! {
    sandbox_alerts (id) {
        id -> Uuid,
        jurisdiction -> Text,
        principal -> Text,
        principal_org -> Text,
        rule -> Text,
        refusals -> Integer,
        threshold -> Integer,
        reason -> Text,
        alerted_at -> Timestamptz,
        case_id -> Nullable<Uuid>,
        received_at -> Timestamptz,
    }
}

/// A refusal-burst alert as received; `case_id` is the case it opened, `None` when the
/// organisation holds no grant and no agreement in the jurisdiction.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = sandbox_alerts)]
pub struct SandboxAlert {
    /// The alert's event id.
    pub id: Uuid,
    pub jurisdiction: String,
    pub principal: String,
    pub principal_org: String,
    /// The rule of the threshold the gateway applied.
    pub rule: String,
    pub refusals: i32,
    pub threshold: i32,
    pub reason: String,
    pub alerted_at: DateTime<Utc>,
    pub case_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
}

impl SandboxAlert {
    /// Stores the alert; false when it is stored already.
    async fn insert_new(&self, conn: &mut AsyncPgConnection) -> Result<bool> {
        let n = diesel::insert_into(sandbox_alerts::table).values(self).on_conflict_do_nothing().execute(conn).await?;
        Ok(n == 1)
    }

    async fn link_case(&mut self, conn: &mut AsyncPgConnection, case: Uuid) -> Result<()> {
        diesel::update(sandbox_alerts::table.find(self.id)).set(sandbox_alerts::case_id.eq(case)).execute(conn).await?;
        self.case_id = Some(case);
        Ok(())
    }

    /// Alerts that opened no case, in every jurisdiction.
    pub async fn count_unmatched(conn: &mut AsyncPgConnection) -> Result<i64> {
        Ok(sandbox_alerts::table.filter(sandbox_alerts::case_id.is_null()).count().get_result(conn).await?)
    }

    /// The alerts of `jurisdiction` in id order after `after`; with `unmatched`, those without a case.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        jurisdiction: &str,
        unmatched: bool,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<SandboxAlert>> {
        let mut q = sandbox_alerts::table
            .filter(sandbox_alerts::jurisdiction.eq(jurisdiction.to_string()))
            .select(SandboxAlert::as_select())
            .into_boxed();
        if unmatched {
            q = q.filter(sandbox_alerts::case_id.is_null());
        }
        if let Some(a) = after {
            q = q.filter(sandbox_alerts::id.gt(a));
        }
        Ok(q.order(sandbox_alerts::id.asc()).limit(limit).load(conn).await?)
    }
}

/// `authorization_sandbox_alerts_unmatched`: refusal-burst alerts (WF-30) kept without a case
/// because the alerted organisation has no agreement in the jurisdiction; someone has to look.
pub fn unmatched_gauge() -> prometheus::Result<prometheus::IntGauge> {
    prometheus::IntGauge::new(
        "authorization_sandbox_alerts_unmatched",
        "Sandbox refusal-burst alerts (WF-30) that matched no agreement and opened no supervision case",
    )
}

/// Who opens the cases raised by the sandbox's alerts.
pub const OPENED_BY: &str = "sandbox.audit.v1";
/// The rule a case opened from an alert cites.
pub const CASE_RULE: &str = "WF-30";
const CHAIN_HEAD_EVENT: &str = "sandbox.audit.chain_head";

pub struct SandboxAudit;

type Handled = std::result::Result<(), HandlerError>;

fn transient(e: Error) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

fn time_of(ev: &AuditEvent) -> DateTime<Utc> {
    ev.at
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_else(Utc::now)
}

impl Handler for SandboxAudit {
    fn handle<'a>(&'a self, conn: &'a mut AsyncPgConnection, env: &'a Envelope) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            if env.event_type == CHAIN_HEAD_EVENT {
                return Ok(());
            }
            let ev: AuditEvent = env.payload_as()?;
            match ev.kind() {
                AuditKind::RefusalBurst => refusal_burst(conn, env, &ev).await,
                AuditKind::Destruction => destruction(conn, &ev).await,
                AuditKind::ChainHead | AuditKind::Unspecified => Ok(()),
            }
        })
    }
}

/// Keeps the alert and opens a case against the operator it concerns (WF-30).
async fn refusal_burst(conn: &mut AsyncPgConnection, env: &Envelope, ev: &AuditEvent) -> Handled {
    if ev.jurisdiction.is_empty() || ev.principal_org.is_empty() {
        return Err(HandlerError::Permanent("a refusal burst names a jurisdiction and an organisation".into()));
    }
    let id = env.event_uuid().map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let mut alert = SandboxAlert {
        id,
        jurisdiction: ev.jurisdiction.clone(),
        principal: ev.principal.clone(),
        principal_org: ev.principal_org.clone(),
        rule: ev.rule.clone(),
        refusals: i32::try_from(ev.refusals).unwrap_or(i32::MAX),
        threshold: i32::try_from(ev.threshold).unwrap_or(i32::MAX),
        reason: ev.reason.clone(),
        alerted_at: time_of(ev),
        case_id: None,
        received_at: Utc::now(),
    };
    if !alert.insert_new(conn).await.map_err(transient)? {
        return Ok(()); // the same alert again: its case is open already
    }
    let (j, org) = (alert.jurisdiction.as_str(), alert.principal_org.as_str());
    let target = match GrantRow::agreement_of_principal(conn, j, org).await.map_err(transient)? {
        Some(found) => Some(found),
        None => {
            AgreementRow::find_live_of_operator(conn, j, org).await.map_err(transient)?.map(|a| (a.id, a.operator_org))
        }
    };
    let Some((agreement_id, operator_org)) = target else {
        tracing::warn!(alert = %id, jurisdiction = j, org, "sandbox alert matches no agreement; kept unmatched");
        return Ok(());
    };
    let now = Utc::now();
    let mut case = CaseRow {
        id: Uuid::now_v7(),
        jurisdiction: alert.jurisdiction.clone(),
        operator_org,
        agreement_id,
        grounds: format!(
            "development environment alert: {} refused queries by `{}` of `{}` within the window, at or above the \
             threshold of {} ({}); operator actions are recorded and reviewed (WF-30)",
            alert.refusals, alert.principal, alert.principal_org, alert.threshold, alert.rule
        ),
        state: "open".into(),
        access_rule: None,
        opened_by: OPENED_BY.into(),
        history: serde_json::json!([]),
        created_at: now,
        updated_at: now,
        rule: Some(CASE_RULE.into()),
        alert_id: Some(id),
    };
    crate::grants::note(&mut case, OPENED_BY, &format!("opened from sandbox alert {id}"));
    case.insert(conn).await.map_err(transient)?;
    alert.link_case(conn, case.id).await.map_err(transient)
}

/// Records the irreversible destruction of a grant's workspace against the grant (ZJK-31).
async fn destruction(conn: &mut AsyncPgConnection, ev: &AuditEvent) -> Handled {
    let grant = Uuid::parse_str(&ev.grant_id)
        .map_err(|_| HandlerError::Permanent(format!("destruction of grant `{}`: not a UUID", ev.grant_id)))?;
    let tables: Vec<serde_json::Value> = ev
        .destroyed
        .iter()
        .map(|t| serde_json::json!({"relation": t.relation, "rows": t.rows, "content_sha256": t.content_sha256}))
        .collect();
    let record = serde_json::json!({
        "tables": tables, "reason": ev.reason, "rule": ev.rule, "audit_seq": ev.seq,
    });
    if !GrantRow::record_destruction(conn, grant, time_of(ev), &record).await.map_err(transient)? {
        tracing::info!(%grant, "destruction of an unknown grant, or recorded already");
    }
    Ok(())
}

/// The jurisdiction's alerts in id order; with `unmatched`, those that opened no case.
pub async fn list(
    s: &State,
    caller: &Caller,
    unmatched: bool,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<SandboxAlert>> {
    let req = PageRequest::parse(cursor, limit)?;
    let mut c = platform_store::conn(&s.pool).await?;
    let rows = SandboxAlert::list(&mut c, caller.jurisdiction(), unmatched, req.after, req.fetch()).await?;
    req.page(rows, |r| r.id, Ok)
}
