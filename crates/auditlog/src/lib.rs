//! The audit log's logic, free of AWS and of any IO of its own.
//!
//! It owns the audit record (`AuditRecord`) and its Arrow/Parquet form, the object layout
//! (`PartitionKey`, `ObjectKey`), the ports the pipeline runs over (`BlobStore`,
//! `DedupeStore`, `Clock`), and the three algorithms built on them: the subscriber's batch
//! (`Subscriber`), the compactor that folds the ingest tier into tenant partitions
//! (`Compactor`), and the reader that sees both tiers (`TenantReader`); integration of accepted events into the tenants' transparency logs
//! (`integration`); quarantine as
//! an operator works with it (`quarantine`: list, show, redrive) and fault injection
//! over any adapter (`faults`). Adapters for AWS and for the embedded default live in
//! their own crates.

#[cfg(any(test, feature = "integration"))]
pub mod bundle;
mod codec;
pub mod compaction;
pub mod faults;
pub mod fixtures;
#[cfg(any(test, feature = "integration"))]
pub mod integration;
mod layout;
pub mod leaf_marker;
pub mod memory;
pub mod ports;
pub mod quarantine;
mod reader;
mod record;
pub mod retention_snapshot;
mod schema_store;
mod sqs;
mod subscriber;
mod window;

pub use codec::{
    CodecError, RecordColumns, Tier, arrow_schema, decode_columns, decode_parquet, decode_where,
    encode_parquet, row_count, sort_records, to_record_batch,
};
pub use compaction::{CompactionReport, Compactor, CompactorConfig, DayFailure};
pub use layout::{
    AUDIT_PREFIX, INGEST_PREFIX, INTEGRATED_PREFIX, KeyError, ObjectKey, PartitionKey,
    QUARANTINE_PREFIX, ingest_file_newest, ingest_file_span, ingest_object_key,
    quarantine_object_key, tenant_prefix,
};
pub use ports::{
    BlobError, BlobStore, CatalogError, ClaimContext, ClaimOutcome, ClaimRequest, Clock,
    DedupeError, DedupeStore, FixedClock, ObjectInfo, PartitionCatalog, SystemClock,
};
pub use reader::{
    Deduplicated, READ_ATTEMPTS, ReadAttempts, StorageError, TenantFiles, TenantReader,
};
pub use record::{AuditRecord, RecordRef, payload_sha256};
pub use schema_store::{SchemaLoadError, load_schemas};
pub use sqs::{SqsBatch, SqsRecord};
pub use subscriber::{
    BatchOutcome, BatchStats, CONFLICT, InboundMessage, OUT_OF_WINDOW, QuarantineRecord,
    RetryReason, Subscriber, SubscriberConfig,
};
pub use window::{AcceptedWindow, DEFAULT_EARLIEST, MAX_FUTURE_SKEW, WindowError};

#[cfg(test)]
mod pipeline_tests;
