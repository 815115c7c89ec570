//! The SCIM 2.0 domain (RFC 7643, RFC 7644): what the SCIM service understands,
//! independent of HTTP and storage.
//!
//! - `filter`: the filter and PATCH path language, parsed with positions in its errors,
//!   bounded against hostile input, and evaluated with SCIM's case rules.
//! - `patch`: the PATCH engine, with the IdPs' dialects; operations on a group's
//!   `members` become membership changes instead of touching a member list.
//! - `projection`: `attributes` / `excludedAttributes` on responses.
//! - `store`: the `ScimStore` port (one record per user, group and membership, with a
//!   reverse index and a transactional outbox); the SQLite adapter is in adapters-local.
//!
//! Still to come (issue 3): resources and schemas endpoints, the per-tenant
//! compatibility policy, the DynamoDB adapter, the outbox relay, and the axum router.

pub mod filter;
pub mod patch;
pub mod projection;

pub use filter::{
    AttrPath, CaseExact, CompValue, CompareOp, CoreSchemas, Filter, FilterError, PatchPath,
};
pub use patch::{MemberChange, PatchError, PatchOperation, PatchRequest, Patched, ResourceKind};
pub use projection::{ProjectionError, project, wants};
pub mod store;

pub use store::{
    MemberEvent, OutboxEntry, PendingEvent, Resource, ScimStore, StoreError, UniqueAttr,
};
