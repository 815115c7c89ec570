//! Embedded adapters, for the laptop default with no AWS: a SQLite `DedupeStore`, a
//! local-directory `BlobStore`, and an in-process `EventBus` that routes by EventBridge
//! event patterns into in-memory queues. Each passes the same conformance suite as its
//! AWS counterpart.

mod bus;
mod dir;
mod sqlite;

pub use bus::{InProcessBus, LocalQueue};
pub use dir::LocalDirBlobStore;
pub use sqlite::SqliteDedupeStore;
