//! Authorization's use cases: one transaction each, the new state and its event together.

use chrono::Utc;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use platform_auth::{Caller, Role};
use platform_calendar::Calendar;
use platform_messaging::RelayHandle;
use platform_store::Pool;
use uuid::Uuid;

use crate::domain::plan::{self, PlanAction, PlanContents, PlanState};
use crate::errors::{Error, Result};
use crate::events;
use crate::store::{CatalogResource, PlanRow, PlanStep, ProfileRow};
use crate::views::{JurisdictionProfile, Plan};
use platform_runtime::paging::{Page, page_size};

#[derive(Clone)]
pub struct State {
    pub pool: Pool,
    pub relay: RelayHandle,
    pub calendar: &'static Calendar,
    pub topic_prefix: String,
}

/// A keyset page request over ids: the rows after `after` in id order, `size` of them.
pub struct PageRequest {
    pub after: Option<Uuid>,
    pub size: i64,
}

impl PageRequest {
    /// Checks the page size (shared rule) and the cursor (an id of this list).
    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<PageRequest> {
        let size = page_size(limit)?;
        let after = cursor
            .map(|c| {
                Uuid::parse_str(c)
                    .map_err(|_| Error::Invalid { field: "cursor".into(), reason: "not a cursor of this list".into() })
            })
            .transpose()?;
        Ok(PageRequest { after, size })
    }

    /// Rows to fetch: one more than the page, to know whether more follow.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// The page of `rows` (fetched with [`PageRequest::fetch`]).
    pub fn page<R, T>(&self, rows: Vec<R>, id: impl Fn(&R) -> Uuid, view: impl Fn(R) -> Result<T>) -> Result<Page<T>> {
        Page::from_fetched(rows, self.size, |r| id(r).to_string(), view)
    }
}

impl State {
    async fn conn(&self) -> Result<platform_store::PooledConn> {
        Ok(platform_store::conn(&self.pool).await?)
    }
}

/// Stores each jurisdiction's effective profile as a new version when it differs from the newest
/// stored one: its own file changed, or only a parent's did (the national defaults, say) while its
/// own file version stayed. Old versions stay, so plans, agreements and grants keep the version
/// they were made under. A new version is the stored one plus one, or the file's version when
/// that is higher (a fresh database numbers as the files do). Returns the versions added.
pub async fn load_profiles(pool: &Pool, profiles: &platform_policy::Profiles) -> Result<usize> {
    let mut pooled = platform_store::conn(pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        ProfileRow::lock_for_loading(c).await?;
        let mut added = 0;
        for j in profiles.jurisdictions() {
            let mut resolved = profiles.resolve(&j.code).map_err(|e| Error::Corrupt(e.to_string()))?;
            let level =
                serde_json::to_value(j.level).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let file_version = j.version as i32;
            let mut row = ProfileRow {
                jurisdiction: j.code.clone(),
                version: file_version,
                name: j.name.clone(),
                level,
                parent: j.parent.clone(),
                profile: serde_json::to_value(&resolved).unwrap_or_default(),
                loaded_at: Utc::now(),
                file_version,
            };
            if let Some(stored) = ProfileRow::find_current(c, &j.code).await? {
                if stored.same_content(&row) {
                    continue;
                }
                row.version = (stored.version + 1).max(file_version);
            }
            resolved.version = row.version as u32;
            row.profile = serde_json::to_value(&resolved).unwrap_or_default();
            row.insert(c).await?;
            added += 1;
        }
        Ok(added)
    })
    .await
}

pub async fn profiles(s: &State) -> Result<Vec<JurisdictionProfile>> {
    let mut c = s.conn().await?;
    ProfileRow::all_current(&mut c).await?.into_iter().map(JurisdictionProfile::from_row).collect()
}

pub async fn profile(s: &State, jurisdiction: &str, version: Option<i32>) -> Result<JurisdictionProfile> {
    let mut c = s.conn().await?;
    let row = match version {
        Some(v) => ProfileRow::find(&mut c, jurisdiction, v).await?,
        None => ProfileRow::current(&mut c, jurisdiction).await?,
    };
    JurisdictionProfile::from_row(row)
}

/// Whether `child` is `ancestor` or lies under it in the jurisdiction tree.
async fn within(c: &mut AsyncPgConnection, ancestor: &str, child: &str) -> Result<bool> {
    let mut code = child.to_string();
    for _ in 0..8 {
        if code == ancestor {
            return Ok(true);
        }
        match ProfileRow::current(c, &code).await.ok().and_then(|r| r.parent) {
            Some(p) => code = p,
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// Checks what is present of the contents against the profile and the catalog: the mode is one
/// the profile allows; every resource in scope is known, in the plan's jurisdiction (or below),
/// and authorizable (NS-2, SX-5).
async fn check_contents(
    c: &mut AsyncPgConnection,
    jurisdiction: &str,
    profile: &platform_policy::Profile,
    contents: &PlanContents,
) -> Result<()> {
    if let Some(name) = &contents.name
        && name.chars().count() > 200
    {
        return Err(Error::Invalid { field: "name".into(), reason: "at most 200 characters".into() });
    }
    if let Some(mode) = contents.mode.as_deref().filter(|m| !m.trim().is_empty()) {
        plan::check_mode(mode, profile).map_err(Error::Mode)?;
    }
    check_resources(c, jurisdiction, &contents.resource_ids()).await
}

/// Every resource of `ids` is known, authorizable (NS-2, SX-5) and in `jurisdiction` (or below).
pub async fn check_resources(c: &mut AsyncPgConnection, jurisdiction: &str, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found = CatalogResource::find_many(c, ids).await?;
    let unknown: Vec<Uuid> = ids.iter().filter(|id| !found.iter().any(|r| r.id == **id)).copied().collect();
    if !unknown.is_empty() {
        return Err(Error::UnknownResources(unknown));
    }
    for r in &found {
        if !r.authorizable {
            let rule = r
                .not_authorizable_rule
                .clone()
                .unwrap_or_else(|| if r.withdrawn { "withdrawn".into() } else { "NS-2".into() });
            return Err(Error::NotAuthorizable { id: r.id, rule });
        }
        if !within(c, jurisdiction, &r.jurisdiction).await? {
            return Err(Error::ForeignResource(r.id));
        }
    }
    Ok(())
}

fn reason_text(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 2000 {
        return Err(Error::Invalid {
            field: "reason".into(),
            reason: "a reason of 1 to 2000 characters is required".into(),
        });
    }
    Ok(r.to_string())
}

/// The implementing institution drafts a plan under its jurisdiction's current profile.
pub async fn create_plan(s: &State, caller: &Caller, contents: PlanContents) -> Result<Plan> {
    let prefix = s.topic_prefix.clone();
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let (row, steps) = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let profile_row = ProfileRow::current(c, caller.jurisdiction()).await?;
            check_contents(c, caller.jurisdiction(), &profile_row.profile()?, &contents).await?;
            let now = Utc::now();
            let mut row = PlanRow {
                id: Uuid::now_v7(),
                jurisdiction: caller.jurisdiction().into(),
                name: contents.name.clone().unwrap_or_default(),
                state: PlanState::Draft.as_str().into(),
                mode: contents.mode.clone(),
                contents: serde_json::to_value(&contents).unwrap_or_default(),
                resource_ids: contents.resource_ids(),
                revision: 1,
                profile_version: profile_row.version,
                approved_contents: None,
                approved_at: None,
                filing_due: None,
                filing_due_provisional: false,
                filing_rule: None,
                filed_at: None,
                filed_late: None,
                event_seq: 0,
                created_by: caller.subject().into(),
                created_at: now,
                updated_at: now,
            };
            row.insert(c).await?;
            let step = PlanStep {
                plan_id: row.id,
                seq: 1,
                revision: 1,
                from_state: None,
                to_state: row.state.clone(),
                actor: caller.subject().into(),
                reason: "drafted".into(),
                at: now,
            };
            step.insert(c).await?;
            events::plan_step(c, &prefix, &mut row, &step).await?;
            row.save(c).await?;
            Ok((row, vec![step]))
        })
        .await?;
    s.relay.wake();
    Plan::from_row(row, steps)
}

async fn own_plan(c: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> Result<PlanRow> {
    let row = PlanRow::find(c, id, true).await?;
    if row.jurisdiction != caller.jurisdiction() {
        return Err(Error::PlanNotFound(id));
    }
    Ok(row)
}

/// Records a step of `row` (history + event) and saves it.
async fn record(
    c: &mut AsyncPgConnection,
    prefix: &str,
    row: &mut PlanRow,
    from: Option<PlanState>,
    actor: &str,
    reason: String,
) -> Result<()> {
    let seq = PlanStep::next_seq(c, row.id).await?;
    let step = PlanStep {
        plan_id: row.id,
        seq,
        revision: row.revision,
        from_state: from.map(|f| f.as_str().to_string()),
        to_state: row.state.clone(),
        actor: actor.into(),
        reason,
        at: Utc::now(),
    };
    step.insert(c).await?;
    events::plan_step(c, prefix, row, &step).await?;
    row.save(c).await
}

/// Edits a draft (the flow's only editable state).
pub async fn update_plan(s: &State, caller: &Caller, id: Uuid, contents: PlanContents) -> Result<Plan> {
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = own_plan(c, caller, id).await?;
            if row.state()? != PlanState::Draft {
                return Err(Error::Step(plan::InvalidStep {
                    from: row.state()?,
                    action: PlanAction::Submit,
                    allowed_in: vec![PlanState::Draft],
                }));
            }
            let profile = ProfileRow::find(c, &row.jurisdiction, row.profile_version).await?.profile()?;
            check_contents(c, &row.jurisdiction, &profile, &contents).await?;
            row.name = contents.name.clone().unwrap_or_default();
            row.mode = contents.mode.clone();
            row.resource_ids = contents.resource_ids();
            row.contents = serde_json::to_value(&contents).unwrap_or_default();
            row.save(c).await?;
            Ok(row)
        })
        .await?;
    let mut c = s.conn().await?;
    let steps = PlanStep::find_by_plan(&mut c, id).await?;
    Plan::from_row(row, steps)
}

/// Roles that may take each step.
pub fn step_roles(action: PlanAction) -> &'static [Role] {
    match action {
        PlanAction::Submit => &[Role::ImplementingInstitution],
        // SX-17: the data management department leads the feasibility review; SX-18: it takes the
        // reviewed plan to the government and records the decision; SX-19: it files.
        PlanAction::PassFeasibility | PlanAction::Return | PlanAction::Approve | PlanAction::File => &[Role::DataAdmin],
    }
}

/// Takes one step of the flow.
pub async fn step(s: &State, caller: &Caller, id: Uuid, action: PlanAction, reason: &str) -> Result<Plan> {
    let reason = reason_text(reason)?;
    let prefix = s.topic_prefix.clone();
    let calendar = s.calendar;
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = own_plan(c, caller, id).await?;
            let profile_row = ProfileRow::find(c, &row.jurisdiction, row.profile_version).await?;
            let profile = profile_row.profile()?;
            let files = matches!(profile_row.level.as_str(), "city" | "district");
            let from = row.state()?;
            let to = plan::step(from, action, files).map_err(Error::Step)?;
            let today = platform_calendar::today_in_china();
            match action {
                PlanAction::Submit => {
                    let contents = row.contents()?;
                    let missing = contents.missing();
                    if !missing.is_empty() {
                        return Err(Error::MissingContents(missing));
                    }
                    check_contents(c, &row.jurisdiction, &profile, &contents).await?;
                }
                PlanAction::Approve => {
                    row.approved_at = Some(Utc::now());
                    row.approved_contents = Some(row.contents.clone());
                    match plan::filing_due(&profile, files, today, calendar) {
                        Some(due) => {
                            row.filing_due = Some(due.date);
                            row.filing_due_provisional = due.provisional;
                            row.filing_rule = Some(due.rule);
                        }
                        None => {
                            row.filing_due = None;
                            row.filing_rule = None;
                        }
                    }
                    row.filed_at = None;
                    row.filed_late = None;
                }
                PlanAction::File => {
                    row.filed_at = Some(Utc::now());
                    row.filed_late = row.filing_due.map(|d| today > d);
                }
                PlanAction::PassFeasibility | PlanAction::Return => {}
            }
            row.state = to.as_str().into();
            record(c, &prefix, &mut row, Some(from), caller.subject(), reason).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    let mut c = s.conn().await?;
    let steps = PlanStep::find_by_plan(&mut c, id).await?;
    Plan::from_row(row, steps)
}

/// Changes an approved plan: the new contents go through the whole flow again as the next
/// revision while the approved contents stay in force (SX-18; WF-11 names mode, data scope and
/// revenue sharing; here every change re-enters the flow, which satisfies both).
pub async fn change_plan(s: &State, caller: &Caller, id: Uuid, contents: PlanContents, reason: &str) -> Result<Plan> {
    let reason = reason_text(reason)?;
    let prefix = s.topic_prefix.clone();
    let mut pooled = s.conn().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = own_plan(c, caller, id).await?;
            let from = row.state()?;
            if !matches!(from, PlanState::Approved | PlanState::Filed) {
                return Err(Error::Step(plan::InvalidStep {
                    from,
                    action: PlanAction::Submit,
                    allowed_in: vec![PlanState::Approved, PlanState::Filed],
                }));
            }
            let profile = ProfileRow::find(c, &row.jurisdiction, row.profile_version).await?.profile()?;
            check_contents(c, &row.jurisdiction, &profile, &contents).await?;
            row.revision += 1;
            row.state = PlanState::Draft.as_str().into();
            row.name = contents.name.clone().unwrap_or_default();
            row.mode = contents.mode.clone();
            row.resource_ids = contents.resource_ids();
            row.contents = serde_json::to_value(&contents).unwrap_or_default();
            record(c, &prefix, &mut row, Some(from), caller.subject(), format!("change: {reason}")).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    let mut c = s.conn().await?;
    let steps = PlanStep::find_by_plan(&mut c, id).await?;
    Plan::from_row(row, steps)
}

pub async fn get_plan(s: &State, caller: &Caller, id: Uuid) -> Result<Plan> {
    let mut c = s.conn().await?;
    let row = PlanRow::find(&mut c, id, false).await?;
    if row.jurisdiction != caller.jurisdiction() {
        return Err(Error::PlanNotFound(id));
    }
    let steps = PlanStep::find_by_plan(&mut c, id).await?;
    Plan::from_row(row, steps)
}

pub async fn list_plans(
    s: &State,
    caller: &Caller,
    filing_overdue_as_of: Option<chrono::NaiveDate>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<Plan>> {
    let req = PageRequest::parse(cursor, limit)?;
    let mut c = s.conn().await?;
    let rows = PlanRow::list(&mut c, caller.jurisdiction(), filing_overdue_as_of, req.after, req.fetch()).await?;
    req.page(rows, |r| r.id, |r| Plan::from_row(r, Vec::new()))
}
