//! HTTP routes: each handler states its roles, calls a use case, answers.

use actix_web::{HttpResponse, web};
use platform_auth::{BearerAuth, Caller, Role};
use platform_problems::{Json, Problem};
use serde::Deserialize;
use utoipa::OpenApi as _;
use uuid::Uuid;

use crate::app::{self, State};
use crate::domain::plan::{PlanAction, PlanContents};
use crate::views::{JurisdictionProfile, Page, Plan};

type Reply = Result<HttpResponse, Problem>;

const PLAN_AUTHORS: &[Role] = &[Role::ImplementingInstitution];
const PLAN_READERS: &[Role] = &[Role::ImplementingInstitution, Role::DataAdmin];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi))
        .route("/jurisdictions", web::get().to(list_profiles))
        .route("/jurisdictions/{code}/profile", web::get().to(get_profile))
        .route("/plans", web::post().to(create_plan))
        .route("/plans", web::get().to(list_plans))
        .route("/plans/{id}", web::get().to(get_plan))
        .route("/plans/{id}", web::put().to(update_plan))
        .route("/plans/{id}/change", web::post().to(change_plan))
        .route("/plans/{id}/{action}", web::post().to(plan_step));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    pub contents: PlanContents,
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    /// A past version; the current one when absent.
    pub version: Option<i32>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// Only approved plans whose filing was due before this China date (SX-19, WF-11).
    pub filing_overdue_as_of: Option<chrono::NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/jurisdictions", responses((status = 200, body = Vec<JurisdictionProfile>)),
    security(("bearer" = [])), description = "Every jurisdiction with its current policy profile (any role).")]
async fn list_profiles(caller: Caller, s: web::Data<State>) -> Reply {
    caller.require(&Role::ALL)?;
    Ok(HttpResponse::Ok().json(app::profiles(&s).await?))
}

#[utoipa::path(get, path = "/jurisdictions/{code}/profile", params(ProfileQuery), responses((status = 200, body = JurisdictionProfile), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "One jurisdiction's policy profile, each value with its rule (any role).")]
async fn get_profile(
    caller: Caller,
    s: web::Data<State>,
    code: web::Path<String>,
    q: web::Query<ProfileQuery>,
) -> Reply {
    caller.require(&Role::ALL)?;
    Ok(HttpResponse::Ok().json(app::profile(&s, &code, q.version).await?))
}

#[utoipa::path(post, path = "/plans", request_body = PlanContents, responses((status = 201, body = Plan), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Draft an implementation plan (implementing_institution).")]
async fn create_plan(caller: Caller, s: web::Data<State>, body: Json<PlanContents>) -> Reply {
    caller.require(PLAN_AUTHORS)?;
    Ok(HttpResponse::Created().json(app::create_plan(&s, &caller, body.0).await?))
}

#[utoipa::path(get, path = "/plans", params(PlanQuery), responses((status = 200, body = Page<Plan>)),
    security(("bearer" = [])), description = "The caller's jurisdiction's plans; overdue filings with filing_overdue_as_of.")]
async fn list_plans(caller: Caller, s: web::Data<State>, q: web::Query<PlanQuery>) -> Reply {
    caller.require(PLAN_READERS)?;
    let q = q.into_inner();
    Ok(HttpResponse::Ok()
        .json(app::list_plans(&s, &caller, q.filing_overdue_as_of, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/plans/{id}", responses((status = 200, body = Plan), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One plan with its history.")]
async fn get_plan(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(PLAN_READERS)?;
    Ok(HttpResponse::Ok().json(app::get_plan(&s, &caller, *id).await?))
}

#[utoipa::path(put, path = "/plans/{id}", request_body = PlanContents, responses((status = 200, body = Plan), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Edit a draft (implementing_institution).")]
async fn update_plan(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<PlanContents>) -> Reply {
    caller.require(PLAN_AUTHORS)?;
    Ok(HttpResponse::Ok().json(app::update_plan(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/plans/{id}/change", request_body = ChangeBody, responses((status = 200, body = Plan), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Change an approved plan: the next revision goes through the flow again (WF-11).")]
async fn change_plan(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<ChangeBody>) -> Reply {
    caller.require(PLAN_AUTHORS)?;
    let b = body.0;
    Ok(HttpResponse::Ok().json(app::change_plan(&s, &caller, *id, b.contents, &b.reason).await?))
}

#[utoipa::path(post, path = "/plans/{id}/{action}", request_body = ReasonBody,
    params(("action" = PlanAction, Path, description = "submit | pass_feasibility | return | approve | file")),
    responses((status = 200, body = Plan), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "A step of the flow: submit (implementing_institution); pass_feasibility, return, approve, file (data_admin).")]
async fn plan_step(
    caller: Caller,
    s: web::Data<State>,
    path: web::Path<(Uuid, PlanAction)>,
    body: Json<ReasonBody>,
) -> Reply {
    let (id, action) = path.into_inner();
    caller.require(app::step_roles(action))?;
    Ok(HttpResponse::Ok().json(app::step(&s, &caller, id, action, &body.reason).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Authorization service", description = "公共数据资源授权运营: policy profiles and implementation plans."),
    paths(list_profiles, get_profile, create_plan, list_plans, get_plan, update_plan, change_plan, plan_step),
    components(schemas(Problem, ReasonBody, ChangeBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
