//! `TenantDirectory` and `OneTimeTokens` on DynamoDB: the tenant directory's items in
//! the SCIM table (one table for the tenant's access), without the SCIM stack, so the
//! audit API compiles only this.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | credential, by token hash | `C#<sha256 of token>` | `C` |
//! | credential, listed by tenant | `T#<tenant>#CRED` | `<sha256 of token>` |
//! | a redeemed one-time token (TTL `expires_at`) | `V#<tenant>#<token id>` | `V` |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use envelope::TenantId;
use tenants::{
    Credential, DirectoryError, OneTimeTokens, Retention, RetentionSettings, Scope, TenantDirectory,
};

use crate::classify::{AwsError, Kind, OperationError, classify, describe};
use crate::item::{Item, n, s};

#[derive(Debug, Clone)]
pub struct DynamoDbTenantDirectory {
    client: Client,
    table: String,
}

fn map<E: OperationError>(e: &AwsError<E>) -> DirectoryError {
    match classify(e) {
        Kind::Throttled => DirectoryError::Throttled(describe(e)),
        _ => DirectoryError::Unavailable(describe(e)),
    }
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, DirectoryError> {
    r.map_err(|e| DirectoryError::Unavailable(e.to_string()))
}

/// Transactions retried on conflicts and throttling.
const TRANSACT_ATTEMPTS: u32 = 5;

fn credential_items(table: &str, c: &Credential) -> Result<[TransactWriteItem; 2], DirectoryError> {
    let put = |pk: String, sk: String| -> Result<TransactWriteItem, DirectoryError> {
        let mut p = Put::builder()
            .table_name(table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("token_hash", s(&c.token_hash))
            .item("tenant", s(c.tenant.as_str()))
            .item("idp", s(&c.idp))
            .item("scopes", s(Scope::list(&c.scopes)))
            .item("created", n(c.created_at.timestamp_micros()));
        if let Some(e) = c.expires_at {
            p = p.item("expires", n(e.timestamp_micros()));
        }
        Ok(TransactWriteItem::builder().put(build(p.build())?).build())
    };
    Ok([
        put(format!("C#{}", c.token_hash), "C".into())?,
        put(format!("T#{}#CRED", c.tenant), c.token_hash.clone())?,
    ])
}

fn to_credential(fields: &HashMap<String, AttributeValue>) -> Result<Credential, DirectoryError> {
    let item = Item::new("credential", fields);
    Ok(Credential {
        token_hash: item.text("token_hash")?.to_owned(),
        tenant: TenantId::parse(item.text("tenant")?)
            .map_err(|e| item.corrupt("tenant", e.to_string()))?,
        idp: item.text("idp")?.to_owned(),
        // credentials written before scopes are SCIM tokens
        scopes: match item.opt_text("scopes") {
            Some(list) => {
                Scope::parse_list(list).map_err(|e| item.corrupt("scopes", e.to_string()))?
            }
            None => vec![Scope::Scim],
        },
        created_at: item.time("created")?,
        expires_at: item.opt_time("expires")?,
    })
}

impl DynamoDbTenantDirectory {
    /// The directory in `table` (the SCIM table: `pk`, `sk` strings, TTL on `ttl`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Ok(true) if applied, Ok(false) if a condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, DirectoryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            let reasons = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => Some(
                    c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")),
                ),
                _ => None,
            };
            if reasons == Some(true) {
                return Ok(false);
            }
            let retryable =
                reasons.is_some() || matches!(classify(&e), Kind::Throttled | Kind::Transient);
            if !retryable || attempt >= TRANSACT_ATTEMPTS {
                return Err(map(&e));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
        }
    }
}

/// `T#<tenant>#RETENTION` / `R`: the tenant's retention in days.
fn retention_key(tenant: &TenantId) -> [(&'static str, AttributeValue); 2] {
    [("pk", s(format!("T#{tenant}#RETENTION"))), ("sk", s("R"))]
}

#[async_trait]
impl RetentionSettings for DynamoDbTenantDirectory {
    async fn retention(&self, tenant: &TenantId) -> Result<Option<Retention>, DirectoryError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(
                retention_key(tenant)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            ))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map(&e))?;
        let Some(fields) = out.item else {
            return Ok(None);
        };
        let item = Item::new("retention", &fields);
        let days = item.number("days")?;
        u32::try_from(days)
            .ok()
            .and_then(|d| Retention::days(d).ok())
            .map(Some)
            .ok_or_else(|| {
                item.corrupt("days", format!("{days} is not a retention"))
                    .into()
            })
    }

    async fn put_retention(
        &self,
        tenant: &TenantId,
        retention: Retention,
    ) -> Result<(), DirectoryError> {
        let mut put = self.client.put_item().table_name(&self.table);
        for (k, v) in retention_key(tenant) {
            put = put.item(k, v);
        }
        put.item("days", n(i64::from(retention.get())))
            .send()
            .await
            .map_err(|e| map(&e))?;
        Ok(())
    }
}

#[async_trait]
impl TenantDirectory for DynamoDbTenantDirectory {
    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, DirectoryError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("C#{token_hash}")))
            .key("sk", s("C"))
            // a revoked token stops working at once
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map(&e))?;
        out.item().map(to_credential).transpose()
    }

    async fn put_credential(&self, c: &Credential) -> Result<(), DirectoryError> {
        if self
            .transact(credential_items(&self.table, c)?.to_vec())
            .await?
        {
            Ok(())
        } else {
            Err(DirectoryError::Unavailable(
                "credential write was cancelled".into(),
            ))
        }
    }

    async fn revoke_credential(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<bool, DirectoryError> {
        // only the tenant's own credential: the condition names the tenant
        let lookup = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(format!("C#{token_hash}")))
                .key("sk", s("C"))
                .condition_expression("tenant = :t")
                .expression_attribute_values(":t", s(tenant.as_str()))
                .build(),
        )?;
        let listed = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(format!("T#{tenant}#CRED")))
                .key("sk", s(token_hash))
                .build(),
        )?;
        self.transact(vec![
            TransactWriteItem::builder().delete(lookup).build(),
            TransactWriteItem::builder().delete(listed).build(),
        ])
        .await
    }

    async fn credentials(&self, tenant: &TenantId) -> Result<Vec<Credential>, DirectoryError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("T#{tenant}#CRED")))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map(&e))?;
            for item in page.items() {
                out.push(to_credential(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.token_hash).cmp(&(b.created_at, &b.token_hash)));
        Ok(out)
    }
}

#[async_trait]
impl OneTimeTokens for DynamoDbTenantDirectory {
    async fn redeem(
        &self,
        tenant: &TenantId,
        token_id: &str,
        expires_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<bool, DirectoryError> {
        // the item outlives the token by a day, then TTL removes it
        let ttl = expires_at.timestamp() + 86_400;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("V#{tenant}#{token_id}")))
            .item("sk", s("V"))
            .item("ttl", n(ttl))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(map(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("token_hash".to_owned(), s("ab12")),
            ("tenant".to_owned(), s("acme")),
            ("idp".to_owned(), s("entra")),
            ("created".to_owned(), n(1_700_000_000_000_000)),
        ])
    }

    #[test]
    fn a_credential_without_scopes_is_a_scim_token_one_without_created_is_corrupt() {
        let c = to_credential(&stored()).unwrap();
        assert_eq!(
            (c.scopes.as_slice(), c.expires_at),
            (&[Scope::Scim][..], None)
        );
        for field in ["token_hash", "tenant", "idp", "created"] {
            let mut item = stored();
            item.remove(field);
            let e = to_credential(&item).unwrap_err().to_string();
            assert!(e.contains(&format!("credential item: {field}")), "{e}");
        }
        let mut item = stored();
        item.insert("expires".into(), s("tomorrow"));
        assert!(
            to_credential(&item).is_err(),
            "a malformed expiry is not 'never'"
        );
        item.insert("expires".into(), n(1_800_000_000_000_000));
        item.insert("scopes".into(), s("audit:read"));
        let c = to_credential(&item).unwrap();
        assert!(c.expires_at.is_some() && c.allows(Scope::AuditRead) && !c.allows(Scope::Scim));
    }
}
