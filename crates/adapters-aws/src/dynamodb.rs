//! `DedupeStore` on DynamoDB, one table keyed by `pk` (string), TTL on `expires_at`.
//!
//! Items: a claim per event, `pk = "c#<tenant>#<event_id>"`, holding the payload hash
//! (`h`), the claiming completion unit (`b`) and its lease (`lease_until`); and one
//! completion per unit, `pk = "b#<unit_id>"`. A claim is complete when its unit's
//! completion exists. Steady-state cost: one conditional PutItem per new event plus one
//! PutItem per ingest file written.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use auditlog::{ClaimContext, ClaimOutcome, ClaimRequest, DedupeError, DedupeStore};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;

use crate::classify::{AwsError, Kind, OperationError, classify, describe};

/// Claims sent at once: enough to hide DynamoDB latency for a 3,700-message batch.
const CONCURRENCY: usize = 64;

#[derive(Debug, Clone)]
pub struct DynamoDbDedupeStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn claim_pk(r: &ClaimRequest) -> String {
    format!("c#{}#{}", r.tenant_id, r.event_id)
}

fn map<E: OperationError>(e: &AwsError<E>) -> DedupeError {
    match classify(e) {
        Kind::Throttled => DedupeError::Throttled(describe(e)),
        _ => DedupeError::Unavailable(describe(e)),
    }
}

enum Put {
    Done,
    ConditionFailed,
}

impl DynamoDbDedupeStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table (on-demand, TTL on `expires_at`), for tests and local stacks;
    /// deployed tables come from template.yaml.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), DedupeError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let attr = AttributeDefinition::builder()
            .attribute_name("pk")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| DedupeError::Unavailable(e.to_string()))?;
        let key = KeySchemaElement::builder()
            .attribute_name("pk")
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| DedupeError::Unavailable(e.to_string()))?;
        client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| map(&e))?;
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name("expires_at")
            .enabled(true)
            .build()
            .map_err(|e| DedupeError::Unavailable(e.to_string()))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| map(&e))?;
        Ok(())
    }

    async fn put_claim(
        &self,
        ctx: &ClaimContext,
        r: &ClaimRequest,
        condition: Condition<'_>,
    ) -> Result<Put, DedupeError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(claim_pk(r)))
            .item("h", s(&r.payload_sha256))
            .item("b", s(&ctx.unit_id))
            .item("lease_until", n(ctx.lease_until().timestamp()))
            .item("expires_at", n(ctx.expires_at().timestamp()));
        req = match condition {
            // Absent, or past its retention but not yet removed by TTL (which lags).
            Condition::New => req
                .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                .expression_attribute_values(":now", n(ctx.now.timestamp())),
            Condition::TakeOver { batch } => req
                .condition_expression("b = :old")
                .expression_attribute_values(":old", s(batch)),
        };
        match req.send().await {
            Ok(_) => Ok(Put::Done),
            Err(e) if classify(&e) == Kind::ConditionFailed => Ok(Put::ConditionFailed),
            Err(e) => Err(map(&e)),
        }
    }

    async fn batch_completed(
        &self,
        ctx: &ClaimContext,
        batch: &str,
        cache: &Mutex<HashMap<String, bool>>,
    ) -> Result<bool, DedupeError> {
        if let Some(done) = cache.lock().ok().and_then(|c| c.get(batch).copied()) {
            return Ok(done);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("b#{batch}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map(&e))?;
        let done = out
            .item()
            .and_then(|i| i.get("expires_at"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|exp| exp > ctx.now.timestamp());
        if let Ok(mut c) = cache.lock() {
            c.insert(batch.to_owned(), done);
        }
        Ok(done)
    }

    async fn claim_one(
        &self,
        ctx: &ClaimContext,
        r: &ClaimRequest,
        cache: &Mutex<HashMap<String, bool>>,
    ) -> Result<ClaimOutcome, DedupeError> {
        if let Put::Done = self.put_claim(ctx, r, Condition::New).await? {
            return Ok(ClaimOutcome::Claimed);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(claim_pk(r)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map(&e))?;
        let Some(item) = out.item() else {
            // removed between our put and our read (released or expired): try once more
            return Ok(match self.put_claim(ctx, r, Condition::New).await? {
                Put::Done => ClaimOutcome::Claimed,
                Put::ConditionFailed => ClaimOutcome::InProgress,
            });
        };
        let text = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let lease_until = item
            .get("lease_until")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let (hash, batch) = (text("h"), text("b"));
        if self.batch_completed(ctx, &batch, cache).await? {
            return Ok(ClaimOutcome::Completed {
                payload_sha256: hash,
            });
        }
        if batch != ctx.unit_id && lease_until > ctx.now.timestamp() {
            return Ok(ClaimOutcome::InProgress);
        }
        // The holder's lease ran out without completing: take the claim over, unless
        // someone else did so first.
        Ok(
            match self
                .put_claim(ctx, r, Condition::TakeOver { batch: &batch })
                .await?
            {
                Put::Done => ClaimOutcome::Claimed,
                Put::ConditionFailed => ClaimOutcome::InProgress,
            },
        )
    }
}

enum Condition<'a> {
    New,
    TakeOver { batch: &'a str },
}

#[async_trait]
impl DedupeStore for DynamoDbDedupeStore {
    async fn claim(
        &self,
        ctx: &ClaimContext,
        requests: &[ClaimRequest],
    ) -> Result<Vec<ClaimOutcome>, DedupeError> {
        let cache = Mutex::new(HashMap::new());
        let cache = &cache;
        // Futures built up front: a closure in the stream trips the Send check of
        // async_trait over the borrowed requests.
        let futures: Vec<_> = requests
            .iter()
            .map(|r| self.claim_one(ctx, r, cache))
            .collect();
        let outcomes = futures::stream::iter(futures)
            .buffered(CONCURRENCY)
            .map(|r| r.unwrap_or_else(ClaimOutcome::Unavailable))
            .collect::<Vec<_>>()
            .await;
        Ok(outcomes)
    }

    async fn complete(&self, ctx: &ClaimContext) -> Result<(), DedupeError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("b#{}", ctx.unit_id)))
            .item("completed_at", n(ctx.now.timestamp()))
            .item("expires_at", n(ctx.expires_at().timestamp()))
            .send()
            .await
            .map_err(|e| map(&e))?;
        Ok(())
    }

    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError> {
        let futures: Vec<_> = keys.iter().map(|r| self.release_one(ctx, r)).collect();
        let results = futures::stream::iter(futures)
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        results.into_iter().collect()
    }
}

impl DynamoDbDedupeStore {
    async fn release_one(&self, ctx: &ClaimContext, r: &ClaimRequest) -> Result<(), DedupeError> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(claim_pk(r)))
            .condition_expression("b = :mine")
            .expression_attribute_values(":mine", s(&ctx.unit_id))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if classify(&e) == Kind::ConditionFailed => Ok(()),
            Err(e) => Err(map(&e)),
        }
    }
}
