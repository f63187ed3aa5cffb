//! Authorization's events, enqueued in the change's transaction.

use diesel_async::AsyncPgConnection;
use platform_events::{Envelope, EventMeta, authorization as pb, timestamp, topics};

use crate::domain::plan::PlanState;
use crate::errors::Result;
use crate::store::{PlanRow, PlanStep};

pub const PRODUCER: &str = "authorization";

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
        EventMeta {
            event_type: format!("authorization.plan.{}", plan.state),
            aggregate_id: plan.id.to_string(),
            aggregate_version: plan.event_seq as u64,
            producer: PRODUCER.into(),
            jurisdiction: plan.jurisdiction.clone(),
        },
        &payload,
    );
    platform_messaging::outbox::enqueue(conn, &format!("{topic_prefix}{}", topics::AUTHORIZATION_PLAN), &env).await?;
    Ok(())
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
    let scope: Vec<crate::views::ScopeItem> = serde_json::from_value(a.scope.clone()).unwrap_or_default();
    let payload = pb::AgreementEvent {
        agreement_id: a.id.to_string(),
        jurisdiction: a.jurisdiction.clone(),
        operator_org: a.operator_org.clone(),
        state: agreement_state(a.state()?) as i32,
        scope: scope
            .into_iter()
            .map(|s| pb::ScopeItem { resource_id: s.resource_id.to_string(), fields: s.fields })
            .collect(),
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
        EventMeta {
            event_type: format!("authorization.agreement.{}", a.state),
            aggregate_id: a.id.to_string(),
            aggregate_version: a.event_seq as u64,
            producer: PRODUCER.into(),
            jurisdiction: a.jurisdiction.clone(),
        },
        &payload,
    );
    platform_messaging::outbox::enqueue(conn, &format!("{topic_prefix}{}", topics::AUTHORIZATION_AGREEMENT), &env)
        .await?;
    Ok(())
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
    platform_messaging::outbox::enqueue(conn, &format!("{topic_prefix}{}", topics::AUTHORIZATION_GRANT), &env).await?;
    Ok(())
}

/// The envelope of a grant change; `g.event_seq` is the sequence the change gets.
pub fn grant_envelope(
    g: &crate::store::GrantRow,
    change: pb::GrantChange,
    actor: &str,
    reason: &str,
    rule: &str,
) -> Envelope {
    let scope: Vec<crate::views::ScopeItem> = serde_json::from_value(g.scope.clone()).unwrap_or_default();
    let grant = pb::Grant {
        id: g.id.to_string(),
        agreement_id: g.agreement_id.to_string(),
        request_id: g.request_id.to_string(),
        jurisdiction: g.jurisdiction.clone(),
        principal_org: g.principal_org.clone(),
        scenario: g.scenario.clone(),
        scope: scope
            .into_iter()
            .map(|s| pb::ScopeItem { resource_id: s.resource_id.to_string(), fields: s.fields })
            .collect(),
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
        EventMeta {
            event_type: format!("authorization.grant.{name}"),
            aggregate_id: g.id.to_string(),
            aggregate_version: g.event_seq as u64,
            producer: PRODUCER.into(),
            jurisdiction: g.jurisdiction.clone(),
        },
        &payload,
    )
}
