//! HTTP routes: each handler extracts, states its roles, calls a use case, answers.

use actix_web::{HttpResponse, web};
use platform_auth::{BearerAuth, Caller, Role};
use platform_problems::{Json, Problem, ResponseDescriptions};
use serde::Deserialize;
use utoipa::OpenApi as _;
use uuid::Uuid;

use crate::app::{self, READERS, State};
use crate::domain::objection::{ObjectionAction, ObjectionState};
use crate::domain::resource::{OpenCategory, ResourceContent, ResourceState, SecurityGrade};
use crate::store::{ObjectionFilter, ResourceFilter};
use crate::views::{Objection, Registration, Resource, ResourceVersion};
use platform_runtime::paging::Page;

type Reply = Result<HttpResponse, Problem>;

const DEPARTMENTS: &[Role] = &[Role::IndustryDept];
const DATA_ADMIN: &[Role] = &[Role::DataAdmin];
const OBJECTORS: &[Role] = &[Role::Operator, Role::Partner];
const REGISTRARS: &[Role] = &[Role::ImplementingInstitution];
const OBJECTION_READERS: &[Role] =
    &[Role::IndustryDept, Role::DataAdmin, Role::DataSourceUnit, Role::Operator, Role::Partner];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi))
        .route("/resources", web::post().to(create_resource))
        .route("/resources", web::get().to(search_resources))
        .route("/resources/{id}", web::get().to(get_resource))
        .route("/resources/{id}", web::put().to(update_resource))
        .route("/resources/{id}/submit", web::post().to(submit_resource))
        .route("/resources/{id}/publish", web::post().to(publish_resource))
        .route("/resources/{id}/reject", web::post().to(reject_resource))
        .route("/resources/{id}/withdraw", web::post().to(withdraw_resource))
        .route("/resources/{id}/versions", web::get().to(resource_versions))
        .route("/resources/{id}/revision", web::post().to(propose_revision))
        .route("/resources/{id}/revision/publish", web::post().to(publish_revision))
        .route("/resources/{id}/revision/reject", web::post().to(reject_revision))
        .route("/resources/{id}/registration", web::post().to(register_resource))
        .route("/registrations", web::get().to(list_registrations))
        .route("/registrations/{number}", web::get().to(get_registration))
        .route("/objections", web::post().to(file_objection))
        .route("/objections", web::get().to(list_objections))
        .route("/objections/{id}", web::get().to(get_objection))
        .route("/objections/{id}/{action}", web::post().to(objection_step));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why: kept with the record and shown to the submitter.
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionBody {
    pub content: ResourceContent,
    /// What changes and why.
    pub note: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectionBody {
    pub resource_id: Uuid,
    /// The field objected to; absent for the whole resource.
    #[serde(default)]
    pub field: Option<String>,
    pub description: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Substring of the name (Chinese included), or the exact code.
    pub q: Option<String>,
    pub sector: Option<String>,
    pub open_category: Option<OpenCategory>,
    pub security_grade: Option<SecurityGrade>,
    pub authorizable: Option<bool>,
    /// Default `published`; other states only for the jurisdiction's own departments.
    pub state: Option<ResourceState>,
    pub jurisdiction: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegistrationQuery {
    pub jurisdiction: Option<String>,
    pub year: Option<i32>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ObjectionQuery {
    pub state: Option<ObjectionState>,
    pub resource_id: Option<Uuid>,
    /// Only objections still pending after their due date on this China date (e.g. today).
    pub overdue_as_of: Option<chrono::NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(post, path = "/resources", request_body = ResourceContent,
    responses((status = 201, body = Resource), (status = 400, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Draft a resource (industry_dept).")]
async fn create_resource(caller: Caller, s: web::Data<State>, body: Json<ResourceContent>) -> Reply {
    caller.require(DEPARTMENTS)?;
    Ok(HttpResponse::Created().json(app::create_resource(&s, &caller, body.0).await?))
}

#[utoipa::path(get, path = "/resources", params(SearchQuery), responses((status = 200, body = Page<Resource>)),
    security(("bearer" = [])), description = "Search the catalog (any role).")]
async fn search_resources(caller: Caller, s: web::Data<State>, q: web::Query<SearchQuery>) -> Reply {
    caller.require(READERS)?;
    let q = q.into_inner();
    let filter = ResourceFilter {
        states: q.state.into_iter().collect(),
        jurisdiction: q.jurisdiction,
        sector: q.sector,
        open_category: q.open_category,
        security_grade: q.security_grade,
        authorizable: q.authorizable,
        text: q.q.filter(|t| !t.trim().is_empty()),
        after: None,
        limit: 0,
    };
    Ok(HttpResponse::Ok().json(app::search(&s, &caller, filter, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/resources/{id}", responses((status = 200, body = Resource), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One resource (any role; drafts only for their departments).")]
async fn get_resource(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(READERS)?;
    Ok(HttpResponse::Ok().json(app::get_resource(&s, &caller, *id).await?))
}

#[utoipa::path(put, path = "/resources/{id}", request_body = ResourceContent, responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Edit a draft or rejected resource (industry_dept).")]
async fn update_resource(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<ResourceContent>,
) -> Reply {
    caller.require(DEPARTMENTS)?;
    Ok(HttpResponse::Ok().json(app::update_resource(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/resources/{id}/submit", responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Submit for review (industry_dept).")]
async fn submit_resource(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(DEPARTMENTS)?;
    Ok(HttpResponse::Ok().json(app::submit_resource(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/resources/{id}/publish", responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Publish a submitted resource (data_admin, ZJK-7).")]
async fn publish_resource(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(DATA_ADMIN)?;
    Ok(HttpResponse::Ok().json(app::publish_resource(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/resources/{id}/reject", request_body = ReasonBody, responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Reject a submitted resource with a reason (data_admin).")]
async fn reject_resource(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<ReasonBody>) -> Reply {
    caller.require(DATA_ADMIN)?;
    Ok(HttpResponse::Ok().json(app::reject_resource(&s, &caller, *id, &body.reason).await?))
}

#[utoipa::path(post, path = "/resources/{id}/withdraw", request_body = ReasonBody, responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Withdraw a published resource (data_admin).")]
async fn withdraw_resource(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<ReasonBody>) -> Reply {
    caller.require(DATA_ADMIN)?;
    Ok(HttpResponse::Ok().json(app::withdraw_resource(&s, &caller, *id, &body.reason).await?))
}

#[utoipa::path(get, path = "/resources/{id}/versions", responses((status = 200, body = Vec<ResourceVersion>)),
    security(("bearer" = [])), description = "Published versions, oldest first (any role).")]
async fn resource_versions(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(READERS)?;
    Ok(HttpResponse::Ok().json(app::resource_versions(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/resources/{id}/revision", request_body = RevisionBody, responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Propose the next version of a published resource (industry_dept).")]
async fn propose_revision(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<RevisionBody>) -> Reply {
    caller.require(DEPARTMENTS)?;
    let b = body.0;
    Ok(HttpResponse::Ok().json(app::propose_revision(&s, &caller, *id, b.content, &b.note).await?))
}

#[utoipa::path(post, path = "/resources/{id}/revision/publish", responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Publish the pending revision as the next version (data_admin).")]
async fn publish_revision(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(DATA_ADMIN)?;
    Ok(HttpResponse::Ok().json(app::publish_revision(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/resources/{id}/revision/reject", request_body = ReasonBody, responses((status = 200, body = Resource), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Reject the pending revision (data_admin).")]
async fn reject_revision(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<ReasonBody>) -> Reply {
    caller.require(DATA_ADMIN)?;
    Ok(HttpResponse::Ok().json(app::reject_revision(&s, &caller, *id, &body.reason).await?))
}

#[utoipa::path(post, path = "/resources/{id}/registration", responses((status = 201, body = Registration), (status = 200, body = Registration), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Register a published resource (implementing_institution, SX-6, ZJK-22); idempotent.")]
async fn register_resource(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(REGISTRARS)?;
    let (reg, created) = app::register_resource(&s, &caller, *id).await?;
    Ok(if created { HttpResponse::Created().json(reg) } else { HttpResponse::Ok().json(reg) })
}

#[utoipa::path(get, path = "/registrations", params(RegistrationQuery), responses((status = 200, body = Page<Registration>)),
    security(("bearer" = [])), description = "Registrations in number order (any role).")]
async fn list_registrations(caller: Caller, s: web::Data<State>, q: web::Query<RegistrationQuery>) -> Reply {
    caller.require(READERS)?;
    let q = q.into_inner();
    Ok(HttpResponse::Ok()
        .json(app::list_registrations(&s, q.jurisdiction.as_deref(), q.year, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/registrations/{number}", responses((status = 200, body = Registration), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One registration (any role).")]
async fn get_registration(caller: Caller, s: web::Data<State>, number: web::Path<String>) -> Reply {
    caller.require(READERS)?;
    Ok(HttpResponse::Ok().json(app::get_registration(&s, &number).await?))
}

#[utoipa::path(post, path = "/objections", request_body = ObjectionBody, responses((status = 201, body = Objection), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Object to a published resource or field (operator, partner); due per LZ-5.")]
async fn file_objection(caller: Caller, s: web::Data<State>, body: Json<ObjectionBody>) -> Reply {
    caller.require(OBJECTORS)?;
    let b = body.0;
    Ok(HttpResponse::Created().json(app::file_objection(&s, &caller, b.resource_id, b.field, &b.description).await?))
}

#[utoipa::path(get, path = "/objections", params(ObjectionQuery), responses((status = 200, body = Page<Objection>)),
    security(("bearer" = [])), description = "Objections: the jurisdiction's for its departments, one's own for operators and partners.")]
async fn list_objections(caller: Caller, s: web::Data<State>, q: web::Query<ObjectionQuery>) -> Reply {
    caller.require(OBJECTION_READERS)?;
    let q = q.into_inner();
    let f = ObjectionFilter { state: q.state, resource_id: q.resource_id, ..ObjectionFilter::default() };
    Ok(HttpResponse::Ok()
        .json(app::list_objections(&s, &caller, f, q.overdue_as_of, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/objections/{id}", responses((status = 200, body = Objection), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One objection with every step.")]
async fn get_objection(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(OBJECTION_READERS)?;
    Ok(HttpResponse::Ok().json(app::get_objection(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/objections/{id}/{action}", request_body = ReasonBody,
    params(("action" = ObjectionAction, Path, description = "accept | rectify | reject")),
    responses((status = 200, body = Objection), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Accept or reject (industry_dept, data_admin); rectify (data_source_unit, industry_dept).")]
async fn objection_step(
    caller: Caller,
    s: web::Data<State>,
    path: web::Path<(Uuid, ObjectionAction)>,
    body: Json<ReasonBody>,
) -> Reply {
    let (id, action) = path.into_inner();
    caller.require(app::step_roles(action))?;
    Ok(HttpResponse::Ok().json(app::objection_step(&s, &caller, id, action, &body.reason).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Catalog service", description = "公共数据资源目录: resources, registration, quality objections."),
    paths(create_resource, search_resources, get_resource, update_resource, submit_resource, publish_resource,
        reject_resource, withdraw_resource, resource_versions, propose_revision, publish_revision, reject_revision,
        register_resource, list_registrations, get_registration, file_objection, list_objections, get_objection,
        objection_step),
    components(schemas(Problem, ReasonBody, RevisionBody, ObjectionBody, ObjectionAction)),
    modifiers(&BearerAuth, &ResponseDescriptions)
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
