//! `platform token --jurisdiction CODE --role ROLE [--org ORG] [--sub SUB] [--dir .dev]`: prints a
//! token that the platform `platform run` started from the same directory accepts, signed with
//! the development key it keeps in `<dir>/signing-key.jwk` (mode 0600). The services only ever
//! see the public half, as the JWKS file `<dir>/jwks.json`.

use std::path::{Path, PathBuf};

use platform_auth::{Role, issuer::DevIssuer};
use platform_policy::{Level, Profiles};

use crate::demo;

/// The development signing key's file in the launcher's directory.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("signing-key.jwk")
}

/// The key `platform run` keeps in `dir`, created on its first run.
pub fn run_issuer(dir: &Path) -> Result<DevIssuer, String> {
    let path = key_path(dir);
    let (issuer, created) = DevIssuer::load_or_create(&path)?;
    if created {
        println!("Created the development signing key {} (mode 0600).", path.display());
    }
    Ok(issuer)
}

/// What a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub dir: PathBuf,
    pub jurisdiction: String,
    pub role: Role,
    pub org: String,
    pub sub: String,
}

const USAGE: &str = "usage: platform token --jurisdiction CODE --role ROLE [--org ORG] [--sub SUBJECT] [--dir .dev]";

/// Reads `token`'s arguments (after the command), checking the role against [`Role`] and the
/// jurisdiction against the policy profiles.
pub fn parse(args: &[String], profiles: &Profiles) -> Result<Request, String> {
    let (mut dir, mut jurisdiction, mut role, mut org, mut sub) = (None, None, None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let slot = match flag.as_str() {
            "--dir" => &mut dir,
            "--jurisdiction" => &mut jurisdiction,
            "--role" => &mut role,
            "--org" => &mut org,
            "--sub" => &mut sub,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        };
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        *slot = Some(value.clone()).filter(|v| !v.trim().is_empty());
    }
    let jurisdiction = jurisdiction.ok_or_else(|| format!("--jurisdiction is required\n{USAGE}"))?;
    check_jurisdiction(profiles, &jurisdiction)?;
    let role = parse_role(&role.ok_or_else(|| format!("--role is required\n{USAGE}"))?)?;
    Ok(Request {
        dir: PathBuf::from(dir.unwrap_or_else(|| ".dev".into())),
        org: org.unwrap_or_else(|| demo::org(role)),
        sub: sub.unwrap_or_else(|| demo::subject(&jurisdiction, role)),
        jurisdiction,
        role,
    })
}

fn parse_role(name: &str) -> Result<Role, String> {
    Role::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role `{name}`; one of: {}", names.join(", "))
    })
}

/// A jurisdiction with a policy profile (the national defaults are no jurisdiction to act in).
fn check_jurisdiction(profiles: &Profiles, code: &str) -> Result<(), String> {
    match profiles.jurisdiction(code) {
        Ok(j) if j.level != Level::National => Ok(()),
        _ => {
            let known: Vec<String> = profiles
                .jurisdictions()
                .filter(|j| j.level != Level::National)
                .map(|j| format!("{} {}", j.code, j.name))
                .collect();
            Err(format!("unknown jurisdiction `{code}`; the policy profiles know: {}", known.join(", ")))
        }
    }
}

/// The signed token for `request`, with the key `platform run` keeps.
pub fn sign(request: &Request) -> Result<String, String> {
    let path = key_path(&request.dir);
    let issuer = DevIssuer::load(&path)?.ok_or_else(|| {
        format!(
            "no development signing key at {}: start the platform first with `make run` (or `platform run --dir {}`)",
            path.display(),
            request.dir.display()
        )
    })?;
    issuer.token(&request.sub, &request.org, &request.jurisdiction, &[request.role])
}

/// `platform token`: the token alone on stdout, for `$(make token …)`.
pub fn print(args: &[String]) -> Result<(), String> {
    let profiles = Profiles::built_in().map_err(|e| e.to_string())?;
    println!("{}", sign(&parse(args, &profiles)?)?);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parsed(s: &str) -> Result<Request, String> {
        parse(&args(s), &Profiles::built_in().unwrap())
    }

    #[test]
    fn defaults_are_the_demo_subject_and_organisation_in_dev() {
        let r = parsed("--jurisdiction 440305 --role operator").unwrap();
        assert_eq!(r.dir, PathBuf::from(".dev"));
        assert_eq!((r.org.as_str(), r.sub.as_str()), ("demo-org-operator", "demo-operator-440305"));
        let r = parsed("--dir /tmp/x --jurisdiction 620100 --role finance --org o1 --sub s1").unwrap();
        assert_eq!((r.role, r.org.as_str(), r.sub.as_str()), (Role::Finance, "o1", "s1"));
    }

    #[test]
    fn an_unknown_role_is_refused_naming_the_roles() {
        let e = parsed("--jurisdiction 440305 --role admin").unwrap_err();
        assert!(e.contains("unknown role `admin`") && e.contains("platform_admin"), "{e}");
    }

    #[test]
    fn an_unknown_jurisdiction_or_the_national_defaults_are_refused_naming_the_known_ones() {
        for code in ["440300", "000000"] {
            let e = parsed(&format!("--jurisdiction {code} --role operator")).unwrap_err();
            assert!(e.contains(&format!("unknown jurisdiction `{code}`")), "{e}");
            assert!(e.contains("440305 深圳市南山区") && !e.contains("000000 "), "{e}");
        }
    }

    #[test]
    fn missing_or_misspelt_arguments_are_refused_with_the_usage() {
        assert!(parsed("--role operator").unwrap_err().contains("--jurisdiction is required"));
        assert!(parsed("--jurisdiction 440305").unwrap_err().contains("--role is required"));
        assert!(parsed("--jurisdicton 440305 --role operator").unwrap_err().contains("usage: platform token"));
        assert!(parsed("--jurisdiction").unwrap_err().contains("needs a value"));
    }
}
