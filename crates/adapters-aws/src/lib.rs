//! AWS adapters of the ports: `S3BlobStore` (aws-sdk-s3), `DynamoDbDedupeStore`
//! (aws-sdk-dynamodb, claims with TTL), `EventBridgeBus` (aws-sdk-eventbridge), and
//! `DynamoDbScimStore` (the SCIM store, one table), `GluePartitionCatalog` (partitions of
//! the cross-tenant table), `SqsMover` (dead-letter redrive). SDK errors never leave this crate:
//! they are classified into the ports' semantic errors (throttled, unavailable, not found).

mod classify;
mod dynamodb;
mod eventbridge;
mod glue;
mod s3;
mod scim_dynamodb;
#[cfg(feature = "sqs")]
mod sqs;

pub use dynamodb::DynamoDbDedupeStore;
pub use eventbridge::EventBridgeBus;
pub use glue::GluePartitionCatalog;
pub use s3::S3BlobStore;
pub use scim_dynamodb::{DynamoDbScimStore, MEMBER_SHARDS};
#[cfg(feature = "sqs")]
pub use sqs::{MoveReport, QueueError, SqsMover};
