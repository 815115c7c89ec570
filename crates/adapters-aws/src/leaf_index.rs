//! `LeafIndex` on DynamoDB: one item per (tenant, event) ever integrated, kept for good
//! (no TTL: a copy delivered years later must still find its leaf).
//!
//! | item | pk | attributes |
//! |---|---|---|
//! | an event's place in its tenant's log | `<tenant>#<event_id>` | `i` index (N), `h` payload SHA-256 (B) |
//!
//! Lookups are `BatchGetItem` (100 keys), records `BatchWriteItem` (25 items); what
//! DynamoDB leaves unprocessed is retried with backoff, a bounded number of times.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use envelope::{EventId, TenantId};
use transparency::integrate::{LeafIndex, Placed, StoreError};

use crate::classify::{AwsError, OperationError, describe};
use crate::item::{Item, n, s};

#[derive(Debug, Clone)]
pub struct DynamoDbLeafIndex {
    client: Client,
    table: String,
}

const GET_BATCH: usize = 100;
const WRITE_BATCH: usize = 25;
/// Rounds of retrying what DynamoDB left unprocessed (throttling), with backoff.
const ATTEMPTS: u32 = 8;

fn map<E: OperationError>(e: &AwsError<E>) -> StoreError {
    StoreError::Unavailable(format!("leaf index: {}", describe(e)))
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Unavailable(format!("leaf index: {e}")))
}

fn key(tenant: &TenantId, event: &EventId) -> String {
    format!("{tenant}#{event}")
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20u64 << attempt.min(6))).await;
}

impl DynamoDbLeafIndex {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        client
            .create_table()
            .table_name(table)
            .attribute_definitions(build(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )?)
            .key_schema(build(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build(),
            )?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| map(&e))?;
        Ok(())
    }

    fn placed(
        &self,
        fields: &HashMap<String, AttributeValue>,
    ) -> Result<(String, Placed), StoreError> {
        let item = Item::new("leaf index", fields);
        let pk = item.text("pk")?.to_owned();
        let index =
            u64::try_from(item.number("i")?).map_err(|_| item.corrupt("i", "is negative"))?;
        let h = fields
            .get("h")
            .and_then(|v| v.as_b().ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_ref()).ok())
            .ok_or_else(|| item.corrupt("h", "is missing or not 32 bytes"))?;
        Ok((
            pk,
            Placed {
                index,
                payload_sha256: h,
            },
        ))
    }
}

#[async_trait]
impl LeafIndex for DynamoDbLeafIndex {
    async fn lookup(
        &self,
        tenant: &TenantId,
        events: &[EventId],
    ) -> Result<HashMap<EventId, Placed>, StoreError> {
        let by_key: HashMap<String, &EventId> =
            events.iter().map(|e| (key(tenant, e), e)).collect();
        let keys: Vec<&String> = by_key.keys().collect();
        let mut out = HashMap::new();
        for chunk in keys.chunks(GET_BATCH) {
            let mut wanted = build(
                KeysAndAttributes::builder()
                    .set_keys(Some(
                        chunk
                            .iter()
                            .map(|k| HashMap::from([("pk".to_owned(), s(k.as_str()))]))
                            .collect(),
                    ))
                    // a record written by the run before this one must be seen
                    .consistent_read(true)
                    .build(),
            )?;
            let mut attempt = 0;
            loop {
                let got = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted.clone())
                    .send()
                    .await
                    .map_err(|e| map(&e))?;
                for fields in got
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let (pk, placed) = self.placed(fields)?;
                    if let Some(e) = by_key.get(&pk) {
                        out.insert((*e).clone(), placed);
                    }
                }
                match got.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        attempt += 1;
                        if attempt >= ATTEMPTS {
                            return Err(StoreError::Unavailable(
                                "leaf index: lookups left unprocessed after retries".into(),
                            ));
                        }
                        wanted = rest.clone();
                        backoff(attempt).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    async fn record(
        &self,
        tenant: &TenantId,
        entries: &[(EventId, Placed)],
    ) -> Result<(), StoreError> {
        for chunk in entries.chunks(WRITE_BATCH) {
            let mut writes = Vec::with_capacity(chunk.len());
            for (e, placed) in chunk {
                let index = i64::try_from(placed.index)
                    .map_err(|_| StoreError::Unavailable("leaf index over i64".into()))?;
                let put = build(
                    PutRequest::builder()
                        .item("pk", s(key(tenant, e)))
                        .item("i", n(index))
                        .item(
                            "h",
                            AttributeValue::B(Blob::new(placed.payload_sha256.to_vec())),
                        )
                        .build(),
                )?;
                writes.push(WriteRequest::builder().put_request(put).build());
            }
            let mut attempt = 0;
            loop {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, writes.clone())
                    .send()
                    .await
                    .map_err(|e| map(&e))?;
                match out.unprocessed_items().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.is_empty() => {
                        attempt += 1;
                        if attempt >= ATTEMPTS {
                            return Err(StoreError::Unavailable(
                                "leaf index: writes left unprocessed after retries".into(),
                            ));
                        }
                        writes = rest.clone();
                        backoff(attempt).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }
}
