//! Embedded adapters, for the laptop default with no AWS: a SQLite `DedupeStore`, a
//! local-directory `BlobStore`, an in-process `EventBus` that routes by EventBridge
//! event patterns into in-memory queues, the SQS-to-Lambda delivery over those queues
//! (`Delivery`), a SQLite `ScimStore`, and a SQLite `LeafIndex` for the tenants'
//! transparency logs. Each passes the same conformance suite as
//! its AWS counterpart.

mod bus;
mod delivery;
mod dir;
mod exports;
mod leaf_index;
mod scim_sqlite;
mod sqlite;

pub use bus::{InProcessBus, LocalQueue};
pub use delivery::{
    BatchHandler, Delivery, DeliveryConfig, DeliveryReport, LAMBDA_PAYLOAD_BYTES, OnBatch,
    SQS_MAX_BATCH, SQS_RECORD_OVERHEAD,
};
pub use dir::LocalDirBlobStore;
pub use leaf_index::SqliteLeafIndex;
pub use scim_sqlite::SqliteScimStore;
pub use sqlite::SqliteDedupeStore;
