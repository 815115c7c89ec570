//! Embedded adapters, for the laptop default with no AWS: a SQLite `DedupeStore`, a
//! local-directory `BlobStore`, an in-process `EventBus` that routes by EventBridge
//! event patterns into in-memory queues, and a SQLite `ScimStore`. Each passes the same
//! conformance suite as its AWS counterpart (the DynamoDB `ScimStore` is still to come).

mod bus;
mod dir;
mod scim_sqlite;
mod sqlite;

pub use bus::{InProcessBus, LocalQueue};
pub use dir::LocalDirBlobStore;
pub use scim_sqlite::SqliteScimStore;
pub use sqlite::SqliteDedupeStore;
