//! Two tiers (一体统筹、两级授权, ZJK-11): the primary operator sub-authorizes a partner for one
//! scenario, within its own agreement's scope and term and the profile's secondary maximum
//! (ZJK-17: 3 years), reported to the coordination office before it takes effect where the
//! profile says so (ZJK-17); a partner never sub-authorizes (ZJK-11); Weifang forbids
//! sub-authorization altogether (WF-26).

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use platform_auth::{Caller, Role};
use platform_problems::Problem;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::State;
use crate::errors::{Error, Result};
use crate::events;
use crate::store::{AgreementRow, ProfileRow};
use crate::views::ScopeItem;
use platform_events::authorization::SubAuthorizationChange;

diesel::table! {
    sub_authorizations (id) {
        id -> Uuid,
        agreement_id -> Uuid,
        jurisdiction -> Text,
        operator_org -> Text,
        partner_org -> Text,
        partner_name -> Text,
        scenario -> Text,
        scope -> Jsonb,
        term_start -> Date,
        term_end -> Date,
        state -> Text,
        rule -> Nullable<Text>,
        reported_at -> Nullable<Timestamptz>,
        created_by -> Text,
        created_at -> Timestamptz,
        event_seq -> Integer,
        ended_at -> Nullable<Timestamptz>,
        end_reason -> Nullable<Text>,
        renewal_requested_at -> Nullable<Timestamptz>,
        renews -> Nullable<Uuid>,
        renewed_as -> Nullable<Uuid>,
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = sub_authorizations, treat_none_as_null = true)]
pub struct SubAuthorization {
    pub id: Uuid,
    pub agreement_id: Uuid,
    pub jurisdiction: String,
    pub operator_org: String,
    pub partner_org: String,
    pub partner_name: String,
    pub scenario: String,
    #[schema(value_type = Object)]
    pub scope: serde_json::Value,
    pub term_start: NaiveDate,
    /// The last day in force (inclusive); it ends the day after (ZJK-17: at most 3 years).
    pub term_end: NaiveDate,
    /// `pending_report` until reported (ZJK-17), then `effective`; `ended` with its term or its
    /// agreement.
    pub state: String,
    /// The rule that governs it (ZJK-17, NS-19...).
    pub rule: Option<String>,
    pub reported_at: Option<chrono::DateTime<Utc>>,
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
    /// Events published on `authorization.agreement.v1` so far.
    #[serde(skip)]
    pub event_seq: i32,
    pub ended_at: Option<chrono::DateTime<Utc>>,
    pub end_reason: Option<String>,
    /// When the partner applied to sign again (ZJK-17: in the last 3 months of the term).
    pub renewal_requested_at: Option<chrono::DateTime<Utc>>,
    /// The sub-authorization this one re-signs (it starts the day after that one's last day).
    pub renews: Option<Uuid>,
    /// The sub-authorization that re-signed this one.
    pub renewed_as: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubAuthorizationInput {
    pub partner_org: String,
    pub partner_name: String,
    /// One scenario per sub-authorization (ZJK-17: 一场景一授权).
    pub scenario: String,
    pub scope: Vec<ScopeItem>,
    pub term_start: NaiveDate,
    /// The last day in force (inclusive); it ends the day after (ZJK-17: at most 3 years).
    pub term_end: NaiveDate,
}

fn refused(slug: &'static str, field: Option<&str>, reason: impl Into<String>, rule: impl Into<String>) -> Error {
    Error::Refused { slug, field: field.map(str::to_string), reason: reason.into(), rule: rule.into() }
}

/// A partner asking to sub-authorize is refused by rule, not only by role (ZJK-11).
pub fn refuse_partner(caller: &Caller) -> std::result::Result<(), Problem> {
    if caller.has(Role::Partner) && !caller.has(Role::Operator) {
        return Err(Problem::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "partner-cannot-sub-authorize",
            "Partners cannot sub-authorize",
        )
        .with_rule("ZJK-11")
        .with_detail("a partner (二级开发运营主体) may not sub-authorize; only the primary operator can"));
    }
    Ok(())
}

pub async fn create(
    s: &State,
    caller: &Caller,
    agreement_id: Uuid,
    input: SubAuthorizationInput,
) -> Result<SubAuthorization> {
    for (field, v) in
        [("partner_org", &input.partner_org), ("partner_name", &input.partner_name), ("scenario", &input.scenario)]
    {
        if v.trim().is_empty() || v.chars().count() > 200 {
            return Err(Error::Invalid { field: field.into(), reason: "1 to 200 characters".into() });
        }
    }
    if input.scope.is_empty() {
        return Err(Error::Invalid { field: "scope".into(), reason: "at least one resource".into() });
    }
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            create_in(c, &s.topic_prefix, caller, agreement_id, input, None).await
        })
        .await?;
    s.relay.wake();
    Ok(row)
}

async fn create_in(
    c: &mut AsyncPgConnection,
    topic_prefix: &str,
    caller: &Caller,
    agreement_id: Uuid,
    input: SubAuthorizationInput,
    renews: Option<Uuid>,
) -> Result<SubAuthorization> {
    // The agreement is locked so that its end cannot pass a sub-authorization being made.
    let a = AgreementRow::find(c, agreement_id, true).await?;
    if a.operator_org != caller.org() {
        return Err(Error::AgreementNotFound(agreement_id));
    }
    if a.state != "active" {
        return Err(Error::Conflict {
            state: a.state,
            reason: "only an active agreement can be sub-authorized".into(),
        });
    }
    let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
    let policy = profile.values.sub_authorization.clone();
    if let Some(p) = policy.as_ref().filter(|p| p.value == "forbidden") {
        return Err(refused(
            "sub-authorization-forbidden",
            None,
            "the operator may not sub-authorize or pass data to a third party",
            p.rule.clone(),
        ));
    }
    // Within the primary's own scope (ZJK-17).
    let own: Vec<ScopeItem> = serde_json::from_value(a.scope.clone()).unwrap_or_default();
    for (i, item) in input.scope.iter().enumerate() {
        let covered = own
            .iter()
            .find(|o| o.resource_id == item.resource_id)
            .is_some_and(|o| item.fields.iter().all(|f| o.fields.contains(f)));
        if !covered || item.fields.is_empty() {
            return Err(refused(
                "outside-agreement-scope",
                Some(&format!("scope[{i}]")),
                "a partner's scope lies within the primary's own",
                "ZJK-17",
            ));
        }
    }
    // Within the primary's term, and the secondary maximum (ZJK-17: 3 years, its last day
    // term_start + 3 years − 1 day).
    if input.term_end <= input.term_start || input.term_start < a.term_start || input.term_end > a.term_end {
        return Err(refused(
            "term-not-allowed",
            Some("term_end"),
            format!("the term lies within the agreement's, {} to {}", a.term_start, a.term_end),
            "ZJK-17",
        ));
    }
    crate::domain::agreement::check_secondary_term(input.term_start, input.term_end, &profile)
        .map_err(|t| refused("term-not-allowed", Some("term_end"), t.reason, t.rule))?;
    let must_report = policy.as_ref().is_some_and(|p| p.value == "after_filing");
    let mut row = SubAuthorization {
        id: Uuid::now_v7(),
        agreement_id,
        jurisdiction: a.jurisdiction,
        operator_org: a.operator_org,
        partner_org: input.partner_org.trim().into(),
        partner_name: input.partner_name.trim().into(),
        scenario: input.scenario.trim().into(),
        scope: serde_json::to_value(&input.scope).unwrap_or_default(),
        term_start: input.term_start,
        term_end: input.term_end,
        state: if must_report { "pending_report" } else { "effective" }.into(),
        rule: policy.map(|p| p.rule),
        reported_at: None,
        created_by: caller.subject().into(),
        created_at: Utc::now(),
        event_seq: 0,
        ended_at: None,
        end_reason: None,
        renewal_requested_at: None,
        renews,
        renewed_as: None,
    };
    let (change, effect) = if must_report {
        (SubAuthorizationChange::Created, "takes effect once reported")
    } else {
        (SubAuthorizationChange::Effective, "effective")
    };
    let reason = match renews {
        Some(old) => format!("re-signed on the partner's application, renewing {old}; {effect}"),
        None => format!("made; {effect}"),
    };
    events::sub_authorization_changed(c, topic_prefix, &mut row, change, caller.subject(), &reason).await?;
    diesel::insert_into(sub_authorizations::table).values(&row).execute(c).await?;
    Ok(row)
}

/// The primary operator records that it reported the sub-authorization (ZJK-17); it takes effect.
pub async fn report(s: &State, caller: &Caller, id: Uuid) -> Result<SubAuthorization> {
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut row = find_for_update(c, id).await?;
            if row.operator_org != caller.org() {
                return Err(not_the_callers(id));
            }
            if row.state != "pending_report" {
                return Err(Error::Conflict {
                    state: row.state,
                    reason: "only a pending sub-authorization is reported".into(),
                });
            }
            row.state = "effective".into();
            row.reported_at = Some(Utc::now());
            let (prefix, who) = (&s.topic_prefix, caller.subject());
            let why = "reported to the coordination office";
            events::sub_authorization_changed(c, prefix, &mut row, SubAuthorizationChange::Reported, who, why).await?;
            row.save(c).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    Ok(row)
}

/// What the primary operator writes when it re-signs: the new term's last day in force. It starts
/// the day after the old term's last day; scope and scenario carry over.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReSignInput {
    /// The last day in force (inclusive) of the new term (ZJK-17: at most 3 years from its start,
    /// and within the primary's own agreement).
    pub term_end: NaiveDate,
}

/// The rule under which a partner applies to sign again: the profile's secondary window (ZJK-17),
/// else the rule its sub-authorization was made under (NS-19), else the platform's.
fn renewal_rule(profile: &platform_policy::Profile, row: &SubAuthorization) -> String {
    profile
        .values
        .secondary_renewal_window_months
        .as_ref()
        .map(|w| w.rule.clone())
        .or_else(|| row.rule.clone())
        .unwrap_or_else(|| platform_policy::PLATFORM_DEFAULT.into())
}

/// The partner applies to the primary operator to sign its sub-authorization again, inside the
/// profile's window before its last day (ZJK-17: 期限届满前3个月内向一级开发运营主体申请重新签订).
/// Nothing is published: the re-signing is (a new sub-authorization's CREATED or EFFECTIVE).
pub async fn apply_for_renewal(s: &State, caller: &Caller, id: Uuid) -> Result<SubAuthorization> {
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        let mut row = find_for_update(c, id).await?;
        if row.partner_org != caller.org() {
            return Err(not_the_callers(id));
        }
        if row.state != "effective" || row.renewal_requested_at.is_some() {
            return Err(Error::Conflict {
                state: row.state,
                reason: "an effective sub-authorization is renewed once, on one application".into(),
            });
        }
        let a = AgreementRow::find(c, row.agreement_id, false).await?;
        let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
        crate::domain::agreement::check_secondary_renewal(platform_calendar::today_in_china(), row.term_end, &profile)
            .map_err(|t| refused("outside-renewal-window", None, t.reason, t.rule))?;
        row.renewal_requested_at = Some(Utc::now());
        row.save(c).await?;
        Ok(row)
    })
    .await
}

/// The primary operator re-signs on the partner's application (ZJK-17): a new sub-authorization
/// for the same partner, scenario and scope from the day after the old one's last day, within the
/// secondary maximum and its own agreement's term, reported before it takes effect where the
/// profile says so. The old one runs to its own last day.
pub async fn re_sign(s: &State, caller: &Caller, id: Uuid, input: ReSignInput) -> Result<SubAuthorization> {
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            // The agreement first, as everything that ends sub-authorizations locks it.
            let agreement_id = find(c, id).await?.agreement_id;
            AgreementRow::find(c, agreement_id, true).await?;
            let mut old = find_for_update(c, id).await?;
            if old.operator_org != caller.org() {
                return Err(not_the_callers(id));
            }
            if old.state == "ended" || old.renewed_as.is_some() {
                return Err(Error::Conflict {
                    state: old.state,
                    reason: "a sub-authorization in force and not yet re-signed is re-signed".into(),
                });
            }
            if old.renewal_requested_at.is_none() {
                let a = AgreementRow::find(c, old.agreement_id, false).await?;
                let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
                return Err(refused(
                    "renewal-not-applied-for",
                    None,
                    "the partner applies to sign again before the primary operator re-signs",
                    renewal_rule(&profile, &old),
                ));
            }
            let next = SubAuthorizationInput {
                partner_org: old.partner_org.clone(),
                partner_name: old.partner_name.clone(),
                scenario: old.scenario.clone(),
                scope: serde_json::from_value(old.scope.clone()).unwrap_or_default(),
                term_start: old.term_end.succ_opt().unwrap_or(old.term_end),
                term_end: input.term_end,
            };
            let new = create_in(c, &s.topic_prefix, caller, old.agreement_id, next, Some(old.id)).await?;
            old.renewed_as = Some(new.id);
            old.save(c).await?;
            Ok(new)
        })
        .await?;
    s.relay.wake();
    Ok(row)
}

/// The primary operator ends a partner's sub-authorization on its own, on one of the grounds its
/// rule names (ZJK-35: an incident, a breach, a poor evaluation not improved after a warning, a
/// change of law or policy; NS-27 (三): not rectified as required): the partner's grants under it
/// are revoked with it, in one transaction. Its own agreement goes on.
pub async fn terminate(s: &State, caller: &Caller, id: Uuid, reason: &str) -> Result<SubAuthorization> {
    if reason.trim().is_empty() || reason.chars().count() > 2000 {
        return Err(Error::Invalid { field: "reason".into(), reason: "1 to 2000 characters".into() });
    }
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let row = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let agreement_id = find(c, id).await?.agreement_id;
            let a = AgreementRow::find(c, agreement_id, true).await?;
            let mut row = find_for_update(c, id).await?;
            if row.operator_org != caller.org() {
                return Err(not_the_callers(id));
            }
            if row.state == "ended" {
                return Err(Error::Conflict { state: row.state, reason: "it has ended already".into() });
            }
            let profile = ProfileRow::find(c, &a.jurisdiction, a.profile_version).await?.profile()?;
            let rule = profile
                .values
                .sub_authorization_termination
                .as_ref()
                .map(|t| t.rule.clone())
                .unwrap_or_else(|| platform_policy::PLATFORM_DEFAULT.into());
            let why = format!("terminated by the primary operator ({rule}): {}", reason.trim());
            let grants = crate::store::GrantRow::of_sub_authorization_for_update(c, id).await?;
            let m = crate::grants::GrantMove {
                to: "revoked",
                change: platform_events::authorization::GrantChange::Revoked,
                case: None,
                actor: caller.subject(),
                reason: &why,
                rule: &rule,
            };
            crate::grants::change_grants(c, &s.topic_prefix, grants, &m).await?;
            row.end(c, &s.topic_prefix, caller.subject(), &why).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    Ok(row)
}

fn not_the_callers(id: Uuid) -> Error {
    Error::Invalid { field: "id".into(), reason: format!("{id} is not a sub-authorization of the caller") }
}

impl SubAuthorization {
    async fn save(&self, c: &mut AsyncPgConnection) -> Result<()> {
        diesel::update(sub_authorizations::table.find(self.id)).set(self).execute(c).await?;
        Ok(())
    }

    /// Ends it, with its event; the caller saves nothing more.
    async fn end(&mut self, c: &mut AsyncPgConnection, topic_prefix: &str, actor: &str, reason: &str) -> Result<()> {
        self.state = "ended".into();
        self.ended_at = Some(Utc::now());
        self.end_reason = Some(reason.into());
        events::sub_authorization_changed(c, topic_prefix, self, SubAuthorizationChange::Ended, actor, reason).await?;
        self.save(c).await
    }
}

async fn find_for_update(c: &mut AsyncPgConnection, id: Uuid) -> Result<SubAuthorization> {
    sub_authorizations::table
        .find(id)
        .select(SubAuthorization::as_select())
        .for_update()
        .first(c)
        .await
        .optional()?
        .ok_or_else(|| Error::Invalid {
            field: "sub_authorization_id".into(),
            reason: format!("no sub-authorization {id}"),
        })
}

/// Inside the agreement's transaction: its sub-authorizations end with it (terminated or
/// expired: a partner holds nothing beyond the primary's own authorization, ZJK-17).
pub async fn follow_agreement(
    c: &mut AsyncPgConnection,
    topic_prefix: &str,
    agreement: Uuid,
    actor: &str,
    reason: &str,
) -> Result<usize> {
    let rows: Vec<SubAuthorization> = sub_authorizations::table
        .filter(sub_authorizations::agreement_id.eq(agreement))
        .filter(sub_authorizations::state.ne("ended"))
        .order(sub_authorizations::id)
        .select(SubAuthorization::as_select())
        .for_update()
        .load(c)
        .await?;
    let reason = format!("the agreement ended: {reason}");
    for mut row in rows.iter().cloned() {
        row.end(c, topic_prefix, actor, &reason).await?;
    }
    Ok(rows.len())
}

/// Ends the sub-authorizations whose term is over (the scheduler's sweep). Rows held by another
/// sweeper are skipped and each is re-checked under its lock, so none ends twice.
pub async fn end_due(s: &State, batch: i64) -> Result<usize> {
    let today = platform_calendar::today_in_china();
    let mut done = 0;
    loop {
        let mut pooled = platform_store::conn(&s.pool).await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let n = conn
            .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
                let rows: Vec<SubAuthorization> = sub_authorizations::table
                    .filter(sub_authorizations::state.ne("ended"))
                    .filter(sub_authorizations::term_end.lt(today))
                    .order(sub_authorizations::term_end)
                    .limit(batch)
                    .select(SubAuthorization::as_select())
                    .for_update()
                    .skip_locked()
                    .load(c)
                    .await?;
                for mut row in rows.iter().cloned() {
                    let reason = format!("term ended on {}", row.term_end);
                    row.end(c, &s.topic_prefix, "scheduler", &reason).await?;
                }
                Ok(rows.len())
            })
            .await?;
        if n == 0 {
            return Ok(done);
        }
        done += n;
        s.relay.wake();
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<SubAuthorization> {
    sub_authorizations::table.find(id).select(SubAuthorization::as_select()).first(conn).await.optional()?.ok_or_else(
        || Error::Invalid { field: "sub_authorization_id".into(), reason: format!("no sub-authorization {id}") },
    )
}

/// The caller's: operators their own, partners those granted to them, departments their
/// jurisdiction's.
pub async fn list(s: &State, caller: &Caller) -> Result<Vec<SubAuthorization>> {
    let mut c = platform_store::conn(&s.pool).await?;
    let mut q = sub_authorizations::table.select(SubAuthorization::as_select()).into_boxed();
    if caller.has(Role::Operator) {
        q = q.filter(sub_authorizations::operator_org.eq(caller.org().to_string()));
    } else if caller.has(Role::Partner) {
        q = q.filter(sub_authorizations::partner_org.eq(caller.org().to_string()));
    } else {
        q = q.filter(sub_authorizations::jurisdiction.eq(caller.jurisdiction().to_string()));
    }
    Ok(q.order(sub_authorizations::id.asc()).limit(platform_runtime::paging::MAX_PAGE).load(&mut *c).await?)
}
