//! Analysis jobs wired into the gateway: which backend runs them (in-process locally,
//! Kubernetes in a cluster — [`crate::jobs`]), the workspace credentials jobs log in with, the
//! reconcile loop that provisions open workspaces and tears down closed and destroyed ones
//! (suspension ZJK-34, revocation ZJK-31), and submitting and following jobs (ZJK-19: approved
//! images only; every submission audited, WF-30).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform_auth::{Caller, Claims};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::app::State;
use crate::audit::{self, Record, sha256_hex};
use crate::errors::{Error, Result};
use crate::jobs::{self, ApprovedImages, Backend, Credentials, JobRef, JobSpec, JobStatus, WorkspaceTarget};
use crate::workspaces::{self, quote_ident, workspace_name};

/// The `[jobs]` settings section.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSettings {
    /// `local` (in-process SQL jobs) or `kubernetes`.
    pub backend: String,
    /// Exact image references jobs may run (ZJK-19): a list, or one string separated by commas
    /// (as environment variables and the chart's TOML give it).
    #[serde(deserialize_with = "list_or_commas")]
    pub approved_images: Vec<String>,
    /// The database endpoint jobs reach (the only egress their namespace allows).
    pub database_host: String,
    pub database_port: u16,
    pub database_name: String,
    /// Secret from which each workspace's login password is derived (Kubernetes only). Never logged.
    #[serde(default)]
    pub credentials_key: String,
    #[serde(default)]
    pub kubernetes: Option<KubeSection>,
}

fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        One(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::One(s) => s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect(),
    })
}

/// `[jobs.kubernetes]`: passed to [`jobs::kube::KubeSettings`] (minus the images, given above).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSection {
    pub quota_cpu: Option<String>,
    pub quota_memory: Option<String>,
    pub quota_pods: Option<u32>,
    pub dns_namespace: Option<String>,
}

impl std::fmt::Debug for JobsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsSettings")
            .field("backend", &self.backend)
            .field("approved_images", &self.approved_images)
            .field("database_host", &self.database_host)
            .field("database_port", &self.database_port)
            .field("database_name", &self.database_name)
            .field("credentials_key", &if self.credentials_key.is_empty() { "" } else { "***" })
            .field("kubernetes", &self.kubernetes)
            .finish()
    }
}

/// The built-in `[jobs]` section: in-process SQL jobs of the one local image.
pub const JOBS_DEFAULTS: &str = r#"
[jobs]
backend = "local"
approved_images = ["platform/sql-job"]
database_host = "127.0.0.1"
database_port = 5432
database_name = "sandbox_gateway"
credentials_key = ""
"#;

/// Shortest credentials key accepted for the Kubernetes backend.
const MIN_KEY_BYTES: usize = 32;

impl JobsSettings {
    pub fn local() -> JobsSettings {
        JobsSettings {
            backend: "local".into(),
            approved_images: vec!["platform/sql-job".into()],
            database_host: "127.0.0.1".into(),
            database_port: 5432,
            database_name: "sandbox_gateway".into(),
            credentials_key: String::new(),
            kubernetes: None,
        }
    }

    pub fn validate(&self) -> std::result::Result<(), platform_settings::SettingsError> {
        use platform_settings::SettingsError;
        match self.backend.as_str() {
            "local" => Ok(()),
            "kubernetes" if self.credentials_key.len() < MIN_KEY_BYTES => Err(SettingsError::invalid(
                "jobs.credentials_key",
                format!("the Kubernetes backend needs a key of at least {MIN_KEY_BYTES} bytes"),
            )),
            "kubernetes" => Ok(()),
            other => Err(SettingsError::invalid("jobs.backend", format!("`{other}` is not local or kubernetes"))),
        }
    }

    fn kubernetes(&self) -> bool {
        self.backend == "kubernetes"
    }

    /// The target of `grant`'s workspace with its derived login.
    pub fn target(&self, grant: Uuid) -> WorkspaceTarget {
        let password = sha256_hex(format!("{}:{grant}", self.credentials_key).as_bytes());
        let credentials = Credentials { user: workspace_name(grant), password };
        WorkspaceTarget::new(grant, &self.database_host, self.database_port, &self.database_name, credentials)
    }
}

/// The running jobs machinery.
#[derive(Clone)]
pub struct Workloads {
    pub backend: Arc<dyn Backend>,
    pub settings: Arc<JobsSettings>,
    /// Wakes the reconcile loop (after a grant event).
    pub wake: Arc<Notify>,
    /// Workspaces whose role has been given its login (Kubernetes only).
    logins: Arc<std::sync::Mutex<HashSet<Uuid>>>,
}

/// Builds the backend. The local one runs SQL through the checked query path of `state`, set
/// once the state exists.
pub async fn start(settings: JobsSettings, state: Arc<OnceLock<State>>) -> std::result::Result<Workloads, String> {
    let images = ApprovedImages::new(settings.approved_images.iter().cloned());
    let backend: Arc<dyn Backend> = if settings.kubernetes() {
        let client = ::kube::Client::try_default().await.map_err(|e| format!("kubernetes client: {e}"))?;
        let k = settings.kubernetes.clone().unwrap_or_default();
        let mut ks =
            jobs::kube::KubeSettings { approved_images: settings.approved_images.clone(), ..Default::default() };
        if let Some(v) = k.quota_cpu {
            ks.quota.cpu = v;
        }
        if let Some(v) = k.quota_memory {
            ks.quota.memory = v;
        }
        if let Some(v) = k.quota_pods {
            ks.quota.pods = v;
        }
        if let Some(v) = k.dns_namespace {
            ks.dns_namespace = v;
        }
        Arc::new(jobs::kube::KubeBackend::new(client, ks))
    } else {
        let run: jobs::local::SqlRunner = Box::new(move |grant, sql| {
            let state = state.clone();
            Box::pin(async move {
                let Some(s) = state.get() else { return Err("the gateway is still starting".to_string()) };
                run_sql(s, grant, &sql).await
            })
        });
        Arc::new(jobs::local::LocalBackend::new(images, run))
    };
    Ok(Workloads { backend, settings: Arc::new(settings), wake: Arc::new(Notify::new()), logins: Arc::default() })
}

/// A job's statements run as its workspace's principal, through every check a person's query
/// passes, and are audited as the job's.
async fn run_sql(state: &State, grant: Uuid, sql: &str) -> std::result::Result<serde_json::Value, String> {
    let ws = {
        let mut c = state.conn().await.map_err(|e| e.to_string())?;
        workspaces::load(&mut c, grant, false).await.map_err(|e| e.to_string())?.ok_or("no such workspace")?
    };
    let caller = Caller::new(Claims {
        sub: format!("job:{grant}"),
        org: ws.principal_org.clone(),
        jurisdiction: ws.jurisdiction.clone(),
        roles: vec!["operator".into()],
        exp: u64::MAX,
        iat: None,
        iss: None,
        aud: None,
    });
    match crate::query::run(state, &caller, grant, sql).await {
        Ok(out) => serde_json::to_value(out).map_err(|e| e.to_string()),
        Err(e) => Err(platform_problems::Problem::from(e).detail.unwrap_or_else(|| "refused".into())),
    }
}

#[derive(QueryableByName)]
struct Live {
    #[diesel(sql_type = SqlUuid)]
    grant_id: Uuid,
    #[diesel(sql_type = Text)]
    state: String,
}

impl Workloads {
    /// One pass: open workspaces provisioned (with their login on Kubernetes), every other one
    /// the backend still holds torn down.
    pub async fn reconcile(&self, state: &State) -> Result<jobs::Reconciled> {
        let rows: Vec<Live> = {
            let mut c = state.conn().await?;
            diesel::sql_query("SELECT grant_id, state FROM workspaces WHERE state IN ('open', 'closed')")
                .load(&mut c)
                .await?
        };
        if self.settings.kubernetes() {
            self.grant_logins(state, &rows).await?;
        }
        let desired: Vec<(WorkspaceTarget, bool)> =
            rows.iter().map(|w| (self.settings.target(w.grant_id), w.state == "open")).collect();
        let existing = self.backend.list_managed().await.map_err(|e| Error::Pool(e.to_string()))?;
        let done = jobs::reconcile(self.backend.as_ref(), &desired, existing).await;
        for (grant, e) in &done.failed {
            tracing::warn!(%grant, error = %e, "workspace job environment not reconciled; retrying");
        }
        Ok(done)
    }

    async fn grant_logins(&self, state: &State, rows: &[Live]) -> Result<()> {
        let todo: Vec<Uuid> = {
            let done = self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rows.iter().filter(|w| w.state == "open" && !done.contains(&w.grant_id)).map(|w| w.grant_id).collect()
        };
        let mut c = state.conn().await?;
        for grant in todo {
            let t = self.settings.target(grant);
            // The password is derived, never stored; the statement is not logged.
            diesel::sql_query(format!(
                "ALTER ROLE {} LOGIN PASSWORD '{}'",
                quote_ident(&t.credentials.user),
                t.credentials.password
            ))
            .execute(&mut c)
            .await?;
            self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(grant);
        }
        Ok(())
    }

    /// Reconciles every 5 s, and at once when woken.
    pub async fn run(self, state: Arc<OnceLock<State>>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Some(s) = state.get()
                && let Err(e) = self.reconcile(s).await
            {
                tracing::warn!(error = %e, "job reconcile pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// What a principal asks to run.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobBody {
    /// An approved image (ZJK-19); locally `platform/sql-job`, whose args are SQL statements.
    pub image: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_cpu() -> String {
    "500m".into()
}
fn default_memory() -> String {
    "512Mi".into()
}
fn default_timeout() -> u64 {
    600
}

/// A job as answered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub grant_id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub status: JobStatus,
}

async fn record(state: &State, jurisdiction: &str, r: Record) -> Result<()> {
    let prefix = state.topic_prefix.clone();
    let jurisdiction = jurisdiction.to_string();
    let mut conn = state.conn().await?;
    let c: &mut AsyncPgConnection = &mut conn;
    c.transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
        audit::append(c, &prefix, &jurisdiction, &r).await?;
        Ok(())
    })
    .await?;
    state.relay.wake();
    Ok(())
}

/// The job machinery and `grant`'s workspace, when `caller` is of its principal organisation
/// (anyone else is told there is no such workspace).
async fn principal_workspace<'a>(
    state: &'a State,
    caller: &Caller,
    grant: Uuid,
) -> Result<(&'a Workloads, workspaces::WorkspaceRow)> {
    let w = state.workloads.as_ref().ok_or(Error::Pool("jobs are not configured".into()))?;
    let ws = {
        let mut c = state.conn().await?;
        workspaces::load(&mut c, grant, false).await?.ok_or(Error::WorkspaceNotFound(grant))?
    };
    if ws.principal_org != caller.org() {
        return Err(Error::WorkspaceNotFound(grant));
    }
    Ok((w, ws))
}

/// Submits a job in `grant`'s open workspace for its principal.
pub async fn submit(state: &State, caller: &Caller, grant: Uuid, body: JobBody) -> Result<Job> {
    let (w, ws) = principal_workspace(state, caller, grant).await?;
    let mut rec = Record {
        principal: caller.subject().to_string(),
        principal_org: caller.org().to_string(),
        grant_id: Some(grant),
        action: "job".into(),
        query: format!("{} {}", body.image, serde_json::to_string(&body.args).unwrap_or_default()),
        decision: "submitted".into(),
        rule: String::new(),
        rows_read: 0,
        rows_returned: 0,
        result_digest: String::new(),
    };
    if ws.state != "open" {
        rec.decision = "refused".into();
        rec.rule = "ZJK-34".into();
        record(state, &ws.jurisdiction, rec).await?;
        return Err(Error::Closed { reason: format!("the workspace is {}", ws.state), rule: "ZJK-34".into() });
    }
    let target = w.settings.target(grant);
    let spec = JobSpec {
        grant_id: grant,
        image: body.image,
        args: body.args,
        cpu: body.cpu,
        memory: body.memory,
        timeout_secs: body.timeout_secs,
    };
    // Make sure the environment exists even if the reconcile loop has not passed yet.
    let submitted = match w.backend.provision(&target).await {
        Ok(()) => w.backend.submit(&target, &spec).await,
        Err(e) => Err(e),
    };
    match submitted {
        Ok(job) => {
            record(state, &ws.jurisdiction, rec).await?;
            let status = w.backend.status(&target, &job).await.unwrap_or(JobStatus::Pending);
            Ok(Job { grant_id: grant, name: job.name, status })
        }
        Err(e) => {
            rec.decision = "refused".into();
            rec.rule = e.rule().unwrap_or_default().into();
            record(state, &ws.jurisdiction, rec).await?;
            Err(Error::Job(e))
        }
    }
}

/// A job's state, for its workspace's principal.
pub async fn status(state: &State, caller: &Caller, grant: Uuid, name: String) -> Result<Job> {
    let (w, _) = principal_workspace(state, caller, grant).await?;
    let job = JobRef { grant_id: grant, name };
    let status = w.backend.status(&w.settings.target(grant), &job).await.map_err(Error::Job)?;
    Ok(Job { grant_id: grant, name: job.name, status })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::GatewaySettings;

    fn load(env: &[(&str, &str)]) -> std::result::Result<GatewaySettings, platform_settings::SettingsError> {
        let environment = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        platform_settings::load(
            &crate::default_settings(),
            &platform_settings::Sources { environment: Some(environment), ..Default::default() },
        )
    }

    #[test]
    fn jobs_default_to_in_process_sql_and_kubernetes_needs_a_key() {
        let s = load(&[]).unwrap();
        assert_eq!(
            (s.jobs.backend.as_str(), s.jobs.approved_images.clone()),
            ("local", vec!["platform/sql-job".to_string()])
        );
        let e = load(&[("PLATFORM__JOBS__BACKEND", "kubernetes")]).err().unwrap();
        assert!(e.to_string().contains("jobs.credentials_key"), "{e}");
        let key = "k".repeat(40);
        let s = load(&[
            ("PLATFORM__JOBS__BACKEND", "kubernetes"),
            ("PLATFORM__JOBS__CREDENTIALS_KEY", &key),
            ("PLATFORM__JOBS__APPROVED_IMAGES", "harbor/a@sha256:1, harbor/b@sha256:2"),
        ])
        .unwrap();
        assert_eq!(s.jobs.approved_images, vec!["harbor/a@sha256:1", "harbor/b@sha256:2"]);
        assert!(!format!("{:?}", s.jobs).contains(&key), "the key is never printed");
        let e = load(&[("PLATFORM__JOBS__BACKEND", "cloud")]).err().unwrap();
        assert!(e.to_string().contains("jobs.backend"), "{e}");
    }

    #[test]
    fn each_workspace_has_its_own_derived_login() {
        let mut s = JobsSettings::local();
        s.credentials_key = "k".repeat(40);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(s.target(a).credentials, s.target(a).credentials);
        assert_ne!(s.target(a).credentials.password, s.target(b).credentials.password);
        assert_eq!(s.target(a).credentials.user, workspace_name(a));
    }
}
