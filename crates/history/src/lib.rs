//! A tenant's own audit history, for the customer-facing audit API and viewer: pages
//! newest first by `(occurred_at, event_id)` with filters, one event by id, polling in
//! the order events were accepted (so a late event is never skipped), and exports with
//! no row cap. Cursors and checkpoints are sealed (HMAC) and bound to their tenant, and
//! to their query for cursors, so a client can hold them but not edit or move them.
//!
//! It reads both stored tiers through `auditlog::TenantReader`, deduplicated the way the
//! compactor and the Athena views are; it knows nothing of HTTP or AWS.

pub mod export;
pub mod history;
pub mod query;
pub mod seal;
pub mod view;

pub use export::{CHUNK_BYTES, CSV_COLUMNS, ExportFormat, ExportStore, ExportUpload, RowWriter};
pub use history::{History, HistoryConfig, HistoryError, MAX_POLL_LIMIT, Page, PollPage};
pub use query::{DEFAULT_LIMIT, EventQuery, MAX_LIMIT, Match, QueryError};
pub use seal::{SealError, SealKey};
pub use view::EventView;
