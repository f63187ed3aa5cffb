//! The one table that maps the gateway's errors to problems.

use actix_web::http::StatusCode;
use platform_problems::Problem;

use crate::check::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("resource {0} is not known to the gateway")]
    UnknownResource(uuid::Uuid),
    #[error("workspace {0} not found")]
    WorkspaceNotFound(uuid::Uuid),
    #[error("refused: {}", .0.message)]
    Refused(Refusal),
    #[error("{reason}")]
    Closed { reason: String, rule: String },
    #[error("{reason}")]
    Conflict { slug: &'static str, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the load was refused: {rejected} rejected rows")]
    Rejected { rejected: u64, rows: Vec<serde_json::Value>, rule: &'static str },
    #[error("the query failed: {0}")]
    QueryFailed(String),
    #[error("the result is larger than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("data connection: {0}")]
    Data(#[from] tokio_postgres::Error),
    #[error("store: {0}")]
    Store(#[from] platform_store::StoreError),
    #[error("data pool: {0}")]
    Pool(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("job: {0}")]
    Job(crate::jobs::JobError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<deadpool::managed::PoolError<tokio_postgres::Error>> for Error {
    fn from(e: deadpool::managed::PoolError<tokio_postgres::Error>) -> Error {
        Error::Pool(e.to_string())
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            Error::UnknownResource(id) => Problem::not_found(
                "resource-not-found",
                format!("resource {id} is not a published catalog resource known to the gateway"),
            ),
            Error::WorkspaceNotFound(id) => {
                Problem::not_found("workspace-not-found", format!("no workspace for grant {id}"))
            }
            Error::Refused(r) => Problem::new(unprocessable, "query-refused", "The query was refused")
                .with_detail(format!("{} ({}: {}). {}", r.message, r.check, r.rule, r.hint))
                .with_rule(r.rule)
                .with_errors(
                    serde_json::json!([{ "check": r.check, "rule": r.rule, "message": r.message, "hint": r.hint }]),
                ),
            Error::Closed { reason, rule } => {
                Problem::new(StatusCode::CONFLICT, "workspace-closed", "The workspace is closed")
                    .with_detail(reason)
                    .with_rule(rule)
            }
            Error::Conflict { slug, reason } => {
                Problem::new(StatusCode::CONFLICT, slug, "Conflict").with_detail(reason)
            }
            Error::Invalid { field, reason } => Problem::invalid_field(field, reason),
            Error::Rejected { rejected, rows, rule } => {
                Problem::new(unprocessable, "load-rejected", "The load was refused; nothing was stored")
                    .with_detail(format!("{rejected} rows do not match the catalog's field schema"))
                    .with_rule(rule)
                    .with_errors(serde_json::Value::Array(rows))
            }
            Error::QueryFailed(reason) => {
                Problem::new(unprocessable, "query-failed", "The query failed").with_detail(reason)
            }
            Error::TooLarge(limit) => Problem::new(unprocessable, "result-too-large", "The result is too large")
                .with_detail(format!("results are limited to {limit} bytes; aggregate further or add LIMIT")),
            Error::Problem(p) => p,
            Error::Db(e) => platform_store::StoreError::from(e).problem(),
            Error::Store(e) => e.problem(),
            Error::Data(e) => {
                tracing::error!(error = %e, "data connection error");
                Problem::unavailable("the data store is unavailable")
            }
            Error::Pool(e) => {
                tracing::error!(error = %e, "data pool error");
                Problem::unavailable("the data store is unavailable")
            }
            Error::Corrupt(what) => {
                tracing::error!(what, "corrupt stored data");
                Problem::internal()
            }
            Error::Job(e) => {
                use crate::jobs::JobError as J;
                match e {
                    J::ImageNotApproved { .. } => {
                        Problem::new(unprocessable, "image-not-approved", "The image is not approved")
                            .with_detail(e.to_string())
                            .with_field("image")
                            .with_rule(crate::jobs::IMAGE_RULE)
                    }
                    J::Invalid { field, reason } => Problem::invalid_field(field, reason),
                    J::WorkspaceNotOpen(_) => {
                        Problem::new(StatusCode::CONFLICT, "workspace-closed", "The workspace is closed")
                            .with_detail(e.to_string())
                            .with_rule("ZJK-34")
                    }
                    J::JobNotFound(name) => Problem::not_found("job-not-found", format!("no job {name}")),
                    J::Config(_) | J::Kube(_) => {
                        tracing::error!(error = %e, "job backend failed");
                        Problem::unavailable("the job backend is unavailable")
                    }
                }
            }
        }
    }
}
