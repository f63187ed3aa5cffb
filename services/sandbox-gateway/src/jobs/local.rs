//! Jobs in-process, for local runs and tests: a job's args are SQL statements, run in order
//! through a callback — the service plugs in its checked query path, so a local job is refused
//! or suppressed exactly as a query would be. Provision and teardown only record the state; a
//! teardown stops the workspace's running jobs, as deleting its namespace would.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::AbortHandle;
use uuid::Uuid;

use super::{ApprovedImages, Backend, JobError, JobRef, JobSpec, JobStatus, WorkspaceTarget, validate};

/// Runs one SQL statement in a grant's workspace; `Err` carries the refusal or failure.
pub type SqlRunner = Box<dyn Fn(Uuid, String) -> BoxFuture<'static, Result<serde_json::Value, String>> + Send + Sync>;

struct LocalJob {
    grant: Uuid,
    status: JobStatus,
    task: Option<AbortHandle>,
}

#[derive(Default)]
struct Ledger {
    /// Provisioned workspaces; a torn-down one is removed.
    workspaces: HashSet<Uuid>,
    jobs: HashMap<String, LocalJob>,
}

/// The in-process backend. Cheap to clone; clones share their state.
#[derive(Clone)]
pub struct LocalBackend {
    run: Arc<SqlRunner>,
    images: ApprovedImages,
    ledger: Arc<Mutex<Ledger>>,
}

impl LocalBackend {
    /// `images` is checked as on Kubernetes, so a job refused there is refused here too.
    pub fn new(images: ApprovedImages, run: SqlRunner) -> Self {
        LocalBackend { run: Arc::new(run), images, ledger: Arc::default() }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `grant`'s workspace is provisioned (and not torn down).
    pub fn is_provisioned(&self, grant: Uuid) -> bool {
        self.ledger().workspaces.contains(&grant)
    }

    fn finish(&self, name: &str, status: JobStatus) {
        if let Some(job) = self.ledger().jobs.get_mut(name)
            && job.status == JobStatus::Running
        {
            job.status = status;
            job.task = None;
        }
    }

    fn start(&self, ws: &WorkspaceTarget, spec: &JobSpec) -> Result<JobRef, JobError> {
        validate(ws, spec, &self.images)?;
        let name = format!("job-{}", Uuid::now_v7().simple());
        let mut ledger = self.ledger();
        if !ledger.workspaces.contains(&ws.grant_id) {
            return Err(JobError::WorkspaceNotOpen(ws.grant_id));
        }
        ledger.jobs.insert(name.clone(), LocalJob { grant: ws.grant_id, status: JobStatus::Running, task: None });
        let (this, grant, statements, job) = (self.clone(), ws.grant_id, spec.args.clone(), name.clone());
        let deadline = Duration::from_secs(spec.timeout_secs);
        let task = tokio::spawn(async move {
            let run = async {
                let mut results = Vec::with_capacity(statements.len());
                for sql in statements {
                    results.push((this.run)(grant, sql).await?);
                }
                Ok::<_, String>(serde_json::Value::Array(results))
            };
            let status = match tokio::time::timeout(deadline, run).await {
                Ok(Ok(output)) => JobStatus::Succeeded { output: Some(output) },
                Ok(Err(reason)) => JobStatus::Failed { reason },
                Err(_) => JobStatus::Failed { reason: "DeadlineExceeded".into() },
            };
            this.finish(&job, status);
        });
        if let Some(j) = ledger.jobs.get_mut(&name)
            && j.status == JobStatus::Running
        {
            j.task = Some(task.abort_handle());
        }
        Ok(JobRef { grant_id: ws.grant_id, name })
    }
}

impl Backend for LocalBackend {
    fn provision<'a>(&'a self, ws: &'a WorkspaceTarget) -> BoxFuture<'a, Result<(), JobError>> {
        self.ledger().workspaces.insert(ws.grant_id);
        Box::pin(async { Ok(()) })
    }

    fn submit<'a>(&'a self, ws: &'a WorkspaceTarget, spec: &'a JobSpec) -> BoxFuture<'a, Result<JobRef, JobError>> {
        let started = self.start(ws, spec);
        Box::pin(async move { started })
    }

    fn status<'a>(&'a self, ws: &'a WorkspaceTarget, job: &'a JobRef) -> BoxFuture<'a, Result<JobStatus, JobError>> {
        let status = match self.ledger().jobs.get(&job.name) {
            Some(j) if j.grant == ws.grant_id => Ok(j.status.clone()),
            _ => Err(JobError::JobNotFound(job.name.clone())),
        };
        Box::pin(async move { status })
    }

    fn teardown<'a>(&'a self, ws: &'a WorkspaceTarget) -> BoxFuture<'a, Result<(), JobError>> {
        let mut ledger = self.ledger();
        ledger.workspaces.remove(&ws.grant_id);
        for job in ledger.jobs.values_mut().filter(|j| j.grant == ws.grant_id) {
            if let Some(task) = job.task.take() {
                task.abort();
                job.status = JobStatus::Failed { reason: "the workspace was torn down".into() };
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Uuid>, JobError>> {
        let grants = self.ledger().workspaces.iter().copied().collect();
        Box::pin(async move { Ok(grants) })
    }
}
