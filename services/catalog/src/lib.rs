//! The catalog service (公共数据资源目录).
//!
//! Industry departments compile their sector's resources with field schemas and per-field
//! sensitivity; the data management department publishes or rejects them (ZJK-7); published
//! resources change only by new versions. Not-open data and shared-in data without consent are
//! published but not authorizable (NS-2, SX-5). Resources in scope are registered with gap-free
//! numbers (SX-6, ZJK-22). Quality objections are handled within the profile's working days
//! (LZ-5). Events: `catalog.resource.v1`, `catalog.registration.v1`, `catalog.quality.v1`.
//!
//! [`run`] starts the service; the binary, the launcher and the tests all call it.

pub mod api;
pub mod app;
pub mod domain;
pub mod errors;
pub mod events;
pub mod store;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform_events::topics;
use platform_runtime::{Platform, Running, StartError};
use platform_settings::CommonSettings;

pub const SERVICE: &str = "catalog";

/// The catalog's own tables.
pub const CATALOG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything the catalog's database needs, in order.
pub static MIGRATIONS: &[EmbeddedMigrations] = &[platform_messaging::MIGRATIONS, CATALOG_MIGRATIONS];

/// Built-in defaults (TOML); a file and `PLATFORM__…` variables override them.
pub fn default_settings() -> String {
    format!("{}\n", platform_settings::COMMON_DEFAULTS).replace("bind = \"127.0.0.1:0\"", "bind = \"127.0.0.1:8081\"")
}

/// Starts the catalog: migrations, relay, gauges, HTTP.
pub async fn run(settings: CommonSettings) -> Result<Running, StartError> {
    let topic_prefix = settings.kafka.topic_prefix.clone();
    let publishes = [topics::CATALOG_RESOURCE, topics::CATALOG_REGISTRATION, topics::CATALOG_QUALITY];
    let mut platform = Platform::start(SERVICE, settings, MIGRATIONS, &publishes).await?;
    let profiles = platform_policy::Profiles::built_in().map_err(|e| StartError::Step {
        service: SERVICE,
        step: "policy profiles",
        reason: e.to_string(),
    })?;
    let state = app::State {
        pool: platform.pool.clone(),
        relay: platform.relay.clone(),
        profiles: Arc::new(profiles),
        calendar: platform_calendar::Calendar::official(),
        topic_prefix,
        recent: Arc::new(platform_store::RecentRows::new("resources", &platform.settings.database)),
    };
    state.recent.register(&platform.metrics.registry).map_err(|e| StartError::Step {
        service: SERVICE,
        step: "metrics",
        reason: e.to_string(),
    })?;
    let gauges = Gauges::new(&platform.metrics).map_err(|e| StartError::Step {
        service: SERVICE,
        step: "metrics",
        reason: e.to_string(),
    })?;
    let pool = platform.pool.clone();
    platform.spawn(move |stop| gauges.run(pool, stop));
    let data = actix_web::web::Data::new(state);
    platform.serve(move |cfg| {
        cfg.app_data(data.clone()).configure(api::routes);
    })
}

/// Business gauges an SRE and the data management department watch.
struct Gauges {
    resources: prometheus::IntGaugeVec,
    overdue: prometheus::IntGauge,
}

impl Gauges {
    fn new(m: &platform_telemetry::Metrics) -> Result<Gauges, prometheus::Error> {
        let resources = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("catalog_resources", "Catalog resources by state"),
            &["state"],
        )?;
        let overdue = prometheus::IntGauge::new(
            "catalog_objections_overdue",
            "Quality objections still pending after their due date (LZ-5)",
        )?;
        m.registry.register(Box::new(resources.clone()))?;
        m.registry.register(Box::new(overdue.clone()))?;
        // Every state's series exists from the start (at 0 until the first refresh), so a scrape
        // right after start finds what the dashboard reads.
        for st in domain::resource::ResourceState::ALL {
            resources.with_label_values(&[st.as_str()]).set(0);
        }
        Ok(Gauges { resources, overdue })
    }

    async fn refresh(&self, pool: &platform_store::Pool) -> errors::Result<()> {
        let mut c = platform_store::conn(pool).await?;
        let counts = store::ResourceRow::count_by_state(&mut c).await?;
        for st in domain::resource::ResourceState::ALL {
            let n = counts.iter().find(|(s, _)| s == st.as_str()).map(|(_, n)| *n).unwrap_or(0);
            self.resources.with_label_values(&[st.as_str()]).set(n);
        }
        self.overdue.set(store::ObjectionRow::count_overdue(&mut c, platform_calendar::today_in_china()).await?);
        Ok(())
    }

    async fn run(self, pool: platform_store::Pool, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.refresh(&pool).await {
                tracing::warn!(error = %e, "catalog gauges not refreshed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
