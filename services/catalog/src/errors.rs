//! The one table that maps the catalog's errors to problems (status and stable `type`).

use actix_web::http::StatusCode;
use platform_problems::Problem;

use crate::domain::objection::InvalidStep;
use crate::domain::resource::{Invalid, InvalidTransition};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("resource {0} not found")]
    ResourceNotFound(uuid::Uuid),
    #[error("objection {0} not found")]
    ObjectionNotFound(uuid::Uuid),
    #[error("registration {0} not found")]
    RegistrationNotFound(String),
    #[error("invalid field {}: {}", .0.field, .0.reason)]
    Invalid(Invalid),
    #[error("code {0} is already used in this jurisdiction")]
    DuplicateCode(String),
    #[error("cannot {} a resource that is {}", .0.action.as_str(), .0.from.as_str())]
    Transition(InvalidTransition),
    #[error("cannot {} an objection that is {}", .0.action.as_str(), .0.from.as_str())]
    Step(InvalidStep),
    #[error("resource is not authorizable under {0}")]
    NotAuthorizable(String),
    #[error("resource {0} kept changing while the change was applied")]
    Contended(uuid::Uuid),
    #[error("resource is not published")]
    NotPublished,
    #[error("field `{0}` is not in the resource's schema")]
    UnknownField(String),
    #[error("invalid cursor")]
    BadCursor,
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error("policy: {0}")]
    Policy(#[from] platform_policy::PolicyError),
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("store: {0}")]
    Store(#[from] platform_store::StoreError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        let conflict = StatusCode::CONFLICT;
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            Error::ResourceNotFound(id) => Problem::not_found("resource-not-found", format!("no resource {id}")),
            Error::ObjectionNotFound(id) => Problem::not_found("objection-not-found", format!("no objection {id}")),
            Error::RegistrationNotFound(n) => {
                Problem::not_found("registration-not-found", format!("no registration {n}"))
            }
            Error::Invalid(i) => Problem::invalid_field(i.field, i.reason),
            Error::DuplicateCode(code) => Problem::new(conflict, "duplicate-code", "Code already used")
                .with_field("code")
                .with_detail(format!("a resource with code `{code}` already exists in this jurisdiction")),
            Error::Transition(t) => {
                Problem::new(conflict, "invalid-state-transition", "Not allowed in the current state")
                    .with_detail(format!(
                        "cannot {} a resource that is {}; allowed when {}",
                        t.action.as_str(),
                        t.from.as_str(),
                        t.allowed_in.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
                    ))
                    .with_errors(serde_json::json!({ "state": t.from.as_str() }))
            }
            Error::Step(s) => Problem::new(conflict, "invalid-state-transition", "Not allowed in the current state")
                .with_detail(format!(
                    "cannot {} an objection that is {}; allowed when {}",
                    s.action.as_str(),
                    s.from.as_str(),
                    s.allowed_in.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
                ))
                .with_errors(serde_json::json!({ "state": s.from.as_str() })),
            Error::NotAuthorizable(rule) => {
                Problem::new(unprocessable, "not-authorizable", "Resource not authorizable")
                    .with_detail(format!("the resource cannot enter authorized operation under rule {rule}"))
                    .with_rule(rule)
            }
            Error::Contended(id) => Problem::new(conflict, "concurrent-change", "Changed concurrently").with_detail(
                format!("resource {id} kept changing while this change was applied; read it again and retry"),
            ),
            Error::NotPublished => Problem::new(conflict, "not-published", "Resource not published")
                .with_detail("only a published resource can be registered or objected to"),
            Error::UnknownField(f) => Problem::invalid_field("field", format!("`{f}` is not a field of the resource")),
            Error::BadCursor => Problem::new(StatusCode::BAD_REQUEST, "invalid-cursor", "Invalid cursor")
                .with_field("cursor")
                .with_detail("use the next_cursor of a previous page"),
            Error::Problem(p) => p,
            Error::Policy(platform_policy::PolicyError::UnknownJurisdiction(j)) => {
                Problem::new(unprocessable, "unknown-jurisdiction", "Unknown jurisdiction")
                    .with_detail(format!("jurisdiction `{j}` has no policy profile"))
            }
            Error::Policy(e) => {
                tracing::error!(error = %e, "policy profile error");
                Problem::internal()
            }
            Error::Store(e) => e.problem(),
            Error::Db(e) => {
                tracing::error!(error = %e, "database error");
                Problem::internal()
            }
            Error::Corrupt(e) => {
                tracing::error!(error = %e, "corrupt row");
                Problem::internal()
            }
        }
    }
}
