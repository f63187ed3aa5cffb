//! Checks a service's OpenAPI document the way a client generator or an API fuzzer reads it:
//! every `$ref` resolves inside the document, and it declares OpenAPI 3.1. The document is also
//! written to `$CARGO_TARGET_DIR/openapi/<service>.json`, where `scripts/check-openapi.sh`
//! validates it against the OpenAPI 3.1 specification (`make test`).

use serde_json::Value;

/// Every `$ref` found in `doc`, with the JSON path where it occurs.
pub fn references(doc: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push((path.to_string(), r.clone())),
                        _ => walk(v, &format!("{path}/{k}"), out),
                    }
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{path}/{i}"), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, "", &mut out);
    out
}

/// Where a local reference (`#/components/schemas/X`) points, if it does.
pub fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// Panics naming every reference that does not resolve, or a document that is not OpenAPI 3.1;
/// writes the document for the specification check.
pub fn check(service: &str, doc: &Value) {
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "{service}: the document declares OpenAPI `{version}`, not 3.1");
    let refs = references(doc);
    assert!(!refs.is_empty(), "{service}: a document without a single reference is not what the service serves");
    let dangling: Vec<String> =
        refs.iter().filter(|(_, r)| resolve(doc, r).is_none()).map(|(at, r)| format!("{r} (at {at})")).collect();
    assert!(dangling.is_empty(), "{service}: references that resolve to nothing:\n  {}", dangling.join("\n  "));
    // Tests run in their package's directory: without CARGO_TARGET_DIR, the workspace's target/.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_string());
    let dir = std::path::PathBuf::from(target).join("openapi");
    std::fs::create_dir_all(&dir).expect("openapi dir");
    std::fs::write(dir.join(format!("{service}.json")), serde_json::to_vec_pretty(doc).expect("json"))
        .expect("write the document");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_reference_is_named() {
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "paths": {"/x/{a}": {"post": {"parameters": [{"schema": {"$ref": "#/components/schemas/Action"}}]}}},
            "components": {"schemas": {"Problem": {"type": "object"}}}
        });
        let refs = references(&doc);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].0, "/paths//x/{a}/post/parameters/0/schema");
        assert!(resolve(&doc, &refs[0].1).is_none());
        assert!(resolve(&doc, "#/components/schemas/Problem").is_some());
        let failed = std::panic::catch_unwind(|| check("example", &doc));
        assert!(failed.is_err(), "a dangling reference must fail the check");
    }
}
