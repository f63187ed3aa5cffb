//! The deadline scheduler (agreement and grant expiry) runs on one
//! replica at a time: the one that holds a PostgreSQL session advisory lock on a connection of
//! its own. A standby tries to take the lock at every tick and skips the sweeps while it cannot;
//! when the leader stops, or its connection dies, the server releases the lock and a standby
//! takes over at its next tick. The sweeps themselves stay idempotent (rows re-read under lock,
//! `SKIP LOCKED`), so even the short overlap a lost connection can cause neither repeats nor
//! misses an action.

use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use tokio::sync::watch;

use crate::app::State;

/// The lock's key: "authswep" in ASCII, distinct from the relay's and the migrations' keys.
pub const LOCK_KEY: i64 = 0x6175_7468_7377_6570;

diesel::define_sql_function! {
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

diesel::define_sql_function! {
    fn pg_advisory_unlock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// This replica's claim on the scheduler: a dedicated connection (never a pooled one, which
/// would carry the session lock back into the pool) and whether it holds the lock.
pub struct Leadership {
    url: String,
    conn: Option<AsyncPgConnection>,
    leading: bool,
}

impl Leadership {
    pub fn new(url: &str) -> Leadership {
        Leadership { url: url.to_string(), conn: None, leading: false }
    }

    /// Whether this replica leads now: it keeps the lock while its session lives, and tries to
    /// take it otherwise.
    pub async fn lead(&mut self) -> bool {
        if self.conn.is_none() {
            self.leading = false;
            self.conn = AsyncPgConnection::establish(&self.url).await.ok();
        }
        let Some(c) = self.conn.as_mut() else { return false };
        let answer = if self.leading {
            // The lock lives exactly as long as the session: check that it does.
            diesel::sql_query("SELECT 1").execute(c).await.map(|_| true)
        } else {
            diesel::select(pg_try_advisory_lock(LOCK_KEY)).get_result::<bool>(c).await
        };
        match answer {
            Ok(held) => self.leading = held,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler connection lost; leadership released");
                self.conn = None;
                self.leading = false;
            }
        }
        self.leading
    }

    /// Gives the lock up at once (on stop), so a standby need not wait for the session to end.
    pub async fn resign(mut self) {
        if let (true, Some(c)) = (self.leading, self.conn.as_mut()) {
            let _ = diesel::select(pg_advisory_unlock(LOCK_KEY)).get_result::<bool>(c).await;
        }
        self.leading = false;
    }
}

/// The scheduler's metrics: whether this replica leads, and how many sweeps it ran.
#[derive(Clone)]
pub struct SchedulerMetrics {
    pub leader: prometheus::IntGauge,
    pub sweeps: prometheus::IntCounter,
}

impl SchedulerMetrics {
    pub fn new(registry: &prometheus::Registry) -> Result<SchedulerMetrics, prometheus::Error> {
        let m = SchedulerMetrics {
            leader: prometheus::IntGauge::new(
                "authorization_scheduler_leader",
                "1 while this replica holds the scheduler's advisory lock and runs the deadline sweeps",
            )?,
            sweeps: prometheus::IntCounter::new(
                "authorization_scheduler_sweeps_total",
                "Deadline sweeps this replica ran as the scheduler's leader",
            )?,
        };
        registry.register(Box::new(m.leader.clone()))?;
        registry.register(Box::new(m.sweeps.clone()))?;
        Ok(m)
    }
}

/// One round of the leader's work: the expiries (each sweep idempotent).
async fn sweep(state: &State, metrics: &SchedulerMetrics) {
    match crate::agreements::expire_due(state, 500).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "agreements expired"),
        Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying"),
    }
    match crate::grants::expire_due(state, crate::grants::SWEEP_BATCH).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "grants expired"),
        Err(e) => tracing::warn!(error = %e, "grant expiry sweep failed; retrying"),
    }
    metrics.sweeps.inc();
}

/// Ticks every `tick` until stopped: sweeps while leading, skips while another replica leads.
pub async fn run(
    state: State,
    database_url: String,
    tick: Duration,
    metrics: SchedulerMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut leadership = Leadership::new(&database_url);
    loop {
        let leading = leadership.lead().await;
        if leading != (metrics.leader.get() == 1) {
            tracing::info!(leading, "scheduler leadership changed");
        }
        metrics.leader.set(i64::from(leading));
        if leading {
            sweep(&state, &metrics).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => break,
        }
    }
    metrics.leader.set(0);
    leadership.resign().await;
}
