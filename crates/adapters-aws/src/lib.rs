//! AWS adapters of the pipeline's ports: `S3BlobStore` (aws-sdk-s3),
//! `DynamoDbDedupeStore` (aws-sdk-dynamodb, claims with TTL), and `EventBridgeBus`
//! (aws-sdk-eventbridge). SDK errors never leave this crate: they are classified into
//! the ports' semantic errors (throttled, unavailable, not found).

mod classify;
mod dynamodb;
mod eventbridge;
mod s3;

pub use dynamodb::DynamoDbDedupeStore;
pub use eventbridge::EventBridgeBus;
pub use s3::S3BlobStore;
