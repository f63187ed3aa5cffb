//! The deadline scheduler (agreement, grant and sub-authorization ends) runs on one replica at a time: on
//! Kubernetes the holder of a Lease (see [`crate::lease`]), elsewhere the one that holds a
//! PostgreSQL session advisory lock on a connection of its own. A standby tries to take the lead
//! at every tick and skips the sweeps while it cannot; when the leader stops it gives the lead up,
//! and when it dies its session ends (the lock) or its Lease lapses, and a standby takes over at
//! its next tick. The sweeps themselves stay idempotent (rows re-read under lock, `SKIP LOCKED`),
//! so even the short overlap a lost connection or a lapsed Lease can cause neither repeats nor
//! misses an action.

use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::app::State;
use crate::lease::LeaseLock;

/// The lock's key: "authswep" in ASCII, distinct from the relay's and the migrations' keys.
pub const LOCK_KEY: i64 = 0x6175_7468_7377_6570;

diesel::define_sql_function! {
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

diesel::define_sql_function! {
    fn pg_advisory_unlock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// The `[scheduler]` settings section: how replicas elect the one that sweeps.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// `auto` (a Lease when `KUBERNETES_SERVICE_HOST` is set, i.e. in a pod; the advisory lock
    /// otherwise), `lease` or `advisory_lock`.
    pub leader_election: String,
    pub lease_name: String,
    /// Empty: the pod's own namespace.
    #[serde(default)]
    pub lease_namespace: String,
    /// How long a Lease not renewed keeps standbys waiting; more than two ticks.
    pub lease_duration_secs: u64,
}

/// The built-in `[scheduler]` section.
pub const SCHEDULER_DEFAULTS: &str = r#"
[scheduler]
leader_election = "auto"
lease_name = "authorization-scheduler"
lease_namespace = ""
lease_duration_secs = 90
"#;

/// How leadership is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    Lease,
    AdvisoryLock,
}

impl SchedulerSettings {
    /// The advisory lock, whatever the environment (the launcher and the tests).
    pub fn advisory_lock() -> SchedulerSettings {
        SchedulerSettings {
            leader_election: "advisory_lock".into(),
            lease_name: "authorization-scheduler".into(),
            lease_namespace: String::new(),
            lease_duration_secs: 90,
        }
    }

    pub fn validate(&self) -> Result<(), platform_settings::SettingsError> {
        use platform_settings::SettingsError;
        if !["auto", "lease", "advisory_lock"].contains(&self.leader_election.as_str()) {
            return Err(SettingsError::invalid(
                "scheduler.leader_election",
                format!("`{}` is not auto, lease or advisory_lock", self.leader_election),
            ));
        }
        if self.lease_name.trim().is_empty() {
            return Err(SettingsError::invalid("scheduler.lease_name", "a Lease needs a name"));
        }
        if self.lease_duration_secs <= 2 * crate::SCHEDULER_TICK.as_secs() {
            return Err(SettingsError::invalid(
                "scheduler.lease_duration_secs",
                format!("must exceed two scheduler ticks ({} s)", 2 * crate::SCHEDULER_TICK.as_secs()),
            ));
        }
        Ok(())
    }

    /// The election in use; `in_cluster` tells whether this process runs in a pod.
    pub fn election(&self, in_cluster: bool) -> Election {
        match self.leader_election.as_str() {
            "lease" => Election::Lease,
            "auto" if in_cluster => Election::Lease,
            _ => Election::AdvisoryLock,
        }
    }
}

/// Whether this process runs in a Kubernetes pod (the variable every pod gets).
pub fn in_cluster() -> bool {
    std::env::var("KUBERNETES_SERVICE_HOST").is_ok_and(|h| !h.is_empty())
}

/// This replica's claim on the scheduler, by Lease or by advisory lock.
pub enum Leadership {
    AdvisoryLock(AdvisoryLock),
    Lease(LeaseLock),
}

impl Leadership {
    /// The advisory lock on the database at `url`.
    pub fn new(url: &str) -> Leadership {
        Leadership::AdvisoryLock(AdvisoryLock::new(url))
    }

    /// The election `settings` choose: a Lease through the in-cluster client, or the lock.
    pub async fn start(settings: &SchedulerSettings, url: &str, in_cluster: bool) -> Result<Leadership, String> {
        if settings.election(in_cluster) == Election::AdvisoryLock {
            return Ok(Leadership::new(url));
        }
        let client = kube::Client::try_default().await.map_err(|e| format!("kubernetes client: {e}"))?;
        let namespace = Some(settings.lease_namespace.as_str()).filter(|n| !n.is_empty());
        let lock = LeaseLock::new(
            client,
            namespace,
            &settings.lease_name,
            &crate::lease::identity(),
            Duration::from_secs(settings.lease_duration_secs),
        );
        tracing::info!(lease = %settings.lease_name, identity = lock.identity(), "scheduler elects by Kubernetes Lease");
        Ok(Leadership::Lease(lock))
    }

    /// Whether this replica leads now.
    pub async fn lead(&mut self) -> bool {
        match self {
            Leadership::AdvisoryLock(l) => l.lead().await,
            Leadership::Lease(l) => l.lead().await,
        }
    }

    /// Gives the lead up at once (on stop), so a standby need not wait.
    pub async fn resign(self) {
        match self {
            Leadership::AdvisoryLock(l) => l.resign().await,
            Leadership::Lease(l) => l.resign().await,
        }
    }
}

/// A claim by advisory lock: a dedicated connection (never a pooled one, which would carry the
/// session lock back into the pool) and whether it holds the lock.
pub struct AdvisoryLock {
    url: String,
    conn: Option<AsyncPgConnection>,
    leading: bool,
}

impl AdvisoryLock {
    pub fn new(url: &str) -> AdvisoryLock {
        AdvisoryLock { url: url.to_string(), conn: None, leading: false }
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
                "1 while this replica holds the scheduler's Lease or advisory lock and runs the deadline sweeps",
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

/// One round of the leader's work: the expiries and ended sub-authorizations (each sweep
/// idempotent).
async fn sweep(state: &State, metrics: &SchedulerMetrics) {
    match crate::agreements::expire_due(state, 500).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "agreements expired"),
        Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying"),
    }
    match crate::sub_authorizations::end_due(state, 500).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(ended = n, "sub-authorizations ended"),
        Err(e) => tracing::warn!(error = %e, "sub-authorization sweep failed; retrying"),
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
    mut leadership: Leadership,
    tick: Duration,
    metrics: SchedulerMetrics,
    mut stop: watch::Receiver<bool>,
) {
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
