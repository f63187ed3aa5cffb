//! The service's own PostgreSQL database, through diesel-async.
//!
//! Owned here: the connection [`Pool`] and its metrics, [`migrate`] (each service's migrations are
//! embedded in its binary and applied at start under an advisory lock, so replicas starting
//! together migrate once), database creation for the launcher and the test harness, and the
//! readiness check. Services and shared crates import it.

use std::sync::Arc;
use std::time::Duration;

use diesel::{QueryableByName, sql_types};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, deadpool::Object};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use diesel_migrations::EmbeddedMigrations;
use platform_settings::DatabaseSettings;

pub use diesel_async::pooled_connection::deadpool::Pool as DeadPool;

mod recent;
pub use recent::{Outcome as RecentOutcome, RecentRows};

pub type Pool = DeadPool<AsyncPgConnection>;
pub type PooledConn = Object<AsyncPgConnection>;
pub use diesel_async::AsyncPgConnection as PgConn;

/// Advisory-lock key under which migrations run ("migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database pool: {0}")]
    Pool(String),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("invalid database name `{0}`")]
    Name(String),
}

impl StoreError {
    /// What a caller is told, logged with the cause: an unavailable database is a 503 to retry,
    /// anything else an internal error (the detail stays in the log).
    pub fn problem(&self) -> platform_problems::Problem {
        match self {
            StoreError::Pool(e) => {
                tracing::error!(error = %e, "database unavailable");
                platform_problems::Problem::unavailable("the database is unavailable; retry shortly")
            }
            other => {
                tracing::error!(error = %other, "store error");
                platform_problems::Problem::internal()
            }
        }
    }
}

/// Builds the pool. Connections are made lazily; [`check`] proves the database answers.
///
/// A connection coming back out of the pool is checked with `SELECT 1` only when it has been
/// idle for longer than `verify_idle_ms` (diesel-async's default checks every checkout, one more
/// round trip per request); a broken connection or one left inside a transaction is never handed
/// out either way.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, StoreError> {
    use diesel_async::pooled_connection::deadpool::{Hook, HookError};
    use diesel_async::pooled_connection::{ManagerConfig, PoolableConnection as _, RecyclingMethod};
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(settings.url.clone(), config);
    let verify_after = Duration::from_millis(settings.verify_idle_ms);
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(Some(Duration::from_secs(settings.acquire_timeout_secs)))
        .create_timeout(Some(Duration::from_secs(settings.acquire_timeout_secs)))
        .runtime(deadpool::Runtime::Tokio1)
        .pre_recycle(Hook::async_fn(move |conn: &mut AsyncPgConnection, metrics: &deadpool::managed::Metrics| {
            Box::pin(async move {
                if metrics.last_used() <= verify_after {
                    return Ok(());
                }
                conn.ping(&RecyclingMethod::Verified)
                    .await
                    .map_err(|e| HookError::Backend(diesel_async::pooled_connection::PoolError::QueryError(e)))
            })
        }))
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// Takes a connection from the pool.
pub async fn conn(pool: &Pool) -> Result<PooledConn, StoreError> {
    pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))
}

/// Applies every pending migration of `sets`, in order, holding a database-wide advisory lock.
/// Returns how many were applied.
pub async fn migrate(url: &str, sets: &'static [EmbeddedMigrations]) -> Result<usize, StoreError> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || blocking::migrate(&url, sets))
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?
}

/// diesel's migration harness is synchronous: it runs on a blocking thread through
/// diesel-async's connection wrapper (no libpq).
mod blocking {
    use diesel::{Connection, RunQueryDsl, sql_types};
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _};

    use super::{MIGRATION_LOCK, StoreError};

    /// `MigrationSource` is implemented for owned sets only; this lends one.
    struct Borrowed<'a>(&'a EmbeddedMigrations);

    impl diesel::migration::MigrationSource<diesel::pg::Pg> for Borrowed<'_> {
        fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<diesel::pg::Pg>>>> {
            diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(self.0)
        }
    }

    pub fn migrate(url: &str, sets: &[EmbeddedMigrations]) -> Result<usize, StoreError> {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(url)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let lock = diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<sql_types::BigInt, _>(MIGRATION_LOCK);
        RunQueryDsl::execute(lock, &mut conn)?;
        let mut applied = 0;
        let mut result = Ok(());
        for set in sets {
            match conn.run_pending_migrations(Borrowed(set)) {
                Ok(versions) => applied += versions.len(),
                Err(e) => {
                    result = Err(StoreError::Migration(e.to_string()));
                    break;
                }
            }
        }
        let unlock = diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<sql_types::BigInt, _>(MIGRATION_LOCK);
        RunQueryDsl::execute(unlock, &mut conn)?;
        result.map(|_| applied)
    }
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = sql_types::Bool)]
    exists: bool,
}

/// A database name we create ourselves: lower-case letters, digits and `_`, so it needs no quoting.
pub fn valid_database_name(name: &str) -> Result<&str, StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok { Ok(name) } else { Err(StoreError::Name(name.into())) }
}

/// Creates database `name` (optionally from `template`) through `admin_url` unless it exists.
pub async fn create_database(admin_url: &str, name: &str, template: Option<&str>) -> Result<bool, StoreError> {
    valid_database_name(name)?;
    if let Some(t) = template {
        valid_database_name(t)?;
    }
    let mut conn = AsyncPgConnection::establish(admin_url).await.map_err(|e| StoreError::Pool(e.to_string()))?;
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<sql_types::Text, _>(name)
        .get_result(&mut conn)
        .await?;
    if found.exists {
        return Ok(false);
    }
    let sql = match template {
        // Quoted: names are checked above, and some service names are SQL keywords (authorization).
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        None => format!("CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"),
    };
    diesel::sql_query(sql).execute(&mut conn).await?;
    Ok(true)
}

/// Drops database `name` if it exists, closing other sessions first.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    valid_database_name(name)?;
    let mut conn = AsyncPgConnection::establish(admin_url).await.map_err(|e| StoreError::Pool(e.to_string()))?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut conn).await?;
    Ok(())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// The readiness check: a pooled connection answers `SELECT 1`.
pub fn check(pool: Pool) -> platform_telemetry::Check {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            let mut c = conn(&pool).await.map_err(|e| e.to_string())?;
            diesel::sql_query("SELECT 1").execute(&mut *c).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    })
}

/// Exposes the pool's size, idle connections and waiters as `db_pool_connections{state}`.
pub struct PoolCollector {
    pool: Pool,
    gauge: prometheus::IntGaugeVec,
}

impl PoolCollector {
    pub fn new(pool: Pool) -> Result<PoolCollector, prometheus::Error> {
        let gauge = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "db_pool_connections",
                "Database pool connections by state (max, open, idle, waiting)",
            ),
            &["state"],
        )?;
        Ok(PoolCollector { pool, gauge })
    }
}

impl prometheus::core::Collector for PoolCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }
    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let s = self.pool.status();
        for (state, v) in [("max", s.max_size), ("open", s.size), ("idle", s.available), ("waiting", s.waiting)] {
            self.gauge.with_label_values(&[state]).set(v as i64);
        }
        self.gauge.collect()
    }
}

/// The name of the unique constraint a failed statement violated, if that is why it failed.
pub fn unique_violation(e: &diesel::result::Error) -> Option<&str> {
    match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info) => {
            Some(info.constraint_name().unwrap_or(""))
        }
        _ => None,
    }
}

/// A statement prepared once per connection and then reused, keyed by its SQL text. Diesel
/// declines to cache any UPDATE, an INSERT of a derived `Insertable` struct (a value might render
/// as `DEFAULT`), raw `sql_query` text and `ON CONFLICT … DO UPDATE`, and so prepares them afresh on
/// every call — a round trip and a parse each time. Wrap such a statement on a hot path when its
/// text takes only a few shapes (a whole-row changeset; one that skips its `None` fields has at
/// most one shape per combination of them): each shape is one cache entry. Never wrap a statement
/// whose text grows with the data (multi-row VALUES, one placeholder per list element).
#[derive(Debug, Clone)]
pub struct Cached<Q>(pub Q);

impl<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>> diesel::query_builder::QueryFragment<diesel::pg::Pg>
    for Cached<Q>
{
    fn walk_ast<'b>(&'b self, out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &diesel::pg::Pg) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

/// Cached by its text, not by its type.
impl<Q> diesel::query_builder::QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

/// A row's `xmin` (the id of the transaction that last wrote it) as a `BIGINT`: read it with the
/// row, then write with `WHERE id = $1 AND xmin = $2` to change the row only if it is still the
/// version read (optimistic concurrency without a lock; xid has no diesel type and equality is
/// all a guard needs). A typed expression rather than `sql("xmin")`, because diesel refuses to
/// cache statements holding raw SQL and would prepare them on every call.
#[derive(Debug, Clone, Copy, Default, diesel::query_builder::QueryId)]
pub struct Xmin;

impl diesel::expression::Expression for Xmin {
    type SqlType = sql_types::BigInt;
}

impl<GB> diesel::expression::ValidGrouping<GB> for Xmin {
    type IsAggregate = diesel::expression::is_aggregate::No;
}

impl<QS> diesel::expression::SelectableExpression<QS> for Xmin {}

impl<QS> diesel::expression::AppearsOnTable<QS> for Xmin {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Xmin {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("xmin::text::bigint");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_checked() {
        assert!(valid_database_name("catalog").is_ok());
        assert!(valid_database_name("t_0193ab").is_ok());
        assert!(valid_database_name("x; DROP DATABASE y").is_err());
        assert!(valid_database_name("Catalog").is_err());
        assert!(valid_database_name("1abc").is_err());
    }

    #[test]
    fn database_is_swapped_in_urls() {
        assert_eq!(with_database("postgres://u:p@h:5/postgres", "catalog"), "postgres://u:p@h:5/catalog");
        assert_eq!(with_database("postgres://h:5/postgres?sslmode=disable", "c"), "postgres://h:5/c?sslmode=disable");
        assert_eq!(with_database("postgres://h:5", "c"), "postgres://h:5/c");
    }
}
