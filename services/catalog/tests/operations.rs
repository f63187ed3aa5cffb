//! What operators of the platform rely on: health, readiness, metrics, the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::start;
use platform_auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_openapi() {
    let s = start().await;
    let r = s.call("GET", "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    let r = s.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["checks"]["database"], "ok");
    assert_eq!(r.body["checks"]["kafka"], "ok");

    s.as_role(Role::Operator, "GET", "/resources", None).await;
    s.call("GET", "/resources", None, None).await;
    let text = reqwest::get(format!("{}/metrics", s.url)).await.unwrap().text().await.unwrap();
    use platform_testkit::metric_value;
    let ok = [("route", "/resources"), ("method", "GET"), ("status", "200"), ("service", "catalog")];
    assert_eq!(metric_value(&text, "http_requests_total", &ok), Some(1.0), "{text}");
    let refused = [("route", "/resources"), ("method", "GET"), ("class", "4xx")];
    assert_eq!(metric_value(&text, "http_request_errors_total", &refused), Some(1.0));
    assert_eq!(metric_value(&text, "http_request_duration_seconds_count", &[("route", "/resources")]), Some(2.0));
    assert_eq!(metric_value(&text, "outbox_backlog", &[]), Some(0.0));
    assert!(metric_value(&text, "outbox_oldest_age_seconds", &[]).is_some());
    assert_eq!(metric_value(&text, "db_pool_connections", &[("state", "max")]), Some(6.0));

    // Every metric the dashboards and alerts use is exported (the consumer-side kafka_* series
    // are proven by shared/messaging's tests, as catalog consumes nothing yet; other services'
    // own series by their tests).
    let used = include_str!("../../../charts/platform/metrics-used.txt");
    let elsewhere = ["kafka_", "authorization_", "sandbox_", "review_", "pricing_", "disclosure_"];
    for name in used.lines().map(str::trim).filter(|l| !l.is_empty() && !elsewhere.iter().any(|p| l.starts_with(p))) {
        let exported = text.lines().any(|l| {
            !l.starts_with('#') && (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        });
        assert!(exported, "{name} is used by charts/platform but catalog does not export it:\n{text}");
    }

    let r = s.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let paths = r.body["paths"].as_object().unwrap();
    for p in ["/resources", "/resources/{id}/publish", "/resources/{id}/registration", "/objections/{id}/{action}"] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    assert!(r.body["components"]["schemas"]["ResourceContent"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_and_names_the_broker_when_it_is_unreachable() {
    let s = common::start_with(&[("kafka.brokers", "127.0.0.1:1")]).await;
    let r = s.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["checks"]["database"], "ok");
    assert!(r.body["checks"]["kafka"]["error"].is_string());
}

/// Client generators and API fuzzers load every operation (first-contact issue, item 2).
#[test]
fn every_reference_in_the_openapi_document_resolves() {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(catalog::api::ApiDoc::openapi()).unwrap();
    platform_testkit::openapi::check("catalog", &doc);
}
