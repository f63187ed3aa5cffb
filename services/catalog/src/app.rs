//! The catalog's use cases: each loads what it needs, applies the domain rule, writes the new
//! state and its event atomically (a resource's changes as one guarded statement, see
//! [`change`]; the others in one transaction), then wakes the outbox relay.

use std::sync::Arc;

use chrono::{DateTime, Datelike as _, DurationRound as _, NaiveDate, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use platform_auth::{Caller, Role};
use platform_calendar::Calendar;
use platform_events::catalog::ResourceChange;
use platform_messaging::{AtomicWrite, Committed, RelayHandle};
use platform_policy::Profiles;
use platform_store::{Pool, RecentOutcome, RecentRows};
use uuid::Uuid;

use crate::domain::objection::{self, ObjectionAction, ObjectionState};
use crate::domain::resource::{Action, ResourceContent, ResourceState, transition};
use crate::errors::{Error, Result};
use crate::events;
use crate::store::{ObjectionFilter, ObjectionRow, RegistrationRow, ResourceFilter, ResourceRow, StepRow, VersionRow};
use crate::views::{Objection, Registration, Resource, ResourceVersion};
use platform_runtime::paging::{Page, page_size};

/// What every use case needs.
#[derive(Clone)]
pub struct State {
    pub pool: Pool,
    pub relay: RelayHandle,
    pub profiles: Arc<Profiles>,
    pub calendar: &'static Calendar,
    pub topic_prefix: String,
    /// Resource rows this replica just read or wrote, so the next change of one skips its read.
    pub recent: Arc<RecentRows<Uuid, ResourceRow>>,
}

/// Roles that may read the published catalog: every platform role.
pub const READERS: &[Role] = &Role::ALL;

impl State {
    async fn conn(&self) -> Result<platform_store::PooledConn> {
        Ok(platform_store::conn(&self.pool).await?)
    }
}

/// The current time as PostgreSQL stores it (microseconds), so a row held in memory after a
/// write is the row in the database.
fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t.duration_trunc(chrono::TimeDelta::microseconds(1)).unwrap_or(t)
}

fn check_content(c: &ResourceContent) -> Result<()> {
    c.validate().map_err(Error::Invalid)
}

fn reason_text(field: &str, reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::Invalid(crate::domain::resource::Invalid {
            field: field.into(),
            reason: "a reason is required".into(),
        }));
    }
    if r.chars().count() > 2000 {
        return Err(Error::Invalid(crate::domain::resource::Invalid {
            field: field.into(),
            reason: "must be at most 2000 characters".into(),
        }));
    }
    Ok(r.to_string())
}

/// Drafts and submissions are visible only to the catalog's own departments in the jurisdiction.
fn visible(caller: &Caller, row: &ResourceRow) -> bool {
    matches!(row.state.as_str(), "published" | "withdrawn")
        || ((caller.has(Role::IndustryDept) || caller.has(Role::DataAdmin))
            && caller.jurisdiction() == row.jurisdiction)
}

// ---- resources -------------------------------------------------------------------------------

/// An industry department drafts a resource of its jurisdiction (ZJK-7).
pub async fn create_resource(s: &State, caller: &Caller, content: ResourceContent) -> Result<Resource> {
    check_content(&content)?;
    s.profiles.jurisdiction(caller.jurisdiction())?;
    let row = ResourceRow::draft(Uuid::now_v7(), caller.jurisdiction(), caller.subject(), &content);
    let mut c = s.conn().await?;
    row.insert(&mut c).await?;
    Resource::from_row(&row)
}

/// A resource the caller may change: visible to it and of its jurisdiction.
fn own(caller: &Caller, row: &ResourceRow) -> Result<()> {
    if !visible(caller, row) {
        return Err(Error::ResourceNotFound(row.id));
    }
    caller.require_jurisdiction(&row.jurisdiction)?;
    Ok(())
}

/// How often a change is decided again when the resource keeps changing under it.
const CHANGE_ATTEMPTS: usize = 5;

/// Starts from the resource row, lets `f` decide the change (new row state, plus history and
/// outbox rows into the write), and commits all of it as one statement guarded by the row's
/// `xmin`: if another change committed in between, nothing is written and `f` decides again on
/// the new state. One round trip and one commit when this replica holds the row from a moment
/// ago ([`State::recent`]), a read more otherwise (platform_messaging::atomic).
///
/// A held row may be behind the database (another replica changed it): the guard refuses the
/// write then, and a refusal decided on a held row (a transition it does not allow, a visibility
/// check) is decided again on a fresh read before it is reported.
async fn change<F>(s: &State, caller: &Caller, id: Uuid, f: F) -> Result<Resource>
where
    F: Fn(&mut ResourceRow, &mut AtomicWrite) -> Result<()>,
{
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let mut held = s.recent.take(&id);
    for _ in 0..CHANGE_ATTEMPTS {
        let from_held = held.is_some();
        let (mut row, xmin) = match held.take() {
            Some(h) => h,
            None => {
                s.recent.record(RecentOutcome::Miss);
                ResourceRow::find_versioned(conn, id).await?
            }
        };
        let mut write = AtomicWrite::default();
        let decided = own(caller, &row).and_then(|()| f(&mut row, &mut write));
        match decided {
            Ok(()) => {}
            Err(_) if from_held => {
                s.recent.record(RecentOutcome::Stale);
                continue;
            }
            Err(e) => return Err(e),
        }
        row.updated_at = now();
        write.guard(row.guarded_update(xmin));
        let committed = match write.commit(conn).await {
            // A concurrent change of the same resource took this version number first (only
            // possible if the history row is written before the guard is checked): decide again.
            Err(e) if platform_store::unique_violation(&e) == Some("resource_versions_pkey") => Committed::Stale,
            r => r.map_err(|e| row.write_error(e))?,
        };
        match committed {
            Committed::Done { version } => {
                if from_held {
                    s.recent.record(RecentOutcome::Hit);
                }
                s.relay.wake();
                let view = Resource::from_row(&row);
                if let Some(v) = version {
                    s.recent.put(id, row, v);
                }
                return view;
            }
            Committed::Stale if from_held => s.recent.record(RecentOutcome::Stale),
            Committed::Stale => {}
        }
    }
    Err(Error::Contended(id))
}

pub async fn update_resource(s: &State, caller: &Caller, id: Uuid, content: ResourceContent) -> Result<Resource> {
    check_content(&content)?;
    change(s, caller, id, |row, _| {
        let to = transition(row.state()?, Action::Edit, row.pending_revision.is_some()).map_err(Error::Transition)?;
        row.set_content(&content);
        row.state = to.as_str().into();
        row.rejection_reason = None;
        Ok(())
    })
    .await
}

pub async fn submit_resource(s: &State, caller: &Caller, id: Uuid) -> Result<Resource> {
    change(s, caller, id, |row, _| {
        let to = transition(row.state()?, Action::Submit, false).map_err(Error::Transition)?;
        row.content()?.validate().map_err(Error::Invalid)?;
        row.state = to.as_str().into();
        row.rejection_reason = None;
        Ok(())
    })
    .await
}

/// The data management department publishes a submitted resource (ZJK-7): version 1, history
/// kept, `catalog.resource.v1` published. Not-open and unconsented shared-in resources are
/// published but not authorizable (NS-2, SX-5).
pub async fn publish_resource(s: &State, caller: &Caller, id: Uuid) -> Result<Resource> {
    change(s, caller, id, |row, write| {
        let to = transition(row.state()?, Action::Publish, false).map_err(Error::Transition)?;
        row.state = to.as_str().into();
        row.version += 1;
        row.published_at = Some(now());
        write.write(row.version_row(caller.subject())?);
        events::resource_changed(write, &s.topic_prefix, row, ResourceChange::Published)
    })
    .await
}

pub async fn reject_resource(s: &State, caller: &Caller, id: Uuid, reason: &str) -> Result<Resource> {
    let reason = reason_text("reason", reason)?;
    change(s, caller, id, |row, _| {
        let to = transition(row.state()?, Action::Reject, false).map_err(Error::Transition)?;
        row.state = to.as_str().into();
        row.rejection_reason = Some(reason.clone());
        Ok(())
    })
    .await
}

pub async fn withdraw_resource(s: &State, caller: &Caller, id: Uuid, reason: &str) -> Result<Resource> {
    let reason = reason_text("reason", reason)?;
    change(s, caller, id, |row, write| {
        let to =
            transition(row.state()?, Action::Withdraw, row.pending_revision.is_some()).map_err(Error::Transition)?;
        row.state = to.as_str().into();
        row.withdrawal_reason = Some(reason.clone());
        row.pending_revision = None;
        events::resource_changed(write, &s.topic_prefix, row, ResourceChange::Withdrawn)
    })
    .await
}

/// An industry department proposes the next version of a published resource; the code stays.
pub async fn propose_revision(
    s: &State,
    caller: &Caller,
    id: Uuid,
    content: ResourceContent,
    note: &str,
) -> Result<Resource> {
    check_content(&content)?;
    let note = reason_text("note", note)?;
    change(s, caller, id, |row, _| {
        transition(row.state()?, Action::ProposeRevision, row.pending_revision.is_some()).map_err(Error::Transition)?;
        if content.code != row.code {
            return Err(Error::Invalid(crate::domain::resource::Invalid {
                field: "content.code".into(),
                reason: format!("a new version keeps the code `{}`", row.code),
            }));
        }
        row.pending_revision = Some(serde_json::to_value(&content).unwrap_or_default());
        row.revision_note = Some(note.clone());
        Ok(())
    })
    .await
}

/// The data management department publishes the pending revision as the next version.
pub async fn publish_revision(s: &State, caller: &Caller, id: Uuid) -> Result<Resource> {
    change(s, caller, id, |row, write| {
        transition(row.state()?, Action::DecideRevision, row.pending_revision.is_some()).map_err(Error::Transition)?;
        let Some(next) = row.pending_revision()? else { return Err(Error::Corrupt("revision vanished".into())) };
        row.set_content(&next);
        row.pending_revision = None;
        row.version += 1;
        row.published_at = Some(now());
        write.write(row.version_row(caller.subject())?);
        events::resource_changed(write, &s.topic_prefix, row, ResourceChange::Versioned)
    })
    .await
}

pub async fn reject_revision(s: &State, caller: &Caller, id: Uuid, reason: &str) -> Result<Resource> {
    let reason = reason_text("reason", reason)?;
    change(s, caller, id, |row, _| {
        transition(row.state()?, Action::DecideRevision, row.pending_revision.is_some()).map_err(Error::Transition)?;
        row.pending_revision = None;
        row.revision_note = Some(format!("rejected: {reason}"));
        Ok(())
    })
    .await
}

/// One resource. Read by one of the catalog's departments, the row is held for a moment
/// ([`State::recent`]): a reviewer who opens a resource and then publishes or rejects it changes
/// it in one round trip.
pub async fn get_resource(s: &State, caller: &Caller, id: Uuid) -> Result<Resource> {
    let mut c = s.conn().await?;
    let (row, xmin) = ResourceRow::find_versioned(&mut c, id).await?;
    if !visible(caller, &row) {
        return Err(Error::ResourceNotFound(id));
    }
    let view = Resource::from_row(&row);
    if caller.has(Role::IndustryDept) || caller.has(Role::DataAdmin) {
        s.recent.put(id, row, xmin);
    }
    view
}

pub async fn resource_versions(s: &State, caller: &Caller, id: Uuid) -> Result<Vec<ResourceVersion>> {
    let mut c = s.conn().await?;
    let row = ResourceRow::find(&mut c, id).await?;
    if !visible(caller, &row) {
        return Err(Error::ResourceNotFound(id));
    }
    Ok(VersionRow::find_by_resource(&mut c, id).await?.into_iter().map(Into::into).collect())
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<Uuid>> {
    cursor.map(|c| Uuid::parse_str(c).map_err(|_| Error::BadCursor)).transpose()
}

/// Catalog search; unpublished states are visible only to the caller's own departments.
pub async fn search(
    s: &State,
    caller: &Caller,
    mut f: ResourceFilter,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<Resource>> {
    f.after = parse_cursor(cursor)?;
    let size = page_size(limit)?;
    f.limit = size + 1;
    if f.states.is_empty() {
        f.states = vec![ResourceState::Published];
    }
    if let Some(t) = &f.text
        && t.chars().count() > 100
    {
        return Err(Error::Invalid(crate::domain::resource::Invalid {
            field: "q".into(),
            reason: "at most 100 characters".into(),
        }));
    }
    let private = f.states.iter().any(|st| !matches!(st, ResourceState::Published | ResourceState::Withdrawn));
    if private {
        caller.require(&[Role::IndustryDept, Role::DataAdmin])?;
        match &f.jurisdiction {
            Some(j) => {
                caller.require_jurisdiction(j)?;
            }
            None => f.jurisdiction = Some(caller.jurisdiction().to_string()),
        }
    }
    let mut c = s.conn().await?;
    let rows = ResourceRow::search(&mut c, &f).await?;
    Page::from_fetched(rows, size, |r| r.id.to_string(), |r| Resource::from_row(&r))
}

// ---- registration ----------------------------------------------------------------------------

/// Registers a published, authorizable resource (SX-6, ZJK-22): a number unique and gap-free per
/// jurisdiction and year. Registering again answers the existing registration.
pub async fn register_resource(s: &State, caller: &Caller, id: Uuid) -> Result<(Registration, bool)> {
    let prefix = s.topic_prefix.clone();
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let (row, created) = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let resource = ResourceRow::find_for_update(c, id).await?;
            caller.require_jurisdiction(&resource.jurisdiction)?;
            if let Some(existing) = RegistrationRow::find_by_subject(c, "resource", id).await? {
                return Ok((existing, false));
            }
            if resource.state()? != ResourceState::Published {
                return Err(Error::NotPublished);
            }
            if let Some(rule) = resource.not_authorizable_rule.as_deref() {
                return Err(Error::NotAuthorizable(rule.to_string()));
            }
            let year = platform_calendar::today_in_china().year();
            let seq = RegistrationRow::next_seq(c, &resource.jurisdiction, year).await?;
            let reg = RegistrationRow {
                number: format!("{}-{year}-R-{seq:06}", resource.jurisdiction),
                jurisdiction: resource.jurisdiction.clone(),
                year,
                seq,
                subject_kind: "resource".into(),
                subject_id: id,
                subject_version: resource.version,
                registered_by: caller.subject().into(),
                registered_at: Utc::now(),
            };
            reg.insert(c).await?;
            events::registered(c, &prefix, &reg).await?;
            Ok((reg, true))
        })
        .await?;
    s.relay.wake();
    Ok((row.into(), created))
}

pub async fn get_registration(s: &State, number: &str) -> Result<Registration> {
    let mut c = s.conn().await?;
    Ok(RegistrationRow::find(&mut c, number).await?.into())
}

pub async fn list_registrations(
    s: &State,
    jurisdiction: Option<&str>,
    year: Option<i32>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<Registration>> {
    let size = page_size(limit)?;
    let mut c = s.conn().await?;
    let rows = RegistrationRow::list(&mut c, jurisdiction, year, cursor, size + 1).await?;
    Page::from_fetched(rows, size, |r| r.number.clone(), |r| Ok(r.into()))
}

// ---- objections ------------------------------------------------------------------------------

/// An operator or partner objects to a published resource or one of its fields. It is due the
/// profile's number of working days later (LZ-5: 15), on the official calendar.
pub async fn file_objection(
    s: &State,
    caller: &Caller,
    resource_id: Uuid,
    field: Option<String>,
    description: &str,
) -> Result<Objection> {
    let description = reason_text("description", description)?;
    let prefix = s.topic_prefix.clone();
    let profiles = s.profiles.clone();
    let calendar = s.calendar;
    let today = platform_calendar::today_in_china();
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let resource = ResourceRow::find(c, resource_id).await?;
            if resource.state()? != ResourceState::Published {
                return Err(Error::NotPublished);
            }
            if let Some(f) = &field
                && !resource.content()?.fields.iter().any(|x| &x.name == f)
            {
                return Err(Error::UnknownField(f.clone()));
            }
            let profile = profiles.resolve(&resource.jurisdiction)?;
            let deadline = profile.objection_deadline()?;
            let due = objection::due_date(calendar, today, deadline.value);
            if due.provisional {
                tracing::warn!(due = %due.date, "objection deadline is provisional: the holiday calendar of its year is not loaded");
            }
            let now = Utc::now();
            let row = ObjectionRow {
                id: Uuid::now_v7(),
                resource_id,
                field,
                jurisdiction: resource.jurisdiction.clone(),
                description: description.clone(),
                state: ObjectionState::Open.as_str().into(),
                filed_by: caller.subject().into(),
                filed_org: caller.org().into(),
                due_date: due.date,
                due_date_provisional: due.provisional,
                deadline_rule: deadline.rule.clone(),
                step_seq: 1,
                created_at: now,
                updated_at: now,
            };
            row.insert(c).await?;
            let step = StepRow {
                objection_id: row.id,
                seq: 1,
                from_state: None,
                to_state: row.state.clone(),
                actor: caller.subject().into(),
                actor_org: caller.org().into(),
                reason: description,
                at: now,
            };
            step.insert(c).await?;
            events::objection_step(c, &prefix, &row, &step).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    let mut c = s.conn().await?;
    let steps = StepRow::find_by_objection(&mut c, row.id).await?;
    Objection::from_row(row, today, steps)
}

/// Roles that may take each objection step.
pub fn step_roles(action: ObjectionAction) -> &'static [Role] {
    match action {
        ObjectionAction::Accept | ObjectionAction::Reject => &[Role::IndustryDept, Role::DataAdmin],
        ObjectionAction::Rectify => &[Role::DataSourceUnit, Role::IndustryDept],
    }
}

pub async fn objection_step(
    s: &State,
    caller: &Caller,
    id: Uuid,
    action: ObjectionAction,
    reason: &str,
) -> Result<Objection> {
    let reason = reason_text("reason", reason)?;
    let prefix = s.topic_prefix.clone();
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = ObjectionRow::find_for_update(c, id).await?;
            caller.require_jurisdiction(&row.jurisdiction)?;
            let from = row.state()?;
            let to = objection::step(from, action).map_err(Error::Step)?;
            row.state = to.as_str().into();
            row.step_seq += 1;
            row.save_state(c).await?;
            let step = StepRow {
                objection_id: id,
                seq: row.step_seq,
                from_state: Some(from.as_str().into()),
                to_state: to.as_str().into(),
                actor: caller.subject().into(),
                actor_org: caller.org().into(),
                reason,
                at: Utc::now(),
            };
            step.insert(c).await?;
            events::objection_step(c, &prefix, &row, &step).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    let mut c = s.conn().await?;
    let steps = StepRow::find_by_objection(&mut c, id).await?;
    Objection::from_row(row, platform_calendar::today_in_china(), steps)
}

/// Operators and partners see the objections their organisation filed; the catalog's
/// departments see their jurisdiction's.
fn objection_scope(caller: &Caller, f: &mut ObjectionFilter) {
    if caller.has(Role::IndustryDept) || caller.has(Role::DataAdmin) || caller.has(Role::DataSourceUnit) {
        f.jurisdiction = Some(caller.jurisdiction().to_string());
    } else {
        f.filed_org = Some(caller.org().to_string());
    }
}

pub async fn get_objection(s: &State, caller: &Caller, id: Uuid) -> Result<Objection> {
    let mut c = s.conn().await?;
    let row = ObjectionRow::find(&mut c, id).await?;
    let mut scope = ObjectionFilter::default();
    objection_scope(caller, &mut scope);
    let allowed = scope.jurisdiction.as_deref().is_none_or(|j| j == row.jurisdiction)
        && scope.filed_org.as_deref().is_none_or(|o| o == row.filed_org);
    if !allowed {
        return Err(Error::ObjectionNotFound(id));
    }
    let steps = StepRow::find_by_objection(&mut c, id).await?;
    Objection::from_row(row, platform_calendar::today_in_china(), steps)
}

/// Lists objections; `overdue_as_of` lists those pending past their due date on that day.
pub async fn list_objections(
    s: &State,
    caller: &Caller,
    mut f: ObjectionFilter,
    overdue_as_of: Option<NaiveDate>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<Objection>> {
    objection_scope(caller, &mut f);
    f.overdue_on = overdue_as_of;
    f.after = parse_cursor(cursor)?;
    let size = page_size(limit)?;
    f.limit = size + 1;
    let today = overdue_as_of.unwrap_or_else(platform_calendar::today_in_china);
    let mut c = s.conn().await?;
    let rows = ObjectionRow::search(&mut c, &f).await?;
    Page::from_fetched(rows, size, |r| r.id.to_string(), |r| Objection::from_row(r, today, Vec::new()))
}
