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
