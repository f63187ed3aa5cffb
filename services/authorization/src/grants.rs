//! Scenario data requests ("one scenario, one application", ZJK-5), their approvals by the
//! implementing institution and the data source unit (WF-18), the compliance report and joint
//! review meeting for conditionally-open data where the profile requires it (NS-20), the grants
//! they create, grant changes that follow their agreement, expiry, and supervision cases
//! (SX-23, ZJK-34, ZJK-35, WF-24, WF-27, SX-33).

use std::collections::BTreeMap;

use chrono::Utc;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use platform_auth::{Caller, Role};
use platform_events::authorization::GrantChange;
use platform_policy::PLATFORM_DEFAULT;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::State;
use crate::errors::{Error, Result};
use crate::events;
use crate::store::{AgreementRow, CaseRow, CatalogResource, GrantRow, ProfileRow, RequestRow};
use crate::views::ScopeItem;

/// A resource and fields asked for; every sensitive field needs a justification (NS-19: minimal
/// and necessary).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedScope {
    pub resource_id: Uuid,
    pub fields: Vec<String>,
    /// Field → why it is needed; required for personal information and trade secrets.
    #[serde(default)]
    pub justifications: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub agreement_id: Uuid,
    /// A partner's request names its sub-authorization (ZJK-17); the primary operator's does not.
    #[serde(default)]
    pub sub_authorization_id: Option<Uuid>,
    /// One scenario per request (ZJK-5).
    pub scenario: String,
    pub scope: Vec<RequestedScope>,
    pub development_plan: String,
    /// The grant's last day in force (inclusive), no later than the agreement's (or the
    /// sub-authorization's) `term_end`; it expires the day after.
    pub valid_until: chrono::NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub decision: Decision,
    pub opinion: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberOpinion {
    pub member: String,
    pub org: String,
    pub opinion: String,
}

/// NS-20: the joint review meeting's decision, with each member's opinion.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JointReviewInput {
    pub decision: Decision,
    pub members: Vec<MemberOpinion>,
}

const SENSITIVE: [&str; 3] = ["SENSITIVITY_PERSONAL", "SENSITIVITY_SENSITIVE_PERSONAL", "SENSITIVITY_TRADE_SECRET"];

fn refused(slug: &'static str, field: &str, reason: impl Into<String>, rule: &str) -> Error {
    Error::Refused { slug, field: Some(field.into()), reason: reason.into(), rule: rule.into() }
}

fn nonempty(field: &str, v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() || v.chars().count() > max {
        return Err(Error::Invalid { field: field.into(), reason: format!("1 to {max} characters") });
    }
    Ok(())
}

/// The operator asks for data for one scenario within its active agreement.
pub async fn request(s: &State, caller: &Caller, input: RequestInput) -> Result<RequestRow> {
    nonempty("scenario", &input.scenario, 200)?;
    nonempty("development_plan", &input.development_plan, 10_000)?;
    if input.scope.is_empty() {
        return Err(Error::Invalid { field: "scope".into(), reason: "ask for at least one resource".into() });
    }
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let a = AgreementRow::find(c, input.agreement_id, false).await?;
        let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
        // The scope and term the requester holds: the agreement's for the primary operator, the
        // sub-authorization's for a partner (ZJK-17).
        let (held, until, until_rule) = match input.sub_authorization_id {
            Some(sid) => {
                let sub = crate::sub_authorizations::find(c, sid).await?;
                if sub.partner_org != caller.org() || sub.agreement_id != a.id {
                    return Err(Error::AgreementNotFound(input.agreement_id));
                }
                if sub.state != "effective" {
                    return Err(refused(
                        "sub-authorization-not-effective",
                        "sub_authorization_id",
                        "the sub-authorization takes effect once reported",
                        "ZJK-17",
                    ));
                }
                if sub.term_start > platform_calendar::today_in_china() {
                    return Err(refused(
                        "sub-authorization-not-started",
                        "sub_authorization_id",
                        format!("the sub-authorization is in force from {}", sub.term_start),
                        "ZJK-17",
                    ));
                }
                (sub.scope.clone(), sub.term_end, "ZJK-17")
            }
            None if a.operator_org == caller.org() => {
                if let Some(rule) = crate::domain::agreement::primary_may_not_develop(&profile) {
                    return Err(refused(
                        "primary-operator-does-not-develop",
                        "sub_authorization_id",
                        "the primary operator does not develop products itself: a partner asks under its sub-authorization",
                        &rule,
                    ));
                }
                (a.scope.clone(), a.term_end, "SX-22")
            }
            None => return Err(Error::AgreementNotFound(input.agreement_id)),
        };
        if a.state != "active" {
            return Err(Error::Conflict {
                state: a.state.clone(),
                reason: "data is requested under an active agreement".into(),
            });
        }
        if input.valid_until > until {
            return Err(refused(
                "beyond-agreement-term",
                "valid_until",
                format!("the authorization ends on {until}"),
                until_rule,
            ));
        }
        let granted: Vec<ScopeItem> = serde_json::from_value(held).unwrap_or_default();
        let ids: Vec<Uuid> = input.scope.iter().map(|x| x.resource_id).collect();
        let resources = CatalogResource::find_many(c, &ids).await?;
        let mut conditional = false;
        for (i, item) in input.scope.iter().enumerate() {
            let Some(in_agreement) = granted.iter().find(|g| g.resource_id == item.resource_id) else {
                return Err(refused(
                    "outside-agreement-scope",
                    &format!("scope[{i}].resource_id"),
                    "the resource is not in the agreement's scope",
                    "ZJK-5",
                ));
            };
            if item.fields.is_empty() {
                return Err(Error::Invalid {
                    field: format!("scope[{i}].fields"),
                    reason: "name the fields needed (minimal and necessary)".into(),
                });
            }
            if let Some(f) = item.fields.iter().find(|f| !in_agreement.fields.contains(f)) {
                return Err(refused(
                    "outside-agreement-scope",
                    &format!("scope[{i}].fields"),
                    format!("field `{f}` is not in the agreement's scope"),
                    "ZJK-5",
                ));
            }
            let Some(r) = resources.iter().find(|r| r.id == item.resource_id) else {
                return Err(Error::UnknownResources(vec![item.resource_id]));
            };
            conditional |= r.open_category == "conditional";
            for f in &item.fields {
                let sensitive =
                    r.fields.as_array().into_iter().flatten().any(|x| {
                        x["name"] == f.as_str() && SENSITIVE.contains(&x["sensitivity"].as_str().unwrap_or(""))
                    });
                if sensitive && item.justifications.get(f).is_none_or(|j| j.trim().is_empty()) {
                    return Err(refused(
                        "justification-missing",
                        &format!("scope[{i}].justifications.{f}"),
                        format!("sensitive field `{f}` needs a justification"),
                        "NS-19",
                    ));
                }
            }
        }
        let joint = conditional && profile.values.joint_review_for_conditional.as_ref().is_some_and(|j| j.value);
        let now = Utc::now();
        let row = RequestRow {
            id: Uuid::now_v7(),
            agreement_id: a.id,
            jurisdiction: a.jurisdiction.clone(),
            requester_org: caller.org().into(),
            requested_by: caller.subject().into(),
            scenario: input.scenario.trim().into(),
            scope: serde_json::to_value(&input.scope).unwrap_or_default(),
            development_plan: input.development_plan,
            valid_until: input.valid_until,
            state: "submitted".into(),
            approvals: serde_json::json!({}),
            needs_joint_review: joint,
            compliance_report: None,
            joint_review: None,
            grant_id: None,
            profile_version: a.profile_version,
            created_at: now,
            updated_at: now,
            sub_authorization_id: input.sub_authorization_id,
        };
        row.insert(c).await?;
        Ok(row)
    })
    .await
}

async fn own_request(c: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> Result<RequestRow> {
    let r = RequestRow::find(c, id, true).await?;
    if r.jurisdiction != caller.jurisdiction() && r.requester_org != caller.org() {
        return Err(Error::RequestNotFound(id));
    }
    if r.state != "submitted" {
        return Err(Error::Conflict { state: r.state.clone(), reason: "the request is decided".into() });
    }
    Ok(r)
}

/// What is still missing before a grant (WF-18; NS-20 for conditionally-open data).
pub fn pending(r: &RequestRow) -> Vec<&'static str> {
    let mut out = Vec::new();
    for role in ["implementing_institution", "data_source_unit"] {
        if r.approvals.get(role).is_none() {
            out.push(role);
        }
    }
    if r.needs_joint_review {
        if r.compliance_report.is_none() {
            out.push("compliance_report");
        }
        if r.joint_review.is_none() {
            out.push("joint_review");
        }
    }
    out
}

/// Creates the grant when nothing is pending: the request's scope, the profile's minimum group
/// size, valid until the request's date (never past the agreement), `granted` published.
async fn grant_if_complete(c: &mut AsyncPgConnection, prefix: &str, r: &mut RequestRow, actor: &str) -> Result<()> {
    if !pending(r).is_empty() {
        return r.save(c).await;
    }
    // The grant names a person: registered, real-name verified, bound by confidentiality (NS-14).
    crate::staff::require_verified(c, &r.requester_org, &r.requested_by).await?;
    let a = AgreementRow::find(c, r.agreement_id, true).await?;
    if a.state != "active" {
        return Err(Error::Conflict { state: a.state, reason: "the agreement is no longer active".into() });
    }
    let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
    let min_group = profile.values.min_query_group_size.as_ref().map(|m| m.value).unwrap_or(10);
    let retention = profile.values.log_retention_months.as_ref().map(|m| m.value).unwrap_or(6).max(6);
    let requested: Vec<RequestedScope> = serde_json::from_value(r.scope.clone()).unwrap_or_default();
    let scope: Vec<ScopeItem> =
        requested.into_iter().map(|x| ScopeItem { resource_id: x.resource_id, fields: x.fields }).collect();
    // No new access while the operator is under rectification with access closed (ZJK-34; SX-23
    // where the decision closed it): the grant is made suspended by that case, and passing the
    // case reinstates it with the others.
    let cases = CaseRow::undecided_of_operator(c, &a.jurisdiction, &a.operator_org).await?;
    let closed_by = access_closed_by(&cases);
    let now = Utc::now();
    let mut g = GrantRow {
        id: Uuid::now_v7(),
        agreement_id: a.id,
        request_id: r.id,
        jurisdiction: a.jurisdiction.clone(),
        principal_org: r.requester_org.clone(),
        operator_org: a.operator_org.clone(),
        scenario: r.scenario.clone(),
        scope: serde_json::to_value(&scope).unwrap_or_default(),
        min_group_size: min_group as i32,
        valid_from: platform_calendar::today_in_china(),
        valid_until: r.valid_until.min(a.term_end),
        state: if closed_by.is_some() { "suspended" } else { "active" }.into(),
        suspended_by_case: closed_by.map(|k| k.id),
        profile_version: a.profile_version,
        log_retention_months: retention as i32,
        logs_retained_until: None,
        event_seq: 0,
        created_at: now,
        updated_at: now,
        destroyed_at: None,
        destruction: None,
    };
    g.insert(c).await?;
    match closed_by {
        Some(k) => {
            let (reason, rule) =
                ("data request approved; access closed during rectification", k.access_rule.as_deref());
            events::grant_changed(c, prefix, &mut g, GrantChange::Granted, actor, reason, rule.unwrap_or("")).await?
        }
        None => {
            events::grant_changed(c, prefix, &mut g, GrantChange::Granted, actor, "data request approved", "WF-18")
                .await?
        }
    }
    g.save(c).await?;
    r.state = "approved".into();
    r.grant_id = Some(g.id);
    r.save(c).await
}

/// The case in rectification that closed the operator's access, if any (ZJK-34: closed while it
/// rectifies; SX-23: where the department decided to close it). Its rule is the case's.
/// The undecided case that closed the operator's access: by rectification (ZJK-34, SX-23) or,
/// still open, by the operator's own report (NS-26).
fn access_closed_by(cases: &[CaseRow]) -> Option<&CaseRow> {
    cases.iter().find(|k| matches!(k.state.as_str(), "open" | "rectification") && k.access_rule.is_some())
}

/// The implementing institution or the data source unit decides (WF-18).
pub async fn decide(s: &State, caller: &Caller, id: Uuid, input: DecisionInput) -> Result<RequestRow> {
    nonempty("opinion", &input.opinion, 4000)?;
    let role = if caller.has(Role::ImplementingInstitution) { "implementing_institution" } else { "data_source_unit" };
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut r = own_request(c, caller, id).await?;
            r.approvals[role] = serde_json::json!({
                "by": caller.subject(), "org": caller.org(), "decision": input.decision, "opinion": input.opinion.trim(), "at": Utc::now()
            });
            conclude(c, &prefix, r, input.decision, caller.subject()).await
        })
        .await?;
    s.relay.wake();
    Ok(row)
}

/// After a decision: a rejection ends the request; an approval grants once every approval the
/// request needs is in.
async fn conclude(
    c: &mut AsyncPgConnection,
    prefix: &str,
    mut r: RequestRow,
    decision: Decision,
    actor: &str,
) -> Result<RequestRow> {
    if decision == Decision::Reject {
        r.state = "rejected".into();
        r.save(c).await?;
        return Ok(r);
    }
    grant_if_complete(c, prefix, &mut r, actor).await?;
    Ok(r)
}

/// The operator attaches the compliance report conditionally-open data needs (NS-20).
pub async fn compliance_report(s: &State, caller: &Caller, id: Uuid, report: &str) -> Result<RequestRow> {
    nonempty("report", report, 50_000)?;
    let report = report.to_string();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let mut r = own_request(c, caller, id).await?;
        if r.requester_org != caller.org() {
            return Err(Error::RequestNotFound(id));
        }
        r.compliance_report = Some(report);
        r.save(c).await?;
        Ok(r)
    })
    .await
}

/// The data management department records the joint review meeting's decision (NS-20).
pub async fn joint_review(s: &State, caller: &Caller, id: Uuid, input: JointReviewInput) -> Result<RequestRow> {
    if input.members.len() < 2 {
        return Err(Error::Invalid {
            field: "members".into(),
            reason: "a joint review meeting records each member's opinion".into(),
        });
    }
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut r = own_request(c, caller, id).await?;
            if !r.needs_joint_review {
                return Err(Error::Conflict { state: r.state.clone(), reason: "this request needs no joint review".into() });
            }
            if r.compliance_report.is_none() {
                return Err(refused("compliance-report-missing", "compliance_report", "the joint review follows the compliance report", "NS-20"));
            }
            r.joint_review = Some(serde_json::json!({ "decision": input.decision, "members": input.members, "recorded_by": caller.subject(), "at": Utc::now() }));
            conclude(c, &prefix, r, input.decision, caller.subject()).await
        })
        .await?;
    s.relay.wake();
    Ok(row)
}

/// A change applied to a set of grants: the new state, the event, and who, why and by which rule.
pub struct GrantMove<'a> {
    pub to: &'a str,
    pub change: GrantChange,
    /// The supervision case that suspends them, so that passing it reinstates exactly these.
    pub case: Option<Uuid>,
    pub actor: &'a str,
    pub reason: &'a str,
    pub rule: &'a str,
}

/// Moves grants as `m` says, with their events, in the caller's transaction.
pub async fn change_grants(
    c: &mut AsyncPgConnection,
    prefix: &str,
    grants: Vec<GrantRow>,
    m: &GrantMove<'_>,
) -> Result<usize> {
    let n = grants.len();
    for mut g in grants {
        g.state = m.to.into();
        g.suspended_by_case = if m.to == "suspended" { m.case } else { None };
        if matches!(m.to, "revoked" | "expired") {
            let months = g.log_retention_months.max(6) as u32;
            g.logs_retained_until = Some(platform_calendar::add_months(platform_calendar::today_in_china(), months));
        }
        events::grant_changed(c, prefix, &mut g, m.change, m.actor, m.reason, m.rule).await?;
        g.save(c).await?;
    }
    Ok(n)
}

/// The grants of an agreement follow it: suspended with it, reinstated with it, revoked when it
/// ends (WF-24: revoke access on termination).
pub async fn follow_agreement(
    c: &mut AsyncPgConnection,
    prefix: &str,
    agreement: Uuid,
    to_state: &str,
    actor: &str,
    reason: &str,
) -> Result<usize> {
    let (from, to, change, rule): (&[&str], &str, GrantChange, &str) = match to_state {
        "suspended" => (&["active"], "suspended", GrantChange::Suspended, "SX-23"),
        "active" => (&["suspended"], "active", GrantChange::Reinstated, "SX-23"),
        "terminated" => (&["active", "suspended"], "revoked", GrantChange::Revoked, "WF-24"),
        "expired" => (&["active", "suspended"], "expired", GrantChange::Expired, "WF-27"),
        _ => return Ok(0),
    };
    let grants = GrantRow::of_agreement_for_update(c, agreement, from).await?;
    change_grants(c, prefix, grants, &GrantMove { to, change, case: None, actor, reason, rule }).await
}

/// Grants expired per transaction by the sweep.
pub const SWEEP_BATCH: i64 = 2000;

/// Expires grants past their validity: each batch is one statement and one transaction with
/// its events in one multi-row insert (set-based, so the cost follows the number due, not the
/// number stored; rows held by another sweeper are skipped, so replicas never expire a grant
/// twice). Two sweepers run side by side on two connections: the same `SKIP LOCKED` keeps them
/// apart, and one's commit (fsync) and envelope building overlap the other's statements
/// (`make bench` (d), 100,000 due: 4.7–5.0 s with one, 3.3–3.5 s with two on 2 cores).
pub async fn expire_due(s: &State, batch: i64) -> Result<usize> {
    let (a, b) = tokio::join!(expire_batches(s, batch), expire_batches(s, batch));
    Ok(a? + b?)
}

/// One sweeper: batches until one comes back short (the rest is due to none, or held by others).
async fn expire_batches(s: &State, batch: i64) -> Result<usize> {
    let today = platform_calendar::today_in_china();
    let topic = format!("{}{}", s.topic_prefix, platform_events::topics::AUTHORIZATION_GRANT);
    let mut done = 0;
    loop {
        let topic = topic.clone();
        let mut pooled = platform_store::conn(&s.pool).await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let n = conn
            .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
                let rows = GrantRow::expire_batch(c, today, batch).await?;
                let envelopes: Vec<_> = rows
                    .iter()
                    .map(|g| events::grant_envelope(g, GrantChange::Expired, "scheduler", "validity ended", ""))
                    .collect();
                platform_messaging::outbox::enqueue_many(c, &topic, &envelopes).await?;
                Ok(rows.len())
            })
            .await?;
        done += n;
        s.relay.wake();
        if (n as i64) < batch {
            return Ok(done);
        }
    }
}

// ---- supervision --------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    pub agreement_id: Uuid,
    /// The violation or termination ground found.
    pub grounds: String,
}

pub(crate) fn note(case: &mut CaseRow, who: &str, what: &str) {
    if let Some(h) = case.history.as_array_mut() {
        h.push(serde_json::json!({ "by": who, "what": what, "at": Utc::now() }));
    }
}

/// The data management department opens a case against an agreement's operator.
pub async fn open_case(s: &State, caller: &Caller, input: CaseInput) -> Result<CaseRow> {
    nonempty("grounds", &input.grounds, 4000)?;
    let mut c = platform_store::conn(&s.pool).await?;
    let a = AgreementRow::find(&mut c, input.agreement_id, false).await?;
    if a.jurisdiction != caller.jurisdiction() {
        return Err(Error::AgreementNotFound(input.agreement_id));
    }
    let now = Utc::now();
    let mut case = CaseRow {
        id: Uuid::now_v7(),
        jurisdiction: a.jurisdiction,
        operator_org: a.operator_org,
        agreement_id: a.id,
        grounds: input.grounds.trim().into(),
        state: "open".into(),
        access_rule: None,
        opened_by: caller.subject().into(),
        history: serde_json::json!([]),
        created_at: now,
        updated_at: now,
        rule: None,
        alert_id: None,
    };
    note(&mut case, caller.subject(), "opened");
    case.insert(&mut c).await?;
    Ok(case)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseAction {
    /// Order rectification: where the profile closes access (ZJK-34) or the department decides to
    /// (SX-23), every grant of the operator is suspended at once.
    Rectify,
    /// Rectification passed: the grants suspended by this case are reinstated.
    Pass,
    /// Rectification failed: the agreement is terminated and all its grants revoked (SX-33,
    /// ZJK-35, WF-24); logs are kept for the profile's retention (WF-24, ZJK-31, NS-16).
    Fail,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseStepInput {
    pub reason: String,
    /// With `rectify` where the profile leaves it to a decision (SX-23 "may"): close access.
    #[serde(default)]
    pub close_access: bool,
}

pub async fn case_step(
    s: &State,
    caller: &Caller,
    id: Uuid,
    action: CaseAction,
    input: CaseStepInput,
) -> Result<CaseRow> {
    nonempty("reason", &input.reason, 4000)?;
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let case = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut case = CaseRow::find(c, id, true).await?;
            if case.jurisdiction != caller.jurisdiction() {
                return Err(Error::CaseNotFound(id));
            }
            let expected = match action {
                CaseAction::Rectify => "open",
                CaseAction::Pass | CaseAction::Fail => "rectification",
            };
            if case.state != expected {
                return Err(Error::Conflict {
                    state: case.state.clone(),
                    reason: format!("this step needs a case that is {expected}"),
                });
            }
            let mut agreement = AgreementRow::find(c, case.agreement_id, true).await?;
            let profile = ProfileRow::find(c, &agreement.jurisdiction, agreement.profile_version).await?.profile()?;
            let reason = input.reason.trim().to_string();
            match action {
                CaseAction::Rectify => {
                    let rule = profile.values.access_during_rectification.as_ref();
                    let must_close = rule.is_some_and(|r| r.value == "closed");
                    if must_close || input.close_access {
                        // The profile's rule: ZJK-34, SX-23, or the platform default elsewhere.
                        let rule_id = rule.map(|r| r.rule.clone()).unwrap_or_else(|| PLATFORM_DEFAULT.into());
                        let grants =
                            GrantRow::of_operator_for_update(c, &case.jurisdiction, &case.operator_org, &["active"])
                                .await?;
                        let m = GrantMove {
                            to: "suspended",
                            change: GrantChange::Suspended,
                            case: Some(case.id),
                            actor: caller.subject(),
                            reason: &reason,
                            rule: &rule_id,
                        };
                        let n = change_grants(c, &prefix, grants, &m).await?;
                        note(
                            &mut case,
                            caller.subject(),
                            &format!("rectification ordered; access closed under {rule_id}: {n} grant(s) suspended"),
                        );
                        case.access_rule = Some(rule_id);
                    } else if let Some(rule_id) = case.access_rule.clone() {
                        // Stopped on the operator's own report (NS-26): it stays stopped.
                        let what = format!("rectification ordered; access stays closed under {rule_id}");
                        note(&mut case, caller.subject(), &what);
                    } else {
                        note(&mut case, caller.subject(), "rectification ordered; access left open");
                    }
                    case.state = "rectification".into();
                }
                CaseAction::Pass => {
                    let grants = GrantRow::suspended_by(c, case.id).await?;
                    let rule_id = case.access_rule.clone().unwrap_or_default();
                    let m = GrantMove {
                        to: "active",
                        change: GrantChange::Reinstated,
                        case: None,
                        actor: caller.subject(),
                        reason: &reason,
                        rule: &rule_id,
                    };
                    let n = change_grants(c, &prefix, grants, &m).await?;
                    note(&mut case, caller.subject(), &format!("rectification passed: {n} grant(s) reinstated"));
                    case.state = "passed".into();
                }
                CaseAction::Fail => {
                    let n = follow_agreement(c, &prefix, agreement.id, "terminated", caller.subject(), &reason).await?;
                    // Its partners hold nothing beyond it (ZJK-17, ZJK-35).
                    crate::sub_authorizations::follow_agreement(c, &prefix, agreement.id, caller.subject(), &reason)
                        .await?;
                    if matches!(agreement.state.as_str(), "signed" | "active" | "suspended") {
                        let previous = agreement.state.clone();
                        let months = profile.values.log_retention_months.as_ref().map(|m| m.value).unwrap_or(6).max(6);
                        agreement.state = "terminated".into();
                        agreement.termination_reason = Some(format!("rectification failed: {reason}"));
                        agreement.logs_retained_until =
                            Some(platform_calendar::add_months(platform_calendar::today_in_china(), months));
                        crate::agreements::record_step(
                            c,
                            &prefix,
                            &mut agreement,
                            &previous,
                            caller.subject(),
                            format!("terminated: rectification failed ({reason})"),
                        )
                        .await?;
                    }
                    note(
                        &mut case,
                        caller.subject(),
                        &format!("rectification failed: agreement terminated, {n} grant(s) revoked"),
                    );
                    case.state = "failed".into();
                }
            }
            case.save(c).await?;
            Ok(case)
        })
        .await?;
    s.relay.wake();
    Ok(case)
}

/// The jurisdiction's supervision cases, by hand or from the sandbox's alerts.
pub async fn list_cases(
    s: &State,
    caller: &Caller,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<crate::views::Page<CaseRow>> {
    let req = crate::app::PageRequest::parse(cursor, limit)?;
    let mut c = platform_store::conn(&s.pool).await?;
    let rows = CaseRow::list(&mut c, caller.jurisdiction(), req.after, req.fetch()).await?;
    req.page(rows, |r| r.id, Ok)
}

pub async fn get_case(s: &State, caller: &Caller, id: Uuid) -> Result<CaseRow> {
    let mut c = platform_store::conn(&s.pool).await?;
    let case = CaseRow::find(&mut c, id, false).await?;
    if case.jurisdiction != caller.jurisdiction() {
        return Err(Error::CaseNotFound(id));
    }
    Ok(case)
}

pub async fn get_grant(s: &State, caller: &Caller, id: Uuid) -> Result<GrantRow> {
    let mut c = platform_store::conn(&s.pool).await?;
    let g = GrantRow::find(&mut c, id).await?;
    let visible = g.jurisdiction == caller.jurisdiction()
        && (caller.has(Role::DataAdmin) || caller.has(Role::ImplementingInstitution))
        || g.principal_org == caller.org()
        || g.operator_org == caller.org();
    if !visible {
        return Err(Error::GrantNotFound(id));
    }
    Ok(g)
}

pub async fn list_grants(
    s: &State,
    caller: &Caller,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<crate::views::Page<GrantRow>> {
    let req = crate::app::PageRequest::parse(cursor, limit)?;
    let staff = caller.has(Role::DataAdmin) || caller.has(Role::ImplementingInstitution);
    let (j, o) = if staff { (Some(caller.jurisdiction()), None) } else { (None, Some(caller.org())) };
    let mut c = platform_store::conn(&s.pool).await?;
    let rows = GrantRow::list(&mut c, j, o, req.after, req.fetch()).await?;
    req.page(rows, |r| r.id, Ok)
}
