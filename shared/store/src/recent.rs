//! Rows this replica read or wrote moments ago, each with its `xmin`, so that the next optimistic
//! change of the same row can decide on it without reading it again.
//!
//! A change of a row is "read it with its `xmin`, decide, write it guarded by that `xmin`"
//! ([`crate::Xmin`], `platform_messaging::AtomicWrite`): two round trips. When the replica holds
//! the row as it last read or wrote it, the read is skipped: the guard still refuses the write if
//! anyone changed the row since (another replica, another request), and the caller then reads
//! the row and decides again. So a stale entry costs one refused statement, never a wrong write;
//! and a decision that refuses the change (an invalid transition, say) must be made again on a
//! fresh read before it is reported, because the cached row may be behind.
//!
//! Entries live at most `ttl` and at most `capacity` of them are kept (the oldest go first);
//! `capacity = 0` turns the cache off. `take` removes the entry it returns, so two concurrent
//! changes of one row never both start from it.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use platform_settings::DatabaseSettings;

/// How a change found its starting row; counted in `db_recent_rows_total{table, outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Decided on the held row, and the guarded write went through.
    Hit,
    /// No row held (or expired): read from the database.
    Miss,
    /// The held row had changed in the database since: read again and decided again.
    Stale,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
        }
    }
}

struct Entry<V> {
    row: V,
    xmin: i64,
    at: Instant,
}

struct Inner<K, V> {
    rows: HashMap<K, Entry<V>>,
    /// Insertion order, for eviction; a key put again appears twice and its older mark is skipped.
    order: VecDeque<(K, Instant)>,
}

/// See the module documentation.
pub struct RecentRows<K, V> {
    table: &'static str,
    capacity: usize,
    ttl: Duration,
    inner: Mutex<Inner<K, V>>,
    outcomes: prometheus::IntCounterVec,
}

impl<K: Hash + Eq + Clone, V> RecentRows<K, V> {
    /// A cache of `table`'s rows sized by `database.recent_rows` and `database.recent_rows_ttl_ms`.
    pub fn new(table: &'static str, settings: &DatabaseSettings) -> Self {
        Self::with_limits(table, settings.recent_rows, Duration::from_millis(settings.recent_rows_ttl_ms))
    }

    pub fn with_limits(table: &'static str, capacity: usize, ttl: Duration) -> Self {
        #[allow(clippy::expect_used)] // fixed, valid metric options
        let outcomes = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "db_recent_rows_total",
                "Optimistic changes by how they found their row: hit (held by this replica), miss (read), stale (held but changed since, read again)",
            ),
            &["table", "outcome"],
        )
        .expect("valid metric");
        // Every outcome is exported from the start (at 0), so dashboards and alerts see the series.
        for outcome in [Outcome::Hit, Outcome::Miss, Outcome::Stale] {
            outcomes.with_label_values(&[table, outcome.label()]);
        }
        RecentRows {
            table,
            capacity,
            ttl,
            inner: Mutex::new(Inner { rows: HashMap::new(), order: VecDeque::new() }),
            outcomes,
        }
    }

    /// Exposes the outcome counter at `/metrics`.
    pub fn register(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.outcomes.clone()))
    }

    /// Removes and returns the row held for `key` with its `xmin`, unless it is older than the ttl.
    pub fn take(&self, key: &K) -> Option<(V, i64)> {
        if self.capacity == 0 {
            return None;
        }
        let entry = self.lock().rows.remove(key)?;
        (entry.at.elapsed() <= self.ttl).then_some((entry.row, entry.xmin))
    }

    /// Holds `row` as it is in the database at `xmin` (just read, or just written by a statement
    /// that returned its new `xmin`).
    pub fn put(&self, key: K, row: V, xmin: i64) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        inner.rows.insert(key.clone(), Entry { row, xmin, at: now });
        inner.order.push_back((key, now));
        while let Some((key, at)) = inner.order.front().cloned() {
            let over = inner.rows.len() > self.capacity;
            if !over && now.duration_since(at) <= self.ttl {
                break;
            }
            inner.order.pop_front();
            // Only the mark of the entry's latest put removes it.
            if inner.rows.get(&key).is_some_and(|e| e.at == at) {
                inner.rows.remove(&key);
            }
        }
    }

    /// Drops whatever is held for `key`.
    pub fn forget(&self, key: &K) {
        self.lock().rows.remove(key);
    }

    /// How many rows are held.
    pub fn len(&self) -> usize {
        self.lock().rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts how a change found its row.
    pub fn record(&self, outcome: Outcome) {
        self.outcomes.with_label_values(&[self.table, outcome.label()]).inc();
    }

    /// How often `outcome` was recorded.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.with_label_values(&[self.table, outcome.label()]).get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that matters
        // (every entry is guarded by its xmin anyway), so keep using it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_row_is_gone_so_two_changes_never_start_from_it() {
        let c = RecentRows::with_limits("t", 10, Duration::from_secs(60));
        c.put(1, "a", 7);
        assert_eq!(c.take(&1), Some(("a", 7)));
        assert_eq!(c.take(&1), None);
    }

    #[test]
    fn a_row_older_than_the_ttl_is_not_used() {
        let c = RecentRows::with_limits("t", 10, Duration::from_millis(20));
        c.put(1, "a", 7);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.take(&1), None);
    }

    #[test]
    fn the_oldest_rows_go_first_when_full_and_a_row_put_again_counts_as_new() {
        let c = RecentRows::with_limits("t", 3, Duration::from_secs(60));
        for k in 1..=3 {
            c.put(k, k * 10, k as i64);
        }
        c.put(1, 11, 8); // 1 is now the newest
        c.put(4, 40, 4); // evicts 2, the oldest
        assert_eq!(c.len(), 3);
        assert_eq!(c.take(&2), None);
        assert_eq!(c.take(&1), Some((11, 8)));
        assert_eq!(c.take(&3), Some((30, 3)));
        assert_eq!(c.take(&4), Some((40, 4)));
    }

    #[test]
    fn capacity_zero_holds_nothing() {
        let c = RecentRows::with_limits("t", 0, Duration::from_secs(60));
        c.put(1, "a", 7);
        assert!(c.is_empty());
        assert_eq!(c.take(&1), None);
    }

    #[test]
    fn outcomes_are_counted_per_table() {
        let c: RecentRows<i32, ()> = RecentRows::with_limits("resources", 1, Duration::from_secs(1));
        c.record(Outcome::Hit);
        c.record(Outcome::Hit);
        c.record(Outcome::Stale);
        assert_eq!((c.count(Outcome::Hit), c.count(Outcome::Miss), c.count(Outcome::Stale)), (2, 0, 1));
    }
}
