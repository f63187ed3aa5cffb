//! The one table that maps authorization's errors to problems.

use actix_web::http::StatusCode;
use platform_problems::Problem;

use crate::domain::plan::{InvalidStep, ModeNotAllowed};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("plan {0} not found")]
    PlanNotFound(uuid::Uuid),
    #[error("agreement {0} not found")]
    AgreementNotFound(uuid::Uuid),
    #[error("data request {0} not found")]
    RequestNotFound(uuid::Uuid),
    #[error("grant {0} not found")]
    GrantNotFound(uuid::Uuid),
    #[error("supervision case {0} not found")]
    CaseNotFound(uuid::Uuid),
    #[error("selection {0} not found")]
    SelectionNotFound(uuid::Uuid),
    #[error("application {0} not found")]
    ApplicationNotFound(uuid::Uuid),
    #[error("objection {0} not found")]
    ObjectionNotFound(uuid::Uuid),
    #[error("staff member {0} not found")]
    StaffNotFound(uuid::Uuid),
    #[error("the applicant is not eligible")]
    Ineligible(Vec<crate::domain::selection::Ineligible>),
    #[error("not allowed in state {state}: {reason}")]
    Conflict { state: String, reason: String },
    #[error("refused by {rule}: {reason}")]
    Refused { slug: &'static str, field: Option<String>, reason: String, rule: String },
    #[error("invalid agreement step")]
    AgreementStep(crate::domain::agreement::InvalidStep),
    #[error("unknown jurisdiction {0}")]
    UnknownJurisdiction(String),
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("required contents missing")]
    MissingContents(Vec<&'static str>),
    #[error("mode not allowed")]
    Mode(ModeNotAllowed),
    #[error("unknown resources")]
    UnknownResources(Vec<uuid::Uuid>),
    #[error("resource {id} is not authorizable under {rule}")]
    NotAuthorizable { id: uuid::Uuid, rule: String },
    #[error("resource {0} belongs to another jurisdiction")]
    ForeignResource(uuid::Uuid),
    #[error("invalid step")]
    Step(InvalidStep),
    #[error(transparent)]
    Problem(#[from] Problem),
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
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            Error::PlanNotFound(id) => Problem::not_found("plan-not-found", format!("no plan {id}")),
            Error::AgreementNotFound(id) => Problem::not_found("agreement-not-found", format!("no agreement {id}")),
            Error::RequestNotFound(id) => Problem::not_found("data-request-not-found", format!("no data request {id}")),
            Error::GrantNotFound(id) => Problem::not_found("grant-not-found", format!("no grant {id}")),
            Error::CaseNotFound(id) => {
                Problem::not_found("supervision-case-not-found", format!("no supervision case {id}"))
            }
            Error::SelectionNotFound(id) => Problem::not_found("selection-not-found", format!("no selection {id}")),
            Error::ApplicationNotFound(id) => {
                Problem::not_found("application-not-found", format!("no application {id} to this selection"))
            }
            Error::StaffNotFound(id) => Problem::not_found("staff-not-found", format!("no staff member {id}")),
            Error::ObjectionNotFound(id) => Problem::not_found("objection-not-found", format!("no objection {id}")),
            Error::Ineligible(failed) => {
                let rule = failed.first().map(|f| f.rule.clone()).unwrap_or_default();
                let detail = failed.iter().map(|f| format!("{} ({})", f.reason, f.rule)).collect::<Vec<_>>().join("; ");
                Problem::new(
                    unprocessable,
                    "operator-ineligible",
                    "The applicant does not meet the eligibility requirements",
                )
                .with_field("declaration")
                .with_rule(rule)
                .with_detail(detail)
                .with_errors(serde_json::json!({ "ineligible": crate::selections::ineligible_json(&failed) }))
            }
            Error::Conflict { state, reason } => {
                Problem::new(StatusCode::CONFLICT, "invalid-state-transition", "Not allowed in the current state")
                    .with_detail(format!("{reason} (current state: {state})"))
            }
            Error::Refused { slug, field, reason, rule } => {
                let p = Problem::new(unprocessable, slug, "Refused by a rule").with_detail(reason).with_rule(rule);
                match field {
                    Some(f) => p.with_field(f),
                    None => p,
                }
            }
            Error::AgreementStep(s) => {
                Problem::new(StatusCode::CONFLICT, "invalid-state-transition", "Not allowed in the current state")
                    .with_detail(format!(
                        "cannot {} an agreement that is {}; allowed when {}",
                        s.action.as_str(),
                        s.from.as_str(),
                        s.allowed_in.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" or ")
                    ))
            }
            Error::UnknownJurisdiction(j) => {
                Problem::new(unprocessable, "unknown-jurisdiction", "Unknown jurisdiction")
                    .with_detail(format!("jurisdiction `{j}` has no policy profile"))
            }
            Error::Invalid { field, reason } => Problem::invalid_field(field, reason),
            Error::MissingContents(keys) => {
                let labels: Vec<&str> = keys
                    .iter()
                    .filter_map(|k| {
                        crate::domain::plan::REQUIRED_CONTENTS.iter().find(|(key, _)| key == k).map(|(_, l)| *l)
                    })
                    .collect();
                Problem::new(unprocessable, "plan-incomplete", "The plan lacks required contents")
                    .with_rule("SX-16")
                    .with_detail(format!("missing: {}", labels.join("; ")))
                    .with_errors(serde_json::json!({ "missing": keys }))
            }
            Error::Mode(m) => Problem::new(unprocessable, "mode-not-allowed", "Mode not allowed in this jurisdiction")
                .with_field("mode")
                .with_rule(m.rule.clone())
                .with_detail(format!("mode `{}` is not among {:?} ({})", m.mode, m.allowed, m.rule)),
            Error::UnknownResources(ids) => {
                Problem::new(unprocessable, "unknown-resource", "Resources not in the catalog")
                    .with_field("data_scope.resource_ids")
                    .with_detail("these ids are not published catalog resources")
                    .with_errors(serde_json::json!({ "resource_ids": ids }))
            }
            Error::NotAuthorizable { id, rule } => {
                Problem::new(unprocessable, "not-authorizable", "Resource not authorizable")
                    .with_field("data_scope.resource_ids")
                    .with_detail(format!("resource {id} cannot enter authorized operation ({rule})"))
                    .with_rule(rule)
            }
            Error::ForeignResource(id) => {
                Problem::new(unprocessable, "foreign-resource", "Resource of another jurisdiction")
                    .with_field("data_scope.resource_ids")
                    .with_detail(format!("resource {id} is outside the plan's jurisdiction"))
            }
            Error::Step(s) => {
                Problem::new(StatusCode::CONFLICT, "invalid-state-transition", "Not allowed in the current state")
                    .with_detail(format!(
                        "cannot {} a plan that is {}; allowed when {}",
                        s.action.as_str(),
                        s.from.as_str(),
                        if s.allowed_in.is_empty() {
                            "the jurisdiction files with an upper level".to_string()
                        } else {
                            s.allowed_in.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" or ")
                        }
                    ))
            }
            Error::Problem(p) => p,
            Error::Store(e) => e.problem(),
            other => {
                tracing::error!(error = %other, "internal error");
                Problem::internal()
            }
        }
    }
}
