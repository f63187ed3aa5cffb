//! `platform token` (issue 21): a token it prints is accepted by the verifier of the JWKS the
//! launcher writes, from the key `platform run` keeps (mode 0600) across runs; without that key
//! it names `make run`; and `platform run --check` twice on one directory (the second run finds
//! the demo data of every seed jurisdiction there) keeps one key, whose printed tokens its check
//! shows every service accepting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use platform_auth::{Verifier, issuer::DevIssuer};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("platform-launcher-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn platform(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_platform")).args(args).arg("--dir").arg(dir).output().unwrap()
}

fn verifier(dir: &Path) -> Verifier {
    Verifier::from_jwks(&std::fs::read_to_string(dir.join("jwks.json")).unwrap(), None, None, 0).unwrap()
}

#[test]
fn without_the_kept_key_platform_token_fails_naming_make_run() {
    let dir = scratch("nokey");
    let out = platform(&["token", "--jurisdiction", "440305", "--role", "operator"], &dir);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("make run") && err.contains("signing-key.jwk"), "{err}");
}

#[test]
fn an_unknown_role_or_jurisdiction_is_refused_before_any_key_is_read() {
    let dir = scratch("refused");
    let out = platform(&["token", "--jurisdiction", "440305", "--role", "mayor"], &dir);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role `mayor`"));
    let out = platform(&["token", "--jurisdiction", "999999", "--role", "operator"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown jurisdiction `999999`") && err.contains("620100 兰州市"), "{err}");
}

#[test]
fn a_printed_token_verifies_against_the_jwks_of_the_kept_key_with_its_claims() {
    let dir = scratch("kept");
    let (issuer, _) = DevIssuer::load_or_create(&dir.join("signing-key.jwk")).unwrap();
    std::fs::write(dir.join("jwks.json"), issuer.jwks_json()).unwrap();
    let out = platform(&["token", "--jurisdiction", "440305", "--role", "operator", "--org", "org-ns"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "only the token on stdout, for $(make token …)");
    let claims = verifier(&dir).verify(token.trim()).unwrap();
    assert_eq!(claims.jurisdiction, "440305");
    assert_eq!(claims.roles, ["operator"]);
    assert_eq!((claims.org.as_str(), claims.sub.as_str()), ("org-ns", "demo-operator-440305"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run_check(dir: &Path, pg_port: u16) {
    let out = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["run", "--check", "--dir"])
        .arg(dir)
        .env("PLATFORM_PG_PORT", pg_port.to_string())
        .env("PLATFORM__TELEMETRY__LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env_remove("PLATFORM_DATABASE_URL")
        .env_remove("PLATFORM_KAFKA_BROKERS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "platform run --check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Real PostgreSQL (the launcher's private cluster) and the real local broker, as `make run`.
#[test]
fn two_check_runs_on_one_directory_keep_one_key_and_load_every_seed_jurisdiction_once() {
    let dir = scratch("run");
    let pg_port = free_port();
    run_check(&dir, pg_port);
    let key = dir.join("signing-key.jwk");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let jwks = std::fs::read_to_string(dir.join("jwks.json")).unwrap();
    let env = std::fs::read_to_string(dir.join("platform.env")).unwrap();
    let line = |key: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(str::to_string);
    assert_eq!(line("JURISDICTIONS").as_deref(), Some("610000,610100,370700,130700,620100,440305"));
    for code in ["370700", "130700", "620100", "440305"] {
        assert!(line(&format!("AGREEMENT_{code}")).is_some(), "no demo agreement for {code}:\n{env}");
    }
    assert!(line("PLAN_370700").is_some(), "Weifang files its plan (WF-11):\n{env}");
    assert!(line("PLAN_440305").is_none(), "Nanshan's profile asks for no plan filing:\n{env}");

    // The second run seeds nothing new (the same agreements) and signs with the same key.
    run_check(&dir, pg_port);
    assert_eq!(std::fs::read_to_string(dir.join("jwks.json")).unwrap(), jwks);
    let again = std::fs::read_to_string(dir.join("platform.env")).unwrap();
    let ids = |text: &str| text.lines().filter(|l| l.starts_with("AGREEMENT_")).map(String::from).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&env));
    let out = platform(&["token", "--jurisdiction", "620100", "--role", "data_admin"], &dir);
    let claims = verifier(&dir).verify(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(claims.jurisdiction, "620100");
    // `--check` stopped its PostgreSQL.
    let _ = std::fs::remove_dir_all(&dir);
}
