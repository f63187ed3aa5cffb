//! Signs platform tokens with a freshly generated ES256 key and publishes its JWKS. For the local
//! launcher and the test harness only (feature `issuer`); production tokens come from the
//! province's identity provider.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;

use crate::{Claims, Role};

pub struct DevIssuer {
    kid: String,
    key: EncodingKey,
    x: String,
    y: String,
}

impl DevIssuer {
    pub fn generate() -> Result<DevIssuer, String> {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let der = secret.to_pkcs8_der().map_err(|e| e.to_string())?;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let x = point.x().map(|v| b64.encode(v)).ok_or("no x coordinate")?;
        let y = point.y().map(|v| b64.encode(v)).ok_or("no y coordinate")?;
        let kid = format!("dev-{}", &x[..12.min(x.len())]);
        Ok(DevIssuer { kid, key: EncodingKey::from_ec_der(der.as_bytes()), x, y })
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
