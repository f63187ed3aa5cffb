//! Jobs on Kubernetes against a mocked API server (no cluster): every request's method, path and
//! JSON body is asserted exactly, in order, and nothing else may be sent. Also the in-process
//! backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use sandbox_gateway::jobs::kube::{KubeBackend, KubeSettings, QuotaSettings};
use sandbox_gateway::jobs::local::LocalBackend;
use sandbox_gateway::jobs::{
    ApprovedImages, Backend, Credentials, JobError, JobRef, JobSpec, JobStatus, WorkspaceTarget, reconcile,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

const IMAGE: &str = "registry.platform.local/analysis/python@sha256:5f1c0ffee";
/// Query strings as kube sends them: they start `?&`.
const APPLY: &str = "?&force=true&fieldManager=sandbox-gateway";

fn grant(n: u8) -> Uuid {
    Uuid::parse_str(&format!("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a{n:02x}")).unwrap()
}

fn ns(g: Uuid) -> String {
    format!("sbx-{}", g.simple())
}

fn target(g: Uuid) -> WorkspaceTarget {
    WorkspaceTarget::new(
        g,
        "10.20.0.7",
        5432,
        "sandbox",
        Credentials { user: "ws_login".into(), password: "pw-not-logged".into() },
    )
}

fn spec(g: Uuid) -> JobSpec {
    JobSpec {
        grant_id: g,
        image: IMAGE.into(),
        args: vec!["--report".into(), "monthly".into()],
        cpu: "500m".into(),
        memory: "256Mi".into(),
        timeout_secs: 900,
    }
}

fn settings() -> KubeSettings {
    KubeSettings {
        approved_images: vec![IMAGE.into()],
        quota: QuotaSettings { cpu: "2".into(), memory: "4Gi".into(), pods: 4 },
        ..KubeSettings::default()
    }
}

fn labels(g: Uuid) -> Value {
    json!({"app.kubernetes.io/managed-by": "sandbox-gateway", "platform/grant": g.to_string()})
}

// --- the fake API server -------------------------------------------------------------------

enum Expect {
    /// The exact JSON body.
    Json(Value),
    /// No body (GET).
    Empty,
    /// The exact body, computed from the one received (for generated names).
    Derived(Box<dyn FnOnce(&Value) -> Value + Send>),
}

enum Reply {
    /// The object sent, as stored (with a uid and resourceVersion), and this status.
    Echo(StatusCode),
    Json(StatusCode, Value),
}

struct Exchange {
    method: Method,
    path: String,
    body: Expect,
    reply: Reply,
}

fn exchange(method: Method, path: impl Into<String>, body: Expect, reply: Reply) -> Exchange {
    Exchange { method, path: path.into(), body, reply }
}

fn apply(path: impl Into<String>, body: Value) -> Exchange {
    exchange(Method::PATCH, format!("{}{APPLY}", path.into()), Expect::Json(body), Reply::Echo(StatusCode::OK))
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code,
           "message": format!("fake API: {reason}")})
}

/// A client whose API server is a task that checks each request against `script`, in order,
/// answers it, and then asserts that no other request comes before the client is dropped.
fn fake_api(script: Vec<Exchange>) -> (kube::Client, JoinHandle<Vec<Value>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for (i, step) in script.into_iter().enumerate() {
            let (request, send) = handle.next_request().await.unwrap_or_else(|| panic!("request {i} never came"));
            let (parts, body) = request.into_parts();
            let path = parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default();
            assert_eq!((&parts.method, path.as_str()), (&step.method, step.path.as_str()), "request {i}");
            if parts.method == Method::PATCH {
                assert_eq!(parts.headers["content-type"], "application/apply-patch+yaml", "request {i}");
            }
            let bytes = body.collect_bytes().await.unwrap();
            let received: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
            match step.body {
                Expect::Json(want) => assert_eq!(received, want, "body of request {i} ({path})"),
                Expect::Empty => assert_eq!(received, Value::Null, "body of request {i} ({path})"),
                Expect::Derived(f) => {
                    let want = f(&received);
                    assert_eq!(received, want, "body of request {i} ({path})")
                }
            }
            let (code, answer) = match step.reply {
                Reply::Echo(code) => {
                    let mut stored = received.clone();
                    stored["metadata"]["uid"] = json!(Uuid::now_v7().to_string());
                    stored["metadata"]["resourceVersion"] = json!("1");
                    (code, stored)
                }
                Reply::Json(code, v) => (code, v),
            };
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            send.send_response(response);
            seen.push(received);
        }
        if let Some((request, _)) = handle.next_request().await {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
        seen
    });
    (kube::Client::new(service, "default"), server)
}

/// Ends a test: drops the backend (closing the client) and waits for the server's checks.
async fn finish<B>(backend: B, server: JoinHandle<Vec<Value>>) -> Vec<Value> {
    drop(backend);
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server did not finish").unwrap()
}

// --- the exact objects ------------------------------------------------------------------------

fn namespace_applied(g: Uuid) -> Exchange {
    let mut l = labels(g);
    l["pod-security.kubernetes.io/enforce"] = json!("restricted");
    apply(
        format!("/api/v1/namespaces/{}", ns(g)),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns(g), "labels": l}}),
    )
}

fn policy_applied(g: Uuid) -> Exchange {
    apply(
        format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/default-deny-egress", ns(g)),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-egress", "namespace": ns(g), "labels": labels(g)},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"ipBlock": {"cidr": "10.20.0.7/32"}}], "ports": [{"port": 5432, "protocol": "TCP"}]},
                    {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                     "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
                ]
            }
        }),
    )
}

fn quota_applied(g: Uuid) -> Exchange {
    apply(
        format!("/api/v1/namespaces/{}/resourcequotas/workspace-quota", ns(g)),
        json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "workspace-quota", "namespace": ns(g), "labels": labels(g)},
            "spec": {"hard": {"limits.cpu": "2", "limits.memory": "4Gi", "pods": "4",
                              "requests.cpu": "2", "requests.memory": "4Gi"}}
        }),
    )
}

fn secret_applied(g: Uuid) -> Exchange {
    apply(
        format!("/api/v1/namespaces/{}/secrets/workspace-credentials", ns(g)),
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "workspace-credentials", "namespace": ns(g), "labels": labels(g)},
            // base64 of: sandbox, 10.20.0.7, pw-not-logged, 5432, ws_login
            "data": {"PGDATABASE": "c2FuZGJveA==", "PGHOST": "MTAuMjAuMC43", "PGPASSWORD": "cHctbm90LWxvZ2dlZA==",
                     "PGPORT": "NTQzMg==", "PGUSER": "d3NfbG9naW4="}
        }),
    )
}

fn provisioned(g: Uuid) -> Vec<Exchange> {
    vec![namespace_applied(g), policy_applied(g), quota_applied(g), secret_applied(g)]
}

fn job_body(g: Uuid, name: &str) -> Value {
    let mut pod_labels = labels(g);
    pod_labels["platform/job"] = json!(name);
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns(g), "labels": labels(g)},
        "spec": {
            "activeDeadlineSeconds": 900,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "job",
                        "image": IMAGE,
                        "args": ["--report", "monthly"],
                        "envFrom": [{"secretRef": {"name": "workspace-credentials", "optional": false}}],
                        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                      "requests": {"cpu": "500m", "memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                            "privileged": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true},
                        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}]
                    }],
                    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}]
                }
            }
        }
    })
}

fn deleted(g: Uuid, reply: Reply) -> Exchange {
    exchange(
        Method::DELETE,
        format!("/api/v1/namespaces/{}?", ns(g)),
        Expect::Json(json!({"propagationPolicy": "Background"})),
        reply,
    )
}

fn terminating(g: Uuid) -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns(g), "labels": labels(g)},
               "status": {"phase": "Terminating"}}),
    )
}

// --- tests -----------------------------------------------------------------------------------

#[tokio::test]
async fn provision_applies_namespace_deny_egress_policy_quota_and_secret_idempotently() {
    let g = grant(1);
    // Twice: the same server-side applies, so a repeated provision changes nothing.
    let (client, server) = fake_api(provisioned(g).into_iter().chain(provisioned(g)).collect());
    let backend = KubeBackend::new(client, settings());
    backend.provision(&target(g)).await.unwrap();
    backend.provision(&target(g)).await.unwrap();
    let seen = finish(backend, server).await;
    assert_eq!(seen.len(), 8);
}

#[tokio::test]
async fn provision_of_a_named_database_without_selectors_sends_nothing() {
    let g = grant(2);
    let (client, server) = fake_api(vec![]);
    let backend = KubeBackend::new(client, settings());
    let mut ws = target(g);
    ws.database_host = "pg.data.svc.cluster.local".into();
    let e = backend.provision(&ws).await.unwrap_err();
    assert!(matches!(e, JobError::Config(_)), "{e:?}");
    finish(backend, server).await;
}

#[tokio::test]
async fn submit_creates_a_locked_down_job_with_the_approved_image() {
    let g = grant(3);
    let expected = Expect::Derived(Box::new(move |got: &Value| {
        let name = got["metadata"]["name"].as_str().unwrap_or_default().to_string();
        assert!(name.starts_with("job-") && name.len() == 36, "{name}");
        job_body(g, &name)
    }));
    let path = format!("/apis/batch/v1/namespaces/{}/jobs?&fieldManager=sandbox-gateway", ns(g));
    let (client, server) = fake_api(vec![exchange(Method::POST, path, expected, Reply::Echo(StatusCode::CREATED))]);
    let backend = KubeBackend::new(client, settings());
    let job = backend.submit(&target(g), &spec(g)).await.unwrap();
    let seen = finish(backend, server).await;
    assert_eq!(job.grant_id, g);
    assert_eq!(seen[0]["metadata"]["name"], json!(job.name));
}

#[tokio::test]
async fn unapproved_image_is_refused_naming_zjk_19_before_any_request() {
    let g = grant(4);
    let (client, server) = fake_api(vec![]);
    let backend = KubeBackend::new(client, settings());
    for image in ["docker.io/library/postgres:16", "registry.platform.local/analysis/python:latest", ""] {
        let mut s = spec(g);
        s.image = image.into();
        let e = backend.submit(&target(g), &s).await.unwrap_err();
        assert!(matches!(&e, JobError::ImageNotApproved { image: i } if i == image), "{e:?}");
        assert_eq!(e.rule(), Some("ZJK-19"));
    }
    assert!(finish(backend, server).await.is_empty());
}

#[tokio::test]
async fn status_reads_the_job_and_a_missing_job_is_not_found() {
    let g = grant(5);
    let path = |name: &str| format!("/apis/batch/v1/namespaces/{}/jobs/{name}", ns(g));
    let job = |status: Value| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job-a", "namespace": ns(g)},
               "spec": {"template": {"spec": {"containers": []}}}, "status": status})
    };
    let (client, server) = fake_api(vec![
        exchange(Method::GET, path("job-a"), Expect::Empty, Reply::Json(StatusCode::OK, job(json!({"active": 1})))),
        exchange(
            Method::GET,
            path("job-a"),
            Expect::Empty,
            Reply::Json(
                StatusCode::OK,
                job(json!({"failed": 1, "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]})),
            ),
        ),
        exchange(
            Method::GET,
            path("job-b"),
            Expect::Empty,
            Reply::Json(StatusCode::NOT_FOUND, status(404, "NotFound")),
        ),
    ]);
    let backend = KubeBackend::new(client, settings());
    let ws = target(g);
    let a = JobRef { grant_id: g, name: "job-a".into() };
    assert_eq!(backend.status(&ws, &a).await.unwrap(), JobStatus::Running);
    assert_eq!(
        backend.status(&ws, &a).await.unwrap(),
        JobStatus::Failed { reason: "DeadlineExceeded: Job was active longer than specified deadline".into() }
    );
    let b = JobRef { grant_id: g, name: "job-b".into() };
    assert!(matches!(backend.status(&ws, &b).await, Err(JobError::JobNotFound(n)) if n == "job-b"));
    finish(backend, server).await;
}

#[tokio::test]
async fn teardown_deletes_the_namespace_and_tolerates_gone_or_terminating() {
    let g = grant(6);
    let (client, server) = fake_api(vec![
        deleted(g, terminating(g)),
        deleted(g, Reply::Json(StatusCode::CONFLICT, status(409, "Conflict"))),
        deleted(g, Reply::Json(StatusCode::NOT_FOUND, status(404, "NotFound"))),
        deleted(g, Reply::Json(StatusCode::FORBIDDEN, status(403, "Forbidden"))),
    ]);
    let backend = KubeBackend::new(client, settings());
    let ws = target(g);
    for _ in 0..3 {
        backend.teardown(&ws).await.unwrap();
    }
    // Anything else is an error, for the next reconcile pass to retry.
    assert!(matches!(backend.teardown(&ws).await, Err(JobError::Kube(_))));
    finish(backend, server).await;
}

#[tokio::test]
async fn reconcile_provisions_open_workspaces_and_tears_down_closed_destroyed_and_orphaned() {
    let (open, closed, destroyed, orphan, leaving) = (grant(0x10), grant(0x11), grant(0x12), grant(0x13), grant(0x14));
    let namespace =
        |g: Uuid, phase: &str| json!({"metadata": {"name": ns(g), "labels": labels(g)}, "status": {"phase": phase}});
    let listed = json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "9"}, "items": [
        namespace(open, "Active"), namespace(closed, "Active"), namespace(destroyed, "Active"),
        namespace(orphan, "Active"), namespace(leaving, "Terminating"),
        // not ours to touch: no grant label
        {"metadata": {"name": "sbx-foreign", "labels": {"app.kubernetes.io/managed-by": "sandbox-gateway"}}}
    ]});
    let list_path = "/api/v1/namespaces?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dsandbox-gateway";
    let mut script = vec![exchange(Method::GET, list_path, Expect::Empty, Reply::Json(StatusCode::OK, listed))];
    script.extend(provisioned(open));
    script.push(deleted(closed, terminating(closed)));
    script.push(deleted(destroyed, terminating(destroyed)));
    script.push(deleted(orphan, Reply::Json(StatusCode::NOT_FOUND, status(404, "NotFound"))));
    let (client, server) = fake_api(script);
    let backend = KubeBackend::new(client, settings());

    let existing = backend.list_managed().await.unwrap();
    assert_eq!(existing, vec![open, closed, destroyed, orphan]);
    let desired = [(target(open), true), (target(closed), false), (target(destroyed), false)];
    let done = reconcile(&backend, &desired, existing).await;
    assert_eq!(done.provisioned, vec![open]);
    assert_eq!(done.torn_down, vec![closed, destroyed, orphan]);
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    finish(backend, server).await;
}

// --- the in-process backend --------------------------------------------------------------------

type Calls = Arc<Mutex<Vec<(Uuid, String)>>>;

/// A SQL runner that records its calls, refuses `SELECT *` as the checked path does, and
/// waits forever on `SELECT pg_sleep(3600)`.
fn runner(calls: Calls) -> sandbox_gateway::jobs::local::SqlRunner {
    Box::new(move |grant, sql| {
        calls.lock().unwrap().push((grant, sql.clone()));
        async move {
            match sql.as_str() {
                s if s.starts_with("SELECT *") => Err("refused (ZJK-21): projecting every column".to_string()),
                s if s.contains("pg_sleep") => futures::future::pending().await,
                _ => Ok(json!({"columns": ["n"], "rows": [[42]]})),
            }
        }
        .boxed()
    })
}

async fn settled(backend: &LocalBackend, ws: &WorkspaceTarget, job: &JobRef) -> JobStatus {
    for _ in 0..200 {
        let s = backend.status(ws, job).await.unwrap();
        if s != JobStatus::Running {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {} still running", job.name);
}

#[tokio::test]
async fn local_backend_runs_sql_jobs_and_refuses_them_after_teardown() {
    let g = grant(0x20);
    let calls = Calls::default();
    let backend = LocalBackend::new(ApprovedImages::new([IMAGE]), runner(calls.clone()));
    let ws = target(g);
    let sql = |statements: &[&str]| JobSpec { args: statements.iter().map(ToString::to_string).collect(), ..spec(g) };

    // Not provisioned yet.
    assert!(matches!(backend.submit(&ws, &sql(&["SELECT 1"])).await, Err(JobError::WorkspaceNotOpen(x)) if x == g));
    backend.provision(&ws).await.unwrap();
    assert!(backend.is_provisioned(g));
    assert_eq!(backend.list_managed().await.unwrap(), vec![g]);

    let refused = backend.submit(&ws, &sql(&["SELECT * FROM t", "SELECT 2"])).await.unwrap();
    assert_eq!(
        settled(&backend, &ws, &refused).await,
        JobStatus::Failed { reason: "refused (ZJK-21): projecting every column".into() }
    );
    let job = backend.submit(&ws, &sql(&["SELECT sum(n) FROM t", "SELECT avg(n) FROM t"])).await.unwrap();
    let row = json!({"columns": ["n"], "rows": [[42]]});
    assert_eq!(settled(&backend, &ws, &job).await, JobStatus::Succeeded { output: Some(json!([row, row])) });

    // The same image rule as on Kubernetes.
    let mut other = sql(&["SELECT 1"]);
    other.image = "docker.io/library/postgres:16".into();
    assert!(matches!(backend.submit(&ws, &other).await, Err(JobError::ImageNotApproved { .. })));

    // Teardown stops a running job and refuses new ones.
    let slow = backend.submit(&ws, &sql(&["SELECT pg_sleep(3600)"])).await.unwrap();
    assert_eq!(backend.status(&ws, &slow).await.unwrap(), JobStatus::Running);
    backend.teardown(&ws).await.unwrap();
    assert_eq!(
        backend.status(&ws, &slow).await.unwrap(),
        JobStatus::Failed { reason: "the workspace was torn down".into() }
    );
    assert!(matches!(backend.submit(&ws, &sql(&["SELECT 1"])).await, Err(JobError::WorkspaceNotOpen(_))));
    assert!(backend.list_managed().await.unwrap().is_empty());

    let ran: Vec<String> = calls.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
    assert!(calls.lock().unwrap().iter().all(|(grant, _)| *grant == g));
    assert_eq!(ran.first().map(String::as_str), Some("SELECT * FROM t"));
    assert!(!ran.contains(&"SELECT 2".to_string()), "a job stops at its first refused statement");
}

#[tokio::test]
async fn local_backend_times_out_a_job_and_reconciles_like_kubernetes() {
    let (open, closed) = (grant(0x21), grant(0x22));
    let backend = LocalBackend::new(ApprovedImages::new([IMAGE]), runner(Calls::default()));
    backend.provision(&target(closed)).await.unwrap();
    let desired = [(target(open), true), (target(closed), false)];
    let done = reconcile(&backend, &desired, backend.list_managed().await.unwrap()).await;
    assert_eq!((done.provisioned, done.torn_down), (vec![open], vec![closed]));
    assert!(backend.is_provisioned(open) && !backend.is_provisioned(closed));

    let mut slow = spec(open);
    slow.args = vec!["SELECT pg_sleep(3600)".into()];
    slow.timeout_secs = 1;
    let job = backend.submit(&target(open), &slow).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(settled(&backend, &target(open), &job).await, JobStatus::Failed { reason: "DeadlineExceeded".into() });
}
