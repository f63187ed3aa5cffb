//! Layered settings for every service and the launcher.
//!
//! Sources, lowest precedence first: the service's built-in defaults (TOML text compiled into the
//! binary), an optional file (`PLATFORM_CONFIG` or an explicit path), then environment variables
//! `PLATFORM__SECTION__KEY` (double underscore between levels). Loading validates at once and an
//! error names the key at fault, so a bad deployment stops before it binds a port.
//!
//! Owned here: the sections every service shares ([`HttpSettings`], [`DatabaseSettings`],
//! [`KafkaSettings`], [`TelemetrySettings`], [`AuthSettings`]). Any crate may import it.

use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Why settings could not be loaded. Every variant names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("setting `{key}` is invalid: {reason}")]
    Invalid { key: String, reason: String },
    #[error("settings could not be read: {0}")]
    Source(String),
}

impl SettingsError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), reason: reason.into() }
    }
}

/// Settings validate themselves after loading; an error names the key.
pub trait Validate {
    fn validate(&self) -> Result<(), SettingsError>;
}

/// Where to read settings from, besides the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// A TOML file; missing means none. Defaults to `$PLATFORM_CONFIG` when unset.
    pub file: Option<PathBuf>,
    /// Environment variable prefix; `PLATFORM` unless set.
    pub env_prefix: Option<String>,
    /// Extra overrides (key path, value) applied last; the launcher and tests use them.
    pub overrides: Vec<(String, String)>,
    /// Read these variables instead of the process environment (tests).
    pub environment: Option<std::collections::HashMap<String, String>>,
}

/// Loads `T` from `defaults` (TOML) < file < environment < overrides, then validates it.
pub fn load<T>(defaults: &str, sources: &Sources) -> Result<T, SettingsError>
where
    T: DeserializeOwned + Validate,
{
    let mut builder = Config::builder().add_source(File::from_str(defaults, FileFormat::Toml));
    let file = sources.file.clone().or_else(|| std::env::var_os("PLATFORM_CONFIG").map(PathBuf::from));
    if let Some(path) = file {
        if !path.exists() {
            return Err(SettingsError::invalid("PLATFORM_CONFIG", format!("file {} does not exist", path.display())));
        }
        builder = builder.add_source(File::from(path).format(FileFormat::Toml));
    }
    let prefix = sources.env_prefix.as_deref().unwrap_or("PLATFORM");
    builder = builder.add_source(
        Environment::with_prefix(prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(sources.environment.clone()),
    );
    for (key, value) in &sources.overrides {
        builder = builder
            .set_override(key.as_str(), value.as_str())
            .map_err(|e| SettingsError::invalid(key.clone(), e.to_string()))?;
    }
    let config = builder.build().map_err(|e| SettingsError::Source(e.to_string()))?;
    let value: T = config.try_deserialize().map_err(|e| match e {
        config::ConfigError::Type { key: Some(ref key), .. } | config::ConfigError::NotFound(ref key) => {
            SettingsError::invalid(key.clone(), e.to_string())
        }
        config::ConfigError::Message(ref m) => {
            // serde's "missing field `x`" carries the key in backticks.
            let key = m.split('`').nth(1).unwrap_or("?").to_string();
            SettingsError::invalid(key, m.clone())
        }
        other => SettingsError::Source(other.to_string()),
    })?;
    value.validate()?;
    Ok(value)
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HttpSettings {
    /// `host:port`; port 0 picks a free port.
    pub bind: String,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// actix workers; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
}

impl HttpSettings {
    pub fn validate(&self, prefix: &str) -> Result<(), SettingsError> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingsError::invalid(format!("{prefix}.bind"), format!("`{}` is not host:port", self.bind)));
        }
        if self.body_limit_bytes == 0 {
            return Err(SettingsError::invalid(format!("{prefix}.body_limit_bytes"), "must be positive"));
        }
        Ok(())
    }
}

/// The service's own PostgreSQL database.
#[derive(Clone, Deserialize, Serialize)]
pub struct DatabaseSettings {
    /// `postgres://user:pass@host:port/db`. Never logged: see the `Debug` impl.
    pub url: String,
    pub pool_size: usize,
    /// Seconds to wait for a pooled connection before failing a request.
    pub acquire_timeout_secs: u64,
    /// A pooled connection idle for longer than this is checked with `SELECT 1` before it is
    /// handed out; one used more recently is handed out at once (a connection the server closed
    /// in between fails that one request's first statement and is then discarded).
    pub verify_idle_ms: u64,
    /// How many recently read or written rows a service holds per table, so that the next change
    /// of one of them skips its read (`platform_store::RecentRows`; guarded by `xmin`, so a stale
    /// row is only ever a refused write and a second read). 0 turns it off.
    pub recent_rows: usize,
    /// How long such a row is held, in milliseconds.
    pub recent_rows_ttl_ms: u64,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("verify_idle_ms", &self.verify_idle_ms)
            .field("recent_rows", &self.recent_rows)
            .field("recent_rows_ttl_ms", &self.recent_rows_ttl_ms)
            .finish()
    }
}

/// Replaces the password of a URL with `***` so it can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl DatabaseSettings {
    pub fn validate(&self, prefix: &str) -> Result<(), SettingsError> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(SettingsError::invalid(format!("{prefix}.url"), "must be a postgres:// URL"));
        }
        if self.pool_size == 0 {
            return Err(SettingsError::invalid(format!("{prefix}.pool_size"), "must be positive"));
        }
        Ok(())
    }
}

/// The Kafka cluster. Services know only a bootstrap list; topics exist beforehand.
#[derive(Clone, Deserialize, Serialize)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    /// Consumer group prefix; each consumer appends its own name.
    pub group_prefix: String,
    /// Producer `linger.ms`.
    pub linger_ms: u32,
    /// Consumer `fetch.wait.max.ms`.
    pub fetch_wait_max_ms: u32,
    /// Producer `message.timeout.ms`: how long a publish may wait for the brokers before the
    /// relay gives up on the batch and retries it.
    #[serde(default = "default_message_timeout")]
    pub message_timeout_ms: u32,
    /// Seconds the relay keeps each published event after the broker acknowledged it, to publish
    /// it again if the broker turns out to have lost it (another cluster id, or partitions whose
    /// high watermark is below what was acknowledged). 0, the default, deletes published events
    /// at once: Kafka keeps what it acknowledged. The local platform's embedded broker keeps
    /// nothing on disk, so `make run` sets it (docs/reliability.md).
    #[serde(default)]
    pub keep_published_s: u64,
    /// Prepended to every topic name (e.g. `staging.`); empty in production. Tests use it so
    /// that each test has topics of its own.
    #[serde(default)]
    pub topic_prefix: String,
    /// `security.protocol` (plaintext, ssl, sasl_ssl); credentials come from the environment.
    #[serde(default = "default_protocol")]
    pub security_protocol: String,
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    #[serde(default)]
    pub sasl_username: Option<String>,
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// CA bundle that signs the brokers' certificates (`ssl.ca.location`), for `ssl`/`sasl_ssl`.
    #[serde(default)]
    pub ssl_ca_location: Option<String>,
}

fn default_message_timeout() -> u32 {
    30_000
}

fn default_protocol() -> String {
    "plaintext".into()
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("group_prefix", &self.group_prefix)
            .field("topic_prefix", &self.topic_prefix)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl KafkaSettings {
    /// The full name of topic `name` (with [`KafkaSettings::topic_prefix`]).
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    pub fn validate(&self, prefix: &str) -> Result<(), SettingsError> {
        let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).filter(|b| !b.is_empty()).collect();
        if brokers.is_empty() {
            return Err(SettingsError::invalid(format!("{prefix}.brokers"), "no broker given"));
        }
        if let Some(bad) = brokers.iter().find(|b| b.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err())) {
            return Err(SettingsError::invalid(format!("{prefix}.brokers"), format!("`{bad}` is not host:port")));
        }
        if !matches!(self.security_protocol.as_str(), "plaintext" | "ssl" | "sasl_plaintext" | "sasl_ssl") {
            return Err(SettingsError::invalid(
                format!("{prefix}.security_protocol"),
                "must be plaintext, ssl, sasl_plaintext or sasl_ssl",
            ));
        }
        if self.security_protocol.starts_with("sasl") {
            match self.sasl_mechanism.as_deref() {
                Some("SCRAM-SHA-256" | "SCRAM-SHA-512" | "PLAIN") => {}
                _ => {
                    return Err(SettingsError::invalid(
                        format!("{prefix}.sasl_mechanism"),
                        "SASL needs SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN",
                    ));
                }
            }
            if self.sasl_username.as_deref().is_none_or(str::is_empty) {
                return Err(SettingsError::invalid(format!("{prefix}.sasl_username"), "SASL needs a username"));
            }
        }
        if self.group_prefix.trim().is_empty() {
            return Err(SettingsError::invalid(format!("{prefix}.group_prefix"), "must not be empty"));
        }
        Ok(())
    }
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info,catalog=debug`.
    pub log_filter: String,
    /// `json` (default) or `pretty`.
    pub log_format: String,
    /// OTLP/HTTP endpoint for traces, e.g. `http://otel-collector:4318/v1/traces`; empty = off.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl TelemetrySettings {
    pub fn validate(&self, prefix: &str) -> Result<(), SettingsError> {
        if !matches!(self.log_format.as_str(), "json" | "pretty") {
            return Err(SettingsError::invalid(format!("{prefix}.log_format"), "must be `json` or `pretty`"));
        }
        if let Some(ep) = self.otlp_endpoint.as_deref().filter(|e| !e.is_empty())
            && !(ep.starts_with("http://") || ep.starts_with("https://"))
        {
            return Err(SettingsError::invalid(format!("{prefix}.otlp_endpoint"), "must be an http(s) URL"));
        }
        Ok(())
    }
}

/// Token verification.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuthSettings {
    /// A JWKS document on disk.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// A JWKS document to fetch at start.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Expected `iss`; unchecked when empty.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Expected `aud`; unchecked when empty.
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock skew tolerated, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    30
}

impl AuthSettings {
    pub fn validate(&self, prefix: &str) -> Result<(), SettingsError> {
        let file = self.jwks_file.as_deref().filter(|s| !s.is_empty());
        let url = self.jwks_url.as_deref().filter(|s| !s.is_empty());
        match (file, url) {
            (None, None) => {
                Err(SettingsError::invalid(format!("{prefix}.jwks_file"), "either jwks_file or jwks_url is required"))
            }
            (Some(_), Some(_)) => {
                Err(SettingsError::invalid(format!("{prefix}.jwks_url"), "give jwks_file or jwks_url, not both"))
            }
            _ => Ok(()),
        }
    }
}

/// Settings that carry the shared sections (a service with sections of its own flattens
/// [`CommonSettings`] into its struct and implements this).
pub trait HasCommon {
    fn common(&self) -> &CommonSettings;
}

impl HasCommon for CommonSettings {
    fn common(&self) -> &CommonSettings {
        self
    }
}

/// The sections every service shares, as one block.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CommonSettings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
}

impl Validate for CommonSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.database.validate("database")?;
        self.kafka.validate("kafka")?;
        self.telemetry.validate("telemetry")?;
        self.auth.validate("auth")
    }
}

/// Defaults shared by every service, as TOML; a service appends its own sections.
pub const COMMON_DEFAULTS: &str = r#"
[http]
bind = "127.0.0.1:0"
body_limit_bytes = 1048576
workers = 2

[database]
url = "postgres://postgres@127.0.0.1:5432/postgres"
pool_size = 8
acquire_timeout_secs = 5
verify_idle_ms = 1000
recent_rows = 10000
recent_rows_ttl_ms = 60000

[kafka]
brokers = "127.0.0.1:9092"
group_prefix = "platform"
linger_ms = 1
fetch_wait_max_ms = 10
security_protocol = "plaintext"

[telemetry]
log_filter = "info"
log_format = "json"

[auth]
jwks_file = "/etc/platform/jwks.json"
leeway_secs = 30
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(overrides: &[(&str, &str)]) -> Sources {
        Sources {
            environment: Some(Default::default()),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Sources::default()
        }
    }

    #[test]
    fn defaults_load_and_validate() {
        let s: CommonSettings = load(COMMON_DEFAULTS, &sources(&[])).unwrap();
        assert_eq!(s.database.pool_size, 8);
        assert_eq!(s.kafka.brokers, "127.0.0.1:9092");
    }

    #[test]
    fn overrides_win_over_defaults() {
        let s: CommonSettings = load(COMMON_DEFAULTS, &sources(&[("database.pool_size", "3")])).unwrap();
        assert_eq!(s.database.pool_size, 3);
    }

    #[test]
    fn empty_broker_list_fails_naming_the_key() {
        let err = load::<CommonSettings>(COMMON_DEFAULTS, &sources(&[("kafka.brokers", " ")])).unwrap_err();
        assert!(err.to_string().contains("kafka.brokers"), "{err}");
    }

    #[test]
    fn bad_database_url_fails_naming_the_key() {
        let err = load::<CommonSettings>(COMMON_DEFAULTS, &sources(&[("database.url", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load::<CommonSettings>(COMMON_DEFAULTS, &sources(&[("database.pool_size", "many")])).unwrap_err();
        assert!(err.to_string().contains("pool_size"), "{err}");
    }

    #[test]
    fn environment_overrides_defaults_and_overrides_win_over_environment() {
        let env = [
            ("PLATFORM__HTTP__BIND".to_string(), "0.0.0.0:8080".to_string()),
            ("PLATFORM__DATABASE__POOL_SIZE".to_string(), "5".to_string()),
        ];
        let mut src = Sources { environment: Some(env.into_iter().collect()), ..Sources::default() };
        let s: CommonSettings = load(COMMON_DEFAULTS, &src).unwrap();
        assert_eq!(s.http.bind, "0.0.0.0:8080");
        assert_eq!(s.database.pool_size, 5);
        src.overrides.push(("database.pool_size".into(), "6".into()));
        let s: CommonSettings = load(COMMON_DEFAULTS, &src).unwrap();
        assert_eq!(s.database.pool_size, 6);
    }

    #[test]
    fn database_url_password_is_redacted_in_debug() {
        let s: CommonSettings =
            load(COMMON_DEFAULTS, &sources(&[("database.url", "postgres://svc:s3cret@db:5432/catalog")])).unwrap();
        let shown = format!("{:?}", s.database);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("svc:***@db"), "{shown}");
    }
}
