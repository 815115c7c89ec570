//! Who is calling: an API token from the tenant directory (a SIEM, a script), or a
//! viewer session. A viewer session comes from a viewer token that the SaaS backend
//! mints for a signed-in user (a JWT, HS256, at most 5 minutes, used once) and the
//! viewer page exchanges for a sealed session token (15 minutes).
//!
//! Nothing in a request names the tenant: it comes from the token alone.

use chrono::{DateTime, Utc};
use envelope::{Actor, ActorType, TenantId};
use serde::{Deserialize, Serialize};
use tenants::{OneTimeTokens, Scope, TenantDirectory, token_hash};

use history::SealKey;

use crate::error::ApiError;

/// Longest lifetime a viewer token may ask for.
pub const VIEWER_TOKEN_MAX_SECS: i64 = 300;
/// How long a viewer session lasts.
pub const SESSION_SECS: i64 = 900;
/// The `aud` every viewer token carries.
pub const VIEWER_AUDIENCE: &str = "auditlog-viewer";
const SESSION: &str = "s1";

#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub actor: Actor,
    pub scopes: Vec<Scope>,
    /// Where the request came from, for the audit events it causes.
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token lacks the {} scope", scope.as_str()),
            ))
        }
    }
}

/// The claims of a viewer token, as the SaaS backend writes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewerClaims {
    /// The tenant whose history the user may see.
    pub tid: String,
    /// The viewing user's id, and name.
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Space-separated: `audit:read`, optionally `audit:export`.
    pub scope: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token: a token is exchanged once.
    pub jti: String,
}

/// A viewer session: sealed, so only this service can have made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionClaims {
    t: String,
    u: String,
    n: Option<String>,
    s: Vec<Scope>,
    x: i64,
}

/// What a session exchange answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
    pub tenant: String,
    pub user: String,
    #[schema(value_type = Vec<String>, example = json!(["audit:read"]))]
    pub scopes: Vec<Scope>,
}

/// Mints a viewer token as a SaaS backend would (the CLI and tests use this; a backend
/// in another language uses any JWT library: HS256 with the shared secret).
pub fn mint_viewer_token(secret: &[u8], claims: &ViewerClaims) -> Result<String, String> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

fn viewer_scopes(scope: &str) -> Result<Vec<Scope>, ApiError> {
    let scopes: Vec<Scope> = scope
        .split_whitespace()
        .map(Scope::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::unauthorized(format!("viewer token: {e}")))?;
    if scopes.contains(&Scope::Scim) || !scopes.contains(&Scope::AuditRead) {
        return Err(ApiError::unauthorized(
            "viewer token: scope must be `audit:read`, optionally with `audit:export`",
        ));
    }
    Ok(scopes)
}

pub struct Authenticator {
    pub(crate) directory: std::sync::Arc<dyn TenantDirectory>,
    pub(crate) redeemed: std::sync::Arc<dyn OneTimeTokens>,
    pub(crate) seal: SealKey,
    /// The secret viewer tokens are signed with; None: viewer sessions are off.
    pub(crate) viewer_secret: Option<Vec<u8>>,
}

impl Authenticator {
    /// The caller of a request with this `Authorization` header value.
    pub async fn caller(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Caller, ApiError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "send `Authorization: Bearer <token>` (an audit API token or a viewer session)",
                )
            })?;
        if token.starts_with("s1.") {
            let c: SessionClaims = self
                .seal
                .open(SESSION, token)
                .map_err(|e| ApiError::unauthorized(format!("viewer session: {e}")))?;
            if c.x < now.timestamp() {
                return Err(ApiError::unauthorized(
                    "viewer session expired: ask the application for a new viewer token",
                ));
            }
            let tenant = TenantId::parse(&c.t)
                .map_err(|_| ApiError::unauthorized("viewer session: bad tenant"))?;
            return Ok(Caller {
                tenant,
                actor: Actor {
                    kind: ActorType::User,
                    id: c.u,
                    name: c.n,
                },
                scopes: c.s,
                source_ip: None,
                user_agent: None,
            });
        }
        let credential = self
            .directory
            .credential(&token_hash(token))
            .await?
            .filter(|c| c.valid_at(now))
            .ok_or_else(|| ApiError::unauthorized("unknown, revoked or expired token"))?;
        if !credential.allows(Scope::AuditRead) && !credential.allows(Scope::AuditExport) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                "this token is not an audit API token (it has no audit:read or audit:export scope)",
            ));
        }
        Ok(Caller {
            tenant: credential.tenant,
            actor: Actor {
                kind: ActorType::Service,
                id: credential.idp,
                name: None,
            },
            scopes: credential.scopes,
            source_ip: None,
            user_agent: None,
        })
    }

    /// Exchanges a viewer token for a session, once.
    pub async fn exchange(
        &self,
        viewer_token: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, ApiError> {
        let secret = self.viewer_secret.as_deref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "viewer_disabled",
                "viewer sessions are not configured on this deployment (no viewer token secret)",
            )
        })?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[VIEWER_AUDIENCE]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.validate_exp = false; // checked against our clock below
        let data = jsonwebtoken::decode::<ViewerClaims>(
            viewer_token.trim(),
            &jsonwebtoken::DecodingKey::from_secret(secret),
            &validation,
        )
        .map_err(|e| ApiError::unauthorized(format!("viewer token: {e}")))?;
        let c = data.claims;
        let t = now.timestamp();
        if c.exp <= t {
            return Err(ApiError::unauthorized("viewer token: expired"));
        }
        if c.exp - c.iat > VIEWER_TOKEN_MAX_SECS || c.iat > t + 60 {
            return Err(ApiError::unauthorized(format!(
                "viewer token: may live at most {VIEWER_TOKEN_MAX_SECS} s (exp - iat), and iat may not be in the future"
            )));
        }
        let tenant = TenantId::parse(&c.tid)
            .map_err(|e| ApiError::unauthorized(format!("viewer token: tid: {e}")))?;
        let scopes = viewer_scopes(&c.scope)?;
        if c.sub.trim().is_empty() || c.jti.trim().is_empty() || c.jti.len() > 128 {
            return Err(ApiError::unauthorized(
                "viewer token: sub and jti are required",
            ));
        }
        let until = DateTime::from_timestamp(c.exp, 0).unwrap_or(now);
        if !self.redeemed.redeem(&tenant, &c.jti, until, now).await? {
            return Err(ApiError::unauthorized(
                "viewer token: already exchanged (a viewer token is used once)",
            ));
        }
        let expires = t + SESSION_SECS;
        let session_token = self.seal.seal(
            SESSION,
            &SessionClaims {
                t: tenant.as_str().to_owned(),
                u: c.sub.clone(),
                n: c.name.clone(),
                s: scopes.clone(),
                x: expires,
            },
        );
        Ok(Session {
            session_token,
            expires_at: DateTime::from_timestamp(expires, 0).unwrap_or(now),
            tenant: tenant.as_str().to_owned(),
            user: c.sub,
            scopes,
        })
    }
}
