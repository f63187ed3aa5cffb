//! The start-up every service shares, so a service's `run` is its routes, its consumers and
//! nothing else: migrations under a lock, the pool, metrics and readiness, token verification,
//! the outbox relay, consumers, and the HTTP server with problem+json errors, tracing and RED
//! metrics on every route.
//!
//! Owned here: [`Platform`] (the pieces while starting) and [`Running`] (a started service).
//! Services, the launcher and tests import it.

pub mod paging;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpServer, dev::ServerHandle, middleware::from_fn, web};
use diesel_migrations::EmbeddedMigrations;
use platform_auth::Verifier;
use platform_messaging::{Consumer, Handler, MessagingMetrics, Relay, RelayHandle};
use platform_settings::CommonSettings;
use platform_store::Pool;
use platform_telemetry::{Metrics, Readiness};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{service}: {step}: {reason}")]
    Step { service: &'static str, step: &'static str, reason: String },
}

fn step(service: &'static str, step: &'static str) -> impl Fn(String) -> StartError {
    move |reason| StartError::Step { service, step, reason }
}

/// A service's infrastructure while it starts.
pub struct Platform {
    pub name: &'static str,
    pub settings: CommonSettings,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    pub messaging: MessagingMetrics,
    pub relay: RelayHandle,
    pub verifier: Arc<Verifier>,
    readiness: Readiness,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Platform {
    /// Migrates the database, builds the pool, metrics and verifier, and starts the relay.
    /// `publishes` names the topics the service writes to (platform names, without prefix).
    pub async fn start(
        name: &'static str,
        settings: CommonSettings,
        migrations: &'static [EmbeddedMigrations],
        publishes: &[&str],
    ) -> Result<Platform, StartError> {
        let applied = platform_store::migrate(&settings.database.url, migrations)
            .await
            .map_err(|e| step(name, "migrations")(e.to_string()))?;
        tracing::info!(service = name, applied, "migrations applied");
        let pool = platform_store::pool(&settings.database).map_err(|e| step(name, "database pool")(e.to_string()))?;
        let metrics = Arc::new(Metrics::new(name).map_err(|e| step(name, "metrics")(e.to_string()))?);
        let collector =
            platform_store::PoolCollector::new(pool.clone()).map_err(|e| step(name, "metrics")(e.to_string()))?;
        metrics.register(Box::new(collector));
        let messaging = MessagingMetrics::new(&metrics).map_err(|e| step(name, "metrics")(e.to_string()))?;
        messaging.declare_published(&publishes.iter().map(|t| settings.kafka.topic(t)).collect::<Vec<_>>());
        let verifier =
            Arc::new(Verifier::from_settings(&settings.auth).await.map_err(|e| step(name, "auth")(e.to_string()))?);
        let readiness = Readiness::default()
            .with("database", platform_store::check(pool.clone()))
            .with("kafka", platform_messaging::broker_check(&settings.kafka));
        let relay = Relay::new(pool.clone(), &settings.kafka, messaging.clone())
            .map_err(|e| step(name, "relay")(e.to_string()))?;
        let relay_handle = relay.handle();
        let (stop, _) = watch::channel(false);
        let mut platform = Platform {
            name,
            settings,
            pool,
            metrics,
            messaging,
            relay: relay_handle,
            verifier,
            readiness,
            stop,
            tasks: Vec::new(),
        };
        let rx = platform.stop.subscribe();
        platform.tasks.push(tokio::spawn(relay.run(rx)));
        Ok(platform)
    }

    /// The full name of a platform topic for this deployment.
    pub fn topic(&self, name: &str) -> String {
        self.settings.kafka.topic(name)
    }

    /// Starts a consumer of `topics` (platform names; the prefix is added) with `handler`.
    pub fn consume(&mut self, consumer: &str, topics: &[&str], handler: Arc<dyn Handler>) -> Result<(), StartError> {
        let full: Vec<String> = topics.iter().map(|t| self.topic(t)).collect();
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let c =
            Consumer::new(consumer, &refs, self.pool.clone(), &self.settings.kafka, handler, self.messaging.clone())
                .map_err(step(self.name, "consumer"))?;
        let rx = self.stop.subscribe();
        self.tasks.push(tokio::spawn(c.run(rx)));
        Ok(())
    }

    /// Runs a background task until the service stops; it gets the stop signal.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let rx = self.stop.subscribe();
        self.tasks.push(tokio::spawn(task(rx)));
    }

    /// Binds the HTTP server with the shared middleware and routes plus `routes`, and starts it.
    pub fn serve<F>(self, routes: F) -> Result<Running, StartError>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let name = self.name;
        let metrics = self.metrics.clone();
        let verifier = web::Data::new(self.verifier.clone());
        let metrics_data = web::Data::from(self.metrics.clone());
        let readiness = web::Data::new(self.readiness.clone());
        let limit = self.settings.http.body_limit_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(platform_telemetry::http_metrics_middleware(metrics.clone())))
                .wrap(platform_telemetry::TracingLogger::default())
                .app_data(verifier.clone())
                .app_data(metrics_data.clone())
                .app_data(readiness.clone())
                .configure(platform_problems::configure(limit))
                .configure(platform_telemetry::health_routes)
                .configure(Metrics::routes)
                .configure(routes.clone())
                .default_service(web::to(platform_problems::no_route))
        })
        .disable_signals()
        .shutdown_timeout(5);
        let server = if self.settings.http.workers > 0 { server.workers(self.settings.http.workers) } else { server };
        let server = server.bind(&self.settings.http.bind).map_err(|e| step(name, "http bind")(e.to_string()))?;
        let addr = server.addrs().first().copied().ok_or_else(|| step(name, "http bind")("no address".into()))?;
        let server = server.run();
        let handle = server.handle();
        let mut tasks = self.tasks;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(service = name, error = %e, "http server failed");
            }
        }));
        tracing::info!(service = name, %addr, "listening");
        Ok(Running { name, addr, stop: self.stop, server: handle, tasks, pool: self.pool, relay: self.relay })
    }
}

/// A started service.
pub struct Running {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub pool: Pool,
    pub relay: RelayHandle,
    stop: watch::Sender<bool>,
    server: ServerHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets the relay drain, stops consumers and waits for all of it.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The whole `main` of a service binary: load settings (the service's defaults < `PLATFORM_CONFIG`
/// file < `PLATFORM__…` environment; exit 2 naming the key on error), install telemetry, start
/// the service with `run`, and stop it cleanly on Ctrl-C or SIGTERM.
pub async fn service_main<S, F, Fut>(service: &'static str, defaults: &str, run: F)
where
    S: serde::de::DeserializeOwned + platform_settings::Validate + platform_settings::HasCommon,
    F: FnOnce(S) -> Fut,
    Fut: std::future::Future<Output = Result<Running, StartError>>,
{
    let settings: S = match platform_settings::load(defaults, &platform_settings::Sources::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{service}: {e}");
            std::process::exit(2);
        }
    };
    let _telemetry = match platform_telemetry::init(service, &settings.common().telemetry, None) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{service}: {e}");
            std::process::exit(2);
        }
    };
    let running = match run(settings).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "failed to start");
            std::process::exit(1);
        }
    };
    shutdown_signal().await;
    tracing::info!(service, "stopping");
    running.stop().await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
