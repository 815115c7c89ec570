//! The event envelope: what producers put on the EventBridge bus and what consumers read.
//!
//! This crate owns the wire contract (`BusEvent` wrapping our `Detail` of metadata and
//! payload), the identifiers in it (`TenantId`, `EventId`), the payload tree (`SortedJson`)
//! that validation and the canonical form read, the registry of versioned JSON
//! Schemas that payloads are validated against, the PutEvents entry size formula, the
//! EventBridge event-pattern matcher, and the `Publisher` that packs entries into PutEvents
//! requests and retries only what failed retryably. It does no IO of its own: the bus is a
//! port (`EventBus`) implemented by the adapter crates.

mod canonical;
pub mod clock;
mod event;
mod ids;
pub mod pattern;
mod publish;
mod schema;
mod size;
mod sorted_json;

pub use canonical::canonical_json;
pub use event::{
    Actor, ActorType, BusEvent, Detail, EnvelopeError, Metadata, RawDetail, ValidatedEvent,
    decode_bus_event,
};
pub use ids::{EventId, IdError, TenantId};
pub use publish::{
    BusError, EntryOutcome, EventBus, OutgoingEvent, PublishError, PublishReport, Publisher,
    PublisherConfig,
};
pub use schema::{SchemaError, SchemaRegistry, parse_schema_file_name};
pub use size::{PutEventsEntry, entry_size};
pub use sorted_json::{SortedJson, SortedJsonRepr};

/// PutEvents entry and request size limit since January 2026 (was 256 KiB).
pub const PUT_EVENTS_MAX_BYTES: usize = 1024 * 1024;
/// The size limit before January 2026, for accounts or regions that still enforce it.
pub const PUT_EVENTS_LEGACY_MAX_BYTES: usize = 256 * 1024;
/// PutEvents accepts at most this many entries per request.
pub const PUT_EVENTS_MAX_ENTRIES: usize = 10;
