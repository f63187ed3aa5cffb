//! Operator selection use cases (WF-12, WF-13, NS-11…13, ZJK-12, LZ-3, SX-20): announce, apply
//! before the deadline with eligibility checked against the profile, score, award, public notice
//! with objections, and the agreement only afterwards (see [`for_agreement`]).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use platform_auth::{Caller, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::{PageRequest, State};
use crate::domain::selection::{self, Declaration, Ineligible, Method, Refusal, SelectionState};
use crate::errors::{Error, Result};
use crate::events::{self, SelectionStepDetail};
use crate::store::ProfileRow;
use crate::views::Page;
use platform_events::authorization::SelectionStep;

diesel::table! {
    selections (id) {
        id -> Uuid,
        jurisdiction -> Text,
        plan_id -> Nullable<Uuid>,
        title -> Text,
        mode -> Text,
        method -> Text,
        resource_ids -> Array<Uuid>,
        scope_description -> Text,
        conditions -> Text,
        criteria -> Text,
        application_deadline -> Date,
        state -> Text,
        awarded_application_id -> Nullable<Uuid>,
        awarded_org -> Nullable<Text>,
        notice_ends -> Nullable<Date>,
        notice_provisional -> Bool,
        notice_rule -> Nullable<Text>,
        agreement_id -> Nullable<Uuid>,
        profile_version -> Integer,
        history -> Jsonb,
        created_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        event_seq -> Integer,
    }
}

diesel::table! {
    selection_applications (id) {
        id -> Uuid,
        selection_id -> Uuid,
        applicant_org -> Text,
        applicant_name -> Text,
        submitted_by -> Text,
        declaration -> Jsonb,
        score -> Nullable<Double>,
        evaluation -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    selection_objections (id) {
        id -> Uuid,
        selection_id -> Uuid,
        application_id -> Uuid,
        raised_by -> Text,
        raised_org -> Text,
        grounds -> Text,
        state -> Text,
        decision -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

/// An announced selection (申报公告) and where it stands.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema)]
#[diesel(table_name = selections, treat_none_as_null = true)]
pub struct Selection {
    pub id: Uuid,
    pub jurisdiction: String,
    pub plan_id: Option<Uuid>,
    pub title: String,
    pub mode: String,
    pub method: String,
    pub resource_ids: Vec<Uuid>,
    pub scope_description: String,
    pub conditions: String,
    pub criteria: String,
    /// Applications are accepted through this China date (WF-12 (二), NS-12).
    pub application_deadline: NaiveDate,
    /// open | notice | concluded
    pub state: String,
    pub awarded_application_id: Option<Uuid>,
    pub awarded_org: Option<String>,
    /// Last day of the public notice; objections until then (WF-12 (四), NS-13).
    pub notice_ends: Option<NaiveDate>,
    pub notice_provisional: bool,
    pub notice_rule: Option<String>,
    pub agreement_id: Option<Uuid>,
    pub profile_version: i32,
    #[schema(value_type = Object)]
    pub history: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Events published on `authorization.selection.v1` so far.
    #[serde(skip)]
    pub event_seq: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema)]
#[diesel(table_name = selection_applications, treat_none_as_null = true)]
pub struct Application {
    pub id: Uuid,
    pub selection_id: Uuid,
    pub applicant_org: String,
    pub applicant_name: String,
    pub submitted_by: String,
    #[schema(value_type = Object)]
    pub declaration: serde_json::Value,
    /// The evaluation score, 0 to 100, against the announced criteria.
    pub score: Option<f64>,
    #[schema(value_type = Object)]
    pub evaluation: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema)]
#[diesel(table_name = selection_objections, treat_none_as_null = true)]
pub struct Objection {
    pub id: Uuid,
    pub selection_id: Uuid,
    /// The awarded application objected to.
    pub application_id: Uuid,
    pub raised_by: String,
    pub raised_org: String,
    pub grounds: String,
    /// pending | upheld | dismissed
    pub state: String,
    #[schema(value_type = Object)]
    pub decision: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl Selection {
    fn state(&self) -> Result<SelectionState> {
        SelectionState::parse(&self.state).ok_or_else(|| Error::Corrupt(format!("selection {}: state", self.id)))
    }

    async fn find(c: &mut AsyncPgConnection, id: Uuid, lock: bool) -> Result<Selection> {
        let q = selections::table.find(id).select(Selection::as_select());
        let row = if lock { q.for_update().first(c).await } else { q.first(c).await };
        row.optional()?.ok_or(Error::SelectionNotFound(id))
    }

    async fn save(&mut self, c: &mut AsyncPgConnection) -> Result<()> {
        self.updated_at = Utc::now();
        diesel::update(selections::table.find(self.id)).set(&*self).execute(c).await?;
        Ok(())
    }

    fn note(&mut self, who: &str, what: String) {
        if let Some(h) = self.history.as_array_mut() {
            h.push(serde_json::json!({ "by": who, "what": what, "at": Utc::now() }));
        }
    }
}

impl Application {
    async fn of_selection(c: &mut AsyncPgConnection, selection: Uuid) -> Result<Vec<Application>> {
        Ok(selection_applications::table
            .filter(selection_applications::selection_id.eq(selection))
            .order(selection_applications::id)
            .select(Application::as_select())
            .load(c)
            .await?)
    }
}

impl Objection {
    /// Objections to `application` not decided yet.
    async fn count_pending(c: &mut AsyncPgConnection, application: Uuid) -> Result<i64> {
        Ok(selection_objections::table
            .filter(selection_objections::application_id.eq(application))
            .filter(selection_objections::state.eq("pending"))
            .count()
            .get_result(c)
            .await?)
    }
}

fn refused(r: Refusal, field: Option<&str>) -> Error {
    Error::Refused { slug: r.slug, field: field.map(str::to_string), reason: r.reason, rule: r.rule }
}

fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(Error::Invalid { field: field.into(), reason: format!("1 to {max} characters") });
    }
    Ok(v.to_string())
}

/// The announcement (WF-12 (一)): mode, scope, conditions, criteria and the deadline.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementInput {
    /// The approved implementation plan it selects for (SX-20).
    #[serde(default)]
    pub plan_id: Option<Uuid>,
    pub title: String,
    /// A mode the profile allows (WF-9, ZJK-11, LZ-4, SX-12).
    pub mode: String,
    pub method: Method,
    /// Catalog resources in scope.
    pub resource_ids: Vec<Uuid>,
    pub scope_description: String,
    pub conditions: String,
    pub criteria: String,
    pub application_deadline: NaiveDate,
}

/// The implementing institution announces a selection under its jurisdiction's current profile.
pub async fn announce(s: &State, caller: &Caller, input: AnnouncementInput) -> Result<Selection> {
    let title = text("title", &input.title, 200)?;
    let scope_description = text("scope_description", &input.scope_description, 4000)?;
    let conditions = text("conditions", &input.conditions, 10_000)?;
    let criteria = text("criteria", &input.criteria, 10_000)?;
    let today = platform_calendar::today_in_china();
    if input.application_deadline <= today {
        return Err(Error::Refused {
            slug: "deadline-not-ahead",
            field: Some("application_deadline".into()),
            reason: "the announcement gives applicants time: the deadline lies after today".into(),
            rule: "WF-12".into(),
        });
    }
    if input.resource_ids.is_empty() {
        return Err(Error::Invalid { field: "resource_ids".into(), reason: "name the data in scope".into() });
    }
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let profile_row = ProfileRow::current(c, caller.jurisdiction()).await?;
        crate::domain::plan::check_mode(&input.mode, &profile_row.profile()?).map_err(Error::Mode)?;
        if let Some(plan_id) = input.plan_id {
            crate::agreements::approved_plan(c, caller.jurisdiction(), plan_id).await?;
        }
        crate::app::check_resources(c, caller.jurisdiction(), &input.resource_ids).await?;
        let now = Utc::now();
        let mut row = Selection {
            id: Uuid::now_v7(),
            jurisdiction: caller.jurisdiction().into(),
            plan_id: input.plan_id,
            title,
            mode: input.mode.clone(),
            method: input.method.as_str().into(),
            resource_ids: input.resource_ids.clone(),
            scope_description,
            conditions,
            criteria,
            application_deadline: input.application_deadline,
            state: SelectionState::Open.as_str().into(),
            awarded_application_id: None,
            awarded_org: None,
            notice_ends: None,
            notice_provisional: false,
            notice_rule: None,
            agreement_id: None,
            profile_version: profile_row.version,
            history: serde_json::json!([]),
            created_by: caller.subject().into(),
            created_at: now,
            updated_at: now,
            event_seq: 0,
        };
        row.note(caller.subject(), "announced".into());
        let detail = SelectionStepDetail { actor: caller.subject(), reason: "announced", ..Default::default() };
        events::selection_step(c, &s.topic_prefix, &mut row, SelectionStep::Announced, detail).await?;
        diesel::insert_into(selections::table).values(&row).execute(c).await?;
        Ok(row)
    })
    .await
    .inspect(|_| s.relay.wake())
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    pub applicant_name: String,
    pub declaration: Declaration,
}

/// An operator applies before the deadline; the profile's eligibility requirements are checked
/// (WF-13, ZJK-12, NS-11, LZ-3) and an applicant that fails any is refused, every failure listed.
pub async fn apply(s: &State, caller: &Caller, id: Uuid, input: ApplicationInput) -> Result<Application> {
    let name = text("applicant_name", &input.applicant_name, 200)?;
    let today = platform_calendar::today_in_china();
    selection::check_declaration(&input.declaration, today)
        .map_err(|(field, reason)| Error::Invalid { field, reason })?;
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let sel = Selection::find(c, id, false).await?;
        if sel.state()? != SelectionState::Open {
            return Err(Error::Conflict { state: sel.state.clone(), reason: "the selection is awarded".into() });
        }
        selection::check_application_time(sel.application_deadline, today)
            .map_err(|r| refused(r, Some("application_deadline")))?;
        let profile = ProfileRow::find(c, &sel.jurisdiction, sel.profile_version).await?.profile()?;
        let failed = selection::check_eligibility(&input.declaration, &profile, today);
        if !failed.is_empty() {
            return Err(Error::Ineligible(failed));
        }
        let row = Application {
            id: Uuid::now_v7(),
            selection_id: sel.id,
            applicant_org: caller.org().into(),
            applicant_name: name,
            submitted_by: caller.subject().into(),
            declaration: serde_json::to_value(&input.declaration).unwrap_or_default(),
            score: None,
            evaluation: None,
            created_at: Utc::now(),
        };
        let n = diesel::insert_into(selection_applications::table)
            .values(&row)
            .on_conflict((selection_applications::selection_id, selection_applications::applicant_org))
            .do_nothing()
            .execute(c)
            .await?;
        if n == 0 {
            return Err(Error::Conflict {
                state: sel.state.clone(),
                reason: "this organisation has applied already".into(),
            });
        }
        Ok(row)
    })
    .await
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationInput {
    /// 0 to 100 against the announced criteria.
    pub score: f64,
    pub opinion: String,
}

async fn own(c: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> Result<Selection> {
    let sel = Selection::find(c, id, true).await?;
    if sel.jurisdiction != caller.jurisdiction() {
        return Err(Error::SelectionNotFound(id));
    }
    Ok(sel)
}

fn expect_state(sel: &Selection, want: SelectionState, why: &str) -> Result<()> {
    if sel.state()? != want {
        return Err(Error::Conflict { state: sel.state.clone(), reason: why.into() });
    }
    Ok(())
}

/// The implementing institution scores an application once applications are closed (WF-12 (三)).
pub async fn evaluate(s: &State, caller: &Caller, id: Uuid, app: Uuid, input: EvaluationInput) -> Result<Application> {
    if !(0.0..=100.0).contains(&input.score) {
        return Err(Error::Invalid { field: "score".into(), reason: "0 to 100".into() });
    }
    let opinion = text("opinion", &input.opinion, 4000)?;
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let sel = own(c, caller, id).await?;
        expect_state(&sel, SelectionState::Open, "scores are given before the award")?;
        selection::check_applications_closed(sel.application_deadline, platform_calendar::today_in_china())
            .map_err(|r| refused(r, None))?;
        let mut a = Application::of_selection(c, sel.id)
            .await?
            .into_iter()
            .find(|a| a.id == app)
            .ok_or(Error::ApplicationNotFound(app))?;
        a.score = Some(input.score);
        a.evaluation = Some(serde_json::json!({ "by": caller.subject(), "opinion": opinion, "at": Utc::now() }));
        diesel::update(selection_applications::table.find(a.id)).set(&a).execute(c).await?;
        Ok(a)
    })
    .await
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AwardInput {
    pub application_id: Uuid,
    pub reason: String,
}

/// Awards the best-scored application once every application is scored, and starts the public
/// notice for the profile's period (WF-12 (三)(四), NS-13).
pub async fn award(s: &State, caller: &Caller, id: Uuid, input: AwardInput) -> Result<Selection> {
    let reason = text("reason", &input.reason, 2000)?;
    let calendar = s.calendar;
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let mut sel = own(c, caller, id).await?;
        expect_state(&sel, SelectionState::Open, "only an open selection is awarded")?;
        let today = platform_calendar::today_in_china();
        selection::check_applications_closed(sel.application_deadline, today).map_err(|r| refused(r, None))?;
        let apps = Application::of_selection(c, sel.id).await?;
        let chosen = apps.iter().find(|a| a.id == input.application_id).ok_or(Error::Invalid {
            field: "application_id".into(),
            reason: "not an application to this selection".into(),
        })?;
        if let Some(unscored) = apps.iter().find(|a| a.score.is_none()) {
            return Err(Error::Refused {
                slug: "evaluation-incomplete",
                field: Some("application_id".into()),
                reason: format!("application {} is not scored; every application is weighed", unscored.id),
                rule: "WF-12".into(),
            });
        }
        let best = apps.iter().filter_map(|a| a.score).fold(f64::MIN, f64::max);
        if chosen.score.is_none_or(|x| x < best) {
            return Err(Error::Refused {
                slug: "not-the-best-scored",
                field: Some("application_id".into()),
                reason: format!("the award goes to the best score under the announced criteria ({best})"),
                rule: "WF-12".into(),
            });
        }
        let profile = ProfileRow::find(c, &sel.jurisdiction, sel.profile_version).await?.profile()?;
        let due = selection::notice_ends(&profile, today, calendar)
            .ok_or_else(|| Error::Corrupt(format!("profile {} sets no selection_notice_period", sel.jurisdiction)))?;
        sel.state = SelectionState::Notice.as_str().into();
        sel.awarded_application_id = Some(chosen.id);
        sel.awarded_org = Some(chosen.applicant_org.clone());
        sel.notice_ends = Some(due.date);
        sel.notice_provisional = due.provisional;
        sel.notice_rule = Some(due.rule.clone());
        let what =
            format!("awarded to {}: {reason}; public notice until {} ({})", chosen.applicant_org, due.date, due.rule);
        sel.note(caller.subject(), what);
        let detail =
            SelectionStepDetail { award: Some(chosen), actor: caller.subject(), reason: &reason, ..Default::default() };
        events::selection_step(c, &s.topic_prefix, &mut sel, SelectionStep::Awarded, detail).await?;
        sel.save(c).await?;
        Ok(sel)
    })
    .await
    .inspect(|_| s.relay.wake())
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionInput {
    pub grounds: String,
}

/// Anyone raises an objection to the award while the public notice runs.
pub async fn object(s: &State, caller: &Caller, id: Uuid, input: ObjectionInput) -> Result<Objection> {
    let grounds = text("grounds", &input.grounds, 4000)?;
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let sel = Selection::find(c, id, true).await?;
        expect_state(&sel, SelectionState::Notice, "objections are raised against an award in public notice")?;
        let (Some(app), Some(ends)) = (sel.awarded_application_id, sel.notice_ends) else {
            return Err(Error::Corrupt(format!("selection {id}: notice without award")));
        };
        let rule = sel.notice_rule.clone().unwrap_or_else(|| "WF-12".into());
        selection::check_objection_time(ends, &rule, platform_calendar::today_in_china())
            .map_err(|r| refused(r, None))?;
        let row = Objection {
            id: Uuid::now_v7(),
            selection_id: sel.id,
            application_id: app,
            raised_by: caller.subject().into(),
            raised_org: caller.org().into(),
            grounds,
            state: "pending".into(),
            decision: None,
            created_at: Utc::now(),
        };
        diesel::insert_into(selection_objections::table).values(&row).execute(c).await?;
        Ok(row)
    })
    .await
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionDecisionInput {
    /// An upheld objection annuls the award: the selection is open for a new award.
    pub upheld: bool,
    pub reason: String,
}

/// The data management department decides an objection (it supervises the selection).
pub async fn decide_objection(
    s: &State,
    caller: &Caller,
    id: Uuid,
    objection: Uuid,
    input: ObjectionDecisionInput,
) -> Result<Objection> {
    let reason = text("reason", &input.reason, 4000)?;
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let mut sel = own(c, caller, id).await?;
        let mut o = selection_objections::table
            .find(objection)
            .select(Objection::as_select())
            .for_update()
            .first(c)
            .await
            .optional()?
            .filter(|o| o.selection_id == sel.id)
            .ok_or(Error::ObjectionNotFound(objection))?;
        if o.state != "pending" {
            return Err(Error::Conflict { state: o.state.clone(), reason: "the objection is decided".into() });
        }
        o.state = if input.upheld { "upheld" } else { "dismissed" }.into();
        o.decision = Some(serde_json::json!({ "by": caller.subject(), "reason": reason, "at": Utc::now() }));
        diesel::update(selection_objections::table.find(o.id)).set(&o).execute(c).await?;
        if input.upheld
            && sel.state()? == SelectionState::Notice
            && sel.awarded_application_id == Some(o.application_id)
        {
            sel.state = SelectionState::Open.as_str().into();
            sel.awarded_application_id = None;
            sel.awarded_org = None;
            sel.notice_ends = None;
            sel.notice_provisional = false;
            sel.notice_rule = None;
            sel.note(caller.subject(), format!("objection {} upheld, award annulled: {reason}", o.id));
        }
        // Every decision is public (WF-25): the selection as it stands after it.
        let detail =
            SelectionStepDetail { objection: Some(&o), actor: caller.subject(), reason: &reason, ..Default::default() };
        events::selection_step(c, &s.topic_prefix, &mut sel, SelectionStep::ObjectionDecided, detail).await?;
        sel.save(c).await?;
        Ok(o)
    })
    .await
    .inspect(|_| s.relay.wake())
}

/// Inside the agreement's transaction: the selection allows the agreement `row` (its operator,
/// over its resources) now (WF-12 (四), NS-13, NS-14), and is concluded by it.
pub async fn for_agreement(
    c: &mut AsyncPgConnection,
    topic_prefix: &str,
    actor: &str,
    id: Uuid,
    row: &crate::store::AgreementRow,
) -> Result<()> {
    let (jurisdiction, operator_org, resources, agreement) =
        (row.jurisdiction.as_str(), row.operator_org.as_str(), &row.resource_ids, row.id);
    let mut sel = Selection::find(c, id, true).await?;
    if sel.jurisdiction != jurisdiction {
        return Err(Error::SelectionNotFound(id));
    }
    let pending = match sel.awarded_application_id {
        Some(a) => Objection::count_pending(c, a).await? as usize,
        None => 0,
    };
    let rule = sel.notice_rule.clone().unwrap_or_else(|| "WF-12".into());
    selection::check_agreement_allowed(
        sel.state()?,
        sel.awarded_org.as_deref(),
        operator_org,
        sel.notice_ends,
        &rule,
        pending,
        platform_calendar::today_in_china(),
    )
    .map_err(|r| refused(r, Some("selection_id")))?;
    if let Some(outside) = resources.iter().find(|r| !sel.resource_ids.contains(r)) {
        return Err(Error::Refused {
            slug: "outside-selection-scope",
            field: Some("scope".into()),
            reason: format!("resource {outside} was not in the announced scope"),
            rule: "WF-12".into(),
        });
    }
    sel.state = SelectionState::Concluded.as_str().into();
    sel.agreement_id = Some(agreement);
    let what = format!("agreement {agreement} made with {operator_org}");
    sel.note("agreement", what.clone());
    let detail = SelectionStepDetail { actor, reason: &what, ..Default::default() };
    events::selection_step(c, topic_prefix, &mut sel, SelectionStep::Concluded, detail).await?;
    sel.save(c).await
}

/// A selection as anyone sees it, with the objections to it and whether an agreement may be made
/// for the awarded operator today.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SelectionView {
    #[serde(flatten)]
    pub selection: Selection,
    pub applications: usize,
    pub objections: Vec<Objection>,
    /// True once the notice has ended with no objection pending (WF-12 (四)).
    pub agreement_allowed: bool,
}

pub async fn get(s: &State, id: Uuid) -> Result<SelectionView> {
    let mut c = platform_store::conn(&s.pool).await?;
    let sel = Selection::find(&mut c, id, false).await?;
    let applications = Application::of_selection(&mut c, id).await?.len();
    let objections: Vec<Objection> = selection_objections::table
        .filter(selection_objections::selection_id.eq(id))
        .order(selection_objections::id)
        .select(Objection::as_select())
        .load(&mut *c)
        .await?;
    let pending = objections
        .iter()
        .filter(|o| o.state == "pending" && Some(o.application_id) == sel.awarded_application_id)
        .count();
    let awarded = sel.awarded_org.clone().unwrap_or_default();
    let agreement_allowed = selection::check_agreement_allowed(
        sel.state()?,
        sel.awarded_org.as_deref(),
        &awarded,
        sel.notice_ends,
        "",
        pending,
        platform_calendar::today_in_china(),
    )
    .is_ok();
    Ok(SelectionView { selection: sel, applications, objections, agreement_allowed })
}

/// The caller's jurisdiction's selections (announcements are public).
pub async fn list(s: &State, caller: &Caller, cursor: Option<&str>, limit: Option<i64>) -> Result<Page<Selection>> {
    let req = PageRequest::parse(cursor, limit)?;
    let mut c = platform_store::conn(&s.pool).await?;
    let mut q = selections::table
        .filter(selections::jurisdiction.eq(caller.jurisdiction().to_string()))
        .select(Selection::as_select())
        .into_boxed();
    if let Some(a) = req.after {
        q = q.filter(selections::id.gt(a));
    }
    let rows = q.order(selections::id.asc()).limit(req.fetch()).load(&mut *c).await?;
    req.page(rows, |r| r.id, Ok)
}

/// The applications to a selection of the caller's jurisdiction, with declarations and scores.
pub async fn applications(s: &State, caller: &Caller, id: Uuid) -> Result<Vec<Application>> {
    let mut c = platform_store::conn(&s.pool).await?;
    let sel = Selection::find(&mut c, id, false).await?;
    if sel.jurisdiction != caller.jurisdiction() {
        return Err(Error::SelectionNotFound(id));
    }
    Application::of_selection(&mut c, id).await
}

/// Who does what: the implementing institution announces, scores and awards (WF-12, SX-9, SX-20);
/// operators apply; anyone objects; the data management department decides objections.
pub const AUTHORS: &[Role] = &[Role::ImplementingInstitution];
pub const APPLICANTS: &[Role] = &[Role::Operator];
pub const READERS_OF_APPLICATIONS: &[Role] = &[Role::ImplementingInstitution, Role::DataAdmin];
pub const OBJECTION_DECIDERS: &[Role] = &[Role::DataAdmin];

/// The requirements an ineligible applicant fails, for the problem's `errors`.
pub fn ineligible_json(failed: &[Ineligible]) -> serde_json::Value {
    serde_json::to_value(failed).unwrap_or_default()
}
