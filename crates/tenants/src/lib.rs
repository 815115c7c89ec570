//! The tenant directory: who may call, as which tenant, for what. One directory holds
//! the bearer tokens of every product line (the IdPs' SCIM tokens, the audit API's
//! tokens for a tenant's SIEM and scripts), so a tenant's access is listed, rotated and
//! revoked in one place.
//!
//! - `Credential`: a token's SHA-256 (the token itself is never stored), the tenant it
//!   stands for, who holds it, its `Scope`s and an optional expiry. A tenant may hold
//!   several, which is how tokens rotate: issue the new one, move over, revoke the old.
//! - `TenantDirectory`: the port (SQLite and DynamoDB adapters; `TokenRegistry` in
//!   memory for tests and fixed configurations).
//!
//! - `Retention`, `RetentionSettings`: how long a tenant's audit events are kept.
//!
//! Per-product settings (the SCIM compatibility policy) stay with their product.

use std::collections::HashMap;
use std::sync::RwLock;

mod retention;
pub use retention::{Retention, RetentionError, RetentionSettings};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Provisioning through the SCIM API (an IdP).
    #[serde(rename = "scim")]
    Scim,
    /// Reading the tenant's audit history through the audit API.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Exporting the tenant's audit history.
    #[serde(rename = "audit:export")]
    AuditExport,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Scim, Scope::AuditRead, Scope::AuditExport];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::AuditRead => "audit:read",
            Scope::AuditExport => "audit:export",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s.trim())
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }

    /// A comma-separated list, as stored and as given on a command line.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, UnknownScope> {
        let mut out: Vec<Scope> = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub fn list(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: one of scim, audit:read, audit:export")]
pub struct UnknownScope(pub String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("tenant directory throttled: {0}")]
    Throttled(String),
    #[error("tenant directory unavailable: {0}")]
    Unavailable(String),
}

/// Lowercase hex SHA-256 of a bearer token: what is stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A new random bearer token (256 bits, from two v4 UUIDs' random bits), prefixed with
/// what it is for so a leaked one is recognised (`scim_…`, `audit_…`).
pub fn new_token(prefix: &str) -> String {
    format!(
        "{prefix}_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn scim_only() -> Vec<Scope> {
    vec![Scope::Scim]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub token_hash: String,
    pub tenant: TenantId,
    /// Who holds the token: the IdP for a SCIM token (the `actor.id` of the events its
    /// requests cause), a label such as "splunk" for an audit API token.
    pub idp: String,
    /// Credentials stored before scopes existed are SCIM tokens.
    #[serde(default = "scim_only")]
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Credential {
    /// A SCIM token for an IdP.
    pub fn new(token: &str, tenant: TenantId, idp: &str, now: DateTime<Utc>) -> Self {
        Self::with_scopes(token, tenant, idp, vec![Scope::Scim], now)
    }

    pub fn with_scopes(
        token: &str,
        tenant: TenantId,
        holder: &str,
        mut scopes: Vec<Scope>,
        now: DateTime<Utc>,
    ) -> Self {
        scopes.sort();
        scopes.dedup();
        Self {
            token_hash: token_hash(token),
            tenant,
            idp: holder.to_owned(),
            scopes,
            created_at: now,
            expires_at: None,
        }
    }

    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// The credential with this token hash, if any (expired ones included: the caller
    /// checks `valid_at` and `allows`).
    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, DirectoryError>;
    async fn put_credential(&self, credential: &Credential) -> Result<(), DirectoryError>;
    /// Revokes one of the tenant's credentials; false if the tenant has no such one.
    async fn revoke_credential(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<bool, DirectoryError>;
    async fn credentials(&self, tenant: &TenantId) -> Result<Vec<Credential>, DirectoryError>;
}

#[async_trait]
impl<T: TenantDirectory + ?Sized> TenantDirectory for std::sync::Arc<T> {
    async fn credential(&self, h: &str) -> Result<Option<Credential>, DirectoryError> {
        (**self).credential(h).await
    }
    async fn put_credential(&self, c: &Credential) -> Result<(), DirectoryError> {
        (**self).put_credential(c).await
    }
    async fn revoke_credential(&self, t: &TenantId, h: &str) -> Result<bool, DirectoryError> {
        (**self).revoke_credential(t, h).await
    }
    async fn credentials(&self, t: &TenantId) -> Result<Vec<Credential>, DirectoryError> {
        (**self).credentials(t).await
    }
}

/// Tokens that may be used once (viewer tokens, exchanged for a session): remembers
/// each one's id until it expires, so a replayed token is refused.
#[async_trait]
pub trait OneTimeTokens: Send + Sync {
    /// True the first time `(tenant, token_id)` is redeemed, false ever after (until
    /// `expires_at`, when the token is dead anyway; entries past it, by `now`, may go).
    async fn redeem(
        &self,
        tenant: &TenantId,
        token_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DirectoryError>;
}

#[async_trait]
impl<T: OneTimeTokens + ?Sized> OneTimeTokens for std::sync::Arc<T> {
    async fn redeem(
        &self,
        t: &TenantId,
        id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DirectoryError> {
        (**self).redeem(t, id, until, now).await
    }
}

/// An in-memory directory: for tests, and for a fixed set of tokens given at start-up.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    credentials: RwLock<HashMap<String, Credential>>,
    redeemed: RwLock<HashMap<(TenantId, String), DateTime<Utc>>>,
}

#[async_trait]
impl OneTimeTokens for TokenRegistry {
    async fn redeem(
        &self,
        t: &TenantId,
        id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DirectoryError> {
        let mut map = self.redeemed.write().map_err(|_| poisoned())?;
        map.retain(|_, exp| *exp > now);
        Ok(map.insert((t.clone(), id.to_owned()), until).is_none())
    }
}

fn poisoned() -> DirectoryError {
    DirectoryError::Unavailable("token registry lock poisoned".into())
}

#[async_trait]
impl TenantDirectory for TokenRegistry {
    async fn credential(&self, h: &str) -> Result<Option<Credential>, DirectoryError> {
        Ok(self
            .credentials
            .read()
            .map_err(|_| poisoned())?
            .get(h)
            .cloned())
    }
    async fn put_credential(&self, c: &Credential) -> Result<(), DirectoryError> {
        self.credentials
            .write()
            .map_err(|_| poisoned())?
            .insert(c.token_hash.clone(), c.clone());
        Ok(())
    }
    async fn revoke_credential(&self, t: &TenantId, h: &str) -> Result<bool, DirectoryError> {
        let mut map = self.credentials.write().map_err(|_| poisoned())?;
        if map.get(h).is_some_and(|c| &c.tenant == t) {
            map.remove(h);
            return Ok(true);
        }
        Ok(false)
    }
    async fn credentials(&self, t: &TenantId) -> Result<Vec<Credential>, DirectoryError> {
        let map = self.credentials.read().map_err(|_| poisoned())?;
        let mut out: Vec<Credential> = map.values().filter(|c| &c.tenant == t).cloned().collect();
        out.sort_by_key(|c| (c.created_at, c.token_hash.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token("scim"), new_token("scim"));
        assert_ne!(a, b);
        assert!(a.len() >= 64 && a.starts_with("scim_"));
        let c = Credential::new(&a, TenantId::parse("acme").unwrap(), "okta", Utc::now());
        assert_eq!(c.token_hash, token_hash(&a));
        assert!(!serde_json::to_string(&c).unwrap().contains(&a));
    }

    #[test]
    fn scopes_parse_and_old_credentials_are_scim_tokens() {
        assert_eq!(
            Scope::parse_list("audit:export, audit:read,audit:read").unwrap(),
            vec![Scope::AuditRead, Scope::AuditExport]
        );
        assert!(Scope::parse_list("audit:write").is_err());
        assert_eq!(
            Scope::list(&[Scope::Scim, Scope::AuditRead]),
            "scim,audit:read"
        );
        let old = r#"{"token_hash":"h","tenant":"acme","idp":"okta","created_at":"2026-11-21T10:00:00Z"}"#;
        let c: Credential = serde_json::from_str(old).unwrap();
        assert!(c.allows(Scope::Scim) && !c.allows(Scope::AuditRead));
        let t = new_token("audit");
        let api = Credential::with_scopes(
            &t,
            TenantId::parse("acme").unwrap(),
            "splunk",
            vec![Scope::AuditRead],
            Utc::now(),
        );
        assert!(api.allows(Scope::AuditRead) && !api.allows(Scope::Scim));
    }

    #[tokio::test]
    async fn the_registry_finds_lists_and_revokes_per_tenant() {
        let r = TokenRegistry::default();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let c = Credential::new("t-1", acme.clone(), "okta", Utc::now());
        r.put_credential(&c).await.unwrap();
        assert_eq!(
            r.credential(&token_hash("t-1")).await.unwrap(),
            Some(c.clone())
        );
        assert!(!r.revoke_credential(&globex, &c.token_hash).await.unwrap());
        assert_eq!(r.credentials(&acme).await.unwrap().len(), 1);
        assert!(r.revoke_credential(&acme, &c.token_hash).await.unwrap());
        assert!(r.credentials(&acme).await.unwrap().is_empty());
    }
}
