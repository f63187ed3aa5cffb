//! The per-grant history of released groups that overlap control checks against
//! ([`crate::domain::overlap`]): kept in the gateway's database (`released_groups`), so it survives a
//! restart and is shared by every replica and by every user of the grant (an operator's staff
//! and partners query one grant's workspace: a tracker split between them is still one
//! history), and cached per grant in memory.
//!
//! A grant's aggregate queries are serialized by a transaction-scoped advisory lock: two
//! queries of one grant cannot both be checked against a history that lacks the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bytea, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::domain::overlap::{self, Released, RowSet};
use crate::errors::{Error, Result};
use crate::limits::RELEASED_CACHE_BYTES;

/// Advisory-lock class of a grant's query serialization ("relg").
const LOCK_CLASS: i32 = 0x7265_6c67;

struct Cached {
    versions: String,
    /// The highest audit sequence loaded.
    upto: i64,
    released: Arc<Vec<Released>>,
    bytes: usize,
}

/// The cache of released groups per grant (bounded by [`RELEASED_CACHE_BYTES`]; an evicted
/// grant is read again from the database on its next query).
#[derive(Clone, Default)]
pub struct ReleasedGroups(Arc<Mutex<HashMap<Uuid, Cached>>>);

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    audit_seq: i64,
    #[diesel(sql_type = Bytea)]
    row_set: Vec<u8>,
}

/// The workspace's data versions that row ids belong to: every relation with its version.
pub fn data_versions(relations: &[crate::workspaces::StoredRelation]) -> String {
    relations.iter().map(|r| format!("{}@{}", r.name, r.dataset_version)).collect::<Vec<_>>().join(",")
}

fn bytes_of(released: &[Released]) -> usize {
    released.iter().map(|r| r.rows.serialized_size()).sum()
}

impl ReleasedGroups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Cached>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the grant's lock for the transaction `c` is in, then returns every group released
    /// under the grant for these data versions, reading what other replicas added since.
    pub async fn lock_and_load(
        &self,
        c: &mut AsyncPgConnection,
        grant: Uuid,
        versions: &str,
    ) -> Result<Arc<Vec<Released>>> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind::<diesel::sql_types::Integer, _>(LOCK_CLASS)
            .bind::<Text, _>(grant.to_string())
            .execute(c)
            .await?;
        let upto = match self.lock().get(&grant) {
            Some(cached) if cached.versions == versions => cached.upto,
            _ => i64::MIN,
        };
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT audit_seq, row_set FROM released_groups \
             WHERE grant_id = $1 AND data_versions = $2 AND audit_seq > $3 ORDER BY audit_seq",
        )
        .bind::<SqlUuid, _>(grant)
        .bind::<Text, _>(versions)
        .bind::<BigInt, _>(upto)
        .load(c)
        .await?;
        let mut fresh = Vec::with_capacity(rows.len());
        for r in rows {
            let rows = overlap::decode(&r.row_set).map_err(|e| Error::Corrupt(format!("released group: {e}")))?;
            fresh.push(Released { audit_seq: r.audit_seq, rows });
        }
        let mut cache = self.lock();
        let empty =
            || Cached { versions: versions.to_string(), upto: i64::MIN, released: Arc::new(Vec::new()), bytes: 0 };
        let entry = cache.entry(grant).or_insert_with(empty);
        if entry.versions != versions || upto == i64::MIN {
            *entry = empty();
        }
        if !fresh.is_empty() {
            entry.upto = fresh.last().map_or(entry.upto, |r| r.audit_seq);
            entry.bytes += bytes_of(&fresh);
            Arc::make_mut(&mut entry.released).extend(fresh);
        }
        let released = entry.released.clone();
        evict(&mut cache, grant);
        Ok(released)
    }

    /// Records the groups an answer released, in the caller's transaction (the one that holds
    /// the grant's lock and appends the answer's audit record).
    pub async fn append(
        c: &mut AsyncPgConnection,
        grant: Uuid,
        versions: &str,
        audit_seq: i64,
        sets: &[RowSet],
    ) -> Result<()> {
        if sets.is_empty() {
            return Ok(());
        }
        let counts: Vec<i64> = sets.iter().map(|s| s.len() as i64).collect();
        let blobs: Vec<Vec<u8>> = sets.iter().map(overlap::encode).collect();
        diesel::sql_query(
            "INSERT INTO released_groups (grant_id, audit_seq, data_versions, row_count, row_set) \
             SELECT $1, $2, $3, n, s FROM unnest($4::bigint[], $5::bytea[]) AS u(n, s)",
        )
        .bind::<SqlUuid, _>(grant)
        .bind::<BigInt, _>(audit_seq)
        .bind::<Text, _>(versions)
        .bind::<diesel::sql_types::Array<BigInt>, _>(counts)
        .bind::<diesel::sql_types::Array<Bytea>, _>(blobs)
        .execute(c)
        .await?;
        Ok(())
    }
}

/// Drops other grants' entries, largest first, while the cache holds more than its bound.
fn evict(cache: &mut HashMap<Uuid, Cached>, keep: Uuid) {
    let mut total: usize = cache.values().map(|c| c.bytes).sum();
    while total > RELEASED_CACHE_BYTES {
        let Some((&grant, bytes)) =
            cache.iter().filter(|(g, _)| **g != keep).map(|(g, c)| (g, c.bytes)).max_by_key(|(_, b)| *b)
        else {
            return;
        };
        cache.remove(&grant);
        total -= bytes;
    }
}
