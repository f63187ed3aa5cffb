//! The sandbox gateway (开发环境): the only path to the data — "原始数据不出域、数据可用不可见".
//!
//! Data source units stream datasets in ([`datasets`]); each grant from the authorization
//! service gets a workspace with only its granted fields, masked ([`workspaces`]); its principal
//! sends SQL that is parsed, checked and rewritten before it runs ([`check`]), with small groups
//! suppressed ([`suppress`]); every action goes to a hash-chained audit log ([`audit`]) and every
//! executed query to metering ([`query`]). Events: `sandbox.usage.v1`, `sandbox.audit.v1`;
//! consumed: `authorization.grant.v1`, `catalog.resource.v1`.

pub mod api;
pub mod app;
pub mod audit;
pub mod catalog_view;
pub mod check;
pub mod datasets;
pub mod domain;
pub mod errors;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod pgpool;
pub mod query;
pub mod store;
pub mod workloads;
pub mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform_events::topics;
use platform_runtime::{Platform, Running, StartError};
use platform_settings::CommonSettings;

pub const SERVICE: &str = "sandbox-gateway";

pub const GATEWAY_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything the gateway's database needs, in order.
pub static MIGRATIONS: &[EmbeddedMigrations] = &[platform_messaging::MIGRATIONS, GATEWAY_MIGRATIONS];

/// Built-in defaults (TOML); a file and `PLATFORM__…` variables override them.
pub fn default_settings() -> String {
    format!("{}\n{}", platform_settings::COMMON_DEFAULTS, workloads::JOBS_DEFAULTS)
        .replace("bind = \"127.0.0.1:0\"", "bind = \"127.0.0.1:8083\"")
}

/// The gateway's settings: the shared sections and `[jobs]`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct GatewaySettings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub jobs: workloads::JobsSettings,
}

impl platform_settings::Validate for GatewaySettings {
    fn validate(&self) -> Result<(), platform_settings::SettingsError> {
        self.common.validate()?;
        self.jobs.validate()
    }
}

impl platform_settings::HasCommon for GatewaySettings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

fn step(step: &'static str) -> impl Fn(String) -> StartError {
    move |reason| StartError::Step { service: SERVICE, step, reason }
}

/// Starts the gateway with in-process jobs (the launcher and the tests).
pub async fn run(settings: CommonSettings) -> Result<Running, StartError> {
    run_with(GatewaySettings { common: settings, jobs: workloads::JobsSettings::local() }).await
}

/// Starts the gateway: migrations, relay, consumers of grants and resources, the job
/// backend and its reconcile loop, HTTP.
pub async fn run_with(settings: GatewaySettings) -> Result<Running, StartError> {
    let GatewaySettings { common: settings, jobs: jobs_settings } = settings;
    let topic_prefix = settings.kafka.topic_prefix.clone();
    let data_url = settings.database.url.clone();
    let data_size = settings.database.pool_size;
    let publishes = [topics::SANDBOX_USAGE, topics::SANDBOX_AUDIT];
    let mut platform = Platform::start(SERVICE, settings, MIGRATIONS, &publishes).await?;
    let profiles = Arc::new(platform_policy::Profiles::built_in().map_err(|e| step("policy profiles")(e.to_string()))?);
    let metrics = metrics::GatewayMetrics::new(&platform.metrics).map_err(|e| step("metrics")(e.to_string()))?;
    let data = pgpool::pool(&data_url, data_size).map_err(step("data pool"))?;
    let cell = Arc::new(std::sync::OnceLock::new());
    let workloads = workloads::start(jobs_settings, cell.clone()).await.map_err(step("job backend"))?;
    platform.consume("sandbox-gateway-catalog", &[topics::CATALOG_RESOURCE], Arc::new(catalog_view::CatalogView))?;
    let grants = workspaces::GrantHandler {
        profiles: profiles.clone(),
        topic_prefix: topic_prefix.clone(),
        changed: Some(workloads.wake.clone()),
    };
    platform.consume("sandbox-gateway-grants", &[topics::AUTHORIZATION_GRANT], Arc::new(grants))?;
    {
        let mut c = platform_store::conn(&platform.pool).await.map_err(|e| step("workspace row ids")(e.to_string()))?;
        let rebuilt = workspaces::add_row_ids(&mut c).await.map_err(|e| step("workspace row ids")(e.to_string()))?;
        if rebuilt > 0 {
            tracing::info!(rebuilt, "workspaces rebuilt with row ids for overlap control");
        }
    }
    let state = app::State {
        pool: platform.pool.clone(),
        data,
        relay: platform.relay.clone(),
        profiles,
        topic_prefix,
        metrics,
        workloads: Some(workloads.clone()),
        totals: query::TotalsCache::default(),
        released: store::released::ReleasedGroups::default(),
    };
    let _ = cell.set(state.clone());
    platform.spawn(move |stop| workloads.run(cell, stop));
    let gauges = state.clone();
    platform.spawn(move |stop| refresh_gauges(gauges, stop));
    let data = actix_web::web::Data::new(state);
    platform.serve(move |cfg| {
        cfg.app_data(data.clone()).configure(api::routes);
    })
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Keeps the business gauges current: open workspaces, and the audit chain verified (an alert
/// fires when it breaks); purges audit records past their retention.
async fn refresh_gauges(state: app::State, mut stop: tokio::sync::watch::Receiver<bool>) {
    use diesel_async::RunQueryDsl as _;
    let mut ticks: u64 = 0;
    // Each minute the records appended since the last intact head are verified; each hour the
    // whole chain again (a change to an old record shows up then).
    let mut checkpoint = audit::Checkpoint::genesis();
    loop {
        if let Ok(mut c) = state.conn().await {
            if let Ok(n) = diesel::sql_query("SELECT count(*) AS n FROM workspaces WHERE state = 'open'")
                .get_result::<Count>(&mut c)
                .await
            {
                state.metrics.open_workspaces.set(n.n);
            }
            if ticks.is_multiple_of(12) {
                if ticks.is_multiple_of(720) {
                    checkpoint = audit::Checkpoint::genesis();
                }
                match audit::verify_from(&mut c, &checkpoint).await {
                    Ok(v) => {
                        state.metrics.audit_chain_broken.set(i64::from(!v.intact));
                        if v.intact {
                            checkpoint = audit::Checkpoint { seq: v.head_seq, hash: v.head_hash };
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "audit chain not verified"),
                }
                match audit::purge_expired(&mut c).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(records = n, "audit records past their retention purged"),
                    Err(e) => tracing::warn!(error = %e, "audit retention purge failed"),
                }
            }
        }
        ticks += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}
