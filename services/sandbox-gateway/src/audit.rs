//! The audit chain (WF-30: every action recorded and reviewable; ZJK-19: supervision and
//! tracing). Records are appended in one order under a lock on the chain head; each carries the
//! hash of the one before and its own hash over every field, so changing, removing or inserting
//! a record breaks the chain at that record. The table refuses UPDATE, DELETE and TRUNCATE by a
//! trigger, whoever asks. After each append the head is published on `sandbox.audit.v1`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform_events::sandbox::{AuditEvent, AuditKind};
use platform_events::{Envelope, EventMeta, timestamp, topics};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::SERVICE;
use crate::limits::REFUSAL_WINDOW_MICROS;

/// What is recorded about one action.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub principal: String,
    pub principal_org: String,
    pub grant_id: Option<Uuid>,
    /// query | load | open | close | reopen | destroy
    pub action: String,
    /// The SQL as sent, or what the action concerned.
    pub query: String,
    /// allowed | suppressed | refused | failed | done
    pub decision: String,
    /// The rule behind the decision (empty when none applies).
    pub rule: String,
    pub rows_read: i64,
    pub rows_returned: i64,
    /// SHA-256 of what was returned (empty when nothing was).
    pub result_digest: String,
}

/// A stored record with its place in the chain.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct Stored {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub prev_hash: String,
    #[diesel(sql_type = Text)]
    pub hash: String,
    #[diesel(sql_type = BigInt)]
    pub at_micros: i64,
    #[diesel(sql_type = Text)]
    pub principal: String,
    #[diesel(sql_type = Text)]
    pub principal_org: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub grant_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub query: String,
    #[diesel(sql_type = Text)]
    pub decision: String,
    #[diesel(sql_type = Text)]
    pub rule: String,
    #[diesel(sql_type = BigInt)]
    pub rows_read: i64,
    #[diesel(sql_type = BigInt)]
    pub rows_returned: i64,
    #[diesel(sql_type = Text)]
    pub result_digest: String,
    /// When the record's content was purged after its retention period (its place in the chain stays).
    #[diesel(sql_type = Nullable<diesel::sql_types::Timestamptz>)]
    pub purged_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a record: SHA-256 over a JSON array of every field, the previous hash first.
fn chain_hash(seq: i64, prev: &str, at_micros: i64, r: &Record) -> String {
    let canonical = serde_json::json!([
        seq,
        prev,
        at_micros,
        r.principal,
        r.principal_org,
        r.grant_id.map(|g| g.to_string()),
        r.action,
        r.query,
        r.decision,
        r.rule,
        r.rows_read,
        r.rows_returned,
        r.result_digest
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

impl Stored {
    fn record(&self) -> Record {
        Record {
            principal: self.principal.clone(),
            principal_org: self.principal_org.clone(),
            grant_id: self.grant_id,
            action: self.action.clone(),
            query: self.query.clone(),
            decision: self.decision.clone(),
            rule: self.rule.clone(),
            rows_read: self.rows_read,
            rows_returned: self.rows_returned,
            result_digest: self.result_digest.clone(),
        }
    }
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    hash: String,
}

fn envelope(jurisdiction: &str, key: &str, version: u64, ev: &AuditEvent) -> Envelope {
    Envelope::wrap(
        EventMeta {
            event_type: format!(
                "sandbox.audit.{}",
                ev.kind().as_str_name().trim_start_matches("AUDIT_KIND_").to_lowercase()
            ),
            aggregate_id: key.to_string(),
            aggregate_version: version,
            producer: SERVICE.into(),
            jurisdiction: jurisdiction.to_string(),
        },
        ev,
    )
}

/// Appends `r` inside the caller's transaction and publishes the new head through the outbox.
/// Returns the record's sequence number.
pub async fn append(
    conn: &mut AsyncPgConnection,
    prefix: &str,
    jurisdiction: &str,
    r: &Record,
) -> diesel::QueryResult<i64> {
    let head: Head = diesel::sql_query("SELECT seq, hash FROM audit_head FOR UPDATE").get_result(conn).await?;
    let seq = head.seq + 1;
    let now = chrono::Utc::now();
    let at_micros = now.timestamp_micros();
    let hash = chain_hash(seq, &head.hash, at_micros, r);
    diesel::sql_query(
        "INSERT INTO audit_log (seq, prev_hash, hash, at_micros, principal, principal_org, grant_id, action, query, \
         decision, rule, rows_read, rows_returned, result_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind::<BigInt, _>(seq)
    .bind::<Text, _>(&head.hash)
    .bind::<Text, _>(&hash)
    .bind::<BigInt, _>(at_micros)
    .bind::<Text, _>(&r.principal)
    .bind::<Text, _>(&r.principal_org)
    .bind::<Nullable<SqlUuid>, _>(r.grant_id)
    .bind::<Text, _>(&r.action)
    .bind::<Text, _>(&r.query)
    .bind::<Text, _>(&r.decision)
    .bind::<Text, _>(&r.rule)
    .bind::<BigInt, _>(r.rows_read)
    .bind::<BigInt, _>(r.rows_returned)
    .bind::<Text, _>(&r.result_digest)
    .execute(conn)
    .await?;
    diesel::sql_query("UPDATE audit_head SET seq = $1, hash = $2")
        .bind::<BigInt, _>(seq)
        .bind::<Text, _>(&hash)
        .execute(conn)
        .await?;
    let ev = AuditEvent {
        kind: AuditKind::ChainHead as i32,
        seq: seq as u64,
        hash,
        grant_id: r.grant_id.map(|g| g.to_string()).unwrap_or_default(),
        principal: r.principal.clone(),
        principal_org: r.principal_org.clone(),
        jurisdiction: jurisdiction.to_string(),
        decision: r.decision.clone(),
        rule: r.rule.clone(),
        at: Some(timestamp(now)),
        ..Default::default()
    };
    let key = r.grant_id.map(|g| g.to_string()).unwrap_or_else(|| r.principal.clone());
    let topic = format!("{prefix}{}", topics::SANDBOX_AUDIT);
    platform_messaging::outbox::enqueue(conn, &topic, &envelope(jurisdiction, &key, seq as u64, &ev)).await?;
    Ok(seq)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// After a refusal: when `principal` has reached `threshold` refusals in the current window,
/// raises one alert for supervision on `sandbox.audit.v1` (WF-30; the authorization service
/// opens a case from it). Returns whether an alert was raised.
pub async fn refusal_burst(
    conn: &mut AsyncPgConnection,
    prefix: &str,
    jurisdiction: &str,
    principal: &str,
    principal_org: &str,
    threshold: u32,
    rule: &str,
) -> diesel::QueryResult<bool> {
    let now = chrono::Utc::now();
    let since = now.timestamp_micros() - REFUSAL_WINDOW_MICROS;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_log WHERE principal = $1 AND decision = 'refused' AND at_micros > $2",
    )
    .bind::<Text, _>(principal)
    .bind::<BigInt, _>(since)
    .get_result(conn)
    .await?;
    if count.n < i64::from(threshold) {
        return Ok(false);
    }
    let window = now.timestamp_micros() / REFUSAL_WINDOW_MICROS * REFUSAL_WINDOW_MICROS;
    let inserted = diesel::sql_query(
        "INSERT INTO refusal_alerts (principal, window_start_micros, refusals) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(principal)
    .bind::<BigInt, _>(window)
    .bind::<diesel::sql_types::Integer, _>(count.n as i32)
    .execute(conn)
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let ev = AuditEvent {
        kind: AuditKind::RefusalBurst as i32,
        principal: principal.to_string(),
        principal_org: principal_org.to_string(),
        jurisdiction: jurisdiction.to_string(),
        decision: "refused".into(),
        rule: rule.to_string(),
        refusals: count.n as u32,
        threshold,
        reason: format!("{} refused queries within the window (threshold {threshold})", count.n),
        at: Some(timestamp(now)),
        ..Default::default()
    };
    let topic = format!("{prefix}{}", topics::SANDBOX_AUDIT);
    platform_messaging::outbox::enqueue(conn, &topic, &envelope(jurisdiction, principal, window as u64, &ev)).await?;
    Ok(true)
}

/// Publishes a destruction record (ZJK-31).
pub async fn destruction(
    conn: &mut AsyncPgConnection,
    prefix: &str,
    jurisdiction: &str,
    grant_id: Uuid,
    seq: u64,
    ev: AuditEvent,
) -> diesel::QueryResult<()> {
    let topic = format!("{prefix}{}", topics::SANDBOX_AUDIT);
    platform_messaging::outbox::enqueue(conn, &topic, &envelope(jurisdiction, &grant_id.to_string(), seq, &ev)).await
}

/// The outcome of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub intact: bool,
    /// Records checked.
    pub checked: i64,
    /// The first record whose link or hash does not match, when the chain is broken.
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
    /// The head as stored.
    pub head_seq: i64,
    pub head_hash: String,
}

/// Records read per page while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// Recomputes every link and hash from the first record and reports the first broken one.
pub async fn verify(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Verification> {
    verify_from(conn, &Checkpoint::genesis()).await
}

/// A record known to be intact: verification can resume after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
}

impl Checkpoint {
    /// Before the first record.
    pub fn genesis() -> Checkpoint {
        Checkpoint { seq: 0, hash: "0".repeat(64) }
    }
}

/// Recomputes the links and hashes of the records after `from` (the chain's start for
/// [`Checkpoint::genesis`]) up to the head, and reports the first broken one; `checked` counts
/// the records read.
pub async fn verify_from(conn: &mut AsyncPgConnection, from: &Checkpoint) -> diesel::QueryResult<Verification> {
    let head: Head = diesel::sql_query("SELECT seq, hash FROM audit_head").get_result(conn).await?;
    let mut prev = from.hash.clone();
    let mut expected_seq = from.seq + 1;
    let mut checked = 0i64;
    let broken = |seq: i64, reason: String, checked: i64, head: &Head| Verification {
        intact: false,
        checked,
        first_broken_seq: Some(seq),
        reason: Some(reason),
        head_seq: head.seq,
        head_hash: head.hash.clone(),
    };
    loop {
        let page: Vec<Stored> = diesel::sql_query(
            "SELECT seq, prev_hash, hash, at_micros, principal, principal_org, grant_id, action, query, decision, rule, \
             rows_read, rows_returned, result_digest, purged_at FROM audit_log WHERE seq >= $1 AND seq <= $3 \
             ORDER BY seq LIMIT $2",
        )
        .bind::<BigInt, _>(expected_seq)
        .bind::<BigInt, _>(VERIFY_PAGE)
        // Records appended while verifying lie beyond the head read above: the next pass's.
        .bind::<BigInt, _>(head.seq)
        .load(conn)
        .await?;
        let last_page = (page.len() as i64) < VERIFY_PAGE;
        for s in page {
            checked += 1;
            if s.seq != expected_seq {
                return Ok(broken(expected_seq, format!("record {expected_seq} is missing"), checked, &head));
            }
            if s.prev_hash != prev {
                return Ok(broken(
                    s.seq,
                    "its previous hash does not match the record before it".into(),
                    checked,
                    &head,
                ));
            }
            // A purged record keeps its links; its content is gone by rule, so only links are checked.
            if s.purged_at.is_none() && chain_hash(s.seq, &s.prev_hash, s.at_micros, &s.record()) != s.hash {
                return Ok(broken(s.seq, "its content does not match its hash".into(), checked, &head));
            }
            prev = s.hash;
            expected_seq += 1;
        }
        if last_page {
            break;
        }
    }
    if expected_seq - 1 != head.seq || prev != head.hash && head.seq > 0 {
        return Ok(broken(expected_seq, "the chain does not end at the stored head".into(), checked, &head));
    }
    Ok(Verification {
        intact: true,
        checked,
        first_broken_seq: None,
        reason: None,
        head_seq: head.seq,
        head_hash: head.hash,
    })
}

/// Purges the records of workspaces destroyed longer ago than their retention period (WF-24,
/// ZJK-31, NS-16), keeping each record's place in the chain. Returns the records purged.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> diesel::QueryResult<usize> {
    use diesel_async::AsyncConnection as _;
    conn.transaction::<_, diesel::result::Error, _>(async |c: &mut AsyncPgConnection| {
        let n = diesel::sql_query(
            "UPDATE audit_log SET purged_at = now(), query = '', principal = '', principal_org = '', result_digest = '' \
             WHERE purged_at IS NULL AND grant_id IN (SELECT grant_id FROM workspaces WHERE state = 'destroyed' \
               AND logs_purged_at IS NULL AND logs_kept_until < now())",
        )
        .execute(c)
        .await?;
        diesel::sql_query(
            "UPDATE workspaces SET logs_purged_at = now() WHERE state = 'destroyed' AND logs_purged_at IS NULL \
             AND logs_kept_until < now()",
        )
        .execute(c)
        .await?;
        Ok(n)
    })
    .await
}
