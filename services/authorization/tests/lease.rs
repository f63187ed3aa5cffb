//! The scheduler's leader election by Kubernetes Lease, against a mocked API server (no
//! cluster): every request's method, path and JSON body is asserted exactly, in order, and
//! nothing else may be sent. Also which election the settings choose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use authorization::lease::LeaseLock;
use authorization::scheduler::{Election, SchedulerSettings};
use chrono::{DateTime, Utc};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/platform/leases";
const NAME: &str = "authorization-scheduler";
const ME: &str = "authorization-7d9f-abc_0a1b2c3d";
const OTHER: &str = "authorization-7d9f-xyz_99887766";

fn lease_path() -> String {
    format!("{LEASES}/{NAME}")
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A Lease as the API server stores it.
fn stored(version: &str, spec: Value) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": NAME, "namespace": "platform", "resourceVersion": version}, "spec": spec})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code,
           "message": format!("fake API: {reason}")})
}

// --- the fake API server -------------------------------------------------------------------

enum Reply {
    /// The object sent, stored: its resourceVersion bumped (or "1" when new).
    Stored(StatusCode),
    Json(StatusCode, Value),
}

struct Exchange {
    method: Method,
    path: String,
    body: Value,
    reply: Reply,
}

fn get(reply: Reply) -> Exchange {
    Exchange { method: Method::GET, path: lease_path(), body: Value::Null, reply }
}

fn put(body: Value, reply: Reply) -> Exchange {
    Exchange { method: Method::PUT, path: format!("{}?", lease_path()), body, reply }
}

fn post(body: Value, reply: Reply) -> Exchange {
    Exchange { method: Method::POST, path: format!("{LEASES}?"), body, reply }
}

/// The answer to a request whose body was `received`.
fn respond(reply: Reply, received: Value) -> Response<Body> {
    let (code, answer) = match reply {
        Reply::Stored(code) => {
            let mut s = received;
            let version = s["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse::<u64>().ok());
            s["metadata"]["resourceVersion"] = json!(version.map_or(1, |v| v + 1).to_string());
            s["metadata"]["namespace"] = json!("platform");
            (code, s)
        }
        Reply::Json(code, v) => (code, v),
    };
    let mut response = Response::new(Body::from(serde_json::to_vec(&answer).unwrap()));
    *response.status_mut() = code;
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    response
}

/// A client whose API server checks each request against `script`, in order, answers it, and
/// then asserts that no other request comes before the client is dropped.
fn fake_api(script: Vec<Exchange>) -> (kube::Client, JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        for (i, step) in script.into_iter().enumerate() {
            let (request, send) = handle.next_request().await.unwrap_or_else(|| panic!("request {i} never came"));
            let (parts, body) = request.into_parts();
            let path = parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default();
            assert_eq!((&parts.method, path.as_str()), (&step.method, step.path.as_str()), "request {i}");
            let bytes = body.collect_bytes().await.unwrap();
            let received: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
            assert_eq!(received, step.body, "body of request {i} ({path})");
            send.send_response(respond(step.reply, received));
        }
        if let Some((request, _)) = handle.next_request().await {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    });
    (kube::Client::new(service, "default"), server)
}

fn lock(client: kube::Client) -> LeaseLock {
    LeaseLock::new(client, Some("platform"), NAME, ME, Duration::from_secs(90))
}

async fn finish(server: JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server did not finish").unwrap();
}

fn spec(holder: &str, acquired: &str, renewed: &str, transitions: i32) -> Value {
    json!({"holderIdentity": holder, "leaseDurationSeconds": 90, "acquireTime": acquired, "renewTime": renewed,
           "leaseTransitions": transitions})
}

/// The Lease created, free until then, with this replica holding it from `t0`.
fn created(t0: &str) -> Exchange {
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": NAME},
                       "spec": spec(ME, t0, t0, 0)});
    post(lease, Reply::Stored(StatusCode::CREATED))
}

// --- the tests --------------------------------------------------------------------------------

#[tokio::test]
async fn a_free_lease_is_created_and_taken_renewed_while_held_and_released_on_stop() {
    let t0 = "2026-11-30T08:00:00.000000Z";
    let t1 = "2026-11-30T08:00:30.000000Z";
    let (client, server) = fake_api(vec![
        // No Lease yet: created with this replica as holder.
        get(Reply::Json(StatusCode::NOT_FOUND, status(404, "NotFound"))),
        created(t0),
        // Held by this replica: renewed on the version read, acquireTime kept.
        get(Reply::Json(StatusCode::OK, stored("1", spec(ME, t0, t0, 0)))),
        put(stored("1", spec(ME, t0, t1, 0)), Reply::Stored(StatusCode::OK)),
        // On stop: the holder cleared on the version last written.
        put(stored("2", json!({"leaseDurationSeconds": 90, "leaseTransitions": 0})), Reply::Stored(StatusCode::OK)),
    ]);
    let mut l = lock(client);
    assert!(l.lead_at(at(t0)).await, "a free lease is taken");
    assert!(l.lead_at(at(t1)).await, "the holder renews it");
    l.resign().await;
    finish(server).await;
}

#[tokio::test]
async fn a_fresh_lease_of_another_replica_is_left_alone_and_an_expired_one_taken_over() {
    let renewed = "2026-11-30T08:00:00.000000Z";
    let fresh_now = "2026-11-30T08:01:29.000000Z"; // 89 s after its renewal: still held
    let late_now = "2026-11-30T08:01:31.000000Z"; // 91 s after: lapsed
    let theirs = stored("7", spec(OTHER, "2026-11-30T07:00:00.000000Z", renewed, 2));
    let (client, server) = fake_api(vec![
        get(Reply::Json(StatusCode::OK, theirs.clone())),
        get(Reply::Json(StatusCode::OK, theirs)),
        // Taken over on the version read, one more transition.
        put(stored("7", spec(ME, late_now, late_now, 3)), Reply::Stored(StatusCode::OK)),
    ]);
    let mut l = lock(client);
    assert!(!l.lead_at(at(fresh_now)).await, "another replica's fresh lease is refused");
    assert!(l.lead_at(at(late_now)).await, "an expired lease is taken over");
    drop(l);
    finish(server).await;
}

#[tokio::test]
async fn of_two_replicas_racing_for_a_lease_the_one_that_writes_second_stays_a_standby() {
    let now = "2026-11-30T08:00:00.000000Z";
    let free = stored("4", json!({"leaseDurationSeconds": 90, "leaseTransitions": 1}));
    let (client, server) = fake_api(vec![
        get(Reply::Json(StatusCode::OK, free)),
        // The other replica wrote version 5 in between: the write on version 4 conflicts.
        put(stored("4", spec(ME, now, now, 2)), Reply::Json(StatusCode::CONFLICT, status(409, "Conflict"))),
        // An API server that fails: no lead either.
        get(Reply::Json(StatusCode::INTERNAL_SERVER_ERROR, status(500, "InternalError"))),
    ]);
    let mut l = lock(client);
    assert!(!l.lead_at(at(now)).await, "a conflicting write loses");
    assert!(!l.lead_at(at(now)).await, "an unreachable API server gives no lead");
    // Not leading: resigning sends nothing.
    l.resign().await;
    finish(server).await;
}

#[tokio::test]
async fn a_leader_whose_lease_was_taken_over_stops_leading_and_does_not_release_it_on_stop() {
    let t0 = "2026-11-30T08:00:00.000000Z";
    let t1 = "2026-11-30T08:03:00.000000Z";
    let (client, server) = fake_api(vec![
        get(Reply::Json(StatusCode::NOT_FOUND, status(404, "NotFound"))),
        created(t0),
        // Meanwhile (a long pause) another replica took it and renews it.
        get(Reply::Json(StatusCode::OK, stored("9", spec(OTHER, t1, t1, 1)))),
    ]);
    let mut l = lock(client);
    assert!(l.lead_at(at(t0)).await);
    assert!(!l.lead_at(at(t1)).await, "the lease now belongs to the other replica");
    l.resign().await;
    finish(server).await;
}

#[test]
fn the_settings_choose_a_lease_in_a_pod_and_the_advisory_lock_elsewhere() {
    let mut s = SchedulerSettings::advisory_lock();
    assert_eq!(s.election(true), Election::AdvisoryLock, "explicit advisory lock, even in a pod");
    s.leader_election = "auto".into();
    assert_eq!(s.election(true), Election::Lease);
    assert_eq!(s.election(false), Election::AdvisoryLock);
    s.leader_election = "lease".into();
    assert_eq!(s.election(false), Election::Lease);
    assert!(s.validate().is_ok());
    s.leader_election = "zookeeper".into();
    assert!(s.validate().unwrap_err().to_string().contains("scheduler.leader_election"));
    s.leader_election = "lease".into();
    s.lease_duration_secs = 45;
    assert!(s.validate().unwrap_err().to_string().contains("scheduler.lease_duration_secs"));
}

#[test]
fn the_built_in_defaults_load_into_the_services_settings() {
    let overrides = vec![
        ("database.url".to_string(), "postgres://u@127.0.0.1:5432/authorization".to_string()),
        ("kafka.brokers".to_string(), "127.0.0.1:9092".to_string()),
        ("auth.jwks_file".to_string(), "/dev/null".to_string()),
    ];
    let s: authorization::AuthorizationSettings = platform_settings::load(
        &authorization::default_settings(),
        &platform_settings::Sources { overrides, ..platform_settings::Sources::default() },
    )
    .unwrap();
    assert_eq!(s.scheduler.leader_election, "auto");
    assert_eq!(s.scheduler.lease_name, NAME);
    assert_eq!(s.scheduler.lease_duration_secs, 90);
}
