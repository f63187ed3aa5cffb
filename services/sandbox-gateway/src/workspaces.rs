//! A workspace per grant (`authorization.grant.v1`): a schema holding only the granted fields of
//! the granted resources, sensitive fields masked by the `masks` table, reachable only through
//! the grant's own database role.
//!
//! * granted → the schema, its role and its tables are made (ZJK-19: access control,
//!   desensitization);
//! * suspended → closed in the transaction that records the event; a query holds the workspace
//!   row `FOR SHARE` from its state check to its end, so the close waits for queries already
//!   running and no query starts after it (ZJK-34);
//! * reinstated → reopened;
//! * revoked or expired → every table is counted and hashed, then the schema, its tables and the
//!   role are dropped; a destruction record is kept and published, and the logs are kept for the
//!   grant's retention period (WF-24, ZJK-31, NS-16).
//!
//! Every change is idempotent by the grant's event version, so a redelivered event changes
//! nothing.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures::future::BoxFuture;
use platform_events::authorization::{self as pb, GrantChange};
use platform_events::sandbox::{AuditEvent, AuditKind, DestroyedTable};
use platform_events::{Envelope, timestamp};
use platform_messaging::{Handler, HandlerError};
use platform_policy::Profiles;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use crate::audit::{self, Record};
use crate::catalog_view::Field;
use crate::check::{Column, ROW_ID, Relation};

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The relation name queries use for a resource code: lower case, anything but letters, digits
/// and `_` as `_`.
pub fn relation_name(code: &str) -> String {
    code.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// The schema and role of a grant's workspace.
pub fn workspace_name(grant: Uuid) -> String {
    format!("ws_{}", grant.simple())
}

/// A relation of a workspace as stored: what the query check sees, plus where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredRelation {
    pub name: String,
    pub resource_id: Uuid,
    /// The dataset version materialized (0 when no data has been loaded yet).
    pub dataset_version: i32,
    pub unconditional: bool,
    pub columns: Vec<StoredColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredColumn {
    pub name: String,
    pub data_type: String,
    pub sensitive: bool,
    /// The mask applied (empty for non-sensitive fields).
    pub mask: String,
}

impl StoredRelation {
    pub fn for_check(&self) -> Relation {
        Relation {
            name: self.name.clone(),
            unconditional: self.unconditional,
            columns: self.columns.iter().map(|c| Column { name: c.name.clone(), sensitive: c.sensitive }).collect(),
        }
    }
}

#[derive(QueryableByName)]
struct ResourceRow {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    open_category: String,
    #[diesel(sql_type = Jsonb)]
    fields: serde_json::Value,
}

#[derive(QueryableByName)]
struct DatasetRow {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Text)]
    table_name: String,
}

#[derive(QueryableByName)]
struct MaskRow {
    #[diesel(sql_type = Text)]
    class: String,
    #[diesel(sql_type = Integer)]
    keep_leading: i32,
    #[diesel(sql_type = Integer)]
    keep_trailing: i32,
}

#[derive(QueryableByName)]
pub struct WorkspaceRow {
    #[diesel(sql_type = SqlUuid)]
    pub grant_id: Uuid,
    #[diesel(sql_type = Text)]
    pub jurisdiction: String,
    #[diesel(sql_type = Text)]
    pub principal_org: String,
    #[diesel(sql_type = Text)]
    pub scenario: String,
    #[diesel(sql_type = Text)]
    pub schema_name: String,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Integer)]
    pub min_group_size: i32,
    #[diesel(sql_type = Text)]
    pub min_group_rule: String,
    #[diesel(sql_type = Text)]
    pub valid_until: String,
    #[diesel(sql_type = Jsonb)]
    pub scope: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    pub relations: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub event_version: i64,
}

pub const WORKSPACE_COLUMNS: &str = "grant_id, jurisdiction, principal_org, scenario, schema_name, state, \
     min_group_size, min_group_rule, valid_until, scope, relations, event_version";

impl WorkspaceRow {
    pub fn relations(&self) -> Result<Vec<StoredRelation>, String> {
        serde_json::from_value(self.relations.clone()).map_err(|e| format!("workspace relations: {e}"))
    }
}

pub async fn load(conn: &mut AsyncPgConnection, grant: Uuid, lock: bool) -> diesel::QueryResult<Option<WorkspaceRow>> {
    let sql = format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE grant_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    diesel::sql_query(sql).bind::<SqlUuid, _>(grant).get_result(conn).await.map(Some).or_else(|e| match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    })
}

fn mask_expr(column: &str, m: &MaskRow) -> String {
    let v = format!("{}::text", quote_ident(column));
    let (l, t) = (m.keep_leading, m.keep_trailing);
    format!(
        "CASE WHEN {v} IS NULL THEN NULL WHEN char_length({v}) <= {keep} THEN repeat('*', char_length({v})) \
         ELSE left({v}, {l}) || repeat('*', char_length({v}) - {keep}) || right({v}, {t}) END",
        keep = l + t
    )
}

/// (Re)builds the workspace table of one scope item from the newest dataset of its resource.
/// Returns `None` when the gateway does not know the resource yet.
async fn materialize(
    conn: &mut AsyncPgConnection,
    schema: &str,
    role: &str,
    resource: Uuid,
    granted_fields: &[String],
) -> diesel::QueryResult<Option<StoredRelation>> {
    let rows: Vec<ResourceRow> = diesel::sql_query("SELECT code, open_category, fields FROM resources WHERE id = $1")
        .bind::<SqlUuid, _>(resource)
        .load(conn)
        .await?;
    let Some(res) = rows.into_iter().next() else { return Ok(None) };
    let fields: Vec<Field> = serde_json::from_value(res.fields).unwrap_or_default();
    let masks: Vec<MaskRow> =
        diesel::sql_query("SELECT class, keep_leading, keep_trailing FROM masks").load(conn).await?;
    let full_mask = MaskRow { class: String::new(), keep_leading: 0, keep_trailing: 0 };
    let dataset: Option<DatasetRow> = diesel::sql_query(
        "SELECT version, table_name FROM datasets WHERE resource_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind::<SqlUuid, _>(resource)
    .load(conn)
    .await?
    .into_iter()
    .next();
    let name = relation_name(&res.code);
    let mut columns = Vec::new();
    let mut select = Vec::new();
    for f in fields.iter().filter(|f| granted_fields.is_empty() || granted_fields.contains(&f.name)) {
        let sensitive = f.sensitive();
        let (expr, mask) = if sensitive {
            let m = masks.iter().find(|m| m.class == f.mask_class()).unwrap_or(&full_mask);
            (mask_expr(&f.name, m), if m.class.is_empty() { "full".to_string() } else { m.class.clone() })
        } else {
            (quote_ident(&f.name), String::new())
        };
        select.push(format!("{expr} AS {}", quote_ident(&f.name)));
        let data_type = if sensitive { "text".to_string() } else { f.data_type.clone() };
        columns.push(StoredColumn { name: f.name.clone(), data_type, sensitive, mask });
    }
    let target = format!("{}.{}", quote_ident(schema), quote_ident(&name));
    diesel::sql_query(format!("DROP TABLE IF EXISTS {target}")).execute(conn).await?;
    let from = match &dataset {
        Some(d) => format!("staged.{}", quote_ident(&d.table_name)),
        // No data yet: an empty relation of the right shape (typed as the catalog says).
        None => format!(
            "(SELECT {} WHERE false) AS src",
            fields
                .iter()
                .map(|f| format!("NULL::{} AS {}", crate::datasets::sql_type(&f.data_type), quote_ident(&f.name)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // Each row gets an id (`__sbx_rid`, never visible to queries: the checks know only the
    // granted columns) for overlap control's row sets; the relation never changes once built.
    diesel::sql_query(format!(
        "CREATE TABLE {target} AS SELECT (row_number() OVER ())::int4 AS {ROW_ID}, {} FROM {from}",
        select.join(", ")
    ))
    .execute(conn)
    .await?;
    diesel::sql_query(format!("GRANT SELECT ON {target} TO {}", quote_ident(role))).execute(conn).await?;
    Ok(Some(StoredRelation {
        name,
        resource_id: resource,
        dataset_version: dataset.map(|d| d.version).unwrap_or(0),
        unconditional: res.open_category == "unconditional",
        columns,
    }))
}

/// The scope of a grant as stored: resource and granted fields.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScopeItem {
    pub resource_id: Uuid,
    pub fields: Vec<String>,
}

async fn build_relations(
    conn: &mut AsyncPgConnection,
    schema: &str,
    scope: &[ScopeItem],
) -> diesel::QueryResult<Vec<StoredRelation>> {
    let mut out = Vec::new();
    for item in scope {
        if let Some(r) = materialize(conn, schema, schema, item.resource_id, &item.fields).await? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Rebuilds the relations of every live workspace whose scope holds `resource` (after a load or
/// a catalog change), each in the caller's transaction.
pub async fn refresh_for_resource(conn: &mut AsyncPgConnection, resource: Uuid) -> diesel::QueryResult<usize> {
    let rows: Vec<WorkspaceRow> = diesel::sql_query(format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE state <> 'destroyed' \
         AND scope @> jsonb_build_array(jsonb_build_object('resource_id', $1::text)) FOR UPDATE"
    ))
    .bind::<Text, _>(resource.to_string())
    .load(conn)
    .await?;
    for w in &rows {
        let scope: Vec<ScopeItem> = serde_json::from_value(w.scope.clone()).unwrap_or_default();
        let relations = build_relations(conn, &w.schema_name, &scope).await?;
        diesel::sql_query("UPDATE workspaces SET relations = $2, changed_at = now() WHERE grant_id = $1")
            .bind::<SqlUuid, _>(w.grant_id)
            .bind::<Jsonb, _>(serde_json::to_value(&relations).unwrap_or_default())
            .execute(conn)
            .await?;
    }
    Ok(rows.len())
}

/// Rebuilds the relations of live workspaces made before relations carried row ids (overlap
/// control needs `__sbx_rid`), e.g. a `make run` directory from an earlier version; returns how
/// many workspaces were rebuilt. Run at start.
pub async fn add_row_ids(conn: &mut AsyncPgConnection) -> diesel::QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Stale {
        #[diesel(sql_type = SqlUuid)]
        resource_id: Uuid,
    }
    let stale: Vec<Stale> = diesel::sql_query(format!(
        "SELECT DISTINCT (s.item->>'resource_id')::uuid AS resource_id FROM workspaces w, \
         jsonb_array_elements(w.scope) AS s(item) WHERE w.state <> 'destroyed' AND EXISTS ( \
         SELECT 1 FROM pg_tables t WHERE t.schemaname = w.schema_name AND NOT EXISTS ( \
         SELECT 1 FROM information_schema.columns c WHERE c.table_schema = t.schemaname \
         AND c.table_name = t.tablename AND c.column_name = '{ROW_ID}'))"
    ))
    .load(conn)
    .await?;
    let mut rebuilt = 0;
    for s in stale {
        rebuilt += refresh_for_resource(conn, s.resource_id).await?;
    }
    Ok(rebuilt)
}

/// Applies grant events to workspaces.
pub struct GrantHandler {
    pub profiles: Arc<Profiles>,
    pub topic_prefix: String,
    /// Woken after a change, so job environments follow at once (see [`crate::workloads`]).
    pub changed: Option<Arc<tokio::sync::Notify>>,
}

fn system_record(grant: &pb::Grant, id: Uuid, action: &str, what: String, rule: &str, rows: i64) -> Record {
    Record {
        principal: "system:authorization.grant.v1".into(),
        principal_org: grant.principal_org.clone(),
        grant_id: Some(id),
        action: action.into(),
        query: what,
        decision: "done".into(),
        rule: rule.into(),
        rows_read: rows,
        rows_returned: 0,
        result_digest: String::new(),
    }
}

#[derive(QueryableByName)]
struct TableStats {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Text)]
    digest: String,
}

impl GrantHandler {
    async fn open(&self, c: &mut AsyncPgConnection, id: Uuid, g: &pb::Grant, version: i64) -> diesel::QueryResult<()> {
        let name = workspace_name(id);
        let scope: Vec<ScopeItem> = g
            .scope
            .iter()
            .filter_map(|s| {
                Uuid::parse_str(&s.resource_id).ok().map(|r| ScopeItem { resource_id: r, fields: s.fields.clone() })
            })
            .collect();
        let rule = self
            .profiles
            .resolve(&g.jurisdiction)
            .ok()
            .and_then(|p| p.values.min_query_group_size.map(|r| r.rule))
            .unwrap_or_default();
        // The role is cluster-wide: it may survive from an earlier, rolled-back attempt.
        diesel::sql_query(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN \
             CREATE ROLE {q} NOLOGIN NOINHERIT; END IF; END $$",
            q = quote_ident(&name)
        ))
        .execute(c)
        .await?;
        diesel::sql_query(format!("GRANT {} TO CURRENT_USER", quote_ident(&name))).execute(c).await?;
        diesel::sql_query(format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&name))).execute(c).await?;
        diesel::sql_query(format!("GRANT USAGE ON SCHEMA {q} TO {q}", q = quote_ident(&name))).execute(c).await?;
        let relations = build_relations(c, &name, &scope).await?;
        let state = if g.state() == pb::GrantState::Suspended { "closed" } else { "open" };
        diesel::sql_query(
            "INSERT INTO workspaces (grant_id, agreement_id, jurisdiction, principal_org, scenario, schema_name, role_name, \
             state, min_group_size, min_group_rule, valid_until, log_retention_months, scope, relations, event_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(&g.agreement_id)
        .bind::<Text, _>(&g.jurisdiction)
        .bind::<Text, _>(&g.principal_org)
        .bind::<Text, _>(&g.scenario)
        .bind::<Text, _>(&name)
        .bind::<Text, _>(state)
        .bind::<Integer, _>(g.min_group_size as i32)
        .bind::<Text, _>(rule)
        .bind::<Text, _>(&g.valid_until)
        .bind::<Integer, _>(g.log_retention_months as i32)
        .bind::<Jsonb, _>(serde_json::to_value(&scope).unwrap_or_default())
        .bind::<Jsonb, _>(serde_json::to_value(&relations).unwrap_or_default())
        .bind::<BigInt, _>(version)
        .execute(c)
        .await?;
        let what = format!("workspace {name}: {} relations", relations.len());
        audit::append(c, &self.topic_prefix, &g.jurisdiction, &system_record(g, id, "open", what, "ZJK-19", 0)).await?;
        Ok(())
    }

    async fn set_state(
        &self,
        c: &mut AsyncPgConnection,
        w: &WorkspaceRow,
        g: &pb::Grant,
        state: &str,
        version: i64,
        rule: &str,
    ) -> diesel::QueryResult<()> {
        diesel::sql_query(
            "UPDATE workspaces SET state = $2, event_version = $3, changed_at = now() WHERE grant_id = $1",
        )
        .bind::<SqlUuid, _>(w.grant_id)
        .bind::<Text, _>(state)
        .bind::<BigInt, _>(version)
        .execute(c)
        .await?;
        if state == "closed" {
            // Jobs log in as the workspace role on Kubernetes: no new session while closed.
            diesel::sql_query(format!("ALTER ROLE {} NOLOGIN", quote_ident(&w.schema_name))).execute(c).await?;
        }
        let action = if state == "closed" { "close" } else { "reopen" };
        let what = format!("workspace {} {state}", w.schema_name);
        audit::append(c, &self.topic_prefix, &w.jurisdiction, &system_record(g, w.grant_id, action, what, rule, 0))
            .await?;
        Ok(())
    }

    async fn destroy(
        &self,
        c: &mut AsyncPgConnection,
        w: &WorkspaceRow,
        g: &pb::Grant,
        version: i64,
        reason: &str,
    ) -> diesel::QueryResult<()> {
        let rels = w.relations().unwrap_or_default();
        let mut destroyed = Vec::new();
        for r in &rels {
            let table = format!("{}.{}", quote_ident(&w.schema_name), quote_ident(&r.name));
            let stats: TableStats = diesel::sql_query(format!(
                "SELECT count(*) AS rows, encode(sha256(convert_to(coalesce(string_agg(md5(t::text), '' ORDER BY ctid), ''), 'UTF8')), 'hex') AS digest FROM {table} AS t"
            ))
            .get_result(c)
            .await?;
            destroyed.push(DestroyedTable {
                relation: r.name.clone(),
                rows: stats.rows as u64,
                content_sha256: stats.digest,
            });
        }
        let q = quote_ident(&w.schema_name);
        diesel::sql_query(format!("DROP SCHEMA IF EXISTS {q} CASCADE")).execute(c).await?;
        // The rows behind its released answers go with it (overlap control's history).
        diesel::sql_query("DELETE FROM released_groups WHERE grant_id = $1")
            .bind::<SqlUuid, _>(w.grant_id)
            .execute(c)
            .await?;
        diesel::sql_query(format!("DROP ROLE IF EXISTS {q}")).execute(c).await?;
        let retention = g.log_retention_months.max(1) as i32;
        diesel::sql_query(
            "UPDATE workspaces SET state = 'destroyed', relations = '[]'::jsonb, event_version = $2, changed_at = now(), \
             destroyed_at = now(), logs_kept_until = now() + make_interval(months => $3) WHERE grant_id = $1",
        )
        .bind::<SqlUuid, _>(w.grant_id)
        .bind::<BigInt, _>(version)
        .bind::<Integer, _>(retention)
        .execute(c)
        .await?;
        let tables = serde_json::to_value(
            destroyed
                .iter()
                .map(
                    |d| serde_json::json!({"relation": d.relation, "rows": d.rows, "content_sha256": d.content_sha256}),
                )
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        diesel::sql_query(
            "INSERT INTO destructions (id, grant_id, reason, rule, tables) VALUES ($1, $2, $3, 'ZJK-31', $4)",
        )
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<SqlUuid, _>(w.grant_id)
        .bind::<Text, _>(reason)
        .bind::<Jsonb, _>(tables)
        .execute(c)
        .await?;
        let rows: i64 = destroyed.iter().map(|d| d.rows as i64).sum();
        let what = format!("workspace {} destroyed: {} relations, {rows} rows", w.schema_name, destroyed.len());
        let seq = audit::append(
            c,
            &self.topic_prefix,
            &w.jurisdiction,
            &system_record(g, w.grant_id, "destroy", what, "ZJK-31", rows),
        )
        .await?;
        let ev = AuditEvent {
            kind: AuditKind::Destruction as i32,
            seq: seq as u64,
            grant_id: w.grant_id.to_string(),
            principal_org: w.principal_org.clone(),
            jurisdiction: w.jurisdiction.clone(),
            decision: "done".into(),
            rule: "ZJK-31".into(),
            destroyed,
            reason: reason.to_string(),
            at: Some(timestamp(chrono::Utc::now())),
            ..Default::default()
        };
        audit::destruction(c, &self.topic_prefix, &w.jurisdiction, w.grant_id, seq as u64, ev).await
    }

    #[tracing::instrument(name = "sandbox.grant_event", skip_all, fields(grant = %env.aggregate_id, version = env.aggregate_version))]
    async fn apply(&self, c: &mut AsyncPgConnection, env: &Envelope) -> Result<(), HandlerError> {
        let ev: pb::GrantEvent = env.payload_as()?;
        let g = ev.grant.as_ref().ok_or_else(|| HandlerError::Permanent("grant event without a grant".into()))?;
        let id = Uuid::parse_str(&g.id).map_err(|_| HandlerError::Permanent(format!("bad grant id `{}`", g.id)))?;
        let version = env.aggregate_version as i64;
        let db = |e: diesel::result::Error| HandlerError::Transient(e.to_string());
        let existing = load(c, id, true).await.map_err(db)?;
        if let Some(w) = &existing
            && (w.event_version >= version || w.state == "destroyed")
        {
            return Ok(()); // already applied, or nothing left to change
        }
        let change = ev.change();
        let end = matches!(change, GrantChange::Revoked | GrantChange::Expired)
            || matches!(g.state(), pb::GrantState::Revoked | pb::GrantState::Expired);
        match (existing, end) {
            (None, true) => Ok(()), // never opened: nothing to destroy
            (None, false) => self.open(c, id, g, version).await.map_err(db),
            (Some(w), true) => self.destroy(c, &w, g, version, &ev.reason).await.map_err(db),
            (Some(w), false) => {
                let (state, rule) = match g.state() {
                    pb::GrantState::Suspended => {
                        ("closed", if ev.rule.is_empty() { "ZJK-34" } else { ev.rule.as_str() })
                    }
                    _ => ("open", if ev.rule.is_empty() { "ZJK-34" } else { ev.rule.as_str() }),
                };
                if w.state == state {
                    return diesel::sql_query("UPDATE workspaces SET event_version = $2 WHERE grant_id = $1")
                        .bind::<SqlUuid, _>(id)
                        .bind::<BigInt, _>(version)
                        .execute(c)
                        .await
                        .map(|_| ())
                        .map_err(db);
                }
                self.set_state(c, &w, g, state, version, rule).await.map_err(db)
            }
        }
    }
}

impl Handler for GrantHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply(conn, env))
    }
}
