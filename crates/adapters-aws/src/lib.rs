//! AWS adapters of the ports: `S3BlobStore` (aws-sdk-s3), `DynamoDbDedupeStore`
//! (aws-sdk-dynamodb, claims with TTL), `EventBridgeBus` (aws-sdk-eventbridge), and
//! `DynamoDbScimStore` (the SCIM store, one table), `GluePartitionCatalog` (partitions of
//! the cross-tenant table), `SqsMover` (dead-letter redrive), `DynamoDbLeafIndex` (where
//! each event is in its tenant's transparency log), `KmsCheckpointSigner` (its checkpoints,
//! signed by a KMS Ed25519 key). SDK errors never leave this crate:
//! they are classified into the ports' semantic errors (throttled, unavailable, not found).

//!
//! Each store is a feature (`s3`, `exports`, `dedupe`, `glue`, `directory`, `scim`, `bus`,
//! `sqs`, `leaf-index`, `kms`), so that a
//! function compiles only the SDKs and crates it uses.

mod classify;
#[cfg(feature = "directory")]
mod directory;
#[cfg(feature = "dedupe")]
mod dynamodb;
#[cfg(feature = "bus")]
mod eventbridge;
#[cfg(feature = "exports")]
mod exports;
#[cfg(feature = "glue")]
mod glue;
#[cfg(any(feature = "directory", feature = "leaf-index"))]
mod item;
#[cfg(feature = "kms")]
mod kms;
#[cfg(feature = "leaf-index")]
mod leaf_index;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "scim")]
mod scim_dynamodb;
#[cfg(feature = "sqs")]
mod sqs;

#[cfg(feature = "directory")]
pub use directory::DynamoDbTenantDirectory;
#[cfg(feature = "dedupe")]
pub use dynamodb::DynamoDbDedupeStore;
#[cfg(feature = "bus")]
pub use eventbridge::EventBridgeBus;
#[cfg(feature = "glue")]
pub use glue::GluePartitionCatalog;
#[cfg(feature = "kms")]
pub use kms::KmsCheckpointSigner;
#[cfg(feature = "leaf-index")]
pub use leaf_index::DynamoDbLeafIndex;
#[cfg(feature = "s3")]
pub use s3::S3BlobStore;
#[cfg(feature = "scim")]
pub use scim_dynamodb::{DynamoDbScimStore, MEMBER_SHARDS};
#[cfg(feature = "sqs")]
pub use sqs::{MoveReport, QueueError, SqsMover};
