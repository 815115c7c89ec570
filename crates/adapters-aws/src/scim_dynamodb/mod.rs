//! `ScimStore` on one DynamoDB table (`pk`, `sk` strings). Items:
//!
//! | item | pk | sk |
//! |---|---|---|
//! | resource | `T#<tenant>#<kind>` | `R#<id>` |
//! | unique name | `T#<tenant>#<kind>#U#<lowercased name>` | `U` |
//! | membership | `T#<tenant>#G#<group>#S<shard>` | `M#<member>` |
//! | reverse index | `T#<tenant>#M#<member>` | `G#<group>` |
//! | outbox entry | `O#<shard>` | `<occurred_at µs>#<event_id>` |
//!
//! A group's memberships are spread over `MEMBER_SHARDS` partition keys by a hash of the
//! member id: one DynamoDB partition takes about 1,000 writes/s, so a 100,000-member
//! change under one key would need 100 s, past Entra's 60 s request timeout. Each
//! membership change is its own transaction (membership + reverse index + outbox entry,
//! conditional on the membership's absence or presence), run concurrently: the cost is
//! O(members named), concurrent PATCHes on one group never conflict with each other, and
//! a member that is already there is a no-op without an event. Every tenant's keys start
//! with `T#<tenant>#`, and a `TenantId` cannot contain `#`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use envelope::TenantId;
use futures::StreamExt;
use scim::{
    DeadLetter, MemberEvent, OutboxEntry, PendingEvent, Resource, ResourceKind, ScimStore,
    StoreError, UniqueAttr,
};

use crate::classify::{AwsError, Kind, OperationError, classify, describe};

mod directory;
mod item;
mod keys;

use item::{Item, dead_letter, outbox_entry, outbox_item};
pub use keys::{MEMBER_SHARDS, OUTBOX_SHARDS};
use keys::{
    OUTBOX_DEAD_PK, member_pk, n, outbox_sk, resource_pk, reverse_pk, s, shard, unique_name,
    unique_pk,
};

/// Attempts per transaction on contention or transient failure.
const TRANSACT_ATTEMPTS: u32 = 12;

/// A little randomness for backoff jitter, without a RNG dependency.
fn jitter_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ (nanos >> 7)
}

/// Sleeps before retry `attempt` (1-based): jittered, growing exponentially from 20 ms
/// to at most 2.56 s, so a throttled table gets room rather than a hammering.
async fn back_off(attempt: u32) {
    let cap = 10u64 << attempt.min(8);
    let jitter = u64::from(jitter_seed()) % cap.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}

/// Membership transactions in flight at once, by default.
const CONCURRENCY: usize = 32;

#[derive(Debug, Clone)]
pub struct DynamoDbScimStore {
    client: Client,
    table: String,
    concurrency: usize,
}

fn map<E: OperationError>(e: &AwsError<E>) -> StoreError {
    match classify(e) {
        Kind::Throttled => StoreError::Throttled(describe(e)),
        _ => e
            .message()
            .filter(|_| e.code() == Some("ValidationException"))
            .and_then(over_limit)
            .unwrap_or_else(|| StoreError::Unavailable(describe(e))),
    }
}

/// DynamoDB's size limits (400 KB an item, 2 KB a partition key, 1 KB a sort key)
/// answer `ValidationException`: the request's fault, so 413 or 400, never a 503 that
/// an IdP would retry forever. The service refuses such values first; this is the
/// backstop for any path that reaches the table with one.
fn over_limit(message: &str) -> Option<StoreError> {
    let m = message.to_ascii_lowercase();
    if m.contains("item size") {
        Some(StoreError::TooLarge(message.to_owned()))
    } else if m.contains("size") && (m.contains("key") || m.contains("exceed")) {
        Some(StoreError::Invalid(message.to_owned()))
    } else {
        None
    }
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Which items of a cancelled transaction failed their condition.
fn cancelled_conditions(e: &AwsError<TransactWriteItemsError>) -> Option<Vec<bool>> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => Some(
            c.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

/// A transaction cancelled because an item broke a size limit (reason `ValidationError`).
fn cancelled_over_limit(e: &AwsError<TransactWriteItemsError>) -> Option<StoreError> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .iter()
            .filter(|r| r.code() == Some("ValidationError"))
            .find_map(|r| over_limit(r.message().unwrap_or("item size limit"))),
        _ => None,
    }
}

impl DynamoDbScimStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            concurrency: CONCURRENCY,
        }
    }

    /// Membership transactions in flight at once. moto_server (5.2.x) fails concurrent
    /// TransactWriteItems with a 500 ("dictionary changed size during iteration"), so
    /// the tests against it use 1; DynamoDB itself takes many.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Creates the table (on-demand, `pk`/`sk`), for tests and local stacks; deployed
    /// tables come from template.yaml.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let attr = |name: &str| {
            build(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )
        };
        let key = |name: &str, kt| {
            build(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kt)
                    .build(),
            )
        };
        client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| map(&e))?;
        Ok(())
    }

    fn outbox_put(&self, e: &OutboxEntry) -> Result<TransactWriteItem, StoreError> {
        let pk = format!("O#{}", shard(e.event_id.as_str(), OUTBOX_SHARDS));
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(outbox_item(pk, outbox_sk(e), e)?))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs one transaction. `Ok(Err(flags))` when it was cancelled by conditions (which
    /// items failed theirs). Contention (TransactionConflict), throttling and server
    /// errors are retried here with jittered backoff, beyond the SDK's own retries:
    /// concurrent PATCHes on one group must never be rejected for being concurrent.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<bool>>, StoreError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(Ok(())),
                Err(e) => e,
            };
            if let Some(failed) = cancelled_conditions(&e)
                && failed.iter().any(|f| *f)
            {
                return Ok(Err(failed));
            }
            if let Some(over) = cancelled_over_limit(&e) {
                return Err(over);
            }
            let retryable = cancelled_conditions(&e).is_some() // TransactionConflict
                || matches!(classify(&e), Kind::Throttled | Kind::Transient);
            if !retryable || attempt >= TRANSACT_ATTEMPTS {
                return Err(map(&e));
            }
            back_off(attempt).await;
        }
    }

    fn resource_put(&self, tenant: &TenantId, r: &Resource) -> Result<Put, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(resource_pk(tenant, r.kind)))
            .item("sk", s(format!("R#{}", r.id)))
            .item("id", s(&r.id))
            .item("version", n(i64::try_from(r.version).unwrap_or(i64::MAX)))
            .item("created", n(r.created.timestamp_micros()))
            .item("last_modified", n(r.last_modified.timestamp_micros()))
            .item("body", s(r.body.to_string()));
        if let Some(name) = unique_name(r) {
            put = put.item("uk", s(name.to_lowercase()));
        }
        build(put.build())
    }

    fn unique_put(
        &self,
        tenant: &TenantId,
        r: &Resource,
        name: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .item("pk", s(unique_pk(tenant, r.kind, name)))
                .item("sk", s("U"))
                .item("id", s(&r.id))
                .condition_expression("attribute_not_exists(pk) OR id = :id")
                .expression_attribute_values(":id", s(&r.id))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn unique_delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        name: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let del = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(unique_pk(tenant, kind, name)))
                .key("sk", s("U"))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(del).build())
    }

    async fn group_exists(&self, tenant: &TenantId, group_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(resource_pk(tenant, ResourceKind::Group)))
            .key("sk", s(format!("R#{group_id}")))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| map(&e))?;
        Ok(out.item().is_some())
    }

    /// One membership change as one transaction; Ok(false) when it was a no-op.
    async fn change_member(
        &self,
        tenant: &TenantId,
        group_id: &str,
        member: &str,
        add: bool,
        event: MemberEvent<'_>,
    ) -> Result<bool, StoreError> {
        let membership = if add {
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(member_pk(tenant, group_id, member)))
                    .item("sk", s(format!("M#{member}")))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?;
            TransactWriteItem::builder().put(put).build()
        } else {
            let del = build(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(member_pk(tenant, group_id, member)))
                    .key("sk", s(format!("M#{member}")))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?;
            TransactWriteItem::builder().delete(del).build()
        };
        let reverse = if add {
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(reverse_pk(tenant, member)))
                    .item("sk", s(format!("G#{group_id}")))
                    .item("group_id", s(group_id))
                    .build(),
            )?;
            TransactWriteItem::builder().put(put).build()
        } else {
            let del = build(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(reverse_pk(tenant, member)))
                    .key("sk", s(format!("G#{group_id}")))
                    .build(),
            )?;
            TransactWriteItem::builder().delete(del).build()
        };
        let items = vec![membership, reverse, self.outbox_put(&event(member))?];
        Ok(self.transact(items).await?.is_ok())
    }

    async fn change_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        add: bool,
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError> {
        if !self.group_exists(tenant, group_id).await? {
            return Err(StoreError::NotFound);
        }
        let mut unique: Vec<&String> = members.iter().collect();
        unique.sort();
        unique.dedup();
        let futures: Vec<_> = unique
            .iter()
            .map(|m| self.change_member(tenant, group_id, m, add, event))
            .collect();
        let results: Vec<Result<bool, StoreError>> = futures::stream::iter(futures)
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut changed = Vec::new();
        for (m, r) in unique.into_iter().zip(results) {
            if r? {
                changed.push(m.clone());
            }
        }
        Ok(changed)
    }

    async fn query_all(
        &self,
        pk: String,
        after_sk: Option<String>,
        limit: usize,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(if after_sk.is_some() {
                    "pk = :pk AND sk > :after"
                } else {
                    "pk = :pk"
                })
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .limit(i32::try_from(limit.min(1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take());
            if let Some(a) = &after_sk {
                q = q.expression_attribute_values(":after", s(a));
            }
            let page = q.send().await.map_err(|e| map(&e))?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if out.len() < limit => start = Some(k.clone()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Deletes items in batches of 25 (after the group itself is gone).
    async fn delete_keys(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        for chunk in keys.chunks(25) {
            let mut requests = Vec::with_capacity(chunk.len());
            for (pk, sk) in chunk {
                let del = build(
                    DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build(),
                )?;
                requests.push(WriteRequest::builder().delete_request(del).build());
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), requests)]));
            let mut attempt = 0u32;
            while let Some(items) = pending.take().filter(|m| m.values().any(|v| !v.is_empty())) {
                // unprocessed items come back under throttling: back off, and give up
                // (retryably) rather than spin
                if attempt > 0 {
                    if attempt >= TRANSACT_ATTEMPTS {
                        return Err(StoreError::Throttled(
                            "BatchWriteItem kept returning unprocessed deletes".into(),
                        ));
                    }
                    back_off(attempt).await;
                }
                attempt += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| map(&e))?;
                pending = out.unprocessed_items().cloned();
            }
        }
        Ok(())
    }
}

impl DynamoDbScimStore {
    /// A deleted resource's memberships: a group's members, and its (or a user's)
    /// memberships in other groups. Idempotent, so a repeated delete can finish it.
    async fn delete_memberships(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
    ) -> Result<(), StoreError> {
        if kind == ResourceKind::Group {
            for shard_no in 0..MEMBER_SHARDS {
                let pk = format!("T#{tenant}#G#{id}#S{shard_no}");
                loop {
                    let page = self.query_all(pk.clone(), None, 1000).await?;
                    if page.is_empty() {
                        break;
                    }
                    let mut keys = Vec::with_capacity(page.len() * 2);
                    for item in &page {
                        if let Some(sk) = item.get("sk").and_then(|v| v.as_s().ok()) {
                            let member = sk.trim_start_matches("M#");
                            keys.push((pk.clone(), sk.clone()));
                            keys.push((reverse_pk(tenant, member), format!("G#{id}")));
                        }
                    }
                    self.delete_keys(keys).await?;
                }
            }
        }
        // its memberships in other groups: a user's, and a nested group's
        let groups = self.groups_of(tenant, id).await?;
        let mut keys = Vec::with_capacity(groups.len() * 2);
        for g in groups {
            keys.push((member_pk(tenant, &g, id), format!("M#{id}")));
            keys.push((reverse_pk(tenant, id), format!("G#{g}")));
        }
        self.delete_keys(keys).await?;
        Ok(())
    }
}

#[async_trait]
impl ScimStore for DynamoDbScimStore {
    async fn create(
        &self,
        tenant: &TenantId,
        r: &Resource,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let mut put = self.resource_put(tenant, r)?;
        put.condition_expression = Some("attribute_not_exists(pk)".into());
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let name = unique_name(r);
        if let Some(name) = &name {
            items.push(self.unique_put(tenant, r, name)?);
        }
        for e in events {
            items.push(self.outbox_put(e)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) if failed.get(1).copied().unwrap_or(false) => Err(StoreError::Uniqueness {
                attr: r.kind.unique_attribute(),
                value: name.unwrap_or_default().to_lowercase(),
            }),
            Err(_) => Err(StoreError::Uniqueness {
                attr: "id",
                value: r.id.clone(),
            }),
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Resource, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(resource_pk(tenant, kind)))
            .key("sk", s(format!("R#{id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map(&e))?;
        out.item()
            .map(|i| item::resource(kind, i))
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        ids: &[String],
    ) -> Result<Vec<Resource>, StoreError> {
        self.batch_get_resources(tenant, kind, ids).await
    }

    async fn find_unique(
        &self,
        tenant: &TenantId,
        attr: UniqueAttr,
        value: &str,
    ) -> Result<Option<Resource>, StoreError> {
        let kind = attr.kind();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(unique_pk(tenant, kind, value)))
            .key("sk", s("U"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map(&e))?;
        let Some(id) = out
            .item()
            .and_then(|i| i.get("id"))
            .and_then(|v| v.as_s().ok())
        else {
            return Ok(None);
        };
        match self.get(tenant, kind, id).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn update(
        &self,
        tenant: &TenantId,
        r: &Resource,
        expected_version: u64,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let old = self.get(tenant, r.kind, &r.id).await?;
        if old.version != expected_version {
            return Err(StoreError::VersionMismatch {
                expected: expected_version,
            });
        }
        let mut put = self.resource_put(tenant, r)?;
        put.condition_expression = Some("version = :expected".into());
        put.expression_attribute_values = Some(HashMap::from([(
            ":expected".to_owned(),
            n(i64::try_from(expected_version).unwrap_or(i64::MAX)),
        )]));
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let (old_name, new_name) = (unique_name(&old), unique_name(r));
        let renamed = old_name.as_ref().map(|n| n.to_lowercase())
            != new_name.as_ref().map(|n| n.to_lowercase());
        if renamed {
            if let Some(name) = &new_name {
                items.push(self.unique_put(tenant, r, name)?);
            }
            if let Some(name) = &old_name {
                items.push(self.unique_delete(tenant, r.kind, name)?);
            }
        }
        for e in events {
            items.push(self.outbox_put(e)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) if failed.first().copied().unwrap_or(false) => {
                Err(StoreError::VersionMismatch {
                    expected: expected_version,
                })
            }
            Err(_) => Err(StoreError::Uniqueness {
                attr: r.kind.unique_attribute(),
                value: new_name.unwrap_or_default().to_lowercase(),
            }),
        }
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let old = match self.get(tenant, kind, id).await {
            Ok(old) => old,
            Err(StoreError::NotFound) => {
                self.delete_leftovers(tenant, kind, id).await?;
                return Err(StoreError::NotFound);
            }
            Err(e) => return Err(e),
        };
        if let Some(expected) = expected_version
            && old.version != expected
        {
            return Err(StoreError::VersionMismatch { expected });
        }
        let del = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(resource_pk(tenant, kind)))
                .key("sk", s(format!("R#{id}")))
                .condition_expression("version = :v")
                .expression_attribute_values(
                    ":v",
                    n(i64::try_from(old.version).unwrap_or(i64::MAX)),
                )
                .build(),
        )?;
        let mut items = vec![TransactWriteItem::builder().delete(del).build()];
        if let Some(name) = unique_name(&old) {
            items.push(self.unique_delete(tenant, kind, &name)?);
        }
        for e in events {
            items.push(self.outbox_put(e)?);
        }
        if self.transact(items).await?.is_err() {
            return Err(StoreError::VersionMismatch {
                expected: old.version,
            });
        }
        // Memberships go after the resource, page by page: never all at once in memory.
        // A crash here leaves memberships of a resource that no longer exists; the
        // IdP's retried delete (it got no 204) finds the resource gone and cleans up.
        self.delete_memberships(tenant, kind, id).await
    }

    async fn delete_leftovers(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
    ) -> Result<(), StoreError> {
        match self.get(tenant, kind, id).await {
            // a delete that stopped after removing the resource: finish its cleanup
            Err(StoreError::NotFound) => self.delete_memberships(tenant, kind, id).await,
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Resource>, StoreError> {
        let after_sk = Some(format!("R#{}", after.unwrap_or("")));
        let items = self
            .query_all(resource_pk(tenant, kind), after_sk, limit)
            .await?;
        items.iter().map(|i| item::resource(kind, i)).collect()
    }

    async fn add_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError> {
        self.change_members(tenant, group_id, members, true, event)
            .await
    }

    async fn remove_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError> {
        self.change_members(tenant, group_id, members, false, event)
            .await
    }

    async fn members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        // Each shard is sorted; a page is the smallest `limit` ids across all of them.
        let mut all = Vec::new();
        for shard_no in 0..MEMBER_SHARDS {
            let pk = format!("T#{tenant}#G#{group_id}#S{shard_no}");
            let after_sk = after.map(|a| format!("M#{a}"));
            for item in self.query_all(pk, after_sk, limit).await? {
                let sk = Item::new("membership", &item).text("sk")?;
                all.push(sk.trim_start_matches("M#").to_owned());
            }
        }
        all.sort();
        all.truncate(limit);
        Ok(all)
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let items = self
            .query_all(reverse_pk(tenant, member_id), None, usize::MAX)
            .await?;
        items
            .iter()
            .map(|i| Ok(Item::new("reverse index", i).text("group_id")?.to_owned()))
            .collect()
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>, StoreError> {
        let mut all = Vec::new();
        for shard_no in 0..OUTBOX_SHARDS {
            for item in self.query_all(format!("O#{shard_no}"), None, limit).await? {
                let sk = Item::new("outbox", &item).text("sk")?.to_owned();
                let entry = outbox_entry(&item)?;
                all.push((
                    sk.clone(),
                    PendingEvent {
                        receipt: format!("O#{shard_no}|{sk}"),
                        entry,
                    },
                ));
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.truncate(limit);
        Ok(all.into_iter().map(|(_, p)| p).collect())
    }

    async fn outbox_ack(&self, receipts: &[String]) -> Result<(), StoreError> {
        let keys = receipts
            .iter()
            .filter_map(|r| r.split_once('|'))
            .map(|(pk, sk)| (pk.to_owned(), sk.to_owned()))
            .collect();
        self.delete_keys(keys).await
    }

    async fn outbox_dead_letter(
        &self,
        entries: &[(PendingEvent, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (p, reason) in entries {
            let Some((pk, sk)) = p.receipt.split_once('|') else {
                continue;
            };
            let mut item = outbox_item(OUTBOX_DEAD_PK.to_owned(), sk.to_owned(), &p.entry)?;
            item.insert("reason".into(), s(reason));
            item.insert("dead_lettered_at".into(), n(at.timestamp_micros()));
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build(),
            )?;
            // Conditional on the entry still pending: a relay racing us may have moved it.
            let delete = build(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?;
            // Cancelled by the condition means already gone from the outbox: nothing to do.
            let _ = self
                .transact(vec![
                    TransactWriteItem::builder().put(put).build(),
                    TransactWriteItem::builder().delete(delete).build(),
                ])
                .await?;
        }
        Ok(())
    }

    async fn outbox_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let items = self
            .query_all(OUTBOX_DEAD_PK.to_owned(), None, limit)
            .await?;
        items.iter().map(dead_letter).collect()
    }
}

impl DynamoDbScimStore {
    /// BatchGetItem of resource items, 100 keys per request, unprocessed keys retried
    /// with backoff (they come back under throttling).
    async fn batch_get_resources(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        ids: &[String],
    ) -> Result<Vec<Resource>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in scim::store::distinct(ids).chunks(100) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|id| {
                    HashMap::from([
                        ("pk".to_owned(), s(resource_pk(tenant, kind))),
                        ("sk".to_owned(), s(format!("R#{id}"))),
                    ])
                })
                .collect();
            let mut request = Some(HashMap::from([(
                self.table.clone(),
                build(
                    KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .consistent_read(true)
                        .build(),
                )?,
            )]));
            let mut attempt = 0u32;
            while let Some(items) = request.take() {
                attempt += 1;
                let res = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| map(&e))?;
                for item in res
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    out.push(item::resource(kind, item)?);
                }
                if let Some(left) = res.unprocessed_keys().filter(|u| !u.is_empty()) {
                    if attempt >= TRANSACT_ATTEMPTS {
                        return Err(StoreError::Throttled(
                            "BatchGetItem kept returning unprocessed keys".into(),
                        ));
                    }
                    back_off(attempt).await;
                    request = Some(left.clone());
                }
            }
        }
        Ok(out)
    }
}
