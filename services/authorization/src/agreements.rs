//! Agreement use cases (SX-22): draft, finance opinion (WF-15), sign (and filing due, SX-21),
//! activate, suspend ⇄ reinstate, terminate, expiry sweep, renewal requests (ZJK-17, NS-15).

use chrono::Utc;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use platform_auth::{Caller, Role};
use uuid::Uuid;

use crate::app::State;
use crate::domain::agreement::{self, AgreementAction, AgreementState};
use crate::domain::plan;
use crate::errors::{Error, Result};
use crate::events;
use crate::store::{AgreementRow, AgreementStep, CatalogResource, PlanRow, ProfileRow};
use crate::views::{Agreement, AgreementInput, Page, ScopeItem};

fn refused(slug: &'static str, field: Option<&str>, reason: impl Into<String>, rule: impl Into<String>) -> Error {
    Error::Refused { slug, field: field.map(str::to_string), reason: reason.into(), rule: rule.into() }
}

fn text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(Error::Invalid { field: field.into(), reason: format!("1 to {max} characters") });
    }
    Ok(())
}

/// Checks an agreement's contents against the profile it is made under and the catalog.
async fn check(
    c: &mut AsyncPgConnection,
    jurisdiction: &str,
    profile: &platform_policy::Profile,
    input: &AgreementInput,
) -> Result<()> {
    text("operator_org", &input.operator_org, 100)?;
    text("operator_name", &input.operator_name, 200)?;
    if input.scope.is_empty() {
        return Err(Error::Invalid {
            field: "scope".into(),
            reason: "an agreement covers at least one resource".into(),
        });
    }
    if input.products.is_empty() {
        return Err(Error::Invalid {
            field: "products".into(),
            reason: "list the products and services (SX-22)".into(),
        });
    }
    agreement::check_term(input.term_start, input.term_end, profile)
        .map_err(|t| refused("term-not-allowed", Some("term_end"), t.reason, t.rule))?;
    if let Some(plan_id) = input.plan_id {
        approved_plan(c, jurisdiction, plan_id).await?;
    }
    let ids: Vec<Uuid> = input.scope.iter().map(|s| s.resource_id).collect();
    let found = CatalogResource::find_many(c, &ids).await?;
    for (i, item) in input.scope.iter().enumerate() {
        let Some(r) = found.iter().find(|r| r.id == item.resource_id) else {
            return Err(Error::UnknownResources(vec![item.resource_id]));
        };
        if !r.authorizable {
            let rule = r.not_authorizable_rule.clone().unwrap_or_else(|| "NS-2".into());
            return Err(Error::NotAuthorizable { id: r.id, rule });
        }
        let fields: Vec<(String, String)> = r
            .fields
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["name"].as_str().unwrap_or("").to_string(),
                            f["sensitivity"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if item.fields.is_empty() {
            return Err(Error::Invalid {
                field: format!("scope[{i}].fields"),
                reason: "name the fields (minimal and necessary)".into(),
            });
        }
        for f in &item.fields {
            if !fields.iter().any(|(n, _)| n == f) {
                return Err(Error::Invalid {
                    field: format!("scope[{i}].fields"),
                    reason: format!("`{f}` is not a field of resource {}", r.id),
                });
            }
        }
        let chosen = fields.iter().filter(|(n, _)| item.fields.contains(n)).map(|(n, s)| (n.as_str(), s.as_str()));
        if let Some((field, rule)) = agreement::forbidden_field(chosen, profile) {
            return Err(refused(
                "field-not-allowed",
                Some(&format!("scope[{i}].fields")),
                format!("`{field}` holds personal information or trade secrets, never in scope here"),
                rule,
            ));
        }
    }
    Ok(())
}

/// `plan_id` is an approved (or filed) plan of `jurisdiction` (SX-18).
pub async fn approved_plan(c: &mut AsyncPgConnection, jurisdiction: &str, plan_id: Uuid) -> Result<()> {
    let p = PlanRow::find(c, plan_id, false).await?;
    if p.jurisdiction != jurisdiction || !matches!(p.state()?, plan::PlanState::Approved | plan::PlanState::Filed) {
        return Err(Error::Invalid {
            field: "plan_id".into(),
            reason: "not an approved plan of this jurisdiction (SX-18)".into(),
        });
    }
    Ok(())
}

fn scope_json(scope: &[ScopeItem]) -> serde_json::Value {
    serde_json::to_value(scope).unwrap_or_default()
}

/// Records a step that another use case (supervision) decided, from state `from`.
pub async fn record_step(
    c: &mut AsyncPgConnection,
    prefix: &str,
    row: &mut AgreementRow,
    from: &str,
    actor: &str,
    reason: String,
) -> Result<()> {
    record(c, prefix, row, AgreementState::parse(from), actor, reason).await
}

async fn record(
    c: &mut AsyncPgConnection,
    prefix: &str,
    row: &mut AgreementRow,
    from: Option<AgreementState>,
    actor: &str,
    reason: String,
) -> Result<()> {
    let seq = AgreementStep::next_seq(c, row.id).await?;
    let step = AgreementStep {
        agreement_id: row.id,
        seq,
        from_state: from.map(|f| f.as_str().to_string()),
        to_state: row.state.clone(),
        actor: actor.into(),
        reason,
        at: Utc::now(),
    };
    step.insert(c).await?;
    events::agreement_step(c, prefix, row, &step).await?;
    row.save(c).await
}

/// The implementing institution drafts an agreement under its jurisdiction's current profile.
pub async fn create(s: &State, caller: &Caller, input: AgreementInput) -> Result<Agreement> {
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            draft_in(c, &prefix, caller, input, "drafted".into()).await
        })
        .await?;
    s.relay.wake();
    Agreement::from_row(row, Vec::new())
}

/// Drafts an agreement under the caller's jurisdiction's current profile, checked as any draft is;
/// `reason` is its first step's.
pub(crate) async fn draft_in(
    c: &mut AsyncPgConnection,
    prefix: &str,
    caller: &Caller,
    input: AgreementInput,
    reason: String,
) -> Result<AgreementRow> {
    let profile_row = ProfileRow::current(c, caller.jurisdiction()).await?;
    check(c, caller.jurisdiction(), &profile_row.profile()?, &input).await?;
    let now = Utc::now();
    let mut row = AgreementRow {
        id: Uuid::now_v7(),
        jurisdiction: caller.jurisdiction().into(),
        plan_id: input.plan_id,
        operator_org: input.operator_org.trim().into(),
        operator_name: input.operator_name.trim().into(),
        state: AgreementState::Draft.as_str().into(),
        scope: scope_json(&input.scope),
        resource_ids: input.scope.iter().map(|s| s.resource_id).collect(),
        products: serde_json::to_value(&input.products).unwrap_or_default(),
        revenue_sharing: input.revenue_sharing.filter(|r| !r.trim().is_empty()),
        finance_opinion: None,
        term_start: input.term_start,
        term_end: input.term_end,
        profile_version: profile_row.version,
        signed_at: None,
        filing_due: None,
        filing_due_provisional: false,
        filing_rule: None,
        filed_at: None,
        renewal_requested_at: None,
        termination_reason: None,
        logs_retained_until: None,
        selection_id: input.selection_id,
        event_seq: 0,
        created_by: caller.subject().into(),
        created_at: now,
        updated_at: now,
    };
    if let Some(sel) = input.selection_id {
        crate::selections::for_agreement(c, prefix, caller.subject(), sel, &row).await?;
    }
    row.insert(c).await?;
    record(c, prefix, &mut row, None, caller.subject(), reason).await?;
    Ok(row)
}

/// The agreement of the caller's jurisdiction, locked.
pub(crate) async fn own(c: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> Result<AgreementRow> {
    let row = AgreementRow::find(c, id, true).await?;
    if row.jurisdiction != caller.jurisdiction() {
        return Err(Error::AgreementNotFound(id));
    }
    Ok(row)
}

/// The finance department records its opinion on the revenue-sharing clauses (WF-15).
pub async fn finance_opinion(s: &State, caller: &Caller, id: Uuid, opinion: &str) -> Result<Agreement> {
    text("opinion", opinion, 4000)?;
    let opinion = opinion.trim().to_string();
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = own(c, caller, id).await?;
            let state = row.state()?;
            if state != AgreementState::Draft {
                return Err(Error::AgreementStep(agreement::InvalidStep {
                    from: state,
                    action: AgreementAction::Sign,
                    allowed_in: vec![AgreementState::Draft],
                }));
            }
            row.finance_opinion = Some(serde_json::json!({
                "by": caller.subject(), "org": caller.org(), "opinion": opinion, "at": Utc::now()
            }));
            record(c, &prefix, &mut row, Some(state), caller.subject(), "finance opinion recorded (WF-15)".into())
                .await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    Agreement::from_row(row, Vec::new())
}

pub fn step_roles(action: AgreementAction) -> &'static [Role] {
    match action {
        AgreementAction::Sign | AgreementAction::Activate => &[Role::ImplementingInstitution],
        // Supervision (SX-23, ZJK-34, WF-27) is the data management department's.
        AgreementAction::Suspend | AgreementAction::Reinstate | AgreementAction::Terminate => &[Role::DataAdmin],
        AgreementAction::Expire => &[],
    }
}

/// One step of the life cycle, by a person (`Expire` is the sweep's alone).
pub async fn step(s: &State, caller: &Caller, id: Uuid, action: AgreementAction, reason: &str) -> Result<Agreement> {
    text("reason", reason, 2000)?;
    let reason = reason.trim().to_string();
    let prefix = s.topic_prefix.clone();
    let calendar = s.calendar;
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = own(c, caller, id).await?;
            let from = row.state()?;
            let to = agreement::step(from, action).map_err(Error::AgreementStep)?;
            let today = platform_calendar::today_in_china();
            match action {
                AgreementAction::Sign => {
                    if row.revenue_sharing.is_some() && row.finance_opinion.is_none() {
                        return Err(refused(
                            "finance-opinion-missing",
                            None,
                            "revenue-sharing clauses need the finance department's opinion before signing",
                            "WF-15",
                        ));
                    }
                    let profile_row = ProfileRow::find(c, &row.jurisdiction, row.profile_version).await?;
                    let files = matches!(profile_row.level.as_str(), "city" | "district");
                    row.signed_at = Some(Utc::now());
                    if let Some(due) = plan::deadline(
                        profile_row.profile()?.values.agreement_filing_deadline.as_ref(),
                        files,
                        today,
                        calendar,
                    ) {
                        row.filing_due = Some(due.date);
                        row.filing_due_provisional = due.provisional;
                        row.filing_rule = Some(due.rule);
                    }
                }
                AgreementAction::Activate if today < row.term_start => {
                    return Err(refused(
                        "term-not-started",
                        None,
                        format!("the term starts on {}", row.term_start),
                        "SX-22",
                    ));
                }
                AgreementAction::Terminate => {
                    row.termination_reason = Some(reason.clone());
                    row.logs_retained_until = Some(retention_end(c, &row).await?);
                }
                _ => {}
            }
            row.state = to.as_str().into();
            // The agreement's grants follow it in the same transaction (SX-23, WF-24).
            crate::grants::follow_agreement(c, &prefix, row.id, to.as_str(), caller.subject(), &reason).await?;
            if matches!(to, AgreementState::Terminated | AgreementState::Expired) {
                crate::sub_authorizations::follow_agreement(c, &prefix, row.id, caller.subject(), &reason).await?;
            }
            record(c, &prefix, &mut row, Some(from), caller.subject(), reason).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    let mut c = platform_store::conn(&s.pool).await?;
    let steps = AgreementStep::find_by_agreement(&mut c, id).await?;
    Agreement::from_row(row, steps)
}

/// When the logs of an ended agreement may be purged: the profile's retention, at least six
/// months (WF-24, ZJK-31, NS-16).
async fn retention_end(c: &mut AsyncPgConnection, row: &AgreementRow) -> Result<chrono::NaiveDate> {
    let profile = ProfileRow::find(c, &row.jurisdiction, row.profile_version).await?.profile()?;
    let months = profile.values.log_retention_months.as_ref().map(|m| m.value).unwrap_or(6).max(6);
    Ok(platform_calendar::add_months(platform_calendar::today_in_china(), months))
}

/// The operator asks for renewal, only inside the profile's window (ZJK-17, NS-15).
pub async fn request_renewal(s: &State, caller: &Caller, id: Uuid) -> Result<Agreement> {
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = AgreementRow::find(c, id, true).await?;
            if row.operator_org != caller.org() {
                return Err(Error::AgreementNotFound(id));
            }
            let state = row.state()?;
            if state != AgreementState::Active {
                return Err(Error::AgreementStep(agreement::InvalidStep {
                    from: state,
                    action: AgreementAction::Activate,
                    allowed_in: vec![AgreementState::Active],
                }));
            }
            let profile = ProfileRow::find(c, &row.jurisdiction, row.profile_version).await?.profile()?;
            agreement::check_renewal(platform_calendar::today_in_china(), row.term_end, &profile)
                .map_err(|t| refused("outside-renewal-window", None, t.reason, t.rule))?;
            row.renewal_requested_at = Some(Utc::now());
            record(c, &prefix, &mut row, Some(state), caller.subject(), "renewal requested".into()).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    Agreement::from_row(row, Vec::new())
}

/// Expires every agreement whose term has ended, each in its own transaction with its event.
/// Safe to run on any replica at any time: a row is re-read under lock and expired only if it
/// is still due, so a restart or a second sweeper neither misses nor repeats an expiry.
pub async fn expire_due(s: &State, batch: i64) -> Result<usize> {
    let today = platform_calendar::today_in_china();
    let mut done = 0;
    loop {
        let ids = {
            let mut c = platform_store::conn(&s.pool).await?;
            AgreementRow::due_to_expire(&mut c, today, batch).await?
        };
        if ids.is_empty() {
            return Ok(done);
        }
        for id in &ids {
            let prefix = s.topic_prefix.clone();
            let id = *id;
            let mut pooled = platform_store::conn(&s.pool).await?;
            let conn: &mut AsyncPgConnection = &mut pooled;
            let expired = conn
                .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
                    let mut row = AgreementRow::find(c, id, true).await?;
                    let from = row.state()?;
                    if row.term_end >= today || agreement::step(from, AgreementAction::Expire).is_err() {
                        return Ok(false);
                    }
                    row.state = AgreementState::Expired.as_str().into();
                    row.logs_retained_until = Some(retention_end(c, &row).await?);
                    let reason = format!("term ended on {}", row.term_end);
                    crate::grants::follow_agreement(c, &prefix, row.id, "expired", "scheduler", &reason).await?;
                    crate::sub_authorizations::follow_agreement(c, &prefix, row.id, "scheduler", &reason).await?;
                    record(c, &prefix, &mut row, Some(from), "scheduler", reason).await?;
                    Ok(true)
                })
                .await?;
            if expired {
                done += 1;
            }
        }
        s.relay.wake();
    }
}

/// The agreement as the caller may see it: an operator its own, others their jurisdiction's.
pub async fn find_visible(c: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> Result<AgreementRow> {
    let row = AgreementRow::find(c, id, false).await?;
    let visible = if caller.has(Role::Operator) {
        row.operator_org == caller.org()
    } else {
        row.jurisdiction == caller.jurisdiction()
    };
    if !visible {
        return Err(Error::AgreementNotFound(id));
    }
    Ok(row)
}

pub async fn get(s: &State, caller: &Caller, id: Uuid) -> Result<Agreement> {
    let mut c = platform_store::conn(&s.pool).await?;
    let row = find_visible(&mut c, caller, id).await?;
    let steps = AgreementStep::find_by_agreement(&mut c, id).await?;
    Agreement::from_row(row, steps)
}

pub async fn list(s: &State, caller: &Caller, cursor: Option<&str>, limit: Option<i64>) -> Result<Page<Agreement>> {
    let req = crate::app::PageRequest::parse(cursor, limit)?;
    let (jurisdiction, org) =
        if caller.has(Role::Operator) { (None, Some(caller.org())) } else { (Some(caller.jurisdiction()), None) };
    let mut c = platform_store::conn(&s.pool).await?;
    let rows = AgreementRow::list(&mut c, jurisdiction, org, req.after, req.fetch()).await?;
    req.page(rows, |r| r.id, |r| Agreement::from_row(r, Vec::new()))
}
