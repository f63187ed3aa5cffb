//! Analysis jobs for a grant's workspace, behind one interface with two backends:
//!
//! * [`kube::KubeBackend`] — a namespace per workspace on Kubernetes with a default-deny egress
//!   NetworkPolicy (only the workspace's database endpoint and DNS are reachable), a
//!   ResourceQuota, the workspace credentials as a Secret, and Jobs whose image must be on the
//!   approved list (ZJK-19);
//! * [`local::LocalBackend`] — the same interface in-process: a job's args are SQL statements
//!   run through the gateway's checked query path.
//!
//! The workspaces table drives both: [`reconcile`] provisions open workspaces and tears down
//! everything else, so suspension (ZJK-34) and revocation or expiry (ZJK-31) remove the
//! namespace, its credentials and every running job.

pub mod kube;
pub mod local;

use std::collections::BTreeSet;
use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;
use uuid::Uuid;

use crate::workspaces::workspace_name;

/// Rule cited when an image is not on the approved list (access control of the environment).
pub const IMAGE_RULE: &str = "ZJK-19";

/// A job to run in a grant's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub grant_id: Uuid,
    /// The container image; it must be on the approved list.
    pub image: String,
    /// The container's arguments (for the local backend: SQL statements, run in order).
    pub args: Vec<String>,
    /// A Kubernetes quantity, e.g. `500m`: both the request and the limit.
    pub cpu: String,
    /// A Kubernetes quantity, e.g. `512Mi`: both the request and the limit.
    pub memory: String,
    /// The job is stopped after this many seconds.
    pub timeout_secs: u64,
}

/// Login credentials of a workspace. The password is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// Where a workspace's jobs run and what they may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceTarget {
    pub grant_id: Uuid,
    /// The workspace's schema and role, `ws_<grant>`.
    pub name: String,
    pub database_host: String,
    pub database_port: u16,
    pub database_name: String,
    pub credentials: Credentials,
}

impl WorkspaceTarget {
    /// The target of `grant`'s workspace (named as [`workspace_name`] names it).
    pub fn new(
        grant_id: Uuid,
        database_host: &str,
        database_port: u16,
        database_name: &str,
        credentials: Credentials,
    ) -> Self {
        WorkspaceTarget {
            grant_id,
            name: workspace_name(grant_id),
            database_host: database_host.to_string(),
            database_port,
            database_name: database_name.to_string(),
            credentials,
        }
    }
}

/// A submitted job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct JobRef {
    pub grant_id: Uuid,
    pub name: String,
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Running,
    /// Done; the local backend returns the statements' results, Kubernetes none.
    Succeeded {
        output: Option<serde_json::Value>,
    },
    Failed {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("image `{image}` is not on the approved list ({IMAGE_RULE})")]
    ImageNotApproved { image: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the workspace of grant {0} is not open: no job may start in it")]
    WorkspaceNotOpen(Uuid),
    #[error("job `{0}` not found")]
    JobNotFound(String),
    #[error("job backend settings: {0}")]
    Config(String),
    #[error("kubernetes: {0}")]
    Kube(#[from] ::kube::Error),
}

impl JobError {
    /// The rule a refusal cites, if it is one.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            JobError::ImageNotApproved { .. } => Some(IMAGE_RULE),
            _ => None,
        }
    }
}

/// Runs jobs for workspaces. Object-safe: the service holds an `Arc<dyn Backend>`.
pub trait Backend: Send + Sync {
    /// Makes the workspace ready for jobs; idempotent.
    fn provision<'a>(&'a self, ws: &'a WorkspaceTarget) -> BoxFuture<'a, Result<(), JobError>>;
    /// Starts a job in a provisioned workspace.
    fn submit<'a>(&'a self, ws: &'a WorkspaceTarget, spec: &'a JobSpec) -> BoxFuture<'a, Result<JobRef, JobError>>;
    fn status<'a>(&'a self, ws: &'a WorkspaceTarget, job: &'a JobRef) -> BoxFuture<'a, Result<JobStatus, JobError>>;
    /// Removes the workspace with its credentials and jobs; a workspace already gone is fine.
    fn teardown<'a>(&'a self, ws: &'a WorkspaceTarget) -> BoxFuture<'a, Result<(), JobError>>;
    /// The grants whose workspaces this backend has provisioned (and not torn down).
    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Uuid>, JobError>>;
}

/// The images jobs may run, exact references (pin them by digest: `repo@sha256:…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovedImages(BTreeSet<String>);

impl ApprovedImages {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(images: I) -> Self {
        ApprovedImages(images.into_iter().map(Into::into).collect())
    }

    /// Refuses an image that is not on the list (rule ZJK-19).
    pub fn check(&self, image: &str) -> Result<(), JobError> {
        if self.0.contains(image) { Ok(()) } else { Err(JobError::ImageNotApproved { image: image.to_string() }) }
    }
}

/// `true` for a Kubernetes quantity such as `2`, `0.5`, `500m`, `512Mi`, `1G`.
pub fn is_quantity(q: &str) -> bool {
    const SUFFIXES: &[&str] = &["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let digits_end = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(digits_end);
    let mut parts = number.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty() && parts.next().is_none() && fraction.is_none_or(|f| !f.is_empty()) && SUFFIXES.contains(&suffix)
}

/// Checks what every backend checks before a job starts: the grant, the image, the sizes.
pub fn validate(ws: &WorkspaceTarget, spec: &JobSpec, images: &ApprovedImages) -> Result<(), JobError> {
    images.check(&spec.image)?;
    if spec.grant_id != ws.grant_id {
        return Err(JobError::Invalid {
            field: "grant_id",
            reason: format!("job for grant {} submitted to the workspace of {}", spec.grant_id, ws.grant_id),
        });
    }
    for (field, q) in [("cpu", &spec.cpu), ("memory", &spec.memory)] {
        if !is_quantity(q) {
            return Err(JobError::Invalid { field, reason: format!("`{q}` is not a quantity") });
        }
    }
    if spec.timeout_secs == 0 {
        return Err(JobError::Invalid { field: "timeout_secs", reason: "must be at least 1".into() });
    }
    Ok(())
}

/// What one [`reconcile`] pass did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub provisioned: Vec<Uuid>,
    pub torn_down: Vec<Uuid>,
    /// Workspaces left as they were because the backend failed; retried on the next pass.
    pub failed: Vec<(Uuid, JobError)>,
}

/// Brings the backend in line with the workspaces table: every open workspace is provisioned;
/// every existing one (`existing`, e.g. [`Backend::list_managed`]) that is not open — closed on
/// suspension, destroyed on revocation or expiry, or unknown — is torn down.
pub async fn reconcile(backend: &dyn Backend, desired: &[(WorkspaceTarget, bool)], existing: Vec<Uuid>) -> Reconciled {
    let mut done = Reconciled::default();
    let open: BTreeSet<Uuid> = desired.iter().filter(|(_, open)| *open).map(|(ws, _)| ws.grant_id).collect();
    for (ws, _) in desired.iter().filter(|(_, open)| *open) {
        match backend.provision(ws).await {
            Ok(()) => done.provisioned.push(ws.grant_id),
            Err(e) => done.failed.push((ws.grant_id, e)),
        }
    }
    let stale: BTreeSet<Uuid> = existing.into_iter().filter(|g| !open.contains(g)).collect();
    for grant in stale {
        // Teardown needs only the grant: a workspace no longer in the table has nothing else.
        let ws = desired.iter().find(|(ws, _)| ws.grant_id == grant).map(|(ws, _)| ws.clone()).unwrap_or_else(|| {
            WorkspaceTarget::new(grant, "", 0, "", Credentials { user: String::new(), password: String::new() })
        });
        match backend.teardown(&ws).await {
            Ok(()) => done.torn_down.push(grant),
            Err(e) => done.failed.push((grant, e)),
        }
    }
    done
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub(crate) fn target(grant: Uuid) -> WorkspaceTarget {
        let credentials = Credentials { user: "ws_login".into(), password: "s3cret".into() };
        WorkspaceTarget::new(grant, "10.20.0.7", 5432, "sandbox", credentials)
    }

    pub(crate) fn spec(grant: Uuid) -> JobSpec {
        JobSpec {
            grant_id: grant,
            image: "registry.local/analysis@sha256:ab".into(),
            args: vec!["--report".into()],
            cpu: "500m".into(),
            memory: "256Mi".into(),
            timeout_secs: 600,
        }
    }

    #[test]
    fn jobs_credentials_debug_hides_the_password() {
        let printed = format!("{:?}", target(Uuid::nil()));
        assert!(printed.contains("<redacted>") && !printed.contains("s3cret"), "{printed}");
    }

    #[test]
    fn jobs_quantities() {
        for ok in ["1", "0.5", "500m", "512Mi", "2Gi", "1G"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.", ".5", "1.2.3", "5 Mi", "1Xi", "-1", "1e3x"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn jobs_validate_refuses_an_unapproved_image_naming_the_rule() {
        let g = Uuid::now_v7();
        let images = ApprovedImages::new(["registry.local/analysis@sha256:ab"]);
        assert!(validate(&target(g), &spec(g), &images).is_ok());
        let mut other = spec(g);
        other.image = "docker.io/library/postgres:latest".into();
        let e = validate(&target(g), &other, &images).unwrap_err();
        assert!(matches!(e, JobError::ImageNotApproved { .. }));
        assert_eq!(e.rule(), Some("ZJK-19"));
        assert!(e.to_string().contains("ZJK-19"));
    }

    #[test]
    fn jobs_validate_refuses_bad_sizes_and_another_grant() {
        let g = Uuid::now_v7();
        let images = ApprovedImages::new(["registry.local/analysis@sha256:ab"]);
        type Change = fn(&mut JobSpec);
        let cases: [(&str, Change); 4] = [
            ("cpu", |s| s.cpu = "lots".into()),
            ("memory", |s| s.memory = "1Q".into()),
            ("timeout_secs", |s| s.timeout_secs = 0),
            ("grant_id", |s| s.grant_id = Uuid::nil()),
        ];
        for (field, change) in cases {
            let mut s = spec(g);
            change(&mut s);
            match validate(&target(g), &s, &images) {
                Err(JobError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
