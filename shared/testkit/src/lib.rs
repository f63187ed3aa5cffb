//! The test harness every service's tests use.
//!
//! - [`database`]: a fresh, real PostgreSQL database per test, cloned from a template migrated
//!   once per schema (creation is serialized across test processes with an advisory lock).
//!   The cluster is the one `make test` starts (`PLATFORM_TEST_DATABASE_URL`).
//! - [`settings`]: service settings for one test: port 0, the process's local Kafka-protocol
//!   broker, a topic prefix and consumer groups of the test's own (its topics are created on the
//!   broker), and the harness's JWKS.
//! - [`token`]: a signed token for any roles; [`spans`]: the spans the process exported.
//!
//! Only tests import it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod openapi;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use diesel_migrations::EmbeddedMigrations;
use platform_auth::{Role, issuer::DevIssuer};
use platform_broker::LocalBroker;
use platform_settings::{CommonSettings, Sources};
use platform_telemetry::InMemorySpanExporter;

pub use platform_telemetry::SpanData;

/// What one test process shares: the broker, the token issuer, the span exporter.
pub struct Harness {
    pub admin_url: String,
    pub broker: LocalBroker,
    pub issuer: Arc<DevIssuer>,
    pub jwks_path: PathBuf,
    pub spans: InMemorySpanExporter,
}

/// The process-wide harness, started on first use.
pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let admin_url = std::env::var("PLATFORM_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!("PLATFORM_TEST_DATABASE_URL is not set: run the tests with `make test`, which starts PostgreSQL")
        });
        let spans = InMemorySpanExporter::default();
        let telemetry = platform_settings::TelemetrySettings {
            log_filter: std::env::var("PLATFORM_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            log_format: "json".into(),
            otlp_endpoint: None,
        };
        // Keep the provider for the life of the process (spans are exported as they end).
        if let Ok(guard) = platform_telemetry::init("test", &telemetry, Some(spans.clone())) {
            std::mem::forget(guard);
        }
        let broker = LocalBroker::start().expect("local broker");
        let issuer = Arc::new(DevIssuer::generate().expect("key"));
        let jwks_path = std::env::temp_dir().join(format!("platform-test-jwks-{}.json", std::process::id()));
        std::fs::write(&jwks_path, issuer.jwks_json()).expect("write jwks");
        Harness { admin_url, broker, issuer, jwks_path, spans }
    })
}

/// A token for `roles` in `jurisdiction`, subject `sub`, organisation `org-<sub>`.
pub fn token(sub: &str, jurisdiction: &str, roles: &[Role]) -> String {
    harness().issuer.token(sub, &format!("org-{sub}"), jurisdiction, roles).expect("token")
}

/// Every span this process has exported so far.
pub fn spans() -> Vec<SpanData> {
    harness().spans.get_finished_spans().unwrap_or_default()
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// A database of the test's own.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

fn template_name(service: &str, sets: &[EmbeddedMigrations]) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for set in sets {
        for m in diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(set).unwrap_or_default() {
            m.name().to_string().hash(&mut h);
        }
    }
    format!("tpl_{service}_{:x}", h.finish() & 0xffff_ffff)
}

/// A fresh database migrated with `sets`, cloned from a template made once per schema.
pub async fn database(service: &str, sets: &'static [EmbeddedMigrations]) -> TestDb {
    let h = harness();
    let template = template_name(service, sets);
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut admin = AsyncPgConnection::establish(&h.admin_url).await.expect("connect to the test cluster");
    diesel::sql_query("SELECT pg_advisory_lock(4242)").execute(&mut admin).await.expect("lock");
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(&template)
        .get_result(&mut admin)
        .await
        .expect("query");
    if !found.exists {
        let building = format!("{template}_build");
        platform_store::drop_database(&h.admin_url, &building).await.expect("drop");
        platform_store::create_database(&h.admin_url, &building, None).await.expect("create template");
        platform_store::migrate(&platform_store::with_database(&h.admin_url, &building), sets)
            .await
            .expect("migrate template");
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {template}"))
            .execute(&mut admin)
            .await
            .expect("rename");
    }
    // The template may still be held for a moment by a closing connection: retry briefly.
    let mut tries = 0;
    loop {
        match platform_store::create_database(&h.admin_url, &name, Some(&template)).await {
            Ok(_) => break,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("creating {name} from {template}: {e}"),
        }
    }
    diesel::sql_query("SELECT pg_advisory_unlock(4242)").execute(&mut admin).await.expect("unlock");
    TestDb { url: platform_store::with_database(&h.admin_url, &name), name }
}

/// Settings for one test's service: its database, port 0, its own topic prefix and groups.
pub fn settings(db: &TestDb, extra: &[(&str, &str)]) -> CommonSettings {
    settings_in(db, &topic_prefix(), extra)
}

/// A fresh topic prefix with every platform topic (and its dead-letter topic) created: services
/// of one test that talk to each other share it.
pub fn topic_prefix() -> String {
    let h = harness();
    let prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
    for topic in platform_events::topics::ALL {
        let full = format!("{prefix}{topic}");
        h.broker.create_topic(&full, 3).expect("topic");
        h.broker.create_topic(&platform_events::topics::dead_letter(&full), 1).expect("dlq topic");
    }
    prefix
}

/// Settings for one service of a test whose services share `prefix` (see [`topic_prefix`]).
pub fn settings_in(db: &TestDb, prefix: &str, extra: &[(&str, &str)]) -> CommonSettings {
    let h = harness();
    let prefix = prefix.to_string();
    let mut overrides: Vec<(String, String)> = vec![
        ("database.url".into(), db.url.clone()),
        ("database.pool_size".into(), "6".into()),
        ("kafka.brokers".into(), h.broker.bootstrap().into()),
        ("kafka.topic_prefix".into(), prefix.clone()),
        ("kafka.group_prefix".into(), prefix.trim_end_matches('.').into()),
        ("auth.jwks_file".into(), h.jwks_path.display().to_string()),
        ("http.workers".into(), "1".into()),
    ];
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    platform_settings::load(
        platform_settings::COMMON_DEFAULTS,
        &Sources { overrides, environment: Some(Default::default()), ..Sources::default() },
    )
    .expect("test settings")
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Produces `env` to platform topic `topic` (prefixed as `settings` say), keyed by its aggregate
/// id, as another service would: for tests that play the part of a service not built yet.
pub async fn publish(settings: &CommonSettings, topic: &str, env: &platform_events::Envelope) {
    Publisher::new(settings).publish(topic, env).await;
}

/// A producer kept for many events (a new one connects and fetches metadata first, about 100 ms
/// on the local broker: benchmarks that time an event's effect keep one).
pub struct Publisher {
    producer: rdkafka::producer::FutureProducer,
    settings: CommonSettings,
}

impl Publisher {
    pub fn new(settings: &CommonSettings) -> Publisher {
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka.brokers)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        Publisher { producer, settings: settings.clone() }
    }

    /// As [`publish`], through this producer.
    pub async fn publish(&self, topic: &str, env: &platform_events::Envelope) {
        use prost::Message as _;
        let bytes = env.encode_to_vec();
        let topic = self.settings.kafka.topic(topic);
        let record = rdkafka::producer::FutureRecord::to(&topic).key(&env.aggregate_id).payload(&bytes);
        self.producer.send(record, Duration::from_secs(10)).await.expect("event produced");
    }
}

/// A plain consumer of one topic, reading from the beginning: for tests that watch a topic.
pub fn topic_reader(settings: &CommonSettings, topic: &str) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer as _;
    let c: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::now_v7().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("reader");
    c.subscribe(&[&settings.kafka.topic(topic)]).expect("subscribe");
    c
}

/// The value of the sample of metric `name` whose labels include every pair of `labels`, from a
/// Prometheus text exposition (label order does not matter).
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = match series.split_once('{') {
            Some((m, r)) => (m, r.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let pairs: Vec<(&str, &str)> =
            rest.split(',').filter_map(|p| p.split_once('=')).map(|(k, v)| (k, v.trim_matches('"'))).collect();
        labels.iter().all(|want| pairs.contains(want)).then(|| value.parse().ok())?
    })
}

/// What a service answered: status, content type, and the body as JSON (or a JSON string of the
/// text when it is not JSON).
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: serde_json::Value,
}

/// An HTTP client for tests. It drops idle connections after 2 s, before the services' 5 s
/// keep-alive closes them: otherwise a request sent on a connection the server is closing at that
/// moment fails with `IncompleteMessage` (seen when a test waited about 5 s between two calls).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(2)).build().expect("HTTP client")
}

/// Calls `method base+path` with an optional bearer token and JSON body.
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = http.request(method.parse().expect("HTTP method"), format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Reply { status, content_type, body }
}
