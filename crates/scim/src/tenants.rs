//! Who may call the SCIM API, and how leniently their IdP's requests are read.
//!
//! - Credentials live in the shared tenant directory (`tenants`): a SCIM token is a
//!   `Credential` with the `scim` scope; tokens of other products (the audit API's) are
//!   refused here.
//! - `CompatPolicy`: the per-tenant switches for IdP dialects. The defaults accept what
//!   Entra ID, Okta, OneLogin, JumpCloud and Rippling send; a tenant can be made stricter.
//!   Kept behind the `PolicyStore` port, beside the directory in the same store.

use async_trait::async_trait;
use envelope::TenantId;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

pub use tenants::{Credential, DirectoryError, Scope, TenantDirectory, TokenRegistry, token_hash};

/// A new SCIM bearer token.
pub fn new_token() -> String {
    tenants::new_token("scim")
}

impl From<DirectoryError> for StoreError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Throttled(m) => StoreError::Throttled(m),
            DirectoryError::Unavailable(m) => StoreError::Unavailable(m),
        }
    }
}

/// The other way, for adapters that implement the directory over a SCIM store.
pub fn directory_error(e: StoreError) -> DirectoryError {
    match e {
        StoreError::Throttled(m) => DirectoryError::Throttled(m),
        other => DirectoryError::Unavailable(other.to_string()),
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
    /// A `replace` whose value filter matches nothing adds the value, seeded from the
    /// filter (Entra ID sends `emails[type eq "work"].value` to a user without one);
    /// strictly it is 400 `noTarget`.
    pub replace_adds_filtered_value: bool,
    pub unknown_members: UnknownMembers,
}

impl Default for CompatPolicy {
    fn default() -> Self {
        Self {
            string_booleans: true,
            remove_members_by_value: true,
            optional_schemas: true,
            replace_adds_filtered_value: true,
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
            replace_adds_filtered_value: false,
            unknown_members: UnknownMembers::Reject,
        }
    }
}

/// Per-tenant SCIM compatibility policies.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The tenant's policy, or the default when none was set.
    async fn policy(&self, tenant: &TenantId) -> Result<CompatPolicy, StoreError>;
    async fn put_policy(&self, tenant: &TenantId, policy: &CompatPolicy) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: PolicyStore + ?Sized> PolicyStore for std::sync::Arc<T> {
    async fn policy(&self, t: &TenantId) -> Result<CompatPolicy, StoreError> {
        (**self).policy(t).await
    }
    async fn put_policy(&self, t: &TenantId, p: &CompatPolicy) -> Result<(), StoreError> {
        (**self).put_policy(t, p).await
    }
}

/// What the SCIM router needs of the tenant store: the credentials and the policies.
pub trait ScimDirectory: TenantDirectory + PolicyStore {}
impl<T: TenantDirectory + PolicyStore + ?Sized> ScimDirectory for T {}

#[cfg(test)]
mod tests {
    use super::*;

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
