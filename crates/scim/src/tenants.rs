//! Who may call, as which tenant, and how leniently their IdP's requests are read.
//!
//! - `Credential`: a bearer token's SHA-256 (the token itself is never stored), the
//!   tenant and IdP it stands for, and an optional expiry. A tenant may hold several,
//!   which is how tokens rotate: issue the new one, move the IdP over, revoke the old.
//! - `CompatPolicy`: the per-tenant switches for IdP dialects. The defaults accept what
//!   Entra ID, Okta, OneLogin, JumpCloud and Rippling send; a tenant can be made stricter.
//! - `TenantDirectory`: the port both are kept behind (SQLite and DynamoDB adapters, and
//!   the in-memory `TokenRegistry` for tests and fixed configurations).

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::StoreError;

/// Lowercase hex SHA-256 of a bearer token: what is stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A new random bearer token (256 bits, from two v4 UUIDs' random bits).
pub fn new_token() -> String {
    format!(
        "scim_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub token_hash: String,
    pub tenant: TenantId,
    /// The IdP this token was issued to: the `actor.id` of the events its requests cause.
    pub idp: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Credential {
    pub fn new(token: &str, tenant: TenantId, idp: &str, now: DateTime<Utc>) -> Self {
        Self {
            token_hash: token_hash(token),
            tenant,
            idp: idp.to_owned(),
            created_at: now,
            expires_at: None,
        }
    }

    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// What to do with a member id that is neither a user nor a group of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownMembers {
    /// 400 invalidValue, nothing applied: the IdP shows the error to its admin.
    #[default]
    Reject,
    /// Skip them (logged) and apply the rest: for IdPs that push memberships of users
    /// they failed to provision.
    Skip,
}

/// Per-tenant reading of IdP dialects. Every default is the lenient reading that the
/// major IdPs need; `strict()` is RFC 7644 read literally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompatPolicy {
    /// `"True"` / `"False"` accepted for boolean attributes (Entra ID).
    pub string_booleans: bool,
    /// `remove` of `members` with a value removes only the listed members (Entra ID,
    /// JumpCloud); strictly, a remove without a filter removes every member.
    pub remove_members_by_value: bool,
    /// Requests without `schemas` accepted (several IdPs omit it on PATCH and PUT).
    pub optional_schemas: bool,
    pub unknown_members: UnknownMembers,
}

impl Default for CompatPolicy {
    fn default() -> Self {
        Self {
            string_booleans: true,
            remove_members_by_value: true,
            optional_schemas: true,
            unknown_members: UnknownMembers::Reject,
        }
    }
}

impl CompatPolicy {
    pub fn strict() -> Self {
        Self {
            string_booleans: false,
            remove_members_by_value: false,
            optional_schemas: false,
            unknown_members: UnknownMembers::Reject,
        }
    }
}

#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// The credential with this token hash, if any (expired ones included: the caller
    /// checks `valid_at`).
    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, StoreError>;
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError>;
    /// Revokes one of the tenant's credentials; false if the tenant has no such one.
    async fn revoke_credential(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<bool, StoreError>;
    async fn credentials(&self, tenant: &TenantId) -> Result<Vec<Credential>, StoreError>;
    /// The tenant's policy, or the default when none was set.
    async fn policy(&self, tenant: &TenantId) -> Result<CompatPolicy, StoreError>;
    async fn put_policy(&self, tenant: &TenantId, policy: &CompatPolicy) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: TenantDirectory + ?Sized> TenantDirectory for std::sync::Arc<T> {
    async fn credential(&self, h: &str) -> Result<Option<Credential>, StoreError> {
        (**self).credential(h).await
    }
    async fn put_credential(&self, c: &Credential) -> Result<(), StoreError> {
        (**self).put_credential(c).await
    }
    async fn revoke_credential(&self, t: &TenantId, h: &str) -> Result<bool, StoreError> {
        (**self).revoke_credential(t, h).await
    }
    async fn credentials(&self, t: &TenantId) -> Result<Vec<Credential>, StoreError> {
        (**self).credentials(t).await
    }
    async fn policy(&self, t: &TenantId) -> Result<CompatPolicy, StoreError> {
        (**self).policy(t).await
    }
    async fn put_policy(&self, t: &TenantId, p: &CompatPolicy) -> Result<(), StoreError> {
        (**self).put_policy(t, p).await
    }
}

/// An in-memory directory: for tests, and for a fixed set of tokens given at start-up.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    credentials: RwLock<HashMap<String, Credential>>,
    policies: RwLock<HashMap<TenantId, CompatPolicy>>,
}

impl TokenRegistry {
    /// Registers a token (only its hash is kept).
    pub fn add(&mut self, token: &str, tenant: TenantId, idp: &str) {
        let c = Credential::new(token, tenant, idp, Utc::now());
        if let Ok(mut map) = self.credentials.write() {
            map.insert(c.token_hash.clone(), c);
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("token registry lock poisoned".into())
}

#[async_trait]
impl TenantDirectory for TokenRegistry {
    async fn credential(&self, h: &str) -> Result<Option<Credential>, StoreError> {
        Ok(self
            .credentials
            .read()
            .map_err(|_| poisoned())?
            .get(h)
            .cloned())
    }
    async fn put_credential(&self, c: &Credential) -> Result<(), StoreError> {
        self.credentials
            .write()
            .map_err(|_| poisoned())?
            .insert(c.token_hash.clone(), c.clone());
        Ok(())
    }
    async fn revoke_credential(&self, t: &TenantId, h: &str) -> Result<bool, StoreError> {
        let mut map = self.credentials.write().map_err(|_| poisoned())?;
        if map.get(h).is_some_and(|c| &c.tenant == t) {
            map.remove(h);
            return Ok(true);
        }
        Ok(false)
    }
    async fn credentials(&self, t: &TenantId) -> Result<Vec<Credential>, StoreError> {
        let map = self.credentials.read().map_err(|_| poisoned())?;
        let mut out: Vec<Credential> = map.values().filter(|c| &c.tenant == t).cloned().collect();
        out.sort_by_key(|c| (c.created_at, c.token_hash.clone()));
        Ok(out)
    }
    async fn policy(&self, t: &TenantId) -> Result<CompatPolicy, StoreError> {
        Ok(self
            .policies
            .read()
            .map_err(|_| poisoned())?
            .get(t)
            .copied()
            .unwrap_or_default())
    }
    async fn put_policy(&self, t: &TenantId, p: &CompatPolicy) -> Result<(), StoreError> {
        self.policies
            .write()
            .map_err(|_| poisoned())?
            .insert(t.clone(), *p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.len() >= 64);
        let c = Credential::new(&a, TenantId::parse("acme").unwrap(), "okta", Utc::now());
        assert_eq!(c.token_hash, token_hash(&a));
        assert!(!serde_json::to_string(&c).unwrap().contains(&a));
    }

    #[test]
    fn a_policy_document_may_name_only_what_it_changes() {
        let p: CompatPolicy = serde_json::from_str(r#"{"string_booleans": false}"#).unwrap();
        assert_eq!(
            p,
            CompatPolicy {
                string_booleans: false,
                ..CompatPolicy::default()
            }
        );
        let s: CompatPolicy = serde_json::from_str(r#"{"unknown_members": "skip"}"#).unwrap();
        assert_eq!(s.unknown_members, UnknownMembers::Skip);
    }
}
