//! Who is calling: JWT bearer tokens from the province's identity provider (locally, from the
//! launcher), verified against a JWKS (ES256 or RS256), carrying `sub`, `org`, `jurisdiction` and
//! `roles`. Handlers extract a [`Caller`] and state the roles they accept with
//! [`Caller::require`]; anything else is a 401 (no or bad token) or 403 (wrong role) problem.
//!
//! Owned here: [`Claims`], [`Role`], [`Verifier`], [`Caller`]; with the `issuer` feature, the
//! [`issuer::DevIssuer`] that signs tokens for tests and `make run`. Services import it.

#[cfg(feature = "issuer")]
pub mod issuer;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use platform_problems::Problem;
use platform_settings::AuthSettings;
use serde::{Deserialize, Serialize};

/// The roles of the platform. A token carries them as snake_case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 行业主管部门: compiles its sector's catalog.
    IndustryDept,
    /// 数据管理部门: reviews catalogs, receives filings, supervises.
    DataAdmin,
    /// 实施机构: plans, agreements, registration, disclosure.
    ImplementingInstitution,
    /// 数源单位: supplies data and fixes quality problems.
    DataSourceUnit,
    /// 运营机构 (primary operator).
    Operator,
    /// 二级开发运营主体 (partner).
    Partner,
    /// 合规审核.
    Reviewer,
    /// 财政部门.
    Finance,
    /// The provincial platform team.
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::IndustryDept,
        Role::DataAdmin,
        Role::ImplementingInstitution,
        Role::DataSourceUnit,
        Role::Operator,
        Role::Partner,
        Role::Reviewer,
        Role::Finance,
        Role::PlatformAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IndustryDept => "industry_dept",
            Role::DataAdmin => "data_admin",
            Role::ImplementingInstitution => "implementing_institution",
            Role::DataSourceUnit => "data_source_unit",
            Role::Operator => "operator",
            Role::Partner => "partner",
            Role::Reviewer => "reviewer",
            Role::Finance => "finance",
            Role::PlatformAdmin => "platform_admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The claims a platform token carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    /// Administrative division code, e.g. `610000`.
    pub jurisdiction: String,
    /// Role names; unknown names are ignored.
    pub roles: Vec<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("JWKS could not be loaded from {source_name}: {reason}")]
    Jwks { source_name: String, reason: String },
}

/// Verifies tokens against the keys of a JWKS.
pub struct Verifier {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl Verifier {
    /// Loads the JWKS named by the settings (file, or URL fetched once at start).
    pub async fn from_settings(s: &AuthSettings) -> Result<Verifier, AuthError> {
        let (name, text) = if let Some(path) = s.jwks_file.as_deref().filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AuthError::Jwks { source_name: path.into(), reason: e.to_string() })?;
            (path.to_string(), text)
        } else {
            let url = s.jwks_url.clone().unwrap_or_default();
            let text = async { reqwest::get(&url).await?.error_for_status()?.text().await }
                .await
                .map_err(|e| AuthError::Jwks { source_name: url.clone(), reason: e.to_string() })?;
            (url, text)
        };
        Self::from_jwks(&text, s.issuer.clone(), s.audience.clone(), s.leeway_secs)
            .map_err(|reason| AuthError::Jwks { source_name: name, reason })
    }

    /// Builds a verifier from JWKS text. Only ES256 and RS256 keys with a `kid` are accepted.
    pub fn from_jwks(
        text: &str,
        issuer: Option<String>,
        audience: Option<String>,
        leeway: u64,
    ) -> Result<Verifier, String> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
            keys.insert(kid, (key, alg));
        }
        if keys.is_empty() {
            return Err("no ES256 or RS256 key with a kid".into());
        }
        Ok(Verifier {
            keys,
            issuer: issuer.filter(|s| !s.is_empty()),
            audience: audience.filter(|s| !s.is_empty()),
            leeway,
        })
    }

    /// Verifies a compact JWT and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, Problem> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| Problem::unauthorized("the bearer token is malformed"))?;
        let kid = header.kid.ok_or_else(|| Problem::unauthorized("the token names no key (kid)"))?;
        let (key, alg) = self.keys.get(&kid).ok_or_else(|| Problem::unauthorized("the token's key is unknown"))?;
        if header.alg != *alg {
            return Err(Problem::unauthorized("the token's algorithm does not match its key"));
        }
        let mut v = Validation::new(*alg);
        v.leeway = self.leeway;
        v.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(iss) => v.set_issuer(&[iss]),
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidSignature => "the token's signature is invalid",
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token's audience is not accepted",
                _ => "the token is invalid",
            };
            Problem::unauthorized(why)
        })?;
        Ok(data.claims)
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    roles: Vec<Role>,
}

impl Caller {
    pub fn new(claims: Claims) -> Caller {
        let roles = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
        Caller { claims, roles }
    }
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }
    pub fn org(&self) -> &str {
        &self.claims.org
    }
    pub fn jurisdiction(&self) -> &str {
        &self.claims.jurisdiction
    }
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Succeeds when the caller holds one of `roles`; otherwise a 403 naming them.
    pub fn require(&self, roles: &[Role]) -> Result<&Caller, Problem> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(self)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Problem::forbidden(format!("this action needs one of the roles: {}", names.join(", ")))
                .with_errors(serde_json::json!({ "required_roles": names })))
        }
    }

    /// Succeeds when the caller acts within `jurisdiction`; otherwise a 403.
    pub fn require_jurisdiction(&self, jurisdiction: &str) -> Result<&Caller, Problem> {
        if self.claims.jurisdiction == jurisdiction {
            Ok(self)
        } else {
            Err(Problem::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "jurisdiction-mismatch",
                "Outside the caller's jurisdiction",
            )
            .with_detail(format!(
                "the caller acts for {}, the subject belongs to {jurisdiction}",
                self.claims.jurisdiction
            )))
        }
    }
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = std::future::Ready<Result<Caller, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(extract(req))
    }
}

fn extract(req: &HttpRequest) -> Result<Caller, Problem> {
    let verifier = req
        .app_data::<web::Data<Arc<Verifier>>>()
        .ok_or_else(|| Problem::unavailable("token verification is not configured"))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <token>"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Problem::unauthorized("the Authorization header is not a bearer token"))?;
    let claims = verifier.verify(token.trim())?;
    let caller = Caller::new(claims);
    tracing::Span::current().record("enduser.id", caller.subject());
    Ok(caller)
}

#[cfg(all(test, feature = "issuer"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::issuer::DevIssuer;

    fn verifier(issuer: &DevIssuer) -> Verifier {
        Verifier::from_jwks(&issuer.jwks_json(), None, None, 0).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let iss = DevIssuer::generate().unwrap();
        let token = iss.token("alice", "org-1", "610000", &[Role::DataAdmin]).unwrap();
        let claims = verifier(&iss).verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.jurisdiction.as_str()), ("alice", "610000"));
        let caller = Caller::new(claims);
        assert!(caller.require(&[Role::DataAdmin]).is_ok());
        assert_eq!(caller.require(&[Role::Operator]).unwrap_err().status, 403);
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let a = DevIssuer::generate().unwrap();
        let b = DevIssuer::generate().unwrap();
        let token = b.token("bob", "o", "610000", &[Role::Operator]).unwrap();
        assert_eq!(verifier(&a).verify(&token).unwrap_err().status, 401);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let iss = DevIssuer::generate().unwrap();
        let token = iss.token_with_ttl("carol", "o", "610000", &[Role::Operator], -120).unwrap();
        let p = verifier(&iss).verify(&token).unwrap_err();
        assert!(p.detail.unwrap().contains("expired"));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let iss = DevIssuer::generate().unwrap();
        let token = iss.token("dave", "o", "610000", &[Role::Operator]).unwrap();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let forged = DevIssuer::generate().unwrap().token("dave", "o", "610000", &[Role::PlatformAdmin]).unwrap();
        parts[1] = forged.split('.').nth(1).unwrap().to_string();
        assert_eq!(verifier(&iss).verify(&parts.join(".")).unwrap_err().status, 401);
    }
}

/// Declares the bearer-token scheme in a service's OpenAPI document (`modifiers(&BearerAuth)`).
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}
