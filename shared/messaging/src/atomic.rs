//! A domain change and the events it causes, sent and committed as **one SQL statement**.
//!
//! A use case that reads a row, decides, and writes the row, its history and its outbox rows
//! would otherwise pay BEGIN, a locking read, one round trip per write and COMMIT. Here the read
//! is a plain snapshot read that also returns the row's `xmin`, and every write goes out in one
//! data-modifying `WITH` statement:
//!
//! ```sql
//! WITH g(version) AS (UPDATE resources SET … WHERE id = $1 AND xmin::text::bigint = $2
//!                     RETURNING xmin::text::bigint),
//!      w0 AS (INSERT INTO resource_versions …),
//!      w1 AS (INSERT INTO outbox …)
//! SELECT platform_expect_one(count(*)), max(version) FROM g
//! ```
//!
//! PostgreSQL runs every statement of a `WITH` to completion under one snapshot, and the
//! statement commits as a whole or not at all. If the row changed after it was read, the guard
//! matches nothing, `platform_expect_one` raises `serialization_failure`, and nothing — neither
//! the change nor its events — commits; [`AtomicWrite::commit`] reports [`Committed::Stale`] and
//! the caller reads again and decides again. Otherwise it reports the row's new `xmin`, so the
//! caller can hold the row it wrote (`platform_store::RecentRows`) and guard its next change with
//! it without reading it first. Two round trips and one commit in all (the
//! statement is prepared once per connection, through `platform_store::Cached`), and no
//! transaction is ever left open on a pooled connection (a cancelled request cannot leave one).

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorKind, Error as DbError, QueryResult};
use diesel::sql_types::{BigInt, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform_events::Envelope;

/// One data-modifying statement of an [`AtomicWrite`].
pub type Write = Box<dyn QueryFragment<Pg> + Send + 'static>;

/// How an [`AtomicWrite`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Every write committed; with a guard, `version` is the guarded row's new `xmin`.
    Done { version: Option<i64> },
    /// The guarded row changed after it was read: nothing was written.
    Stale,
}

/// Statements that commit together in one round trip. Build with [`AtomicWrite::guarded`] (an
/// optimistic read-then-write) or [`AtomicWrite::default`] (writes with no guard).
#[derive(Default)]
pub struct AtomicWrite {
    guard: Option<Write>,
    writes: Vec<Write>,
}

impl AtomicWrite {
    /// `guard` must be a statement returning the row's new version when it applies, and nothing
    /// otherwise: `UPDATE … WHERE id = $1 AND xmin::text::bigint = $2 RETURNING xmin::text::bigint`
    /// (`.returning(platform_store::Xmin)`). If it returns any number of rows but one, nothing
    /// commits.
    pub fn guarded(guard: impl QueryFragment<Pg> + Query<SqlType = BigInt> + Send + 'static) -> AtomicWrite {
        AtomicWrite { guard: Some(Box::new(guard)), writes: Vec::new() }
    }

    /// Sets the guard (see [`AtomicWrite::guarded`]); a use case that decides its writes first
    /// sets the guard last, from the row it decided on.
    pub fn guard(&mut self, guard: impl QueryFragment<Pg> + Query<SqlType = BigInt> + Send + 'static) {
        self.guard = Some(Box::new(guard));
    }

    /// Adds a statement that commits with the rest (an INSERT, UPDATE or DELETE; no RETURNING
    /// is needed).
    pub fn write(&mut self, statement: impl QueryFragment<Pg> + Send + 'static) {
        self.writes.push(Box::new(statement));
    }

    /// Adds the outbox row of `envelope` on `topic` (with the current trace context), so the
    /// event commits with the change that causes it.
    pub fn publish(&mut self, topic: &str, envelope: &Envelope) -> QueryResult<()> {
        self.writes.push(Box::new(crate::outbox::row(topic, envelope)?));
        Ok(())
    }

    /// How many statements it holds (the guard included).
    pub fn len(&self) -> usize {
        self.writes.len() + usize::from(self.guard.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends and commits everything as one statement. Call it outside a transaction: a stale
    /// guard is reported by an error raised in the statement, which would abort an enclosing
    /// transaction (its later statements would fail), so the read-decide-write retry only works
    /// in autocommit.
    pub async fn commit(self, conn: &mut AsyncPgConnection) -> QueryResult<Committed> {
        if self.is_empty() {
            return Ok(Committed::Done { version: None });
        }
        // Prepared once per connection: its statements are fixed per use case (a whole-row
        // changeset, single-row inserts), so their texts are few. Do not put multi-row inserts of
        // varying length into one.
        match platform_store::Cached(self).get_result::<(i64, Option<i64>)>(conn).await {
            Ok((_, version)) => Ok(Committed::Done { version }),
            Err(DbError::DatabaseError(DatabaseErrorKind::SerializationFailure, info))
                if info.message().starts_with("stale write") =>
            {
                Ok(Committed::Stale)
            }
            Err(e) => Err(e),
        }
    }
}

impl QueryFragment<Pg> for AtomicWrite {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let named = self
            .guard
            .iter()
            .map(|g| ("g(version)".to_string(), g))
            .chain(self.writes.iter().enumerate().map(|(i, w)| (format!("w{i}"), w)));
        for (i, (name, statement)) in named.enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&name);
            out.push_sql(" AS (");
            statement.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if self.guard.is_some() {
            out.push_sql(" SELECT platform_expect_one(count(*)), max(version) FROM g");
        } else {
            out.push_sql(" SELECT 1::bigint, NULL::bigint");
        }
        Ok(())
    }
}

/// The statement's result: the guard's row count (always 1 once it returns) and the row's new
/// version (`NULL` without a guard).
impl Query for AtomicWrite {
    type SqlType = (BigInt, Nullable<BigInt>);
}

/// Cached by its text (see `platform_store::Cached`).
impl QueryId for AtomicWrite {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}
