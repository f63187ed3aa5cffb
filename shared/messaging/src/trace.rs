//! W3C trace context in and out of Kafka headers and outbox rows.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{BorrowedHeaders, Headers as _, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The current span's context as propagation headers (`traceparent`, `tracestate`).
pub fn current_context_headers() -> HashMap<String, String> {
    context_headers(&tracing::Span::current())
}

/// `span`'s context as propagation headers.
pub fn context_headers(span: &tracing::Span) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MapInjector(&mut map)));
    map
}

/// Makes `span` a child of the context carried by `headers`.
pub fn set_parent_from(span: &tracing::Span, headers: &dyn Extractor) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(headers));
    let _ = span.set_parent(cx);
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

/// Reads propagation headers from a JSON object (an outbox row).
pub struct JsonExtractor<'a>(pub &'a serde_json::Value);

impl Extractor for JsonExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// Reads propagation headers from a Kafka message.
pub struct KafkaExtractor<'a>(pub Option<&'a BorrowedHeaders>);

impl Extractor for KafkaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let headers = self.0?;
        headers.iter().find(|h| h.key == key).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.map(|h| h.iter().map(|h| h.key).collect()).unwrap_or_default()
    }
}

/// Adds `map` to Kafka headers.
pub fn add_headers(mut headers: OwnedHeaders, map: &HashMap<String, String>) -> OwnedHeaders {
    for (k, v) in map {
        headers = headers.insert(rdkafka::message::Header { key: k, value: Some(v.as_bytes()) });
    }
    headers
}

/// A header's text value.
pub fn header_str<'a>(headers: Option<&'a BorrowedHeaders>, key: &str) -> Option<&'a str> {
    headers?.iter().find(|h| h.key == key).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}
