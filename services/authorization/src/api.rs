//! HTTP routes: each handler states its roles, calls a use case, answers.

use actix_web::{HttpResponse, web};
use platform_auth::{BearerAuth, Caller, Role};
use platform_problems::{Json, Problem, ResponseDescriptions};
use serde::Deserialize;
use utoipa::OpenApi as _;
use uuid::Uuid;

use crate::agreements;
use crate::app::{self, State};
use crate::domain::agreement::AgreementAction;
use crate::domain::plan::{PlanAction, PlanContents};
use crate::grants;
use crate::views::{Agreement, AgreementInput, JurisdictionProfile, Page, Plan};

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
        .route("/plans/{id}/{action}", web::post().to(plan_step))
        .route("/selections", web::post().to(announce_selection))
        .route("/selections", web::get().to(list_selections))
        .route("/selections/{id}", web::get().to(get_selection))
        .route("/selections/{id}/applications", web::post().to(apply_to_selection))
        .route("/selections/{id}/applications", web::get().to(list_applications))
        .route("/selections/{id}/applications/{app}/evaluation", web::post().to(evaluate_application))
        .route("/selections/{id}/award", web::post().to(award_selection))
        .route("/selections/{id}/objections", web::post().to(raise_objection))
        .route("/selections/{id}/objections/{objection}/decision", web::post().to(decide_objection))
        .route("/operator-staff", web::post().to(register_staff))
        .route("/operator-staff", web::get().to(list_staff))
        .route("/operator-staff/{id}/verification", web::post().to(verify_staff))
        .route("/operator-staff/{id}/deregister", web::post().to(deregister_staff))
        .route("/agreements", web::post().to(create_agreement))
        .route("/agreements", web::get().to(list_agreements))
        .route("/agreements/{id}", web::get().to(get_agreement))
        .route("/agreements/{id}/finance-opinion", web::post().to(finance_opinion))
        .route("/agreements/{id}/renewal", web::post().to(request_renewal))
        .route("/agreements/{id}/evaluations", web::post().to(evaluate_operator))
        .route("/agreements/{id}/evaluations", web::get().to(list_evaluations))
        .route("/agreements/{id}/renewal-decision", web::post().to(decide_renewal))
        .route("/agreements/{id}/harm-report", web::post().to(report_harm))
        .route("/agreements/{id}/sub-authorizations", web::post().to(create_sub_authorization))
        .route("/sub-authorizations", web::get().to(list_sub_authorizations))
        .route("/sub-authorizations/{id}/report", web::post().to(report_sub_authorization))
        .route("/sub-authorizations/{id}/renewal", web::post().to(apply_for_sub_renewal))
        .route("/sub-authorizations/{id}/re-sign", web::post().to(re_sign_sub_authorization))
        .route("/sub-authorizations/{id}/terminate", web::post().to(terminate_sub_authorization))
        .route("/agreements/{id}/{action}", web::post().to(agreement_step))
        .route("/data-requests", web::post().to(create_request))
        .route("/data-requests/{id}/decision", web::post().to(decide_request))
        .route("/data-requests/{id}/compliance-report", web::post().to(compliance_report))
        .route("/data-requests/{id}/joint-review", web::post().to(joint_review))
        .route("/grants", web::get().to(list_grants))
        .route("/grants/{id}", web::get().to(get_grant))
        .route("/city-filings", web::get().to(list_city_filings))
        .route("/supervision-cases", web::post().to(open_case))
        .route("/supervision-cases", web::get().to(list_cases))
        .route("/supervision-cases/{id}", web::get().to(get_case))
        .route("/supervision-alerts", web::get().to(list_sandbox_alerts))
        .route("/supervision-cases/{id}/{action}", web::post().to(case_step));
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

const AGREEMENT_READERS: &[Role] = &[Role::ImplementingInstitution, Role::DataAdmin, Role::Operator, Role::Finance];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionBody {
    /// The finance department's opinion on the revenue-sharing clauses (WF-15).
    pub opinion: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(post, path = "/agreements", request_body = AgreementInput, responses((status = 201, body = Agreement), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Draft an agreement (implementing_institution); term, scope and fields checked against the profile (SX-22, NS-15, LZ-6, ZJK-15).")]
async fn create_agreement(caller: Caller, s: web::Data<State>, body: Json<AgreementInput>) -> Reply {
    caller.require(PLAN_AUTHORS)?;
    Ok(HttpResponse::Created().json(agreements::create(&s, &caller, body.0).await?))
}

#[utoipa::path(get, path = "/agreements", params(PageQuery), responses((status = 200, body = Page<Agreement>)),
    security(("bearer" = [])), description = "The jurisdiction's agreements; an operator sees its own.")]
async fn list_agreements(caller: Caller, s: web::Data<State>, q: web::Query<PageQuery>) -> Reply {
    caller.require(AGREEMENT_READERS)?;
    Ok(HttpResponse::Ok().json(agreements::list(&s, &caller, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/agreements/{id}", responses((status = 200, body = Agreement), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One agreement with its history.")]
async fn get_agreement(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(AGREEMENT_READERS)?;
    Ok(HttpResponse::Ok().json(agreements::get(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/agreements/{id}/finance-opinion", request_body = OpinionBody, responses((status = 200, body = Agreement)),
    security(("bearer" = [])), description = "Record the finance department's opinion on revenue sharing (finance, WF-15).")]
async fn finance_opinion(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<OpinionBody>) -> Reply {
    caller.require(&[Role::Finance])?;
    Ok(HttpResponse::Ok().json(agreements::finance_opinion(&s, &caller, *id, &body.opinion).await?))
}

#[utoipa::path(post, path = "/agreements/{id}/renewal", responses((status = 200, body = Agreement), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "The operator asks for renewal inside the profile's window (operator, ZJK-17, NS-15).")]
async fn request_renewal(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Ok().json(agreements::request_renewal(&s, &caller, *id).await?))
}

use crate::evaluations::{self as eval, Evaluation, RenewalDecision};

/// Who records evaluations and decides renewal after expiry: the implementing institution (LZ-6 (三), LZ-11).
pub const EVALUATORS: &[Role] = &[Role::ImplementingInstitution];
const EVALUATION_READERS: &[Role] = &[Role::ImplementingInstitution, Role::DataAdmin, Role::Operator];

#[utoipa::path(post, path = "/agreements/{id}/evaluations", request_body = eval::EvaluationInput,
    responses((status = 201, body = Evaluation), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Record a performance evaluation of the operator: revenue, cost control, profitability, contribution (implementing_institution; LZ-6, LZ-11).")]
async fn evaluate_operator(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<eval::EvaluationInput>,
) -> Reply {
    caller.require(EVALUATORS)?;
    Ok(HttpResponse::Created().json(eval::evaluate(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(get, path = "/agreements/{id}/evaluations", responses((status = 200, body = Vec<Evaluation>), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "An agreement's evaluations (implementing_institution, data_admin; the operator its own).")]
async fn list_evaluations(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(EVALUATION_READERS)?;
    Ok(HttpResponse::Ok().json(eval::list(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/agreements/{id}/renewal-decision", request_body = eval::DecisionInput,
    responses((status = 200, body = RenewalDecision), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "After the term ended, renew (a new agreement of the profile's fixed term) or refuse, on an evaluation and market demand (implementing_institution; LZ-6, LZ-11). Refused during the term, without an evaluation, and where renewal is applied for (NS-15).")]
async fn decide_renewal(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<eval::DecisionInput>,
) -> Reply {
    caller.require(EVALUATORS)?;
    Ok(HttpResponse::Ok().json(eval::decide(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/agreements/{id}/harm-report", request_body = crate::harm_reports::HarmReportInput,
    responses((status = 201, body = crate::store::CaseRow), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "The operator found harm to national security, the public interest, personal information or trade secrets: the grants concerned stop at once and a supervision case reports it (operator; NS-26).")]
async fn report_harm(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<crate::harm_reports::HarmReportInput>,
) -> Reply {
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Created().json(crate::harm_reports::report(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/agreements/{id}/{action}", request_body = ReasonBody,
    params(("action" = AgreementAction, Path, description = "sign | activate (implementing_institution); suspend | reinstate | terminate (data_admin)")),
    responses((status = 200, body = Agreement), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "A step of the agreement's life cycle; expiry is the scheduler's.")]
async fn agreement_step(
    caller: Caller,
    s: web::Data<State>,
    path: web::Path<(Uuid, AgreementAction)>,
    body: Json<ReasonBody>,
) -> Reply {
    let (id, action) = path.into_inner();
    caller.require(agreements::step_roles(action))?;
    Ok(HttpResponse::Ok().json(agreements::step(&s, &caller, id, action, &body.reason).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    pub report: String,
}

#[utoipa::path(post, path = "/data-requests", request_body = grants::RequestInput, responses((status = 201, body = crate::store::RequestRow), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Ask for data for one scenario under an active agreement (operator; ZJK-5, NS-19).")]
async fn create_request(caller: Caller, s: web::Data<State>, body: Json<grants::RequestInput>) -> Reply {
    caller.require(&[Role::Operator, Role::Partner])?;
    Ok(HttpResponse::Created().json(grants::request(&s, &caller, body.0).await?))
}

#[utoipa::path(post, path = "/data-requests/{id}/decision", request_body = grants::DecisionInput, responses((status = 200, body = crate::store::RequestRow)),
    security(("bearer" = [])), description = "Approve or reject (implementing_institution, data_source_unit; WF-18). The last approval creates the grant.")]
async fn decide_request(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<grants::DecisionInput>,
) -> Reply {
    caller.require(&[Role::ImplementingInstitution, Role::DataSourceUnit])?;
    Ok(HttpResponse::Ok().json(grants::decide(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/data-requests/{id}/compliance-report", request_body = ReportBody, responses((status = 200, body = crate::store::RequestRow)),
    security(("bearer" = [])), description = "Attach the compliance report conditionally-open data needs (operator; NS-20).")]
async fn compliance_report(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>, body: Json<ReportBody>) -> Reply {
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Ok().json(grants::compliance_report(&s, &caller, *id, &body.report).await?))
}

#[utoipa::path(post, path = "/data-requests/{id}/joint-review", request_body = grants::JointReviewInput, responses((status = 200, body = crate::store::RequestRow)),
    security(("bearer" = [])), description = "Record the joint review meeting's decision with each member's opinion (data_admin; NS-20).")]
async fn joint_review(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<grants::JointReviewInput>,
) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    Ok(HttpResponse::Ok().json(grants::joint_review(&s, &caller, *id, body.0).await?))
}

const GRANT_READERS: &[Role] = &[Role::DataAdmin, Role::ImplementingInstitution, Role::Operator, Role::Partner];

#[utoipa::path(get, path = "/grants", params(PageQuery), responses((status = 200, body = Page<crate::store::GrantRow>)),
    security(("bearer" = [])), description = "Grants: the jurisdiction's for its departments; one's own for operators and partners.")]
async fn list_grants(caller: Caller, s: web::Data<State>, q: web::Query<PageQuery>) -> Reply {
    caller.require(GRANT_READERS)?;
    Ok(HttpResponse::Ok().json(grants::list_grants(&s, &caller, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/grants/{id}", responses((status = 200, body = crate::store::GrantRow), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One grant.")]
async fn get_grant(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(GRANT_READERS)?;
    Ok(HttpResponse::Ok().json(grants::get_grant(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/supervision-cases", request_body = grants::CaseInput, responses((status = 201, body = crate::store::CaseRow)),
    security(("bearer" = [])), description = "Open a supervision case against an agreement's operator (data_admin).")]
async fn open_case(caller: Caller, s: web::Data<State>, body: Json<grants::CaseInput>) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    Ok(HttpResponse::Created().json(grants::open_case(&s, &caller, body.0).await?))
}

#[utoipa::path(get, path = "/supervision-cases", params(PageQuery), responses((status = 200, body = Page<crate::store::CaseRow>)),
    security(("bearer" = [])), description = "The jurisdiction's supervision cases, opened by hand or from the sandbox's alerts (data_admin; WF-30).")]
async fn list_cases(caller: Caller, s: web::Data<State>, q: web::Query<PageQuery>) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    Ok(HttpResponse::Ok().json(grants::list_cases(&s, &caller, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/supervision-cases/{id}", responses((status = 200, body = crate::store::CaseRow), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One supervision case with its history (data_admin).")]
async fn get_case(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    Ok(HttpResponse::Ok().json(grants::get_case(&s, &caller, *id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only the alerts that matched no agreement and opened no case.
    #[serde(default)]
    pub unmatched: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/supervision-alerts", params(AlertQuery), responses((status = 200, body = Page<crate::sandbox_audit::SandboxAlert>)),
    security(("bearer" = [])), description = "The development environment's refusal-burst alerts in the jurisdiction, each with the case it opened (data_admin; WF-30).")]
async fn list_sandbox_alerts(caller: Caller, s: web::Data<State>, q: web::Query<AlertQuery>) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    let q = q.into_inner();
    Ok(HttpResponse::Ok()
        .json(crate::sandbox_audit::list(&s, &caller, q.unmatched, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(post, path = "/supervision-cases/{id}/{action}", request_body = grants::CaseStepInput,
    params(("action" = grants::CaseAction, Path, description = "rectify | pass | fail")),
    responses((status = 200, body = crate::store::CaseRow), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Rectification suspends every grant of the operator (ZJK-34; SX-23 by decision); passing reinstates them; failing terminates the agreement and revokes its grants (SX-33, ZJK-35, WF-24).")]
async fn case_step(
    caller: Caller,
    s: web::Data<State>,
    path: web::Path<(Uuid, grants::CaseAction)>,
    body: Json<grants::CaseStepInput>,
) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    let (id, action) = path.into_inner();
    Ok(HttpResponse::Ok().json(grants::case_step(&s, &caller, id, action, body.0).await?))
}

#[utoipa::path(get, path = "/city-filings", params(PageQuery), responses((status = 200, body = Vec<crate::city_filings::FilingRow>)),
    security(("bearer" = [])), description = "Filings the cities under the caller's province made through city.filing.v1 (data_admin; SX-19, SX-21).")]
async fn list_city_filings(caller: Caller, s: web::Data<State>, q: web::Query<PageQuery>) -> Reply {
    caller.require(&[Role::DataAdmin])?;
    let limit = q.limit.unwrap_or(platform_runtime::paging::DEFAULT_PAGE).clamp(1, platform_runtime::paging::MAX_PAGE);
    let mut c = platform_store::conn(&s.pool).await.map_err(crate::errors::Error::from)?;
    let rows = crate::city_filings::list(&mut c, caller.jurisdiction(), limit).await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(post, path = "/agreements/{id}/sub-authorizations", request_body = crate::sub_authorizations::SubAuthorizationInput,
    responses((status = 201, body = crate::sub_authorizations::SubAuthorization), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "The primary operator sub-authorizes a partner for one scenario (operator; ZJK-17; partners never, ZJK-11; forbidden in Weifang, WF-26).")]
async fn create_sub_authorization(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<crate::sub_authorizations::SubAuthorizationInput>,
) -> Reply {
    crate::sub_authorizations::refuse_partner(&caller)?;
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Created().json(crate::sub_authorizations::create(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/sub-authorizations/{id}/report", responses((status = 200, body = crate::sub_authorizations::SubAuthorization), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Record the report to the coordination office; the sub-authorization takes effect (operator; ZJK-17).")]
async fn report_sub_authorization(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Ok().json(crate::sub_authorizations::report(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/sub-authorizations/{id}/renewal", responses((status = 200, body = crate::sub_authorizations::SubAuthorization), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "The partner applies to the primary operator to sign again, within the last 3 months of its term (partner; ZJK-17).")]
async fn apply_for_sub_renewal(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(&[Role::Partner])?;
    Ok(HttpResponse::Ok().json(crate::sub_authorizations::apply_for_renewal(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/sub-authorizations/{id}/re-sign", request_body = crate::sub_authorizations::ReSignInput,
    responses((status = 201, body = crate::sub_authorizations::SubAuthorization), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "The primary operator re-signs on the partner's application: a new sub-authorization from the day after the old one's last day, at most 3 years and within its own agreement (operator; ZJK-17).")]
async fn re_sign_sub_authorization(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<crate::sub_authorizations::ReSignInput>,
) -> Reply {
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Created().json(crate::sub_authorizations::re_sign(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/sub-authorizations/{id}/terminate", request_body = ReasonBody,
    responses((status = 200, body = crate::sub_authorizations::SubAuthorization), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "The primary operator ends a partner's sub-authorization on its own; the partner's grants under it are revoked (operator; ZJK-35, NS-27).")]
async fn terminate_sub_authorization(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<ReasonBody>,
) -> Reply {
    caller.require(&[Role::Operator])?;
    Ok(HttpResponse::Ok().json(crate::sub_authorizations::terminate(&s, &caller, *id, &body.reason).await?))
}

#[utoipa::path(get, path = "/sub-authorizations", responses((status = 200, body = Vec<crate::sub_authorizations::SubAuthorization>)),
    security(("bearer" = [])), description = "Sub-authorizations: an operator's own, a partner's, or the jurisdiction's.")]
async fn list_sub_authorizations(caller: Caller, s: web::Data<State>) -> Reply {
    caller.require(&[Role::Operator, Role::Partner, Role::DataAdmin, Role::ImplementingInstitution])?;
    Ok(HttpResponse::Ok().json(crate::sub_authorizations::list(&s, &caller).await?))
}

use crate::selections::{self as sel, Selection, SelectionView};

#[utoipa::path(post, path = "/selections", request_body = sel::AnnouncementInput, responses((status = 201, body = Selection), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Announce an operator selection: mode, scope, conditions, criteria, deadline (implementing_institution; WF-12, SX-20).")]
async fn announce_selection(caller: Caller, s: web::Data<State>, body: Json<sel::AnnouncementInput>) -> Reply {
    caller.require(sel::AUTHORS)?;
    Ok(HttpResponse::Created().json(sel::announce(&s, &caller, body.0).await?))
}

#[utoipa::path(get, path = "/selections", params(PageQuery), responses((status = 200, body = Page<Selection>)),
    security(("bearer" = [])), description = "The jurisdiction's selections; announcements are public (any role).")]
async fn list_selections(caller: Caller, s: web::Data<State>, q: web::Query<PageQuery>) -> Reply {
    caller.require(&Role::ALL)?;
    Ok(HttpResponse::Ok().json(sel::list(&s, &caller, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(get, path = "/selections/{id}", responses((status = 200, body = SelectionView), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "One selection with its objections and whether an agreement may follow now (any role).")]
async fn get_selection(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(&Role::ALL)?;
    Ok(HttpResponse::Ok().json(sel::get(&s, *id).await?))
}

#[utoipa::path(post, path = "/selections/{id}/applications", request_body = sel::ApplicationInput,
    responses((status = 201, body = sel::Application), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Apply before the deadline; eligibility by the profile (operator; WF-12, WF-13, ZJK-12, NS-11, LZ-3).")]
async fn apply_to_selection(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<sel::ApplicationInput>,
) -> Reply {
    caller.require(sel::APPLICANTS)?;
    Ok(HttpResponse::Created().json(sel::apply(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(get, path = "/selections/{id}/applications", responses((status = 200, body = Vec<sel::Application>)),
    security(("bearer" = [])), description = "The applications with declarations and scores (implementing_institution, data_admin).")]
async fn list_applications(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(sel::READERS_OF_APPLICATIONS)?;
    Ok(HttpResponse::Ok().json(sel::applications(&s, &caller, *id).await?))
}

#[utoipa::path(post, path = "/selections/{id}/applications/{app}/evaluation", request_body = sel::EvaluationInput,
    responses((status = 200, body = sel::Application), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Score an application after the deadline (implementing_institution; WF-12).")]
async fn evaluate_application(
    caller: Caller,
    s: web::Data<State>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<sel::EvaluationInput>,
) -> Reply {
    caller.require(sel::AUTHORS)?;
    let (id, app) = path.into_inner();
    Ok(HttpResponse::Ok().json(sel::evaluate(&s, &caller, id, app, body.0).await?))
}

#[utoipa::path(post, path = "/selections/{id}/award", request_body = sel::AwardInput,
    responses((status = 200, body = Selection), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Award the best-scored application; the public notice starts (implementing_institution; WF-12, NS-13).")]
async fn award_selection(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<sel::AwardInput>,
) -> Reply {
    caller.require(sel::AUTHORS)?;
    Ok(HttpResponse::Ok().json(sel::award(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/selections/{id}/objections", request_body = sel::ObjectionInput,
    responses((status = 201, body = sel::Objection), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Object to the award while the public notice runs (any role; WF-12).")]
async fn raise_objection(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<sel::ObjectionInput>,
) -> Reply {
    caller.require(&Role::ALL)?;
    Ok(HttpResponse::Created().json(sel::object(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/selections/{id}/objections/{objection}/decision", request_body = sel::ObjectionDecisionInput,
    responses((status = 200, body = sel::Objection), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Uphold (the award is annulled) or dismiss an objection (data_admin).")]
async fn decide_objection(
    caller: Caller,
    s: web::Data<State>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<sel::ObjectionDecisionInput>,
) -> Reply {
    caller.require(sel::OBJECTION_DECIDERS)?;
    let (id, objection) = path.into_inner();
    Ok(HttpResponse::Ok().json(sel::decide_objection(&s, &caller, id, objection, body.0).await?))
}

use crate::staff::{self, StaffMember};

#[utoipa::path(post, path = "/operator-staff", request_body = staff::StaffInput,
    responses((status = 201, body = StaffMember), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Register a person of the caller's organisation with the signed confidentiality agreement (operator, partner; NS-14, WF-30).")]
async fn register_staff(caller: Caller, s: web::Data<State>, body: Json<staff::StaffInput>) -> Reply {
    caller.require(staff::REGISTRARS)?;
    Ok(HttpResponse::Created().json(staff::register(&s, &caller, body.0).await?))
}

#[utoipa::path(get, path = "/operator-staff", params(PageQuery), responses((status = 200, body = Page<StaffMember>)),
    security(("bearer" = [])), description = "Staff: one's own organisation's, or the jurisdiction's for departments.")]
async fn list_staff(caller: Caller, s: web::Data<State>, q: web::Query<PageQuery>) -> Reply {
    caller.require(staff::READERS)?;
    Ok(HttpResponse::Ok().json(staff::list(&s, &caller, q.cursor.as_deref(), q.limit).await?))
}

#[utoipa::path(post, path = "/operator-staff/{id}/verification", request_body = staff::VerificationInput,
    responses((status = 200, body = StaffMember), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Record the real-name verification and filing (data_admin; NS-14).")]
async fn verify_staff(
    caller: Caller,
    s: web::Data<State>,
    id: web::Path<Uuid>,
    body: Json<staff::VerificationInput>,
) -> Reply {
    caller.require(staff::VERIFIERS)?;
    Ok(HttpResponse::Ok().json(staff::verify(&s, &caller, *id, body.0).await?))
}

#[utoipa::path(post, path = "/operator-staff/{id}/deregister", responses((status = 200, body = StaffMember), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "The person leaves; no new grant names them (operator, partner for their own; data_admin).")]
async fn deregister_staff(caller: Caller, s: web::Data<State>, id: web::Path<Uuid>) -> Reply {
    caller.require(staff::DEREGISTRARS)?;
    Ok(HttpResponse::Ok().json(staff::deregister(&s, &caller, *id).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Authorization service", description = "公共数据资源授权运营: policy profiles, implementation plans, agreements."),
    paths(list_profiles, get_profile, create_plan, list_plans, get_plan, update_plan, change_plan, plan_step,
        create_agreement, list_agreements, get_agreement, finance_opinion, request_renewal, agreement_step,
        evaluate_operator, list_evaluations, decide_renewal, report_harm, apply_for_sub_renewal, re_sign_sub_authorization,
        terminate_sub_authorization,
        create_request, decide_request, compliance_report, joint_review, list_grants, get_grant, open_case, case_step,
        list_cases, get_case, list_sandbox_alerts,
        list_city_filings, create_sub_authorization, report_sub_authorization, list_sub_authorizations,
        announce_selection, list_selections, get_selection, apply_to_selection, list_applications,
        evaluate_application, award_selection, raise_objection, decide_objection,
        register_staff, list_staff, verify_staff, deregister_staff),
    components(schemas(Problem, ReasonBody, ChangeBody, OpinionBody, ReportBody, PlanAction, AgreementAction,
        grants::CaseAction)),
    modifiers(&BearerAuth, &ResponseDescriptions)
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
