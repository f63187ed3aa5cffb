//! Authorization's events, enqueued in the change's transaction.

use diesel_async::AsyncPgConnection;
use platform_events::{Envelope, EventMeta, authorization as pb, timestamp, topics};

use crate::domain::plan::PlanState;
use crate::errors::Result;
use crate::store::{PlanRow, PlanStep};

pub const PRODUCER: &str = "authorization";

fn meta(event_type: String, aggregate_id: String, version: impl Into<i64>, jurisdiction: &str) -> EventMeta {
    EventMeta {
        event_type,
        aggregate_id,
        aggregate_version: version.into() as u64,
        producer: PRODUCER.into(),
        jurisdiction: jurisdiction.into(),
    }
}

async fn enqueue(conn: &mut AsyncPgConnection, topic_prefix: &str, topic: &str, env: &Envelope) -> Result<()> {
    platform_messaging::outbox::enqueue(conn, &format!("{topic_prefix}{topic}"), env).await?;
    Ok(())
}

fn plan_state(s: PlanState) -> pb::PlanState {
    match s {
        PlanState::Draft => pb::PlanState::Draft,
        PlanState::FeasibilityReview => pb::PlanState::FeasibilityReview,
        PlanState::Deliberation => pb::PlanState::Deliberation,
        PlanState::Approved => pb::PlanState::Approved,
        PlanState::Filed => pb::PlanState::Filed,
    }
}

/// `authorization.plan.v1`: one event per step. Bumps the plan's event sequence; save it after.
pub async fn plan_step(
    conn: &mut AsyncPgConnection,
    topic_prefix: &str,
    plan: &mut PlanRow,
    step: &PlanStep,
) -> Result<()> {
    plan.event_seq += 1;
    let payload = pb::PlanEvent {
        plan_id: plan.id.to_string(),
        jurisdiction: plan.jurisdiction.clone(),
        name: plan.name.clone(),
        state: plan_state(plan.state()?) as i32,
        mode: plan.mode.clone().unwrap_or_default(),
        revision: plan.revision as u32,
        resource_ids: plan.resource_ids.iter().map(|r| r.to_string()).collect(),
        filing_due: plan.filing_due.map(|d| d.to_string()).unwrap_or_default(),
        filing_due_provisional: plan.filing_due_provisional,
        actor: step.actor.clone(),
        reason: step.reason.clone(),
        profile_version: plan.profile_version as u32,
        at: Some(timestamp(step.at)),
        filing_rule: plan.filing_rule.clone().unwrap_or_default(),
    };
    let env = Envelope::wrap(
        meta(format!("authorization.plan.{}", plan.state), plan.id.to_string(), plan.event_seq, &plan.jurisdiction),
        &payload,
    );
    enqueue(conn, topic_prefix, topics::AUTHORIZATION_PLAN, &env).await
}

fn agreement_state(s: crate::domain::agreement::AgreementState) -> pb::AgreementState {
    use crate::domain::agreement::AgreementState as S;
    match s {
        S::Draft => pb::AgreementState::Draft,
        S::Signed => pb::AgreementState::Signed,
        S::Active => pb::AgreementState::Active,
        S::Suspended => pb::AgreementState::Suspended,
        S::Terminated => pb::AgreementState::Terminated,
        S::Expired => pb::AgreementState::Expired,
    }
}

/// `authorization.agreement.v1`: one event per step. Bumps the event sequence; save the row after.
pub async fn agreement_step(
    conn: &mut AsyncPgConnection,
    topic_prefix: &str,
    a: &mut crate::store::AgreementRow,
    step: &crate::store::AgreementStep,
) -> Result<()> {
    a.event_seq += 1;
    let payload = pb::AgreementEvent {
        agreement_id: a.id.to_string(),
        jurisdiction: a.jurisdiction.clone(),
        operator_org: a.operator_org.clone(),
        state: agreement_state(a.state()?) as i32,
        scope: scope_items(&a.scope),
        term_start: a.term_start.to_string(),
        term_end: a.term_end.to_string(),
        profile_version: a.profile_version as u32,
        actor: step.actor.clone(),
        reason: step.reason.clone(),
        at: Some(timestamp(step.at)),
        filing_due: a.filing_due.map(|d| d.to_string()).unwrap_or_default(),
        filing_rule: a.filing_rule.clone().unwrap_or_default(),
        plan_id: a.plan_id.map(|p| p.to_string()).unwrap_or_default(),
        renewal_requested: a.renewal_requested_at.is_some(),
    };
    let env = Envelope::wrap(
        meta(format!("authorization.agreement.{}", a.state), a.id.to_string(), a.event_seq, &a.jurisdiction),
        &payload,
    );
    enqueue(conn, topic_prefix, topics::AUTHORIZATION_AGREEMENT, &env).await
}

fn grant_state(s: &str) -> pb::GrantState {
    match s {
        "active" => pb::GrantState::Active,
        "suspended" => pb::GrantState::Suspended,
        "revoked" => pb::GrantState::Revoked,
        "expired" => pb::GrantState::Expired,
        _ => pb::GrantState::Unspecified,
    }
}

/// `authorization.grant.v1`: the change and the full grant. Bumps the grant's event sequence;
/// save the row after.
pub async fn grant_changed(
    conn: &mut AsyncPgConnection,
    topic_prefix: &str,
    g: &mut crate::store::GrantRow,
    change: pb::GrantChange,
    actor: &str,
    reason: &str,
    rule: &str,
) -> Result<()> {
    g.event_seq += 1;
    let env = grant_envelope(g, change, actor, reason, rule);
    enqueue(conn, topic_prefix, topics::AUTHORIZATION_GRANT, &env).await
}

/// The envelope of a grant change; `g.event_seq` is the sequence the change gets.
pub fn grant_envelope(
    g: &crate::store::GrantRow,
    change: pb::GrantChange,
    actor: &str,
    reason: &str,
    rule: &str,
) -> Envelope {
    let grant = pb::Grant {
        id: g.id.to_string(),
        agreement_id: g.agreement_id.to_string(),
        request_id: g.request_id.to_string(),
        jurisdiction: g.jurisdiction.clone(),
        principal_org: g.principal_org.clone(),
        scenario: g.scenario.clone(),
        scope: scope_items(&g.scope),
        min_group_size: g.min_group_size as u32,
        valid_from: g.valid_from.to_string(),
        valid_until: g.valid_until.to_string(),
        state: grant_state(&g.state) as i32,
        profile_version: g.profile_version as u32,
        log_retention_months: g.log_retention_months as u32,
    };
    let name = change.as_str_name().trim_start_matches("GRANT_CHANGE_").to_lowercase();
    let payload = pb::GrantEvent {
        change: change as i32,
        grant: Some(grant),
        actor: actor.into(),
        reason: reason.into(),
        rule: rule.into(),
        at: Some(timestamp(chrono::Utc::now())),
    };
    Envelope::wrap(
        meta(format!("authorization.grant.{name}"), g.id.to_string(), g.event_seq, &g.jurisdiction),
        &payload,
    )
}

fn scope_items(scope: &serde_json::Value) -> Vec<pb::ScopeItem> {
    let scope: Vec<crate::views::ScopeItem> = serde_json::from_value(scope.clone()).unwrap_or_default();
    scope.into_iter().map(|s| pb::ScopeItem { resource_id: s.resource_id.to_string(), fields: s.fields }).collect()
}

fn sub_authorization_state(s: &str) -> pb::SubAuthorizationState {
    match s {
        "pending_report" => pb::SubAuthorizationState::PendingReport,
        "effective" => pb::SubAuthorizationState::Effective,
        "ended" => pb::SubAuthorizationState::Ended,
        _ => pb::SubAuthorizationState::Unspecified,
    }
}

/// `authorization.agreement.v1`, a [`pb::SubAuthorizationEvent`] keyed by the sub-authorization:
/// the change and the whole sub-authorization. Bumps its event sequence; save the row after.
pub async fn sub_authorization_changed(
    conn: &mut AsyncPgConnection,
    topic_prefix: &str,
    row: &mut crate::sub_authorizations::SubAuthorization,
    change: pb::SubAuthorizationChange,
    actor: &str,
    reason: &str,
) -> Result<()> {
    row.event_seq += 1;
    let env = sub_authorization_envelope(row, change, actor, reason);
    enqueue(conn, topic_prefix, topics::AUTHORIZATION_AGREEMENT, &env).await
}

/// The envelope of a sub-authorization change; `row.event_seq` is the sequence it gets.
pub fn sub_authorization_envelope(
    row: &crate::sub_authorizations::SubAuthorization,
    change: pb::SubAuthorizationChange,
    actor: &str,
    reason: &str,
) -> Envelope {
    let payload = pb::SubAuthorizationEvent {
        sub_authorization_id: row.id.to_string(),
        agreement_id: row.agreement_id.to_string(),
        jurisdiction: row.jurisdiction.clone(),
        operator_org: row.operator_org.clone(),
        partner_org: row.partner_org.clone(),
        partner_name: row.partner_name.clone(),
        scenario: row.scenario.clone(),
        scope: scope_items(&row.scope),
        term_start: row.term_start.to_string(),
        term_end: row.term_end.to_string(),
        change: change as i32,
        state: sub_authorization_state(&row.state) as i32,
        rule: row.rule.clone().unwrap_or_default(),
        reported_at: row.reported_at.map(timestamp),
        actor: actor.into(),
        reason: reason.into(),
        at: Some(timestamp(chrono::Utc::now())),
    };
    let name = change.as_str_name().trim_start_matches("SUB_AUTHORIZATION_CHANGE_").to_lowercase();
    Envelope::wrap(
        meta(format!("authorization.sub_authorization.{name}"), row.id.to_string(), row.event_seq, &row.jurisdiction),
        &payload,
    )
}

/// What a selection step says beyond the selection itself.
#[derive(Default)]
pub struct SelectionStepDetail<'a> {
    /// AWARDED: the application awarded (its name and score).
    pub award: Option<&'a crate::selections::Application>,
    /// OBJECTION_DECIDED: the objection, decided.
    pub objection: Option<&'a crate::selections::Objection>,
    pub actor: &'a str,
    pub reason: &'a str,
}

fn selection_state(s: &str) -> pb::SelectionState {
    match s {
        "open" => pb::SelectionState::Open,
        "notice" => pb::SelectionState::Notice,
        "concluded" => pb::SelectionState::Concluded,
        _ => pb::SelectionState::Unspecified,
    }
}

/// `authorization.selection.v1`: one event per public step. Bumps the selection's event
/// sequence; save it after.
pub async fn selection_step(
    conn: &mut AsyncPgConnection,
    topic_prefix: &str,
    sel: &mut crate::selections::Selection,
    step: pb::SelectionStep,
    detail: SelectionStepDetail<'_>,
) -> Result<()> {
    sel.event_seq += 1;
    let payload = pb::SelectionEvent {
        selection_id: sel.id.to_string(),
        jurisdiction: sel.jurisdiction.clone(),
        step: step as i32,
        state: selection_state(&sel.state) as i32,
        title: sel.title.clone(),
        mode: sel.mode.clone(),
        method: sel.method.clone(),
        resource_ids: sel.resource_ids.iter().map(|r| r.to_string()).collect(),
        scope_description: sel.scope_description.clone(),
        conditions: sel.conditions.clone(),
        criteria: sel.criteria.clone(),
        application_deadline: sel.application_deadline.to_string(),
        plan_id: sel.plan_id.map(|p| p.to_string()).unwrap_or_default(),
        awarded_org: sel.awarded_org.clone().unwrap_or_default(),
        awarded_name: detail.award.map(|a| a.applicant_name.clone()).unwrap_or_default(),
        awarded_score: detail.award.and_then(|a| a.score).unwrap_or_default(),
        objection_deadline: sel.notice_ends.map(|d| d.to_string()).unwrap_or_default(),
        objection_deadline_provisional: sel.notice_provisional,
        notice_rule: sel.notice_rule.clone().unwrap_or_default(),
        objection_id: detail.objection.map(|o| o.id.to_string()).unwrap_or_default(),
        objection_upheld: detail.objection.is_some_and(|o| o.state == "upheld"),
        agreement_id: sel.agreement_id.map(|a| a.to_string()).unwrap_or_default(),
        actor: detail.actor.into(),
        reason: detail.reason.into(),
        profile_version: sel.profile_version as u32,
        at: Some(timestamp(chrono::Utc::now())),
    };
    let name = step.as_str_name().trim_start_matches("SELECTION_STEP_").to_lowercase();
    let env = Envelope::wrap(
        meta(format!("authorization.selection.{name}"), sel.id.to_string(), sel.event_seq, &sel.jurisdiction),
        &payload,
    );
    enqueue(conn, topic_prefix, topics::AUTHORIZATION_SELECTION, &env).await
}
