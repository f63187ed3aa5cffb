//! The catalog's tables and the queries on them, as methods named by what they find.

pub mod schema;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{QueryFragment, QueryId};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::domain::objection::ObjectionState;
use crate::domain::resource::{
    FieldSpec, OpenCategory, Provenance, ResourceContent, ResourceState, SecurityGrade, UpdateFrequency,
};
use crate::errors::{Error, Result};
use schema::{objection_steps, objections, registration_counters, registrations, resource_versions, resources};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = resources, treat_none_as_null = true)]
pub struct ResourceRow {
    pub id: Uuid,
    pub jurisdiction: String,
    pub code: String,
    pub name: String,
    pub source_unit: String,
    pub sector: String,
    pub format: String,
    pub update_frequency: String,
    pub open_category: String,
    pub security_grade: String,
    pub quality_requirements: String,
    pub fields: serde_json::Value,
    pub provenance: serde_json::Value,
    pub state: String,
    pub version: i32,
    pub event_seq: i64,
    pub authorizable: bool,
    pub not_authorizable_rule: Option<String>,
    pub rejection_reason: Option<String>,
    pub withdrawal_reason: Option<String>,
    pub pending_revision: Option<serde_json::Value>,
    pub revision_note: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, id: Uuid) -> Error {
    Error::Corrupt(format!("resource {id}: {what}"))
}

impl ResourceRow {
    /// A new draft from validated content.
    pub fn draft(id: Uuid, jurisdiction: &str, created_by: &str, c: &ResourceContent) -> ResourceRow {
        let now = Utc::now();
        let mut row = ResourceRow {
            id,
            jurisdiction: jurisdiction.into(),
            code: String::new(),
            name: String::new(),
            source_unit: String::new(),
            sector: String::new(),
            format: String::new(),
            update_frequency: String::new(),
            open_category: String::new(),
            security_grade: String::new(),
            quality_requirements: String::new(),
            fields: serde_json::Value::Null,
            provenance: serde_json::Value::Null,
            state: ResourceState::Draft.as_str().into(),
            version: 0,
            event_seq: 0,
            authorizable: false,
            not_authorizable_rule: None,
            rejection_reason: None,
            withdrawal_reason: None,
            pending_revision: None,
            revision_note: None,
            created_by: created_by.into(),
            created_at: now,
            updated_at: now,
            published_at: None,
        };
        row.set_content(c);
        row
    }

    /// Writes `c` into the row, with the authorizability it implies.
    pub fn set_content(&mut self, c: &ResourceContent) {
        self.code = c.code.clone();
        self.name = c.name.clone();
        self.source_unit = c.source_unit.clone();
        self.sector = c.sector.clone();
        self.format = c.format.clone();
        self.update_frequency = c.update_frequency.as_str().into();
        self.open_category = c.open_category.as_str().into();
        self.security_grade = c.security_grade.as_str().into();
        self.quality_requirements = c.quality_requirements.clone();
        self.fields = serde_json::to_value(&c.fields).unwrap_or_default();
        self.provenance = serde_json::to_value(&c.provenance).unwrap_or_default();
        let a = c.authorizability();
        self.authorizable = a.authorizable;
        self.not_authorizable_rule = a.rule.map(str::to_string);
    }

    pub fn state(&self) -> Result<ResourceState> {
        ResourceState::parse(&self.state).ok_or_else(|| corrupt("state", self.id))
    }

    pub fn content(&self) -> Result<ResourceContent> {
        Ok(ResourceContent {
            name: self.name.clone(),
            code: self.code.clone(),
            source_unit: self.source_unit.clone(),
            sector: self.sector.clone(),
            format: self.format.clone(),
            update_frequency: UpdateFrequency::parse(&self.update_frequency)
                .ok_or_else(|| corrupt("update_frequency", self.id))?,
            open_category: OpenCategory::parse(&self.open_category).ok_or_else(|| corrupt("open_category", self.id))?,
            security_grade: SecurityGrade::parse(&self.security_grade)
                .ok_or_else(|| corrupt("security_grade", self.id))?,
            quality_requirements: self.quality_requirements.clone(),
            fields: serde_json::from_value::<Vec<FieldSpec>>(self.fields.clone())
                .map_err(|_| corrupt("fields", self.id))?,
            provenance: serde_json::from_value::<Provenance>(self.provenance.clone())
                .map_err(|_| corrupt("provenance", self.id))?,
        })
    }

    pub fn pending_revision(&self) -> Result<Option<ResourceContent>> {
        self.pending_revision
            .clone()
            .map(|v| serde_json::from_value(v).map_err(|_| corrupt("pending_revision", self.id)))
            .transpose()
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ResourceRow> {
        Self::fetch(conn, id, false).await
    }

    /// Reads the row and locks it until the transaction ends, so concurrent changes serialize.
    pub async fn find_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ResourceRow> {
        Self::fetch(conn, id, true).await
    }

    async fn fetch(conn: &mut AsyncPgConnection, id: Uuid, lock: bool) -> Result<ResourceRow> {
        let q = resources::table.find(id).select(ResourceRow::as_select());
        let row = if lock { q.for_update().first(conn).await } else { q.first(conn).await };
        row.optional()?.ok_or(Error::ResourceNotFound(id))
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        diesel::insert_into(resources::table).values(self).execute(conn).await.map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// The row as a plain snapshot read, with its `xmin` (the id of the transaction that last
    /// wrote it), the guard of an optimistic [`Self::guarded_update`].
    pub async fn find_versioned(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(ResourceRow, i64)> {
        let row = resources::table
            .find(id)
            .select((ResourceRow::as_select(), platform_store::Xmin))
            .first(conn)
            .await
            .optional()?;
        row.ok_or(Error::ResourceNotFound(id))
    }

    /// Writes the whole row if it is still the version read with `xmin` (returns its new `xmin`
    /// then, nothing otherwise): the guard of a [`platform_messaging::AtomicWrite`].
    pub fn guarded_update(
        &self,
        xmin: i64,
    ) -> impl QueryFragment<Pg> + diesel::query_builder::Query<SqlType = diesel::sql_types::BigInt> + Send + 'static
    {
        diesel::update(resources::table.find(self.id).filter(platform_store::Xmin.eq(xmin)))
            .set(self.clone())
            .returning(platform_store::Xmin)
    }

    /// A write of this row failed: a taken code is the caller's mistake, anything else is not.
    pub fn write_error(&self, e: diesel::result::Error) -> Error {
        if platform_store::unique_violation(&e) == Some("resources_code_unique") {
            Error::DuplicateCode(self.code.clone())
        } else {
            Error::Db(e)
        }
    }

    /// The history row keeping the published content of `version`.
    pub fn version_row(&self, published_by: &str) -> Result<impl QueryFragment<Pg> + QueryId + Send + 'static> {
        let content = serde_json::to_value(self.content()?).unwrap_or_default();
        Ok(diesel::insert_into(resource_versions::table).values((
            resource_versions::resource_id.eq(self.id),
            resource_versions::version.eq(self.version),
            resource_versions::content.eq(content),
            resource_versions::published_by.eq(published_by.to_string()),
        )))
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = resource_versions)]
pub struct VersionRow {
    pub resource_id: Uuid,
    pub version: i32,
    pub content: serde_json::Value,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

impl VersionRow {
    pub async fn find_by_resource(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<VersionRow>> {
        Ok(resource_versions::table
            .filter(resource_versions::resource_id.eq(id))
            .order(resource_versions::version.asc())
            .select(VersionRow::as_select())
            .load(conn)
            .await?)
    }
}

/// Search filters; all optional, combined with AND.
#[derive(Debug, Default, Clone)]
pub struct ResourceFilter {
    pub states: Vec<ResourceState>,
    pub jurisdiction: Option<String>,
    pub sector: Option<String>,
    pub open_category: Option<OpenCategory>,
    pub security_grade: Option<SecurityGrade>,
    pub authorizable: Option<bool>,
    /// Substring of the name (Chinese included), or the exact code.
    pub text: Option<String>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Escapes LIKE wildcards so user text matches literally.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

impl ResourceRow {
    /// One page of resources in id order (ids are UUIDv7, so this is creation order).
    pub async fn search(conn: &mut AsyncPgConnection, f: &ResourceFilter) -> Result<Vec<ResourceRow>> {
        let mut q = resources::table.select(ResourceRow::as_select()).into_boxed();
        let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
        q = q.filter(resources::state.eq_any(states));
        if let Some(j) = &f.jurisdiction {
            q = q.filter(resources::jurisdiction.eq(j.clone()));
        }
        if let Some(s) = &f.sector {
            q = q.filter(resources::sector.eq(s.clone()));
        }
        if let Some(c) = f.open_category {
            q = q.filter(resources::open_category.eq(c.as_str()));
        }
        if let Some(g) = f.security_grade {
            q = q.filter(resources::security_grade.eq(g.as_str()));
        }
        if let Some(a) = f.authorizable {
            q = q.filter(resources::authorizable.eq(a));
        }
        if let Some(t) = &f.text {
            // A substring of the name (trigram index), or exactly the code.
            q = q.filter(resources::name.like(like_pattern(t)).or(resources::code.eq(t.clone())));
        }
        if let Some(after) = f.after {
            q = q.filter(resources::id.gt(after));
        }
        Ok(q.order(resources::id.asc()).limit(f.limit).load(conn).await?)
    }

    /// Resources by state, for the business gauge.
    pub async fn count_by_state(conn: &mut AsyncPgConnection) -> Result<Vec<(String, i64)>> {
        Ok(resources::table
            .group_by(resources::state)
            .select((resources::state, diesel::dsl::count_star()))
            .load(conn)
            .await?)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registrations)]
pub struct RegistrationRow {
    pub number: String,
    pub jurisdiction: String,
    pub year: i32,
    pub seq: i64,
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub subject_version: i32,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
}

impl RegistrationRow {
    pub async fn find_by_subject(
        conn: &mut AsyncPgConnection,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<RegistrationRow>> {
        Ok(registrations::table
            .filter(registrations::subject_kind.eq(kind))
            .filter(registrations::subject_id.eq(id))
            .select(RegistrationRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    pub async fn find(conn: &mut AsyncPgConnection, number: &str) -> Result<RegistrationRow> {
        registrations::table
            .find(number)
            .select(RegistrationRow::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| Error::RegistrationNotFound(number.into()))
    }

    /// The next number of `jurisdiction` in `year`: the counter row is locked until commit, so
    /// concurrent registrations take turns and a rollback gives the number back (gap-free).
    pub async fn next_seq(conn: &mut AsyncPgConnection, jurisdiction: &str, year: i32) -> Result<i64> {
        Ok(diesel::insert_into(registration_counters::table)
            .values((
                registration_counters::jurisdiction.eq(jurisdiction),
                registration_counters::year.eq(year),
                registration_counters::last_seq.eq(1i64),
            ))
            .on_conflict((registration_counters::jurisdiction, registration_counters::year))
            .do_update()
            .set(registration_counters::last_seq.eq(registration_counters::last_seq + 1))
            .returning(registration_counters::last_seq)
            .get_result(conn)
            .await?)
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        diesel::insert_into(registrations::table).values(self).execute(conn).await?;
        Ok(())
    }

    pub async fn list(
        conn: &mut AsyncPgConnection,
        jurisdiction: Option<&str>,
        year: Option<i32>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RegistrationRow>> {
        let mut q = registrations::table.select(RegistrationRow::as_select()).into_boxed();
        if let Some(j) = jurisdiction {
            q = q.filter(registrations::jurisdiction.eq(j.to_string()));
        }
        if let Some(y) = year {
            q = q.filter(registrations::year.eq(y));
        }
        if let Some(a) = after {
            q = q.filter(registrations::number.gt(a.to_string()));
        }
        Ok(q.order(registrations::number.asc()).limit(limit).load(conn).await?)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = objections)]
pub struct ObjectionRow {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub field: Option<String>,
    pub jurisdiction: String,
    pub description: String,
    pub state: String,
    pub filed_by: String,
    pub filed_org: String,
    pub due_date: NaiveDate,
    pub due_date_provisional: bool,
    pub deadline_rule: String,
    pub step_seq: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = objection_steps)]
pub struct StepRow {
    pub objection_id: Uuid,
    pub seq: i32,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub actor_org: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Which objections to list.
#[derive(Debug, Default, Clone)]
pub struct ObjectionFilter {
    pub jurisdiction: Option<String>,
    pub filed_org: Option<String>,
    pub resource_id: Option<Uuid>,
    pub state: Option<ObjectionState>,
    /// Pending and due before this date.
    pub overdue_on: Option<NaiveDate>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl ObjectionRow {
    pub fn state(&self) -> Result<ObjectionState> {
        ObjectionState::parse(&self.state).ok_or_else(|| Error::Corrupt(format!("objection {}: state", self.id)))
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ObjectionRow> {
        Self::fetch(conn, id, false).await
    }

    pub async fn find_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ObjectionRow> {
        Self::fetch(conn, id, true).await
    }

    async fn fetch(conn: &mut AsyncPgConnection, id: Uuid, lock: bool) -> Result<ObjectionRow> {
        let q = objections::table.find(id).select(ObjectionRow::as_select());
        let row = if lock { q.for_update().first(conn).await } else { q.first(conn).await };
        row.optional()?.ok_or(Error::ObjectionNotFound(id))
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        diesel::insert_into(objections::table).values(self).execute(conn).await?;
        Ok(())
    }

    pub async fn save_state(&mut self, conn: &mut AsyncPgConnection) -> Result<()> {
        self.updated_at = Utc::now();
        diesel::update(objections::table.find(self.id))
            .set((
                objections::state.eq(&self.state),
                objections::step_seq.eq(self.step_seq),
                objections::updated_at.eq(self.updated_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn search(conn: &mut AsyncPgConnection, f: &ObjectionFilter) -> Result<Vec<ObjectionRow>> {
        let mut q = objections::table.select(ObjectionRow::as_select()).into_boxed();
        if let Some(j) = &f.jurisdiction {
            q = q.filter(objections::jurisdiction.eq(j.clone()));
        }
        if let Some(o) = &f.filed_org {
            q = q.filter(objections::filed_org.eq(o.clone()));
        }
        if let Some(r) = f.resource_id {
            q = q.filter(objections::resource_id.eq(r));
        }
        if let Some(s) = f.state {
            q = q.filter(objections::state.eq(s.as_str()));
        }
        if let Some(d) = f.overdue_on {
            q = q.filter(objections::state.eq_any(["open", "accepted"])).filter(objections::due_date.lt(d));
        }
        if let Some(a) = f.after {
            q = q.filter(objections::id.gt(a));
        }
        Ok(q.order(objections::id.asc()).limit(f.limit).load(conn).await?)
    }

    /// Pending objections past their due date on `today` (China date), for the gauge.
    pub async fn count_overdue(conn: &mut AsyncPgConnection, today: NaiveDate) -> Result<i64> {
        Ok(objections::table
            .filter(objections::state.eq_any(["open", "accepted"]))
            .filter(objections::due_date.lt(today))
            .count()
            .get_result(conn)
            .await?)
    }
}

impl StepRow {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        diesel::insert_into(objection_steps::table).values(self).execute(conn).await?;
        Ok(())
    }

    pub async fn find_by_objection(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<StepRow>> {
        Ok(objection_steps::table
            .filter(objection_steps::objection_id.eq(id))
            .order(objection_steps::seq.asc())
            .select(StepRow::as_select())
            .load(conn)
            .await?)
    }
}
