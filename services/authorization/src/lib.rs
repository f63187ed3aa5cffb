//! The authorization service: who may use which public data, for what, until when.
//!
//! This first part holds the jurisdictions' policy profiles (versioned, from the data files of
//! `shared/policy`), a read model of the catalog (from `catalog.resource.v1`), and implementation
//! plans: the twelve contents of SX-16, feasibility review (SX-17), deliberation (SX-18),
//! approval, filing within the profile's deadline (SX-19: one month; WF-11: 20 working days) and
//! changes that re-enter the flow (WF-11). Events: `authorization.plan.v1`.
//! Operator selection (`selections`: announcement, applications before the deadline, eligibility
//! by profile, scores, award, public notice with objections — WF-12, WF-13, ZJK-12, NS-11…13,
//! LZ-3), agreements, two tiers, data requests and grants, supervision (by hand, or opened from the
//! development environment's alerts on `sandbox.audit.v1`, WF-30) and city filings follow.

pub mod agreements;
pub mod api;
pub mod app;
pub mod catalog_view;
pub mod city_filings;
pub mod domain;
pub mod errors;
pub mod evaluations;
pub mod events;
pub mod grants;
pub mod harm_reports;
pub mod lease;
pub mod sandbox_audit;
pub mod scheduler;
pub mod selections;
pub mod staff;
pub mod store;
pub mod sub_authorizations;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform_events::topics;
use platform_runtime::{Platform, Running, StartError};
use platform_settings::CommonSettings;

pub const SERVICE: &str = "authorization";

pub const AUTHORIZATION_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
pub static MIGRATIONS: &[EmbeddedMigrations] = &[platform_messaging::MIGRATIONS, AUTHORIZATION_MIGRATIONS];

/// Built-in defaults (TOML); a file and `PLATFORM__…` variables override them.
pub fn default_settings() -> String {
    format!("{}\n{}", platform_settings::COMMON_DEFAULTS, scheduler::SCHEDULER_DEFAULTS)
        .replace("bind = \"127.0.0.1:0\"", "bind = \"127.0.0.1:8082\"")
}

/// The service's settings: the shared sections and `[scheduler]`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AuthorizationSettings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub scheduler: scheduler::SchedulerSettings,
}

impl platform_settings::Validate for AuthorizationSettings {
    fn validate(&self) -> Result<(), platform_settings::SettingsError> {
        self.common.validate()?;
        self.scheduler.validate()
    }
}

impl platform_settings::HasCommon for AuthorizationSettings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

fn step_err(step: &'static str) -> impl Fn(String) -> StartError {
    move |reason| StartError::Step { service: SERVICE, step, reason }
}

/// How often the deadline scheduler ticks: the leader sweeps, a standby tries to take the lead.
pub const SCHEDULER_TICK: Duration = Duration::from_secs(30);

/// Starts the service with the scheduler elected by advisory lock (the launcher and the tests).
pub async fn run(settings: CommonSettings) -> Result<Running, StartError> {
    run_with_tick(settings, SCHEDULER_TICK).await
}

/// [`run`] with another scheduler tick (tests use a short one to see a standby take over).
pub async fn run_with_tick(settings: CommonSettings, tick: Duration) -> Result<Running, StartError> {
    let settings = AuthorizationSettings { common: settings, scheduler: scheduler::SchedulerSettings::advisory_lock() };
    start(settings, tick).await
}

/// Starts the service with its own settings (the binary): the scheduler elects by Kubernetes
/// Lease in a pod, by advisory lock elsewhere, as `[scheduler]` says.
pub async fn run_with(settings: AuthorizationSettings) -> Result<Running, StartError> {
    start(settings, SCHEDULER_TICK).await
}

async fn start(settings: AuthorizationSettings, tick: Duration) -> Result<Running, StartError> {
    let AuthorizationSettings { common: settings, scheduler: election } = settings;
    let leadership = scheduler::Leadership::start(&election, &settings.database.url, scheduler::in_cluster())
        .await
        .map_err(step_err("leader election"))?;
    let topic_prefix = settings.kafka.topic_prefix.clone();
    let mut platform = Platform::start(
        SERVICE,
        settings,
        MIGRATIONS,
        &[
            topics::AUTHORIZATION_PLAN,
            topics::AUTHORIZATION_AGREEMENT,
            topics::AUTHORIZATION_GRANT,
            topics::AUTHORIZATION_SELECTION,
            topics::PROVINCE_RECEIPT,
        ],
    )
    .await?;
    let profiles = platform_policy::Profiles::built_in().map_err(|e| step_err("policy profiles")(e.to_string()))?;
    let added =
        app::load_profiles(&platform.pool, &profiles).await.map_err(|e| step_err("policy profiles")(e.to_string()))?;
    tracing::info!(added, "policy profile versions stored");
    platform.consume("authorization.catalog", &[topics::CATALOG_RESOURCE], Arc::new(catalog_view::CatalogView))?;
    let filings = city_filings::CityFilings {
        topic_prefix: topic_prefix.clone(),
        calendar: platform_calendar::Calendar::official(),
    };
    platform.consume("authorization.city-filings", &[topics::CITY_FILING], Arc::new(filings))?;
    // The development environment's alerts open supervision cases (WF-30); destructions are
    // recorded against their grants (ZJK-31).
    platform.consume("authorization.sandbox-audit", &[topics::SANDBOX_AUDIT], Arc::new(sandbox_audit::SandboxAudit))?;
    let state = app::State {
        pool: platform.pool.clone(),
        relay: platform.relay.clone(),
        calendar: platform_calendar::Calendar::official(),
        topic_prefix,
    };
    let overdue = prometheus::IntGauge::new(
        "authorization_plan_filings_overdue",
        "Approved implementation plans not filed with the upper jurisdiction by their due date (SX-19, WF-11)",
    )
    .map_err(|e| step_err("metrics")(e.to_string()))?;
    let unmatched = sandbox_audit::unmatched_gauge().map_err(|e| step_err("metrics")(e.to_string()))?;
    for g in [&overdue, &unmatched] {
        platform.metrics.registry.register(Box::new(g.clone())).map_err(|e| step_err("metrics")(e.to_string()))?;
    }
    let pool = platform.pool.clone();
    platform.spawn(move |mut stop| async move {
        loop {
            if let Ok(mut c) = platform_store::conn(&pool).await {
                if let Ok(n) = store::PlanRow::count_filing_overdue(&mut c, platform_calendar::today_in_china()).await {
                    overdue.set(n);
                }
                if let Ok(n) = sandbox_audit::SandboxAlert::count_unmatched(&mut c).await {
                    unmatched.set(n);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.changed() => return,
            }
        }
    });
    // Deadlines (agreement and grant expiry) are swept by one replica at a time: the holder of a
    // Kubernetes Lease or of a PostgreSQL session advisory lock (see `scheduler`).
    let scheduler =
        scheduler::SchedulerMetrics::new(&platform.metrics.registry).map_err(|e| step_err("metrics")(e.to_string()))?;
    let sweeper = state.clone();
    platform.spawn(move |stop| scheduler::run(sweeper, leadership, tick, scheduler, stop));
    let data = actix_web::web::Data::new(state);
    platform.serve(move |cfg| {
        cfg.app_data(data.clone()).configure(api::routes);
    })
}
