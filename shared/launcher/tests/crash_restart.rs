//! `make run` killed with SIGKILL while clients publish resources, then started again on the same
//! directory: PostgreSQL keeps its data, the embedded broker does not, and every read model still
//! ends up with every published resource (first-contact issue, item 4). The relays kept what the
//! old broker acknowledged and publish it again to the new one; the inboxes absorb what was
//! already applied (docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A child left by a failed assertion is killed with the test process group; every path that
// passes waits for both runs.
#![allow(clippy::zombie_processes)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `platform run` on `dir` with every service on a free port; waits for its platform.env.
fn launch(dir: &Path, pg_port: u16, run: u32) -> (Child, BTreeMap<String, String>) {
    let env_file = dir.join("platform.env");
    let _ = std::fs::remove_file(&env_file);
    let log = std::fs::File::create(dir.join(format!("run-{run}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["run", "--dir"])
        .arg(dir)
        .env("PLATFORM_PG_PORT", pg_port.to_string())
        .env("PLATFORM_CATALOG_PORT", "0")
        .env("PLATFORM_AUTHORIZATION_PORT", "0")
        .env("PLATFORM_SANDBOX_PORT", "0")
        .env("PLATFORM__TELEMETRY__LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env_remove("PLATFORM_DATABASE_URL")
        .env_remove("PLATFORM_KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(text) = std::fs::read_to_string(&env_file) {
            let env: BTreeMap<String, String> =
                text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
            if env.contains_key("SANDBOX_URL") {
                return (child, env);
            }
        }
        assert!(
            Instant::now() < deadline,
            "platform run did not come up; see {}",
            dir.join(format!("run-{run}.log")).display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ids a query returns, through psql against the platform's PostgreSQL.
fn ids(admin_url: &str, database: &str, sql: &str) -> BTreeSet<String> {
    let url = admin_url.rsplit_once('/').map(|(base, _)| format!("{base}/{database}")).unwrap();
    let out = Command::new("psql").args([url.as_str(), "-tAXc", sql]).output().unwrap();
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// Creates, submits and publishes resources until the process is killed under it.
async fn publish_until_killed(env: BTreeMap<String, String>, client: usize) {
    let http = reqwest::Client::new();
    let base = &env["CATALOG_URL"];
    let (dept, admin) = (&env["TOKEN_CITY_INDUSTRY_DEPT"], &env["TOKEN_CITY_DATA_ADMIN"]);
    for i in 0.. {
        let content = serde_json::json!({
            "name": format!("压测资源{client}-{i}"), "code": format!("CRASH-{client}-{i:05}"), "source_unit": "数源单位",
            "sector": "transport", "format": "table", "update_frequency": "daily", "open_category": "conditional",
            "security_grade": "general", "provenance": {"kind": "collected"},
            "fields": [{"name": "line_no", "data_type": "text", "sensitivity": "none"}]
        });
        let Ok(r) = http.post(format!("{base}/resources")).bearer_auth(dept).json(&content).send().await else {
            return;
        };
        let Ok(body) = r.json::<serde_json::Value>().await else { return };
        let Some(id) = body["id"].as_str() else { panic!("create refused: {body}") };
        if http.post(format!("{base}/resources/{id}/submit")).bearer_auth(dept).send().await.is_err() {
            return;
        }
        if http.post(format!("{base}/resources/{id}/publish")).bearer_auth(admin).send().await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_under_load_then_a_restart_leaves_every_read_model_complete() {
    let dir: PathBuf = std::env::temp_dir().join(format!("platform-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pg_port = free_port();

    let (mut first, env) = launch(&dir, pg_port, 1);
    let clients: Vec<_> = (0..4).map(|c| tokio::spawn(publish_until_killed(env.clone(), c))).collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    first.kill().unwrap(); // SIGKILL: no stop of anything, PostgreSQL keeps running
    first.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }

    let (mut second, env) = launch(&dir, pg_port, 2);
    let admin_url = env["DATABASE_ADMIN_URL"].clone();
    let published = ids(&admin_url, "catalog", "SELECT id FROM resources WHERE state = 'published'");
    assert!(published.len() > 20, "the load published {} resources before the kill", published.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut in_authorization, mut in_sandbox);
    loop {
        in_authorization = ids(&admin_url, "authorization", "SELECT id FROM catalog_resources");
        in_sandbox = ids(&admin_url, "sandbox_gateway", "SELECT id FROM resources");
        if published.is_subset(&in_authorization) && published.is_subset(&in_sandbox) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stop = Command::new("kill").args(["-INT", &second.id().to_string()]).status();
    let missing_a: Vec<_> = published.difference(&in_authorization).collect();
    let missing_s: Vec<_> = published.difference(&in_sandbox).collect();
    assert!(
        missing_a.is_empty() && missing_s.is_empty(),
        "of {} published: authorization misses {missing_a:?}, the sandbox gateway misses {missing_s:?}",
        published.len()
    );
    stop.unwrap();
    let exited = second.wait().unwrap();
    assert!(exited.success(), "platform run stopped cleanly on Ctrl-C: {exited}");
    std::fs::remove_dir_all(&dir).unwrap();
}
