//! The SCIM operations over a `ScimStore`, independent of HTTP: validation, rendering
//! (`id`, `meta`, ETags, derived `groups`/`members`), optimistic concurrency, and the
//! outbox events every committed change carries.

use chrono::{DateTime, Utc};
use envelope::clock::{Clock, SystemClock};
use envelope::{Actor, EventId, TenantId};
use serde_json::{Map, Value, json};

use crate::filter::{CompValue, CompareOp, CoreSchemas, Filter, get_ci};
use crate::kind::{Change, ResourceKind};
use crate::paging::CursorScope;
use crate::patch::{self, MemberChange, PatchRequest};
use crate::projection;
use crate::store::{OutboxEntry, Resource, ScimStore, StoreError};

mod listing;
mod membership;
mod render;
mod validation;
mod writes;

use membership::member_ids_in_filter;
use render::{probe, with_id};
pub use validation::{MAX_KEY_VALUE_BYTES, MAX_RESOURCE_BYTES, parse_patch};
use validation::{check_schemas, check_size, clean_body, if_match_ok, patch_members};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub use crate::error::{ERROR_SCHEMA, ErrorKind, ScimError};
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Members rendered inline when a group is read. Past this, `members` holds the first
/// page only and clients list the rest with `members` filters; reads never materialise
/// an unbounded list.
pub const MAX_INLINE_MEMBERS: usize = 1000;
/// Largest page a list request returns (`count` is capped to it).
pub const MAX_PAGE: usize = 200;
/// Largest page of `GET /Groups/{id}/members`.
pub const MAX_MEMBER_PAGE: usize = 1000;
/// Resources scanned at most to answer a filter the store has no index for.
pub const MAX_SCAN: usize = 100_000;
/// Users whose groups a filter naming `groups` may read (one query each) per request.
pub const MAX_GROUP_LOOKUPS: usize = 1_000;

/// What one filtered list may cost before it answers 400 `tooMany` (RFC 7644 §3.12):
/// resources scanned (a store read per 500), and per-user group lookups (a store
/// query each). Past them the client narrows the filter or pages with a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    pub resources: usize,
    pub group_lookups: usize,
}

impl Default for ScanLimits {
    fn default() -> Self {
        Self {
            resources: MAX_SCAN,
            group_lookups: MAX_GROUP_LOOKUPS,
        }
    }
}

/// Who is calling: the tenant (from the bearer token) and the IdP acting.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub tenant: TenantId,
    pub actor: Actor,
    /// How leniently this tenant's requests are read.
    pub policy: crate::tenants::CompatPolicy,
}

/// What a list or search asks for, paging included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort: Option<Sort>,
    /// 1-based (RFC 7644 §3.4.2.4); values below 1 are read as 1.
    pub start_index: Option<usize>,
    pub count: Option<usize>,
    /// RFC 9865: `Some("")` asks for the first page of a cursor-paged list.
    pub cursor: Option<String>,
}

/// `sortBy` / `sortOrder` of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub by: String,
    pub descending: bool,
}

/// `attributes` / `excludedAttributes` of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub attributes: Option<String>,
    pub excluded: Option<String>,
}

pub struct ScimService {
    store: std::sync::Arc<dyn ScimStore>,
    base_url: String,
    limits: ScanLimits,
    clock: std::sync::Arc<dyn Clock>,
    ids: std::sync::Arc<dyn IdSource>,
}

/// Where new resource and event ids come from: UUIDv7 (time-ordered), unless a test
/// pins them.
pub trait IdSource: Send + Sync {
    fn resource_id(&self) -> String;
    fn event_id(&self) -> EventId;
}

/// Fresh UUIDv7s.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7;

impl IdSource for UuidV7 {
    #[allow(clippy::disallowed_methods)] // the one place ids are minted
    fn resource_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }
    #[allow(clippy::disallowed_methods)]
    fn event_id(&self) -> EventId {
        EventId::new_v7()
    }
}

pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

impl ScimService {
    pub fn new(store: std::sync::Arc<dyn ScimStore>, base_url: impl Into<String>) -> Self {
        Self {
            store,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            limits: ScanLimits::default(),
            clock: std::sync::Arc::new(SystemClock),
            ids: std::sync::Arc::new(UuidV7),
        }
    }

    /// The clock every write stamps and every cursor is checked against.
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_ids(mut self, ids: std::sync::Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// The service's time (credentials are checked against it too).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn with_scan_limits(mut self, limits: ScanLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn store(&self) -> &dyn ScimStore {
        &*self.store
    }

    /// `meta.location` of a resource.
    pub fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{id}", self.base_url, kind.collection())
    }

    fn event(
        &self,
        caller: &Caller,
        event_type: &str,
        at: DateTime<Utc>,
        payload: Value,
    ) -> OutboxEntry {
        OutboxEntry {
            event_id: self.ids.event_id(),
            tenant_id: caller.tenant.clone(),
            event_type: event_type.to_owned(),
            occurred_at: at,
            actor: caller.actor.clone(),
            payload,
        }
    }
}
