//! Events between services: the transactional outbox, its relay to Kafka, and consumers that
//! apply each event exactly once.
//!
//! - [`outbox::enqueue`] writes an event in the caller's transaction (with the current trace
//!   context), so the domain change and its event commit or fail together.
//! - [`atomic::AtomicWrite`] sends a read-then-write change and its outbox rows as one
//!   statement (optimistic `xmin` guard): two round trips and one commit per use case.
//! - [`relay::Relay`] publishes the outbox's rows through an idempotent producer, keyed by
//!   aggregate id, and deletes them in the same transaction once acknowledged; one relay per database publishes at a time (advisory lock), so an
//!   aggregate's events keep their order. A crash between publish and mark publishes again: at
//!   least once.
//! - [`consumer::Consumer`] records each event id in the inbox in the same transaction as the
//!   handler's effect (a redelivery changes nothing), commits the offset after the database
//!   commit, and sends what cannot be handled to `<topic>.dlq` with the error, so a partition
//!   never stalls and nothing vanishes.
//! - [`lag`] reports each consumer's lag for every assigned partition from its assignment (the
//!   group's committed offset against the high watermark), whether or not messages flow.
//! - `traceparent` travels in Kafka headers: the consumer's span is a child of the producer's.
//!
//! Owned here: the `outbox` and `inbox` tables ([`MIGRATIONS`], applied with the service's own)
//! and the messaging metrics. Services import it.

pub mod atomic;
pub mod consumer;
pub mod lag;
pub mod metrics;
pub mod outbox;
pub mod relay;
mod schema;
pub mod trace;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform_settings::KafkaSettings;
use rdkafka::ClientConfig;

pub use atomic::{AtomicWrite, Committed};
pub use consumer::{Consumer, Handler, HandlerError};
pub use metrics::MessagingMetrics;
pub use relay::{Relay, RelayHandle};

/// The outbox and inbox tables; every service applies them with its own migrations.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// librdkafka settings shared by producers and consumers.
pub fn client_config(k: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers).set("security.protocol", &k.security_protocol).set("log_level", "4");
    if let Some(m) = &k.sasl_mechanism {
        c.set("sasl.mechanism", m);
    }
    if let Some(u) = &k.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &k.sasl_password {
        c.set("sasl.password", p);
    }
    if let Some(ca) = &k.ssl_ca_location {
        c.set("ssl.ca.location", ca);
    }
    c
}

/// The readiness check: the broker answers a metadata request.
pub fn broker_check(k: &KafkaSettings) -> platform_telemetry::Check {
    let config = client_config(k);
    std::sync::Arc::new(move || {
        let config = config.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                use rdkafka::consumer::{BaseConsumer, Consumer as _};
                let c: BaseConsumer = config.create().map_err(|e| e.to_string())?;
                c.fetch_metadata(None, std::time::Duration::from_millis(1500)).map(|_| ()).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        })
    })
}
