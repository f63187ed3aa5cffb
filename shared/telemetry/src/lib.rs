//! Telemetry for every service: JSON logs that carry trace ids, OpenTelemetry spans exported over
//! OTLP (when an endpoint is configured) with W3C trace-context propagation, a Prometheus registry
//! per service with RED metrics per route, and the `/healthz`, `/readyz` and `/metrics` routes.
//!
//! Owned here: process-wide tracing set-up ([`init`]), [`Metrics`] and its actix middleware,
//! [`Readiness`] checks. Services and shared crates may import it; it imports no service.

mod logs;
mod metrics;
mod readiness;

pub use metrics::{Metrics, http_metrics_middleware};
pub use readiness::{Check, Readiness, health_routes};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use platform_settings::TelemetrySettings;
use tracing_subscriber::{EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt};

pub use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
pub use tracing_actix_web::TracingLogger;

/// Keeps the tracer provider alive; flushes spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// Installs the process-wide subscriber: filter, JSON (or pretty) logs with trace ids, and the
/// OpenTelemetry layer. Spans go to OTLP when `settings.otlp_endpoint` is set, and to `extra`
/// (tests use an in-memory exporter). Call once per process, from `main` or the test harness.
pub fn init(
    service: &str,
    settings: &TelemetrySettings,
    extra: Option<InMemorySpanExporter>,
) -> Result<TelemetryGuard, String> {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_string()).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    if let Some(mem) = extra {
        builder = builder.with_simple_exporter(mem);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service.to_string());
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter = EnvFilter::try_new(&settings.log_filter).map_err(|e| format!("telemetry.log_filter: {e}"))?;
    // Spans go to OpenTelemetry at info and above whatever the log filter says, so quieting
    // logs never breaks traces.
    let otel = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(otel);
    let result = if settings.log_format == "pretty" {
        registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter)).try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(logs::JsonWithTrace)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    };
    result.map_err(|e| format!("tracing subscriber already set: {e}"))?;
    Ok(TelemetryGuard { provider })
}
