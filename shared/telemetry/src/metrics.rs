//! A Prometheus registry per service (the launcher runs several services in one process, so no
//! global registry), RED metrics per route template, and the `/metrics` route.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{
    Error, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use prometheus::{Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// A service's registry and its HTTP metrics.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    /// A registry whose every series carries `service="<service>"`.
    pub fn new(service: &str) -> Result<Metrics, prometheus::Error> {
        let labels = std::iter::once(("service".to_string(), service.to_string())).collect();
        let registry = Registry::new_custom(None, Some(labels))?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route template, method and status"),
            &["route", "method", "status"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("http_request_errors_total", "HTTP requests answered 4xx or 5xx, by route and class"),
            &["route", "method", "class"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route template")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Metrics { registry, requests, errors, latency })
    }

    /// Registers a collector, logging (not panicking) on a duplicate name.
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(c) {
            tracing::error!(error = %e, "metric registration failed");
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests.with_label_values(&[route, method, &status.to_string()]).inc();
        if status >= 400 {
            let class = if status >= 500 { "5xx" } else { "4xx" };
            self.errors.with_label_values(&[route, method, class]).inc();
        }
        self.latency.with_label_values(&[route, method]).observe(seconds);
    }

    /// `GET /metrics`.
    pub fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route(
            "/metrics",
            web::get().to(|m: web::Data<Metrics>| async move {
                HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.render())
            }),
        );
    }
}

/// Records count, errors and latency per route template (never the raw path: bounded labels).
pub fn http_metrics_middleware(
    metrics: Arc<Metrics>,
) -> impl Fn(
    ServiceRequest,
    Next<actix_web::body::BoxBody>,
) -> futures::future::LocalBoxFuture<'static, Result<ServiceResponse<actix_web::body::BoxBody>, Error>>
+ Clone
+ 'static {
    move |req: ServiceRequest, next: Next<actix_web::body::BoxBody>| {
        let metrics = metrics.clone();
        Box::pin(async move {
            let started = Instant::now();
            let method = req.method().as_str().to_string();
            let res = next.call(req).await?;
            let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
            if route != "/metrics" {
                metrics.observe(&route, &method, res.status().as_u16(), started.elapsed().as_secs_f64());
            }
            Ok(res.map_body(|_, b| b.boxed()))
        })
    }
}
