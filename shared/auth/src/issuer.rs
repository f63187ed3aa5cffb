//! Signs platform tokens with an ES256 key and publishes its JWKS. For the local launcher and the
//! test harness only (feature `issuer`); production tokens come from the province's identity
//! provider, and services only ever see a JWKS.
//!
//! The launcher keeps its key in a file (a private JWK, mode 0600) so that tokens printed by
//! `platform token` are accepted by the platform `make run` started, across restarts.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;

use crate::{Claims, Role};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct DevIssuer {
    kid: String,
    key: EncodingKey,
    x: String,
    y: String,
    /// The private scalar, base64url (the JWK's `d`), kept to write the key file.
    d: String,
}

impl DevIssuer {
    /// A fresh key, held in memory only.
    pub fn generate() -> Result<DevIssuer, String> {
        Self::from_secret(&p256::SecretKey::random(&mut rand_core::OsRng))
    }

    fn from_secret(secret: &p256::SecretKey) -> Result<DevIssuer, String> {
        let der = secret.to_pkcs8_der().map_err(|e| e.to_string())?;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let x = point.x().map(|v| B64.encode(v)).ok_or("no x coordinate")?;
        let y = point.y().map(|v| B64.encode(v)).ok_or("no y coordinate")?;
        let kid = format!("dev-{}", &x[..12.min(x.len())]);
        let d = B64.encode(secret.to_bytes());
        Ok(DevIssuer { kid, key: EncodingKey::from_ec_der(der.as_bytes()), x, y, d })
    }

    /// The key kept at `path`, or `None` when there is no file. A file that others may read
    /// (any group or other permission bit) is refused rather than used.
    pub fn load(path: &Path) -> Result<Option<DevIssuer>, String> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} has mode {mode:04o}: a signing key must be readable by its owner only (chmod 600 {})",
                path.display(),
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let jwk: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a JWK: {e}", path.display()))?;
        let d = jwk["d"].as_str().ok_or_else(|| format!("{}: the JWK has no private part `d`", path.display()))?;
        let bytes = B64.decode(d).map_err(|e| format!("{}: `d`: {e}", path.display()))?;
        let secret =
            p256::SecretKey::from_slice(&bytes).map_err(|e| format!("{}: not a P-256 key: {e}", path.display()))?;
        Self::from_secret(&secret).map(Some)
    }

    /// The key kept at `path`, created (mode 0600) when there is none; `true` when created.
    pub fn load_or_create(path: &Path) -> Result<(DevIssuer, bool), String> {
        if let Some(found) = Self::load(path)? {
            return Ok((found, false));
        }
        let issuer = Self::generate()?;
        let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
        let mut file = match created {
            Ok(f) => f,
            // Another launcher wrote it first: use that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let found = Self::load(path)?.ok_or_else(|| format!("{}: vanished while read", path.display()))?;
                return Ok((found, false));
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        file.write_all(issuer.private_jwk().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((issuer, true))
    }

    /// The key id tokens name (`kid`), derived from the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key pair as a private JWK: what the key file holds.
    fn private_jwk(&self) -> String {
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "kid": self.kid, "x": self.x, "y": self.y, "d": self.d
        })
        .to_string()
    }

    /// The public key as a JWKS document.
    pub fn jwks_json(&self) -> String {
        serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "kid": self.kid, "x": self.x, "y": self.y
        }]})
        .to_string()
    }

    /// A token valid for 12 hours.
    pub fn token(&self, sub: &str, org: &str, jurisdiction: &str, roles: &[Role]) -> Result<String, String> {
        self.token_with_ttl(sub, org, jurisdiction, roles, 12 * 3600)
    }

    pub fn token_with_ttl(
        &self,
        sub: &str,
        org: &str,
        jurisdiction: &str,
        roles: &[Role],
        ttl_secs: i64,
    ) -> Result<String, String> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs()
                as i64;
        let claims = Claims {
            sub: sub.into(),
            org: org.into(),
            jurisdiction: jurisdiction.into(),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            exp: (now + ttl_secs).max(0) as u64,
            iat: Some(now as u64),
            iss: None,
            aud: None,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Verifier;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("platform-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_kept_key_is_written_owner_only_and_signs_tokens_its_earlier_jwks_accepts() {
        let path = scratch("kept").join("key.jwk");
        let (first, created) = DevIssuer::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (again, created) = DevIssuer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.kid(), first.kid());
        let token = again.token("erin", "o", "440305", &[Role::Operator]).unwrap();
        let verifier = Verifier::from_jwks(&first.jwks_json(), None, None, 0).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().jurisdiction, "440305");
    }

    #[test]
    fn no_key_file_is_none_and_a_key_file_others_can_read_is_refused() {
        let path = scratch("perm").join("key.jwk");
        assert!(DevIssuer::load(&path).unwrap().is_none());
        DevIssuer::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = DevIssuer::load(&path).err().unwrap();
        assert!(refused.contains("0644") && refused.contains("chmod 600"), "{refused}");
    }
}
