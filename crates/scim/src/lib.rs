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
//! - `service`: the operations (create, read, replace, patch, delete, list) over a
//!   store, with rendering, ETags and the outbox events of every change.
//! - `router`: the axum edge, bearer-token tenants, SCIM Error documents.
//! - `relay`: publishes the outbox to the bus and acknowledges what was accepted.
//!
//! - `kind`: the resource types and the facts about each.
//! - `schema`: the declared attributes; writes are checked against them.
//! - `discovery`: `/Schemas` and `/ResourceTypes`.
//!
//! - `paging`: RFC 9865 cursors, stateless and bound to tenant and query.
//! - `bulk`: `/Bulk` with `bulkId` references and `failOnErrors`.
//! - `tenants`: bearer-token credentials (hashed, rotatable) and the per-tenant
//!   compatibility policy, behind the `TenantDirectory` port.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod kind;
pub mod patch;
pub mod projection;
pub mod schema;

pub use filter::{
    AttrPath, CaseExact, CompValue, CompareOp, CoreSchemas, Filter, FilterError, PatchPath,
};
pub use kind::{Change, ResourceKind};
pub use patch::{MemberChange, PatchError, PatchOperation, PatchRequest, Patched};
pub use projection::{ProjectionError, project, wants};
pub mod store;

pub use store::{
    DeadLetter, MemberEvent, OutboxEntry, PendingEvent, Resource, ScimStore, StoreError, UniqueAttr,
};
pub mod router;
pub mod service;

pub use error::{ErrorKind, ScimError};
pub use router::{
    DEFAULT_BURST, DEFAULT_RATE_PER_SECOND, MOUNT, RateLimit, mounted, router, router_with_limits,
};
pub use service::{Caller, IdSource, ListQuery, ScanLimits, ScimService, Shape, Sort, UuidV7};
pub mod paging;
pub mod relay;
pub mod tenants;

pub use tenants::{
    CompatPolicy, Credential, DirectoryError, PolicyStore, ScimDirectory, Scope, TenantDirectory,
    TokenRegistry, UnknownMembers,
};

pub use relay::{OutboxRelay, RelayError, RelayReport};
