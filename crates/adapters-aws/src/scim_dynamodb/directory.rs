//! The tenant directory and the compatibility policies, in the SCIM store's table.

use async_trait::async_trait;
use envelope::TenantId;
use scim::{CompatPolicy, Credential, DirectoryError, PolicyStore, StoreError, TenantDirectory};

use super::DynamoDbScimStore;
use super::item::Item;
use super::keys::s;
use crate::directory::DynamoDbTenantDirectory;

// The tenant directory's items (credentials, redeemed one-time tokens) share the table;
// `DynamoDbTenantDirectory` owns them. The compatibility policy is the SCIM store's:
//
// | item | pk | sk |
// |---|---|---|
// | compatibility policy | `T#<tenant>#POLICY` | `P` |

impl DynamoDbScimStore {
    /// The tenant directory in this store's table.
    pub fn directory(&self) -> DynamoDbTenantDirectory {
        DynamoDbTenantDirectory::new(self.client.clone(), self.table.clone())
    }
}

#[async_trait]
impl TenantDirectory for DynamoDbScimStore {
    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, DirectoryError> {
        self.directory().credential(token_hash).await
    }

    async fn put_credential(&self, c: &Credential) -> Result<(), DirectoryError> {
        self.directory().put_credential(c).await
    }

    async fn revoke_credential(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<bool, DirectoryError> {
        self.directory().revoke_credential(tenant, token_hash).await
    }

    async fn credentials(&self, tenant: &TenantId) -> Result<Vec<Credential>, DirectoryError> {
        self.directory().credentials(tenant).await
    }
}

#[async_trait]
impl PolicyStore for DynamoDbScimStore {
    async fn policy(&self, tenant: &TenantId) -> Result<CompatPolicy, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}#POLICY")))
            .key("sk", s("P"))
            .send()
            .await
            .map_err(|e| super::map(&e))?;
        match out.item() {
            None => Ok(CompatPolicy::default()),
            Some(fields) => Ok(Item::new("policy", fields).json("policy")?),
        }
    }

    async fn put_policy(&self, tenant: &TenantId, policy: &CompatPolicy) -> Result<(), StoreError> {
        let text =
            serde_json::to_string(policy).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("T#{tenant}#POLICY")))
            .item("sk", s("P"))
            .item("policy", s(text))
            .send()
            .await
            .map_err(|e| super::map(&e))?;
        Ok(())
    }
}
