//! Operating limits of the gateway (not rule numbers: those come from the policy profile).

/// Rows a query may return.
pub const MAX_ROWS: u64 = 10_000;
/// Bytes a query result may hold (JSON text).
pub const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
/// A query's statement timeout.
pub const STATEMENT_TIMEOUT_MS: u64 = 30_000;
/// SQL text a query may have.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// Rejected rows reported by a failed load (all are counted).
pub const MAX_REJECTS_REPORTED: usize = 100;
/// Bytes gathered before they are sent to `COPY`.
pub const COPY_CHUNK_BYTES: usize = 256 * 1024;
/// A record of a load may be at most this long (a runaway quote is refused, not buffered).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The window in which refusals of one principal are counted against the profile's threshold (WF-30).
pub const REFUSAL_WINDOW_MICROS: i64 = 10 * 60 * 1_000_000;
/// Bytes of released groups' row sets the gateway caches in memory for overlap control (all
/// grants together; an evicted grant's history is read again from the database).
pub const RELEASED_CACHE_BYTES: usize = 256 * 1024 * 1024;
