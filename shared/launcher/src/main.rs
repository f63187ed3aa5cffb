//! `platform`: runs the whole platform on one machine.
//!
//! - `platform run [--dir .dev] [--check]`: a private PostgreSQL in `<dir>/pg` (unless
//!   `PLATFORM_DATABASE_URL` names a server), the local Kafka-protocol broker (unless
//!   `PLATFORM_KAFKA_BROKERS` names brokers), one database per service, every service, demo data,
//!   and a token per role; URLs and tokens are printed and written to `<dir>/platform.env`.
//!   Ctrl-C stops everything. `--check` stops as soon as all is up and the demo data loaded.
//!   The development signing key is kept in `<dir>/signing-key.jwk` (mode 0600) across runs.
//! - `platform token --jurisdiction CODE --role ROLE [--org ORG] [--sub SUB] [--dir .dev]`: a
//!   token the running platform accepts (`make token`).
//! - `platform pg-start --dir DIR --port PORT [--fast]` / `platform pg-stop --dir DIR`: the
//!   private PostgreSQL alone (`make test` uses it).
#![allow(clippy::print_stdout)]

mod demo;
mod jurisdictions;
mod token;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use platform_settings::Sources;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("pg-start") => pg(&args, true),
        Some("pg-stop") => pg(&args, false),
        Some("run") | None => run_platform(&args),
        Some("token") => token::print(&args[1..]),
        Some(other) => Err(format!("unknown command `{other}`; use run, token, pg-start or pg-stop")),
    };
    if let Err(e) = result {
        eprintln!("platform: {e}");
        std::process::exit(1);
    }
}

fn pg(args: &[String], start: bool) -> Result<(), String> {
    let dir = PathBuf::from(arg(args, "--dir").ok_or("--dir is required")?);
    let port =
        arg(args, "--port").unwrap_or_else(|| "55432".into()).parse::<u16>().map_err(|e| format!("--port: {e}"))?;
    let pg = platform_localpg::LocalPostgres::new(&dir, port)?;
    if start {
        pg.start(args.iter().any(|a| a == "--fast"))?;
        println!("DATABASE_URL={}", pg.admin_url());
        Ok(())
    } else {
        pg.stop()
    }
}

/// The broker child process; killed when dropped.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker() -> Result<(Broker, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.with_file_name("platform-broker");
    let mut child = Command::new(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e} (build it with `cargo build -p platform-broker`)", path.display()))?;
    let stdout = child.stdout.take().ok_or("broker has no stdout")?;
    let broker = Broker(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    let bootstrap =
        line.trim().strip_prefix("BOOTSTRAP=").ok_or_else(|| format!("unexpected broker output `{line}`"))?;
    Ok((broker, bootstrap.to_string()))
}

fn run_platform(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(arg(args, "--dir").unwrap_or_else(|| ".dev".into()));
    let check = args.iter().any(|a| a == "--check");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;

    let mut local_pg = None;
    let admin_url = match std::env::var("PLATFORM_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let port = std::env::var("PLATFORM_PG_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(55432);
            let pg = platform_localpg::LocalPostgres::new(&dir.join("pg"), port)?;
            pg.start(false)?;
            let url = pg.admin_url();
            local_pg = Some(pg);
            url
        }
    };
    let (broker, brokers) = match std::env::var("PLATFORM_KAFKA_BROKERS") {
        Ok(b) => (None, b),
        Err(_) => {
            let (child, bootstrap) = start_broker()?;
            (Some(child), bootstrap)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = runtime.block_on(run_services(&dir, &admin_url, &brokers, check));
    drop(broker);
    if let Some(pg) = local_pg {
        pg.stop()?;
    }
    result
}

async fn run_services(dir: &Path, admin_url: &str, brokers: &str, check: bool) -> Result<(), String> {
    let issuer = token::run_issuer(dir)?;
    let profiles = platform_policy::Profiles::built_in().map_err(|e| e.to_string())?;
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks_json()).map_err(|e| e.to_string())?;
    let log_format = std::env::var("PLATFORM__TELEMETRY__LOG_FORMAT").unwrap_or_else(|_| "pretty".into());
    let telemetry = platform_settings::TelemetrySettings {
        log_filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        log_format,
        otlp_endpoint: std::env::var("PLATFORM__TELEMETRY__OTLP_ENDPOINT").ok(),
    };
    let _guard = platform_telemetry::init("platform-local", &telemetry, None)?;

    // One database per service, every service on its port (0 with --check).
    let port = |var: &str, default: u16| {
        std::env::var(var).ok().unwrap_or_else(|| if check { "0".into() } else { default.to_string() })
    };
    let settings_for = |service: &str, defaults: String, port: String| {
        let mut overrides = vec![
            ("database.url".to_string(), platform_store::with_database(admin_url, &database_of(service))),
            ("kafka.brokers".to_string(), brokers.to_string()),
            ("auth.jwks_file".to_string(), jwks.display().to_string()),
            ("http.bind".to_string(), format!("127.0.0.1:{port}")),
        ];
        if std::env::var("PLATFORM_KAFKA_BROKERS").is_err() {
            // The embedded broker keeps nothing on disk: relays keep an hour of published events
            // and publish them again to the broker of the next start (docs/reliability.md).
            overrides.push(("kafka.keep_published_s".to_string(), EMBEDDED_BROKER_KEEP_S.to_string()));
        }
        platform_settings::load::<platform_settings::CommonSettings>(
            &defaults,
            &Sources { overrides, ..Sources::default() },
        )
        .map_err(|e| e.to_string())
    };
    for service in [catalog::SERVICE, authorization::SERVICE, sandbox_gateway::SERVICE] {
        platform_store::create_database(admin_url, &database_of(service), None).await.map_err(|e| e.to_string())?;
    }
    let catalog =
        catalog::run(settings_for(catalog::SERVICE, catalog::default_settings(), port("PLATFORM_CATALOG_PORT", 8081))?)
            .await
            .map_err(|e| e.to_string())?;
    let authorization = authorization::run(settings_for(
        authorization::SERVICE,
        authorization::default_settings(),
        port("PLATFORM_AUTHORIZATION_PORT", 8082),
    )?)
    .await
    .map_err(|e| e.to_string())?;
    let sandbox = sandbox_gateway::run(settings_for(
        sandbox_gateway::SERVICE,
        sandbox_gateway::default_settings(),
        port("PLATFORM_SANDBOX_PORT", 8083),
    )?)
    .await
    .map_err(|e| e.to_string())?;
    let catalog_url = catalog.url();
    let authorization_url = authorization.url();
    let sandbox_url = sandbox.url();

    let seeded = demo::seed(&catalog_url, &issuer).await?;
    let plan_seeded = demo::seed_plan(&catalog_url, &authorization_url, &issuer).await?;
    let demo_grant = demo::seed_sandbox(&authorization_url, &sandbox_url, &issuer).await?;
    let loaded = jurisdictions::seed(&catalog_url, &authorization_url, &issuer, &profiles).await?;
    let mut env = vec![
        ("CATALOG_URL".to_string(), catalog_url.clone()),
        ("AUTHORIZATION_URL".to_string(), authorization_url.clone()),
        ("SANDBOX_URL".to_string(), sandbox_url.clone()),
        ("DATABASE_ADMIN_URL".to_string(), admin_url.to_string()),
        ("KAFKA_BROKERS".to_string(), brokers.to_string()),
        ("JWKS_FILE".to_string(), jwks.display().to_string()),
        ("PROVINCE".to_string(), demo::PROVINCE.to_string()),
        ("CITY".to_string(), demo::CITY.to_string()),
    ];
    for (key, jurisdiction, role) in demo::users() {
        env.push((key, demo::token(&issuer, jurisdiction, role)?));
    }
    env.extend(jurisdictions::env(&loaded, &profiles));
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let env_file = dir.join("platform.env");
    std::fs::write(&env_file, &text).map_err(|e| e.to_string())?;

    println!();
    println!("The platform is running (demo resources loaded now: {seeded}, demo plan loaded now: {plan_seeded}).");
    println!("  catalog        {catalog_url}   (OpenAPI: {catalog_url}/openapi.json, metrics: {catalog_url}/metrics)");
    println!("  authorization  {authorization_url}   (OpenAPI: {authorization_url}/openapi.json)");
    println!("  sandbox        {sandbox_url}   (OpenAPI: {sandbox_url}/openapi.json)");
    println!("  PostgreSQL   {admin_url}");
    println!("  Kafka        {brokers}");
    println!("  province {} (Shaanxi profile), city {} (Xi'an)", demo::PROVINCE, demo::CITY);
    println!("  demo data under each profile: {}", loaded.iter().map(|l| l.code).collect::<Vec<_>>().join(", "));
    println!(
        "URLs and a token per role are in {} (source it: `set -a; . {}`).",
        env_file.display(),
        env_file.display()
    );
    println!("Try: curl -H \"Authorization: Bearer $TOKEN_OPERATOR\" \"$CATALOG_URL/resources?q=企业\"");
    println!(
        "     curl -H \"Authorization: Bearer $(make token JURISDICTION=440305 ROLE=operator)\" \"$AUTHORIZATION_URL/agreements/$AGREEMENT_440305\""
    );
    if let Some(grant) = &demo_grant {
        println!(
            "     curl -H \"Authorization: Bearer $TOKEN_OPERATOR\" -H 'content-type: application/json' \"$SANDBOX_URL/workspaces/{grant}/queries\" \\\n       -d '{{\"sql\": \"SELECT line_no, sum(passengers) FROM xa_jt_0001 GROUP BY line_no ORDER BY 2 DESC LIMIT 5\"}}'"
        );
    }

    if check {
        jurisdictions::check_printed_tokens(dir, &authorization_url, &catalog_url, &loaded).await?;
        for url in [&catalog_url, &authorization_url, &sandbox_url] {
            let ready = reqwest::get(format!("{url}/readyz")).await.map_err(|e| e.to_string())?;
            if !ready.status().is_success() {
                return Err(format!("{url} is not ready: {}", ready.text().await.unwrap_or_default()));
            }
        }
        println!("--check: everything started; stopping.");
    } else {
        println!("Press Ctrl-C to stop.");
        wait_for_stop().await;
    }
    sandbox.stop().await;
    authorization.stop().await;
    catalog.stop().await;
    Ok(())
}

/// How long relays keep published events when the platform runs on the embedded broker.
const EMBEDDED_BROKER_KEEP_S: u64 = 3600;

/// A service's database name: its name with `-` as `_` (`sandbox-gateway` → `sandbox_gateway`).
fn database_of(service: &str) -> String {
    service.replace('-', "_")
}

async fn wait_for_stop() {
    platform_runtime::shutdown_signal().await;
}
