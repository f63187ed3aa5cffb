//! Running a checked query in a grant's workspace: the check, the run as the workspace role in a
//! read-only transaction with a statement timeout and the workspace row held `FOR SHARE` (so a
//! suspension either waits for the query or is seen by it), small-group suppression, the audit
//! record and the usage event (metering, `sandbox.usage.v1`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use platform_auth::Caller;
use platform_events::sandbox::UsageEvent;
use platform_events::{Envelope, EventMeta, timestamp, topics};
use serde::Serialize;
use uuid::Uuid;

use crate::SERVICE;
use crate::app::State;
use crate::audit::{self, Record, sha256_hex};
use crate::check::{self, GROUP_KEY, GROUP_ROWS, GROUP_TOTAL, GROUP_WITHOUT, Refusal, Shape};
use crate::domain::overlap::{self, Collision, Judgement, Released, RowSet};
use crate::domain::suppress::{self, Group};
use crate::errors::{Error, Result};
use crate::limits::{MAX_RESULT_BYTES, MAX_ROWS, MAX_SQL_BYTES, STATEMENT_TIMEOUT_MS};
use crate::store::released::{self, ReleasedGroups};
use crate::workspaces::{self, WorkspaceRow, quote_ident};

/// Entries the totals cache keeps before it starts again.
const TOTALS_CACHE_ENTRIES: usize = 512;

/// Per-group totals of `(grant, data versions, FROM and GROUP BY)`: the workspace's tables
/// change only with a new dataset version, so these counts are computed once per version.
#[derive(Clone, Default)]
pub struct TotalsCache(Arc<Mutex<HashMap<String, GroupTotals>>>);

/// Row counts by group key.
type GroupTotals = Arc<HashMap<String, u64>>;

impl TotalsCache {
    fn get(&self, key: &str) -> Option<GroupTotals> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    fn put(&self, key: String, totals: GroupTotals) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() >= TOTALS_CACHE_ENTRIES {
            m.clear();
        }
        m.insert(key, totals);
    }
}

/// The key of a group: its `__sbx_g0…` values as a JSON array.
fn group_key(o: &serde_json::Map<String, serde_json::Value>, groups: usize) -> String {
    let values: Vec<&serde_json::Value> =
        (0..groups).map(|i| o.get(&format!("{GROUP_KEY}{i}")).unwrap_or(&serde_json::Value::Null)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}

/// Rule cited when a closed workspace refuses a query (suspension during rectification).
const CLOSED_RULE: &str = "ZJK-34";
/// Rule cited when the workspace of an ended grant is asked (irreversible destruction).
const DESTROYED_RULE: &str = "ZJK-31";

/// What a query returns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueryOutcome {
    pub columns: Vec<String>,
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<serde_json::Value>>,
    #[schema(value_type = Object)]
    pub shape: Shape,
    /// Groups left out because they were smaller than the minimum, or could single out rows.
    pub suppressed_groups: usize,
    /// Groups left out because, combined with earlier answers of the grant, they would single
    /// out fewer rows than the minimum: which earlier answers (audit sequence) and how
    /// (overlap control, WF-26, ZJK-21). Never the rows.
    pub overlaps: Vec<Collision>,
    pub min_group_size: i32,
    /// The rule the minimum comes from (the profile's).
    pub min_group_rule: String,
    /// More rows than returned matched (the gateway's row limit or the query's LIMIT).
    pub truncated: bool,
    /// The audit record of this query.
    pub audit_seq: i64,
    /// Lineage: the relations and fields read.
    pub relations: Vec<String>,
    pub fields: Vec<String>,
}

fn record(caller: &Caller, grant: Uuid, sql: &str, decision: &str, rule: &str) -> Record {
    Record {
        principal: caller.subject().to_string(),
        principal_org: caller.org().to_string(),
        grant_id: Some(grant),
        action: "query".into(),
        query: sql.to_string(),
        decision: decision.into(),
        rule: rule.into(),
        rows_read: 0,
        rows_returned: 0,
        result_digest: String::new(),
    }
}

/// Records a refusal (and raises a burst alert when due), then returns the error to answer with.
async fn refused(state: &State, ws: &WorkspaceRow, caller: &Caller, sql: &str, r: Refusal) -> Error {
    state.metrics.queries.with_label_values(&["refused"]).inc();
    state.metrics.refusals.with_label_values(&[r.check, r.rule]).inc();
    let rec = record(caller, ws.grant_id, sql, "refused", r.rule);
    if let Err(e) = write_refusal(state, ws, caller, rec).await {
        return e;
    }
    Error::Refused(r)
}

async fn write_refusal(state: &State, ws: &WorkspaceRow, caller: &Caller, rec: Record) -> Result<()> {
    let (threshold, rule) = state
        .profiles
        .resolve(&ws.jurisdiction)
        .ok()
        .and_then(|p| p.values.refusal_burst_threshold)
        .map(|r| (r.value, r.rule))
        .ok_or_else(|| Error::Corrupt(format!("no refusal-burst threshold for {}", ws.jurisdiction)))?;
    let prefix = state.topic_prefix.clone();
    let jurisdiction = ws.jurisdiction.clone();
    let (subject, org) = (caller.subject().to_string(), caller.org().to_string());
    let mut conn = state.conn().await?;
    let c: &mut AsyncPgConnection = &mut conn;
    let burst = c
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            audit::append(c, &prefix, &jurisdiction, &rec).await?;
            Ok(audit::refusal_burst(c, &prefix, &jurisdiction, &subject, &org, threshold, &rule).await?)
        })
        .await?;
    if burst {
        state.metrics.refusal_bursts.inc();
    }
    state.relay.wake();
    Ok(())
}

fn closed_refusal(state: &str) -> Refusal {
    if state == "destroyed" {
        Refusal {
            check: "workspace-destroyed",
            rule: DESTROYED_RULE,
            message: "the workspace was destroyed when its grant ended".into(),
            hint: "request a new grant".into(),
        }
    } else {
        Refusal {
            check: "workspace-closed",
            rule: CLOSED_RULE,
            message: "the workspace is closed while its grant is suspended".into(),
            hint: "wait for the grant to be reinstated".into(),
        }
    }
}

fn closed_error(e: Error) -> Error {
    match e {
        Error::Refused(r) => Error::Closed { reason: r.message, rule: r.rule.into() },
        other => other,
    }
}

/// The checks alone, for the benchmark and the dry-run endpoint.
pub fn check(stored: &[workspaces::StoredRelation], sql: &str) -> std::result::Result<check::Checked, Refusal> {
    let relations: Vec<check::Relation> = stored.iter().map(workspaces::StoredRelation::for_check).collect();
    check::check(sql, &relations, MAX_ROWS)
}

/// Runs `sql` for `caller` in the workspace of `grant`.
#[tracing::instrument(name = "sandbox.query", skip_all, fields(grant = %grant, principal = caller.subject()))]
pub async fn run(state: &State, caller: &Caller, grant: Uuid, sql: &str) -> Result<QueryOutcome> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::Invalid { field: "sql".into(), reason: format!("longer than {MAX_SQL_BYTES} bytes") });
    }
    let ws = {
        let mut conn = state.conn().await?;
        workspaces::load(&mut conn, grant, false).await?.ok_or(Error::WorkspaceNotFound(grant))?
    };
    if ws.principal_org != caller.org() {
        // ZJK-21: use outside the authorized scope — another organisation's grant.
        let r = Refusal {
            check: "principal",
            rule: check::rules::RAW_DATA,
            message: format!("grant {grant} was not made to organisation `{}`", caller.org()),
            hint: "query the workspaces of your own grants".into(),
        };
        return Err(refused(state, &ws, caller, sql, r).await);
    }
    if ws.state != "open" {
        let r = closed_refusal(&ws.state);
        let e = refused(state, &ws, caller, sql, r).await;
        return Err(closed_error(e));
    }
    let stored = ws.relations().map_err(Error::Corrupt)?;
    let started = Instant::now();
    let checked = match check(&stored, sql) {
        Ok(c) => c,
        Err(r) => return Err(refused(state, &ws, caller, sql, r).await),
    };
    state.metrics.check_seconds.observe(started.elapsed().as_secs_f64());
    if checked.shape == Shape::Rows {
        return answer(state, caller, &ws, &stored, sql, checked, None).await;
    }
    // Aggregates: under the grant's lock, against every group released under it before, and
    // recorded as released in the transaction that appends the answer's audit record.
    let versions = released::data_versions(&stored);
    let mut conn = state.conn().await?;
    let c: &mut AsyncPgConnection = &mut conn;
    let outcome = c
        .transaction::<_, Error, _>(async |c: &mut AsyncPgConnection| {
            let history = state.released.lock_and_load(c, grant, &versions).await?;
            answer(state, caller, &ws, &stored, sql, checked, Some(Overlap { conn: c, history, versions: &versions }))
                .await
        })
        .await?;
    state.relay.wake();
    Ok(outcome)
}

/// The grant's released groups, and the locked transaction that records what this answer
/// releases.
struct Overlap<'a> {
    conn: &'a mut AsyncPgConnection,
    history: Arc<Vec<Released>>,
    versions: &'a str,
}

/// Runs an accepted query and answers it: suppression, overlap control (aggregates), audit
/// record and usage event.
async fn answer(
    state: &State,
    caller: &Caller,
    ws: &WorkspaceRow,
    stored: &[workspaces::StoredRelation],
    sql: &str,
    checked: check::Checked,
    overlap: Option<Overlap<'_>>,
) -> Result<QueryOutcome> {
    let grant = ws.grant_id;
    let run_started = Instant::now();
    let totals_key = checked.totals.as_ref().map(|t| {
        let versions: Vec<String> = stored.iter().map(|r| format!("{}@{}", r.name, r.dataset_version)).collect();
        format!("{grant}|{}|{}", versions.join(","), t.key)
    });
    let cached = totals_key.as_deref().and_then(|k| state.totals.get(k));
    let totals_sql = match (&checked.totals, &cached) {
        (Some(t), None) => Some(t.sql.as_str()),
        _ => None,
    };
    let (results, fresh_totals) = match execute(state, ws, &checked.sql, totals_sql).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            let e = refused(state, ws, caller, sql, closed_refusal("closed")).await;
            return Err(closed_error(e));
        }
        Err(Error::Data(e)) => {
            let reason = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            state.metrics.queries.with_label_values(&["failed"]).inc();
            let rec = record(caller, grant, sql, "failed", "");
            append_with_usage(state, ws, rec, None).await?;
            return Err(Error::QueryFailed(reason));
        }
        Err(e) => return Err(e),
    };
    let elapsed = run_started.elapsed();
    state.metrics.query_seconds.observe(elapsed.as_secs_f64());

    let mut objects = Vec::with_capacity(results.len());
    let mut row_sets = Vec::with_capacity(results.len());
    let mut bytes = 0usize;
    for (t, ids) in results {
        let mut set = RowSet::new();
        for (slot, column) in checked.row_id_slots.iter().zip(ids) {
            overlap::add_rows(&mut set, *slot, column.unwrap_or_default());
        }
        row_sets.push(set);
        let t = &t;
        bytes += t.len();
        if bytes > MAX_RESULT_BYTES {
            return Err(Error::TooLarge(MAX_RESULT_BYTES));
        }
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(t).map_err(|e| Error::Corrupt(format!("result row: {e}")))?;
        objects.push(v);
    }
    let truncated = objects.len() as u64 >= checked.fetch;
    if truncated {
        objects.truncate((checked.fetch - 1) as usize);
        row_sets.truncate(objects.len());
    }
    let count =
        |o: &serde_json::Map<String, serde_json::Value>, k: &str| o.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let totals: Option<GroupTotals> = match (cached, fresh_totals, &checked.totals) {
        (Some(c), _, _) => Some(c),
        (None, Some(rows), Some(t)) => {
            let mut m = HashMap::with_capacity(rows.len());
            for text in rows {
                let o: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("totals row: {e}")))?;
                m.insert(group_key(&o, t.groups), count(&o, GROUP_TOTAL));
            }
            let m = Arc::new(m);
            if let Some(k) = totals_key {
                state.totals.put(k, m.clone());
            }
            Some(m)
        }
        _ => None,
    };
    let mut collisions = Vec::new();
    // Groups identical to one released before: answered, not stored again.
    let mut repeats = vec![false; row_sets.len()];
    let (keep, rows_read) = match checked.shape {
        Shape::Aggregate { grouped } => {
            let groups: Vec<Group> = objects
                .iter()
                .map(|o| Group {
                    n: count(o, GROUP_ROWS),
                    total: match (&totals, &checked.totals) {
                        // A group the totals do not know is treated as one that singles someone out.
                        (Some(m), Some(t)) => {
                            m.get(&group_key(o, t.groups)).copied().unwrap_or(count(o, GROUP_ROWS) + 1)
                        }
                        _ => count(o, GROUP_TOTAL),
                    },
                    without: (0..check::MAX_CONJUNCTS)
                        .map_while(|i| o.get(&format!("{GROUP_WITHOUT}{i}")).and_then(|v| v.as_u64()))
                        .collect(),
                })
                .collect();
            let read: u64 = groups.iter().map(|g| g.total).sum();
            let min = ws.min_group_size.max(0) as u64;
            let mut hidden = suppress::suppressed(&groups, min, grouped);
            // Overlap control: a group that combines with an earlier answer into a small group
            // goes too, and secondary suppression then covers it like any other.
            if let Some(o) = &overlap {
                let mut forced = vec![false; groups.len()];
                for (i, set) in row_sets.iter().enumerate().filter(|(i, _)| !hidden[*i]) {
                    match overlap::judge(set, &o.history, min) {
                        Judgement::Collides(c) => {
                            forced[i] = true;
                            collisions.push(c);
                        }
                        Judgement::Repeat => repeats[i] = true,
                        Judgement::New => {}
                    }
                }
                if !grouped && let Some(c) = collisions.first() {
                    let r = overlap_refusal(c, min);
                    return Err(refused(state, ws, caller, sql, r).await);
                }
                if forced.iter().any(|f| *f) {
                    hidden = suppress::suppressed_with(&groups, min, grouped, &forced);
                }
            }
            (hidden.into_iter().map(|h| !h).collect::<Vec<_>>(), read)
        }
        Shape::Rows => (vec![true; objects.len()], objects.len() as u64),
    };
    let suppressed_groups = keep.iter().filter(|k| !**k).count();
    let released_sets: Vec<RowSet> = row_sets
        .into_iter()
        .zip(keep.iter().zip(&repeats))
        .filter(|(_, (k, repeat))| **k && !**repeat)
        .map(|(set, _)| set)
        .collect();
    let rows: Vec<Vec<serde_json::Value>> = objects
        .into_iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(mut o, _)| checked.columns.iter().map(|c| o.remove(c).unwrap_or(serde_json::Value::Null)).collect())
        .collect();
    let body = serde_json::to_vec(&rows).map_err(|e| Error::Corrupt(e.to_string()))?;
    let decision = if suppressed_groups > 0 { "suppressed" } else { "allowed" };
    state.metrics.queries.with_label_values(&[decision]).inc();
    state.metrics.suppressed_groups.inc_by(suppressed_groups as u64);
    let rule = if suppressed_groups > 0 { ws.min_group_rule.clone() } else { String::new() };
    let mut rec = record(caller, grant, sql, decision, &rule);
    rec.rows_read = rows_read as i64;
    rec.rows_returned = rows.len() as i64;
    rec.result_digest = sha256_hex(&body);
    let usage = UsageEvent {
        grant_id: grant.to_string(),
        principal: caller.subject().to_string(),
        principal_org: caller.org().to_string(),
        jurisdiction: ws.jurisdiction.clone(),
        rows_scanned: rows_read,
        rows_returned: rows.len() as u64,
        execution_micros: elapsed.as_micros() as u64,
        result_bytes: body.len() as u64,
        at: Some(timestamp(chrono::Utc::now())),
        ..Default::default()
    };
    let audit_seq = match overlap {
        Some(o) => {
            let seq = append_in(o.conn, &state.topic_prefix, &ws.jurisdiction, rec, Some(usage)).await?;
            ReleasedGroups::append(o.conn, grant, o.versions, seq, &released_sets).await?;
            seq
        }
        None => append_with_usage(state, ws, rec, Some(usage)).await?,
    };
    Ok(QueryOutcome {
        columns: checked.columns,
        rows,
        shape: checked.shape,
        suppressed_groups,
        overlaps: collisions,
        min_group_size: ws.min_group_size,
        min_group_rule: ws.min_group_rule.clone(),
        truncated,
        audit_seq,
        relations: checked.relations,
        fields: checked.fields,
    })
}

/// The audit record and, for an executed query, its usage event, in one transaction.
async fn append_with_usage(state: &State, ws: &WorkspaceRow, rec: Record, usage: Option<UsageEvent>) -> Result<i64> {
    let mut conn = state.conn().await?;
    let c: &mut AsyncPgConnection = &mut conn;
    let seq = c
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            append_in(c, &state.topic_prefix, &ws.jurisdiction, rec, usage).await
        })
        .await?;
    state.relay.wake();
    Ok(seq)
}

/// Appends the audit record and its usage event in the caller's transaction.
#[tracing::instrument(name = "sandbox.audit_append", skip_all, fields(db.system = "postgresql"))]
async fn append_in(
    c: &mut AsyncPgConnection,
    prefix: &str,
    jurisdiction: &str,
    rec: Record,
    usage: Option<UsageEvent>,
) -> Result<i64> {
    let seq = audit::append(c, prefix, jurisdiction, &rec).await?;
    if let Some(mut u) = usage {
        u.audit_seq = seq as u64;
        let env = Envelope::wrap(
            EventMeta {
                event_type: "sandbox.usage.metered".into(),
                aggregate_id: u.grant_id.clone(),
                aggregate_version: seq as u64,
                producer: SERVICE.into(),
                jurisdiction: jurisdiction.to_string(),
            },
            &u,
        );
        platform_messaging::outbox::enqueue(c, &format!("{prefix}{}", topics::SANDBOX_USAGE), &env).await?;
    }
    Ok(seq)
}

/// The refusal of a single answer that would combine with earlier ones into a small group.
fn overlap_refusal(c: &Collision, min: u64) -> Refusal {
    let earlier: Vec<String> = c.earlier_audit_seqs.iter().map(|s| format!("#{s}")).collect();
    Refusal {
        check: "overlap",
        rule: check::rules::RAW_DATA,
        message: format!(
            "combined with the earlier answer{} {} ({:?}), this answer would describe fewer than {min} rows",
            if earlier.len() > 1 { "s" } else { "" },
            earlier.join(" and "),
            c.combination
        ),
        hint: "ask about groups that do not nearly coincide with, or barely overlap, earlier answers of this grant"
            .into(),
    }
}

/// A result row: its JSON text and, for aggregates, its row ids per relation read.
type ResultRow = (String, Vec<Option<Vec<Option<i32>>>>);
/// A query's result rows and, when asked for, its totals' rows (JSON texts).
type Executed = (Vec<ResultRow>, Option<Vec<String>>);

/// Runs the rewritten statement (and its totals statement, if given) as the workspace role;
/// `None` when the workspace is closed.
#[tracing::instrument(name = "sandbox.execute", skip_all, fields(db.system = "postgresql", workspace = %ws.schema_name))]
async fn execute(state: &State, ws: &WorkspaceRow, sql: &str, totals: Option<&str>) -> Result<Option<Executed>> {
    let mut data = state.data.get().await?;
    let tx = data.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT state FROM workspaces WHERE grant_id = $1::text::uuid FOR SHARE",
            &[&ws.grant_id.to_string()],
        )
        .await?;
    let open = row.is_some_and(|r| r.get::<_, String>(0) == "open");
    if !open {
        return Ok(None);
    }
    let schema = quote_ident(&ws.schema_name);
    tx.batch_execute(&format!(
        "SET LOCAL transaction_read_only = on; SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}; \
         SET LOCAL search_path = {schema}; SET LOCAL ROLE {schema}"
    ))
    .await?;
    let rows = tx.query(sql, &[]).await?;
    let totals = match totals {
        Some(t) => Some(tx.query(t, &[]).await?.iter().map(|r| r.get::<_, String>(0)).collect()),
        None => None,
    };
    tx.commit().await?;
    let rows = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), (1..r.len()).map(|i| r.get::<_, Option<Vec<Option<i32>>>>(i)).collect()))
        .collect();
    Ok(Some((rows, totals)))
}
