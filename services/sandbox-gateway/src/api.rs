//! HTTP routes: each handler states its roles, calls a use case, answers.

use actix_web::{HttpResponse, web};
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl as _;
use platform_auth::{BearerAuth, Caller, Role};
use platform_problems::{Json, Problem, ResponseDescriptions};
use platform_runtime::paging::{Page, page_size};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi as _;
use uuid::Uuid;

use crate::app::State;
use crate::audit::{self, Stored, Verification};
use crate::datasets::{self, Dataset, Format, LoadOutcome};
use crate::errors::Error;
use crate::query::{self, QueryOutcome};
use crate::workloads::{self, Job, JobBody};
use crate::workspaces::{self, StoredRelation, WORKSPACE_COLUMNS, WorkspaceRow};

type Reply = Result<HttpResponse, Problem>;

/// 数源单位 load their resources' data.
pub const LOADERS: &[Role] = &[Role::DataSourceUnit];
/// Who may see which dataset versions exist (never their rows).
pub const DATASET_READERS: &[Role] = &[Role::DataSourceUnit, Role::DataAdmin, Role::PlatformAdmin];
/// Grant principals: operators and partners.
pub const QUERIERS: &[Role] = &[Role::Operator, Role::Partner];
/// Supervisors of the environment (ZJK-19: supervision and tracing).
pub const SUPERVISORS: &[Role] = &[Role::DataAdmin, Role::PlatformAdmin];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi))
        .route("/datasets/{resource}/loads", web::post().to(load))
        .route("/datasets/{resource}/versions", web::get().to(versions))
        .route("/workspaces", web::get().to(list_workspaces))
        .route("/workspaces/{grant}", web::get().to(get_workspace))
        .route("/workspaces/{grant}/queries", web::post().to(run_query))
        .route("/workspaces/{grant}/checks", web::post().to(check_query))
        .route("/workspaces/{grant}/jobs", web::post().to(submit_job))
        .route("/workspaces/{grant}/jobs/{name}", web::get().to(job_status))
        .route("/audit", web::get().to(list_audit))
        .route("/audit/verify", web::get().to(verify_audit))
        .route("/destructions", web::get().to(list_destructions));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LoadParams {
    /// `csv` (UTF-8, header row) or `jsonl` (one JSON object per line).
    pub format: Format,
}

#[utoipa::path(post, path = "/datasets/{resource}/loads", params(("resource" = Uuid, Path), LoadParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = LoadOutcome), (status = 422, body = Problem)),
    security(("bearer" = [])), description = "Stream a resource's data (data_source_unit). All or nothing; rejected rows are listed with line numbers.")]
async fn load(
    caller: Caller,
    s: web::Data<State>,
    resource: web::Path<Uuid>,
    params: web::Query<LoadParams>,
    body: web::Payload,
) -> Reply {
    caller.require(LOADERS)?;
    let result = datasets::load(&s, &caller, resource.into_inner(), params.format, body).await;
    let outcome = if result.is_ok() { "stored" } else { "rejected" };
    s.metrics.loads.with_label_values(&[outcome]).inc();
    let done = result?;
    s.metrics.loaded_rows.inc_by(done.dataset.row_count.max(0) as u64);
    Ok(HttpResponse::Created().json(done))
}

#[utoipa::path(get, path = "/datasets/{resource}/versions", params(("resource" = Uuid, Path)),
    responses((status = 200, body = Vec<Dataset>)),
    security(("bearer" = [])), description = "Dataset versions of a resource, newest first; never their rows (data_source_unit, data_admin, platform_admin).")]
async fn versions(caller: Caller, s: web::Data<State>, resource: web::Path<Uuid>) -> Reply {
    caller.require(DATASET_READERS)?;
    Ok(HttpResponse::Ok().json(datasets::list(&s, resource.into_inner()).await?))
}

/// A workspace as its principal and the supervisors see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    pub grant_id: Uuid,
    pub jurisdiction: String,
    pub principal_org: String,
    pub scenario: String,
    /// open | closed | destroyed
    pub state: String,
    pub min_group_size: i32,
    pub min_group_rule: String,
    pub valid_until: String,
    pub relations: Vec<StoredRelation>,
}

impl Workspace {
    fn from_row(w: WorkspaceRow) -> Result<Workspace, Error> {
        let relations = w.relations().map_err(Error::Corrupt)?;
        Ok(Workspace {
            grant_id: w.grant_id,
            jurisdiction: w.jurisdiction,
            principal_org: w.principal_org,
            scenario: w.scenario,
            state: w.state,
            min_group_size: w.min_group_size,
            min_group_rule: w.min_group_rule,
            valid_until: w.valid_until,
            relations,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn uuid_cursor(c: &Option<String>) -> Result<Uuid, Problem> {
    match c {
        None => Ok(Uuid::nil()),
        Some(c) => {
            Uuid::parse_str(c).map_err(|_| Problem::invalid_field("cursor", "not a cursor from a previous page"))
        }
    }
}

#[utoipa::path(get, path = "/workspaces", params(PageParams), responses((status = 200, body = Page<Workspace>)),
    security(("bearer" = [])), description = "Workspaces: a principal's own (operator, partner), or all (data_admin, platform_admin).")]
async fn list_workspaces(caller: Caller, s: web::Data<State>, p: web::Query<PageParams>) -> Reply {
    caller.require(&[Role::Operator, Role::Partner, Role::DataAdmin, Role::PlatformAdmin])?;
    let size = page_size(p.limit)?;
    let after = uuid_cursor(&p.cursor)?;
    let everyone = SUPERVISORS.iter().any(|r| caller.has(*r));
    let mut conn = s.conn().await?;
    let rows: Vec<WorkspaceRow> = diesel::sql_query(format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE grant_id > $1 AND ($2 OR principal_org = $3) \
         ORDER BY grant_id LIMIT $4"
    ))
    .bind::<SqlUuid, _>(after)
    .bind::<diesel::sql_types::Bool, _>(everyone)
    .bind::<Text, _>(caller.org())
    .bind::<BigInt, _>(size + 1)
    .load(&mut conn)
    .await
    .map_err(Error::from)?;
    let page = Page::from_fetched(rows, size, |w| w.grant_id.to_string(), Workspace::from_row)?;
    Ok(HttpResponse::Ok().json(page))
}

async fn visible_workspace(s: &State, caller: &Caller, grant: Uuid) -> Result<WorkspaceRow, Problem> {
    let mut conn = s.conn().await?;
    let w =
        workspaces::load(&mut conn, grant, false).await.map_err(Error::from)?.ok_or(Error::WorkspaceNotFound(grant))?;
    if w.principal_org != caller.org() && !SUPERVISORS.iter().any(|r| caller.has(*r)) {
        return Err(Error::WorkspaceNotFound(grant).into());
    }
    Ok(w)
}

#[utoipa::path(get, path = "/workspaces/{grant}", params(("grant" = Uuid, Path)), responses((status = 200, body = Workspace), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "A workspace with its relations, columns and masks (its principal; data_admin, platform_admin).")]
async fn get_workspace(caller: Caller, s: web::Data<State>, grant: web::Path<Uuid>) -> Reply {
    caller.require(&[Role::Operator, Role::Partner, Role::DataAdmin, Role::PlatformAdmin])?;
    let w = visible_workspace(&s, &caller, grant.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Workspace::from_row(w)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// One SELECT over the workspace's relations.
    pub sql: String,
}

#[utoipa::path(post, path = "/workspaces/{grant}/queries", params(("grant" = Uuid, Path)), request_body = QueryBody,
    responses((status = 200, body = QueryOutcome), (status = 422, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Run a checked query (the grant's principal: operator, partner). Refusals name the rule; every call is audited.")]
async fn run_query(caller: Caller, s: web::Data<State>, grant: web::Path<Uuid>, body: Json<QueryBody>) -> Reply {
    caller.require(QUERIERS)?;
    Ok(HttpResponse::Ok().json(query::run(&s, &caller, grant.into_inner(), &body.sql).await?))
}

/// What the checks make of a query, without running it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckOutcome {
    pub accepted: bool,
    pub refusal: Option<crate::check::Refusal>,
    pub columns: Vec<String>,
    pub relations: Vec<String>,
    pub fields: Vec<String>,
}

#[utoipa::path(post, path = "/workspaces/{grant}/checks", params(("grant" = Uuid, Path)), request_body = QueryBody,
    responses((status = 200, body = CheckOutcome)),
    security(("bearer" = [])), description = "Check a query without running it (the grant's principal).")]
async fn check_query(caller: Caller, s: web::Data<State>, grant: web::Path<Uuid>, body: Json<QueryBody>) -> Reply {
    caller.require(QUERIERS)?;
    let w = visible_workspace(&s, &caller, grant.into_inner()).await?;
    let out = match query::check(&w.relations().map_err(Error::Corrupt)?, &body.sql) {
        Ok(c) => {
            CheckOutcome { accepted: true, refusal: None, columns: c.columns, relations: c.relations, fields: c.fields }
        }
        Err(r) => {
            CheckOutcome { accepted: false, refusal: Some(r), columns: vec![], relations: vec![], fields: vec![] }
        }
    };
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/workspaces/{grant}/jobs", params(("grant" = Uuid, Path)), request_body = JobBody,
    responses((status = 202, body = Job), (status = 422, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])), description = "Run an analysis job of an approved image in the workspace (the grant's principal: operator, partner; ZJK-19). Locally `platform/sql-job` runs its args as checked SQL.")]
async fn submit_job(caller: Caller, s: web::Data<State>, grant: web::Path<Uuid>, body: Json<JobBody>) -> Reply {
    caller.require(QUERIERS)?;
    Ok(HttpResponse::Accepted().json(workloads::submit(&s, &caller, grant.into_inner(), body.0).await?))
}

#[utoipa::path(get, path = "/workspaces/{grant}/jobs/{name}", params(("grant" = Uuid, Path), ("name" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = Problem)),
    security(("bearer" = [])), description = "A job's state and, for in-process jobs, its results (the grant's principal).")]
async fn job_status(caller: Caller, s: web::Data<State>, path: web::Path<(Uuid, String)>) -> Reply {
    caller.require(QUERIERS)?;
    let (grant, name) = path.into_inner();
    Ok(HttpResponse::Ok().json(workloads::status(&s, &caller, grant, name).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    pub grant_id: Option<Uuid>,
    /// Records after this sequence number.
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/audit", params(AuditParams), responses((status = 200, body = Page<Stored>)),
    security(("bearer" = [])), description = "The audit log in chain order (data_admin, platform_admin).")]
async fn list_audit(caller: Caller, s: web::Data<State>, p: web::Query<AuditParams>) -> Reply {
    caller.require(SUPERVISORS)?;
    let size = page_size(p.limit)?;
    let mut conn = s.conn().await?;
    let rows: Vec<Stored> = diesel::sql_query(
        "SELECT seq, prev_hash, hash, at_micros, principal, principal_org, grant_id, action, query, decision, rule, \
         rows_read, rows_returned, result_digest, purged_at FROM audit_log WHERE seq > $1 AND ($2::uuid IS NULL OR grant_id = $2) \
         ORDER BY seq LIMIT $3",
    )
    .bind::<BigInt, _>(p.after.unwrap_or(0))
    .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(p.grant_id)
    .bind::<BigInt, _>(size + 1)
    .load(&mut conn)
    .await
    .map_err(Error::from)?;
    let page = Page::from_fetched(rows, size, |r| r.seq.to_string(), Ok::<_, Problem>)?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/audit/verify", responses((status = 200, body = Verification)),
    security(("bearer" = [])), description = "Recompute the audit chain and report the first broken record (data_admin, platform_admin).")]
async fn verify_audit(caller: Caller, s: web::Data<State>) -> Reply {
    caller.require(SUPERVISORS)?;
    let mut conn = s.conn().await?;
    let v = audit::verify(&mut conn).await.map_err(Error::from)?;
    s.metrics.audit_chain_broken.set(i64::from(!v.intact));
    Ok(HttpResponse::Ok().json(v))
}

/// A destruction record (ZJK-31).
#[derive(Debug, Serialize, diesel::QueryableByName, utoipa::ToSchema)]
pub struct Destruction {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub grant_id: Uuid,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Text)]
    pub rule: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    #[schema(value_type = Object)]
    pub tables: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub destroyed_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(get, path = "/destructions", params(PageParams), responses((status = 200, body = Page<Destruction>)),
    security(("bearer" = [])), description = "Destruction records: what was destroyed, when, row counts and content hashes (data_admin, platform_admin).")]
async fn list_destructions(caller: Caller, s: web::Data<State>, p: web::Query<PageParams>) -> Reply {
    caller.require(SUPERVISORS)?;
    let size = page_size(p.limit)?;
    let after = uuid_cursor(&p.cursor)?;
    let mut conn = s.conn().await?;
    let rows: Vec<Destruction> = diesel::sql_query(
        "SELECT id, grant_id, reason, rule, tables, destroyed_at FROM destructions WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind::<SqlUuid, _>(after)
    .bind::<BigInt, _>(size + 1)
    .load(&mut conn)
    .await
    .map_err(Error::from)?;
    let page = Page::from_fetched(rows, size, |d| d.id.to_string(), Ok::<_, Problem>)?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Sandbox gateway", description = "原始数据不出域、数据可用不可见: staged data, workspaces per grant, checked queries, audit."),
    paths(load, versions, list_workspaces, get_workspace, run_query, check_query, submit_job, job_status, list_audit, verify_audit, list_destructions),
    components(schemas(Problem, QueryBody, Format)),
    modifiers(&BearerAuth, &ResponseDescriptions)
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
