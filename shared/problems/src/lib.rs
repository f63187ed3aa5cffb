//! Every error a service answers is an `application/problem+json` document (RFC 9457) with a
//! stable `type` URI (`/problems/<slug>`), a human title, and where it helps the field at fault.
//!
//! Owned here: [`Problem`], the [`Json`] body extractor (size-limited, names the field at fault),
//! and handlers that turn actix's own path, query and routing errors into problems. A service keeps
//! one table (`errors.rs`) that maps its domain errors to problems; nothing else picks HTTP codes.

use std::fmt;

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use futures::{StreamExt, future::LocalBoxFuture};
use serde::{Serialize, de::DeserializeOwned};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One problem detail. Build it with [`Problem::new`] and the `with_*` methods.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier: `/problems/<slug>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The JSON path of the input at fault, e.g. `fields[2].sensitivity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule that refused the request, e.g. `LZ-5`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Further machine-readable detail (missing items, allowed transitions...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub errors: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: impl Into<String>) -> Self {
        Self {
            type_uri: format!("/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            field: None,
            rule: None,
            errors: None,
        }
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
    pub fn with_errors(mut self, errors: serde_json::Value) -> Self {
        self.errors = Some(errors);
        self
    }
    /// The slug of `type`, for metrics labels.
    pub fn slug(&self) -> &str {
        self.type_uri.rsplit('/').next().unwrap_or("unknown")
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required").with_detail(detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed for the caller's roles").with_detail(detail)
    }
    pub fn not_found(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, slug, "Not found").with_detail(detail)
    }
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "A field is invalid")
            .with_field(field)
            .with_detail(detail)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            .with_detail("the request failed on the server; nothing was changed; it is logged with its trace id")
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Temporarily unavailable").with_detail(detail)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.type_uri)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).insert_header((header::CONTENT_TYPE, CONTENT_TYPE)).json(self)
    }
}

/// The largest JSON body a route accepts; put it in app data. Default 1 MiB.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        Self(1 << 20)
    }
}

/// A JSON body. Unlike actix's own, an error names the JSON path at fault and the body size is
/// checked against [`BodyLimit`] while reading, so an oversize body is refused without being held.
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().copied().unwrap_or_default().0;
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/json") || v.contains("+json"))
            .unwrap_or(false);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Body must be JSON",
                )
                .with_detail("send Content-Type: application/json"));
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large(limit));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    Problem::new(StatusCode::BAD_REQUEST, "unreadable-body", "Body could not be read")
                        .with_detail(e.to_string())
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(Json)
        })
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Body too large")
        .with_detail(format!("the body exceeds the limit of {limit} bytes"))
}

/// Parses JSON, naming the path of the value at fault on error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (slug, title) = if inner.is_syntax() || inner.is_eof() {
            ("malformed-json", "Body is not valid JSON")
        } else {
            ("invalid-body", "Body does not match the expected shape")
        };
        let problem = Problem::new(StatusCode::BAD_REQUEST, slug, title).with_detail(inner.to_string());
        if path == "." { problem } else { problem.with_field(path) }
    })
}

/// Turns actix path errors into problems; install with `web::PathConfig::default().error_handler(..)`.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    Problem::new(StatusCode::BAD_REQUEST, "invalid-path", "A path parameter is invalid")
        .with_detail(err.to_string())
        .into()
}

/// Turns actix query-string errors into problems, naming the parameter where serde does.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Problem::new(StatusCode::BAD_REQUEST, "invalid-query", "A query parameter is invalid")
        .with_detail(err.to_string())
        .into()
}

/// The answer for routes that do not exist.
pub async fn no_route(req: HttpRequest) -> HttpResponse {
    Problem::new(StatusCode::NOT_FOUND, "no-route", "No such route")
        .with_detail(format!("{} {} is not a route of this service", req.method(), req.path()))
        .error_response()
}

/// Installs path and query error handlers and the body limit on an app or scope.
pub fn configure(limit: usize) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(BodyLimit(limit))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error));
    }
}

/// Fills every response description an operation left empty with its status's meaning, so the
/// document is valid OpenAPI 3.1 (a response object requires a description) without repeating
/// "OK" in every handler's annotation (`modifiers(&BearerAuth, &ResponseDescriptions)`).
pub struct ResponseDescriptions;

impl ResponseDescriptions {
    /// What a status means to a client of these services.
    pub fn text(status: &str) -> &'static str {
        match status {
            "200" => "OK",
            "201" => "Created",
            "202" => "Accepted",
            "204" => "No content",
            "304" => "Not modified",
            "400" => "Bad request: a problem document names what is wrong",
            "401" => "No valid bearer token",
            "403" => "The token's roles or jurisdiction do not allow this",
            "404" => "Not found",
            "409" => "Conflict with the current state: a problem document names the rule",
            "413" => "The body is larger than the limit",
            "415" => "Unsupported content type",
            "422" => "Refused by a rule: a problem document names the rule and the field",
            "429" => "Too many requests",
            "503" => "A dependency is unavailable; retry later",
            s if s.starts_with('2') => "Success",
            s if s.starts_with('4') => "The request was refused: a problem document says why",
            _ => "A problem document says what failed",
        }
    }
}

impl utoipa::Modify for ResponseDescriptions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for op in operations.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(r) = response
                        && r.description.is_empty()
                    {
                        r.description = Self::text(status).to_string();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        fields: Vec<Field>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Field {
        sensitivity: Sensitivity,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Sensitivity {
        None,
        Personal,
    }

    #[test]
    fn unknown_enum_value_names_its_path() {
        let p = parse_json::<Body>(br#"{"name":"a","fields":[{"sensitivity":"none"},{"sensitivity":"secret"}]}"#)
            .unwrap_err();
        assert_eq!(p.status, 400);
        assert_eq!(p.type_uri, "/problems/invalid-body");
        assert_eq!(p.field.as_deref(), Some("fields[1].sensitivity"));
        assert!(p.detail.unwrap().contains("secret"));
    }

    #[test]
    fn malformed_json_is_its_own_type() {
        let p = parse_json::<Body>(br#"{"name": "a", "#).unwrap_err();
        assert_eq!(p.type_uri, "/problems/malformed-json");
    }

    #[test]
    fn missing_field_is_named() {
        let p = parse_json::<Body>(br#"{"fields":[]}"#).unwrap_err();
        assert!(p.detail.unwrap().contains("name"));
    }

    #[test]
    fn problem_renders_as_problem_json() {
        let resp = Problem::not_found("resource-not-found", "no resource 1").error_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers().get(header::CONTENT_TYPE).unwrap(), CONTENT_TYPE);
    }
}
