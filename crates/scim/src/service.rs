//! The SCIM operations over a `ScimStore`, independent of HTTP: validation, rendering
//! (`id`, `meta`, ETags, derived `groups`/`members`), optimistic concurrency, and the
//! outbox events every committed change carries.

use chrono::{DateTime, Utc};
use envelope::clock::{Clock, SystemClock};
use envelope::{Actor, EventId, TenantId};
use serde_json::{Map, Value, json};

use crate::filter::{CompValue, CompareOp, CoreSchemas, Filter, FilterError, get_ci};
use crate::kind::{Change, ResourceKind};
use crate::paging::CursorScope;
use crate::patch::{self, MemberChange, PatchError, PatchRequest};
use crate::projection::{self, ProjectionError};
use crate::store::{OutboxEntry, Resource, ScimStore, StoreError};

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

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("resource"),
            StoreError::Uniqueness { attr, value } => ScimError::of(
                ErrorKind::Uniqueness,
                format!("{attr} {value:?} is already taken"),
            ),
            StoreError::VersionMismatch { .. } => ScimError::of(
                ErrorKind::PreconditionFailed,
                "resource was modified; re-read it and retry",
            ),
            StoreError::Throttled(detail) => {
                tracing::warn!(detail, "store throttled");
                ScimError::of(ErrorKind::TooManyRequests, "too many requests; retry later")
            }
            StoreError::Unavailable(detail) => {
                // internal detail goes to the log, not to the client
                tracing::error!(detail, "store unavailable");
                ScimError::of(ErrorKind::Unavailable, "service temporarily unavailable")
            }
            // the request's fault, never retried: an IdP retrying a 503 would loop
            StoreError::TooLarge(detail) => {
                tracing::warn!(detail, "resource too large for the store");
                ScimError::of(
                    ErrorKind::PayloadTooLarge,
                    format!("the resource is over the {MAX_RESOURCE_BYTES}-byte limit"),
                )
            }
            StoreError::Invalid(detail) => {
                tracing::warn!(detail, "value refused by the store");
                ScimError::of(
                    ErrorKind::InvalidValue,
                    format!(
                        "a value is over the {MAX_KEY_VALUE_BYTES}-byte limit of ids and unique names"
                    ),
                )
            }
        }
    }
}

impl From<crate::schema::Nonconforming> for ScimError {
    fn from(e: crate::schema::Nonconforming) -> Self {
        ScimError::of(ErrorKind::InvalidValue, e.to_string())
    }
}

impl From<PatchError> for ScimError {
    fn from(e: PatchError) -> Self {
        ScimError::of(e.kind(), e.to_string())
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::of(ErrorKind::InvalidFilter, e.to_string())
    }
}

impl From<ProjectionError> for ScimError {
    fn from(e: ProjectionError) -> Self {
        ScimError::of(ErrorKind::InvalidSyntax, e.to_string())
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

/// What a membership change knows about a member: whether it is a user or a group, and
/// its name for the audit record.
#[derive(Debug, Clone, PartialEq)]
struct MemberInfo {
    kind: ResourceKind,
    display: Option<String>,
}

type KnownMembers = std::collections::HashMap<String, MemberInfo>;

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

/// The largest resource stored, as JSON: under DynamoDB's 400 KB item with room for
/// its key and bookkeeping, and far above any user or group an IdP sends.
pub const MAX_RESOURCE_BYTES: usize = 256 * 1024;
/// The longest id or unique name (userName, a group's displayName): both are keys, and
/// DynamoDB keys hold at most 1-2 KB. Longer ones cannot exist, so reads naming one
/// find nothing; writes naming one get 400.
pub const MAX_KEY_VALUE_BYTES: usize = 512;

/// A resource about to be written fits the store, on every store alike.
fn check_size(r: &Resource) -> Result<(), ScimError> {
    let attr = r.kind.unique_attribute();
    if let Some(Value::String(name)) = get_ci(&r.body, attr)
        && name.len() > MAX_KEY_VALUE_BYTES
    {
        return Err(ScimError::of(
            ErrorKind::InvalidValue,
            format!("{attr} is over {MAX_KEY_VALUE_BYTES} bytes"),
        ));
    }
    let bytes = serde_json::to_vec(&r.body).map_or(0, |b| b.len());
    if bytes > MAX_RESOURCE_BYTES {
        return Err(ScimError::of(
            ErrorKind::PayloadTooLarge,
            format!(
                "the resource is {bytes} bytes as JSON, over the {MAX_RESOURCE_BYTES}-byte limit"
            ),
        ));
    }
    Ok(())
}

/// Attributes a client may not set, and nulls (Entra sends `null` for unset fields).
/// `before` is the stored body a PUT or PATCH changes: values it already holds are not
/// checked against the schema again.
fn clean_body(
    body: Value,
    kind: ResourceKind,
    policy: &crate::tenants::CompatPolicy,
    before: Option<&Value>,
) -> Result<Value, ScimError> {
    let mut body = if policy.string_booleans {
        patch::coerce_booleans(body)
    } else {
        body
    };
    let Some(obj) = body.as_object_mut() else {
        return Err(ScimError::of(
            ErrorKind::InvalidSyntax,
            "the request body must be a JSON object",
        ));
    };
    obj.retain(|_, v| !v.is_null());
    obj.values_mut().for_each(drop_nulls);
    // Entra ID sends the enterprise manager as a bare id; RFC 7643 §4.3 makes it complex
    if let Some((_, ext)) = obj
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(ENTERPRISE_SCHEMA))
        && let Some(ext) = ext.as_object_mut()
        && let Some(key) = ext
            .keys()
            .find(|k| k.eq_ignore_ascii_case("manager"))
            .cloned()
        && let Some(Value::String(id)) = ext.get(&key).cloned()
    {
        ext.insert(key, json!({ "value": id }));
    }
    // everything sent is what /Schemas declares, even what is not stored below
    let (core, extensions) = crate::schema::of(kind);
    crate::schema::conform(&mut body, core, extensions, before)?;
    if let Some(obj) = body.as_object_mut() {
        // set by the server (id, meta, groups), kept elsewhere (members), never stored
        // (password: changePassword is not supported)
        obj.retain(|k, _| {
            !matches!(
                k.to_ascii_lowercase().as_str(),
                "id" | "meta" | "groups" | "password" | "members" | "schemas"
            )
        });
    }
    let attr = kind.unique_attribute();
    match get_ci(&body, attr) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                format!("{attr} is required and must be a non-empty string"),
            ));
        }
    }
    Ok(body)
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|_, v| !v.is_null());
            o.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn check_schemas(
    body: &Value,
    kind: ResourceKind,
    policy: &crate::tenants::CompatPolicy,
) -> Result<(), ScimError> {
    let want = kind.schema();
    match body.get("schemas") {
        // lenient: some clients omit schemas; a present list must name the resource's
        None if policy.optional_schemas => Ok(()),
        Some(Value::Array(list))
            if list
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(want))) =>
        {
            Ok(())
        }
        _ => Err(ScimError::of(
            ErrorKind::InvalidSyntax,
            format!("schemas must include {want}"),
        )),
    }
}

fn if_match_ok(if_match: Option<&str>, version: u64) -> bool {
    match if_match.map(str::trim) {
        None | Some("*") => true,
        Some(tags) => tags.split(',').any(|t| {
            let t = t.trim();
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.trim_matches('"') == version.to_string()
        }),
    }
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

    fn summary(r: &Resource) -> Value {
        let mut p = Map::new();
        p.insert("id".into(), json!(r.id));
        for attr in ["userName", "displayName", "externalId", "active"] {
            if let Some(v) = get_ci(&r.body, attr) {
                p.insert(attr.into(), v.clone());
            }
        }
        Value::Object(p)
    }

    /// The resource as returned to clients, before projection.
    async fn render(
        &self,
        caller: &Caller,
        r: &Resource,
        shape: &Shape,
    ) -> Result<Value, ScimError> {
        let mut v = r.body.clone();
        let obj = v.as_object_mut().ok_or_else(|| {
            ScimError::of(ErrorKind::Internal, "stored resource is not an object")
        })?;
        let schema = r.kind.schema();
        // an extension emptied attribute by attribute is no longer present
        obj.retain(|k, v| {
            !(k.to_ascii_lowercase().contains(":extension:")
                && v.as_object().is_some_and(Map::is_empty))
        });
        let mut schemas = vec![json!(schema)];
        schemas.extend(
            obj.keys()
                .filter(|k| k.to_ascii_lowercase().contains(":extension:"))
                .map(|k| json!(k)),
        );
        obj.insert("schemas".into(), Value::Array(schemas));
        obj.insert("id".into(), json!(r.id));
        let mut m = meta(r);
        m["location"] = json!(self.location(r.kind, &r.id));
        obj.insert("meta".into(), m);
        let (a, x) = (shape.attributes.as_deref(), shape.excluded.as_deref());
        match r.kind {
            ResourceKind::User if projection::wants("groups", a, x) => {
                let groups = self.store.groups_of(&caller.tenant, &r.id).await?;
                if !groups.is_empty() {
                    let list: Vec<Value> = groups
                        .iter()
                        .map(|g| json!({"value": g, "$ref": format!("{}/Groups/{g}", self.base_url), "type": "direct"}))
                        .collect();
                    obj.insert("groups".into(), Value::Array(list));
                }
            }
            ResourceKind::Group if projection::wants("members", a, x) => {
                let members = self
                    .store
                    .members(&caller.tenant, &r.id, None, MAX_INLINE_MEMBERS)
                    .await?;
                if !members.is_empty() {
                    let list: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
                    obj.insert("members".into(), Value::Array(list));
                }
            }
            _ => {}
        }
        Ok(projection::project(&v, a, x)?)
    }

    pub async fn create(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        body: Value,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        check_schemas(&body, kind, &caller.policy)?;
        let members = if kind == ResourceKind::Group {
            patch_members(&body)?
        } else {
            vec![]
        };
        let body = clean_body(body, kind, &caller.policy, None)?;
        let id = self.ids.resource_id();
        let known = self
            .resolve_members(caller, &id, &[MemberChange::Add(members.clone())])
            .await?;
        let now = self.clock.now();
        let r = Resource {
            id,
            kind,
            version: 1,
            created: now,
            last_modified: now,
            body,
        };
        let event_type = kind.event_type(Change::Created);
        check_size(&r)?;
        let ev = self.event(caller, event_type, now, Self::summary(&r));
        self.store.create(&caller.tenant, &r, &[ev]).await?;
        if !members.is_empty() {
            self.change_members(caller, &r, &[MemberChange::Add(members)], &known)
                .await?;
        }
        Ok((self.render(caller, &r, shape).await?, r.version))
    }

    pub async fn get(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        let r = self.load(caller, kind, id, None).await?;
        Ok((self.render(caller, &r, shape).await?, r.version))
    }

    async fn load(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        if id.len() > MAX_KEY_VALUE_BYTES {
            // no such id was ever written
            return Err(ScimError::not_found(&format!(
                "{} {id}",
                ResourceKind::name(kind)
            )));
        }
        let r = self
            .store
            .get(&caller.tenant, kind, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ScimError::not_found(&format!("{} {id}", ResourceKind::name(kind)))
                }
                e => e.into(),
            })?;
        if !if_match_ok(if_match, r.version) {
            return Err(ScimError::of(
                ErrorKind::PreconditionFailed,
                format!(
                    "If-Match does not match the current version {}",
                    etag(r.version)
                ),
            ));
        }
        Ok(r)
    }

    async fn commit_update(
        &self,
        caller: &Caller,
        old: &Resource,
        body: Value,
    ) -> Result<Resource, ScimError> {
        let now = self.clock.now();
        let new = Resource {
            version: old.version + 1,
            last_modified: now,
            body,
            ..old.clone()
        };
        if new.body == old.body {
            return Ok(old.clone());
        }
        let mut payload = Self::summary(&new);
        let changed: Vec<String> = {
            let (a, b) = (old.body.as_object(), new.body.as_object());
            let mut keys: Vec<String> = a
                .into_iter()
                .chain(b)
                .flat_map(|m| m.keys().cloned())
                .collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| old.body.get(k) != new.body.get(k))
                .collect()
        };
        payload["changedAttributes"] = json!(changed);
        let was_active = get_ci(&old.body, "active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let is_active = get_ci(&new.body, "active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let event_type = old.kind.event_type(if was_active && !is_active {
            Change::Deactivated
        } else {
            Change::Updated
        });
        check_size(&new)?;
        let ev = self.event(caller, event_type, now, payload);
        self.store
            .update(&caller.tenant, &new, old.version, &[ev])
            .await?;
        Ok(new)
    }

    pub async fn replace(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        check_schemas(&body, kind, &caller.policy)?;
        let old = self.load(caller, kind, id, if_match).await?;
        if let Some(sent) = get_ci(&body, "id").and_then(Value::as_str)
            && sent != id
        {
            return Err(ScimError::of(ErrorKind::Mutability, "id cannot be changed"));
        }
        // PUT replaces members too (Rippling): compute the difference page by page
        let members = if kind == ResourceKind::Group && get_ci(&body, "members").is_some() {
            Some(patch_members(&body)?)
        } else {
            None
        };
        let body = clean_body(body, kind, &caller.policy, Some(&old.body))?;
        let changes = match members {
            Some(wanted) => vec![MemberChange::RemoveAll, MemberChange::Add(wanted)],
            None => vec![],
        };
        let known = self.resolve_members(caller, id, &changes).await?;
        let new = self.commit_update(caller, &old, body).await?;
        self.change_members(caller, &new, &changes, &known).await?;
        Ok((self.render(caller, &new, shape).await?, new.version))
    }

    pub async fn patch(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        request: &PatchRequest,
        if_match: Option<&str>,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        let old = self.load(caller, kind, id, if_match).await?;
        // the engine sees `id` so that a client sending it back unchanged is accepted
        let patched = patch::apply(&with_id(&old), request, kind, &caller.policy)?;
        let body = clean_body(patched.resource, kind, &caller.policy, Some(&old.body))?;
        // every named member is checked before anything is written: all or nothing
        let known = self.resolve_members(caller, id, &patched.members).await?;
        let new = self.commit_update(caller, &old, body).await?;
        self.change_members(caller, &new, &patched.members, &known)
            .await?;
        Ok((self.render(caller, &new, shape).await?, new.version))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let old = match self.load(caller, kind, id, if_match).await {
            Ok(old) => old,
            // the IdP retrying a delete that stopped half-way: finish it, still 404
            Err(e) if e.status == 404 => {
                if id.len() <= MAX_KEY_VALUE_BYTES {
                    self.store
                        .delete_leftovers(&caller.tenant, kind, id)
                        .await?;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let event_type = kind.event_type(Change::Deleted);
        let ev = self.event(caller, event_type, self.clock.now(), Self::summary(&old));
        Ok(self
            .store
            .delete(&caller.tenant, kind, id, Some(old.version), &[ev])
            .await?)
    }

    /// Looks up every member a change names (O(members named), 16 reads in flight):
    /// its kind and display name. Members to add must exist in the caller's tenant and
    /// a group cannot contain itself; members to remove need not exist any more.
    async fn resolve_members(
        &self,
        caller: &Caller,
        group_id: &str,
        changes: &[MemberChange],
    ) -> Result<KnownMembers, ScimError> {
        let mut to_add: Vec<&str> = Vec::new();
        let mut to_remove: Vec<&str> = Vec::new();
        for change in changes {
            match change {
                MemberChange::Add(ids) => to_add.extend(ids.iter().map(String::as_str)),
                MemberChange::Remove(ids) => to_remove.extend(ids.iter().map(String::as_str)),
                MemberChange::RemoveAll => {}
            }
        }
        if to_add.contains(&group_id) {
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                "a group cannot be a member of itself",
            ));
        }
        let known = self
            .lookup_members(caller, to_add.iter().chain(&to_remove).copied())
            .await?;
        let missing: Vec<&str> = to_add
            .iter()
            .copied()
            .filter(|id| !known.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().copied().take(10).collect();
            if caller.policy.unknown_members == crate::tenants::UnknownMembers::Skip {
                tracing::warn!(tenant = %caller.tenant, group_id, skipped = ?shown, "unknown members skipped by policy");
                return Ok(known);
            }
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                format!(
                    "{} member(s) are neither users nor groups of this tenant: {}",
                    missing.len(),
                    shown.join(", ")
                ),
            ));
        }
        Ok(known)
    }

    /// Kind and display name of every id that is a user or group of the tenant: users
    /// first, then groups among the rest, 1,000 ids at a time (bounded memory, and one
    /// store round trip per 100 ids where the store batches).
    async fn lookup_members<'a>(
        &self,
        caller: &Caller,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<KnownMembers, ScimError> {
        let mut ids: Vec<&str> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        let mut known = KnownMembers::new();
        // an id longer than any written is nobody
        ids.retain(|id| id.len() <= MAX_KEY_VALUE_BYTES);
        for chunk in ids.chunks(1000) {
            let mut rest: Vec<String> = chunk.iter().map(|s| (*s).to_owned()).collect();
            for kind in ResourceKind::ALL {
                if rest.is_empty() {
                    break;
                }
                let attr = kind.unique_attribute();
                for r in self.store.get_many(&caller.tenant, kind, &rest).await? {
                    let display = get_ci(&r.body, attr)
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    known.insert(r.id, MemberInfo { kind, display });
                }
                rest.retain(|id| !known.contains_key(id));
            }
        }
        Ok(known)
    }

    /// Applies membership changes, one membership at a time, each with its event.
    async fn change_members(
        &self,
        caller: &Caller,
        group: &Resource,
        changes: &[MemberChange],
        known: &KnownMembers,
    ) -> Result<(), ScimError> {
        let display = get_ci(&group.body, "displayName")
            .cloned()
            .unwrap_or(Value::Null);
        let group_ref = json!({"id": group.id, "displayName": display});
        let group_ref = &group_ref;
        let event = |event_type: &'static str, now: DateTime<Utc>, known: &KnownMembers| {
            let known = known.clone();
            move |m: &str| {
                let mut member = json!({"id": m, "type": "User"});
                if let Some(info) = known.get(m) {
                    member["type"] = json!(ResourceKind::name(info.kind));
                    if let Some(d) = &info.display {
                        member["display"] = json!(d);
                    }
                }
                self.event(
                    caller,
                    event_type,
                    now,
                    json!({"group": group_ref, "member": member}),
                )
            }
        };
        for change in changes {
            let now = self.clock.now();
            match change {
                MemberChange::Add(ids) => {
                    // only members that exist: the others were refused or, by the
                    // tenant's policy, skipped
                    let ids: Vec<String> = ids
                        .iter()
                        .filter(|id| known.contains_key(*id))
                        .cloned()
                        .collect();
                    self.store
                        .add_members(
                            &caller.tenant,
                            &group.id,
                            &ids,
                            &event("scim.group.member_added", now, known),
                        )
                        .await?;
                }
                MemberChange::Remove(ids) => {
                    self.store
                        .remove_members(
                            &caller.tenant,
                            &group.id,
                            ids,
                            &event("scim.group.member_removed", now, known),
                        )
                        .await?;
                }
                MemberChange::RemoveAll => {
                    // page by page: never the whole list at once
                    loop {
                        let page = self
                            .store
                            .members(&caller.tenant, &group.id, None, 1000)
                            .await?;
                        if page.is_empty() {
                            break;
                        }
                        let page_known = self
                            .lookup_members(caller, page.iter().map(String::as_str))
                            .await?;
                        self.store
                            .remove_members(
                                &caller.tenant,
                                &group.id,
                                &page,
                                &event("scim.group.member_removed", now, &page_known),
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A ListResponse. `userName eq` / `displayName eq` use the store's index; other
    /// filters scan at most `MAX_SCAN` resources. With `cursor` set (RFC 9865) and no
    /// filter or sort, a page costs O(count) whatever the tenant's size.
    pub async fn list(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        query: &ListQuery,
        shape: &Shape,
    ) -> Result<Value, ScimError> {
        let count = query.count.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let filter = query
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(Filter::parse)
            .transpose()?;
        let sort_path = query.sort.as_ref().map(sort_path).transpose()?;
        let descending = query.sort.as_ref().is_some_and(|s| s.descending);
        let now = self.clock.now().timestamp();
        let scope = CursorScope::new(
            &caller.tenant,
            &[
                ResourceKind::name(kind),
                query.filter.as_deref().unwrap_or_default().trim(),
                query.sort.as_ref().map_or("", |s| s.by.as_str()),
                if descending { "desc" } else { "asc" },
            ],
        );
        if query.cursor.is_some() && query.start_index.is_some() {
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                "use either startIndex or cursor, not both",
            ));
        }
        let cursor = match &query.cursor {
            Some(text) => Some(scope.read(text, now)?),
            None => None,
        };
        if let Some(position) = &cursor
            && filter.is_none()
            && sort_path.is_none()
        {
            // the store's own order (by id) is the cursor order: read one page, plus one
            // item to know whether there is a next page
            let mut page = self
                .store
                .list(
                    &caller.tenant,
                    kind,
                    position.as_ref().map(|c| c.id.as_str()),
                    count + 1,
                )
                .await?;
            let more = page.len() > count;
            page.truncate(count);
            let next = more
                .then(|| page.last().map(|r| scope.issue(None, &r.id, now)))
                .flatten();
            return self
                .list_response(caller, &page, None, None, next, shape)
                .await;
        }

        let matches = self.matching(caller, kind, filter.as_ref()).await?;
        // each key once, not once per comparison (it clones the resource)
        let mut keyed: Vec<(Option<String>, Resource)> = matches
            .into_iter()
            .map(|r| (sort_path.as_ref().and_then(|p| sort_key(p, &r)), r))
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            order(ka.as_deref(), &a.id, kb.as_deref(), &b.id, descending)
        });
        let total = keyed.len();
        match cursor {
            Some(position) => {
                let from = match &position {
                    None => 0,
                    Some(c) => keyed.partition_point(|(k, r)| {
                        order(k.as_deref(), &r.id, c.key.as_deref(), &c.id, descending)
                            != std::cmp::Ordering::Greater
                    }),
                };
                let page: Vec<Resource> = keyed
                    .iter()
                    .skip(from)
                    .take(count)
                    .map(|(_, r)| r.clone())
                    .collect();
                let next = (count > 0 && from + count < total)
                    .then(|| {
                        keyed
                            .get(from + count - 1)
                            .map(|(k, r)| scope.issue(k.clone(), &r.id, now))
                    })
                    .flatten();
                self.list_response(caller, &page, Some(total), None, next, shape)
                    .await
            }
            None => {
                let start = query.start_index.unwrap_or(1).max(1);
                let page: Vec<Resource> = keyed
                    .iter()
                    .skip(start - 1)
                    .take(count)
                    .map(|(_, r)| r.clone())
                    .collect();
                self.list_response(caller, &page, Some(total), Some(start), None, shape)
                    .await
            }
        }
    }

    async fn list_response(
        &self,
        caller: &Caller,
        page: &[Resource],
        total: Option<usize>,
        start_index: Option<usize>,
        next_cursor: Option<String>,
        shape: &Shape,
    ) -> Result<Value, ScimError> {
        let mut resources = Vec::with_capacity(page.len());
        for r in page {
            resources.push(self.render(caller, r, shape).await?);
        }
        let mut body = json!({
            "schemas": [LIST_SCHEMA],
            "itemsPerPage": resources.len(),
            "Resources": resources,
        });
        if let Some(total) = total {
            body["totalResults"] = json!(total);
        }
        if let Some(start) = start_index {
            body["startIndex"] = json!(start);
        }
        if let Some(next) = next_cursor {
            body["nextCursor"] = json!(next);
        }
        Ok(body)
    }

    /// Every resource of a kind matching the filter (at most `MAX_SCAN` scanned).
    async fn matching(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        filter: Option<&Filter>,
    ) -> Result<Vec<Resource>, ScimError> {
        let unique_attr = (kind.unique_attribute(), kind.unique());
        if let Some(Filter::Compare(p, CompareOp::Eq, CompValue::String(v))) = filter
            && p.sub_attr.is_none()
            && p.attr.eq_ignore_ascii_case(unique_attr.0)
        {
            if v.len() > MAX_KEY_VALUE_BYTES {
                return Ok(Vec::new());
            }
            return Ok(self
                .store
                .find_unique(&caller.tenant, unique_attr.1, v)
                .await?
                .into_iter()
                .collect());
        }
        // Memberships are not part of a stored resource: a filter on a group's members
        // is answered from the reverse index of the ids it names, a filter on a user's
        // groups from that user's groups.
        let (member_probes, user_groups) = match (kind, filter) {
            (ResourceKind::Group, Some(f)) => {
                let mut probes = Vec::new();
                for id in member_ids_in_filter(f)? {
                    let groups = self.store.groups_of(&caller.tenant, &id).await?;
                    probes.push((id, groups));
                }
                (probes, false)
            }
            (ResourceKind::User, Some(f)) => (vec![], filter_mentions(f, "groups")),
            _ => (vec![], false),
        };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let (mut scanned, mut lookups) = (0, 0);
        let too_many = |what: &str| {
            ScimError::of(
                ErrorKind::TooMany,
                format!(
                    "the filter {what}; narrow it (userName eq or displayName eq use an index), or page with cursor and no filter"
                ),
            )
        };
        loop {
            let page = self
                .store
                .list(&caller.tenant, kind, after.as_deref(), 500)
                .await?;
            if page.is_empty() {
                break;
            }
            scanned += page.len();
            if scanned > self.limits.resources {
                return Err(too_many(&format!(
                    "would scan more than {} resources",
                    self.limits.resources
                )));
            }
            after = page.last().map(|r| r.id.clone());
            for r in page {
                let keep = match filter {
                    None => true,
                    Some(f) => {
                        let mut probe = probe(&r);
                        if let Some(obj) = probe.as_object_mut() {
                            let members: Vec<Value> = member_probes
                                .iter()
                                .filter(|(_, groups)| groups.contains(&r.id))
                                .map(|(id, _)| json!({"value": id}))
                                .collect();
                            if !members.is_empty() {
                                obj.insert("members".into(), Value::Array(members));
                            }
                            if user_groups {
                                lookups += 1;
                                if lookups > self.limits.group_lookups {
                                    return Err(too_many(&format!(
                                        "names groups, which reads each scanned user's groups: more than {} users",
                                        self.limits.group_lookups
                                    )));
                                }
                                let groups = self.store.groups_of(&caller.tenant, &r.id).await?;
                                let groups: Vec<Value> =
                                    groups.iter().map(|g| json!({"value": g})).collect();
                                obj.insert("groups".into(), Value::Array(groups));
                            }
                        }
                        f.matches(&probe, &CoreSchemas)
                    }
                };
                if keep {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// A page of a group's members (`GET /Groups/{id}/members`, our extension): how a
    /// client reads a group past the `MAX_INLINE_MEMBERS` a group read carries. Cursor
    /// paged, O(count) per page whatever the group's size.
    pub async fn list_members(
        &self,
        caller: &Caller,
        group_id: &str,
        cursor: Option<&str>,
        count: Option<usize>,
    ) -> Result<Value, ScimError> {
        self.load(caller, ResourceKind::Group, group_id, None)
            .await?;
        let count = count.unwrap_or(MAX_MEMBER_PAGE).min(MAX_MEMBER_PAGE);
        let now = self.clock.now().timestamp();
        let scope = CursorScope::new(&caller.tenant, &["members", group_id]);
        let after = match cursor {
            Some(text) => scope.read(text, now)?.map(|c| c.id),
            None => None,
        };
        let mut page = self
            .store
            .members(&caller.tenant, group_id, after.as_deref(), count + 1)
            .await?;
        let more = page.len() > count;
        page.truncate(count);
        let resources: Vec<Value> = page
            .iter()
            .map(|m| json!({"value": m, "$ref": format!("{}/Users/{m}", self.base_url)}))
            .collect();
        let mut body = json!({
            "schemas": [LIST_SCHEMA],
            "itemsPerPage": resources.len(),
            "Resources": resources,
        });
        if more && let Some(last) = page.last() {
            body["nextCursor"] = json!(scope.issue(None, last, now));
        }
        Ok(body)
    }
}

fn sort_path(sort: &Sort) -> Result<crate::filter::AttrPath, ScimError> {
    let path = parse_sort_path(sort)?;
    if ["members", "groups"]
        .iter()
        .any(|a| path.attr.eq_ignore_ascii_case(a))
    {
        // memberships are records of their own, not part of the resource sorted
        return Err(ScimError::of(
            ErrorKind::InvalidValue,
            format!("sortBy {:?}: lists cannot be sorted by membership", sort.by),
        ));
    }
    Ok(path)
}

fn parse_sort_path(sort: &Sort) -> Result<crate::filter::AttrPath, ScimError> {
    crate::filter::PatchPath::parse(&sort.by)
        .ok()
        .and_then(|p| match p {
            crate::filter::PatchPath::Attr(a) => Some(a),
            _ => None,
        })
        .ok_or_else(|| {
            ScimError::of(
                ErrorKind::InvalidSyntax,
                format!("sortBy {:?} is not an attribute path", sort.by),
            )
        })
}

/// The value a resource sorts by; multi-valued attributes sort by their primary value,
/// else the first (RFC 7644 §3.4.2.3).
fn sort_key(path: &crate::filter::AttrPath, r: &Resource) -> Option<String> {
    let exact = crate::filter::CaseExact::case_exact(&CoreSchemas, path);
    let probe = probe(r);
    let base = crate::filter::top_value(&probe, path)?;
    let v = match &path.sub_attr {
        Some(sub) => match base {
            Value::Array(items) => {
                let pick = items
                    .iter()
                    .find(|i| get_ci(i, "primary") == Some(&json!(true)))
                    .or(items.first())?;
                get_ci(pick, sub)?
            }
            v => get_ci(v, sub)?,
        },
        None => base,
    };
    Some(match v {
        Value::String(s) if exact => s.clone(),
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    })
}

/// List order: by sort key (missing keys last in either direction), then by id, so that
/// pages are stable and a cursor position is unambiguous.
fn order(
    ka: Option<&str>,
    ida: &str,
    kb: Option<&str>,
    idb: &str,
    descending: bool,
) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    match (ka, kb) {
        (Some(x), Some(y)) if descending => y.cmp(x).then_with(|| ida.cmp(idb)),
        (Some(x), Some(y)) => x.cmp(y).then_with(|| ida.cmp(idb)),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => ida.cmp(idb),
    }
}

/// Does the filter mention attribute `attr` anywhere?
fn filter_mentions(f: &Filter, attr: &str) -> bool {
    match f {
        Filter::Present(p) | Filter::Compare(p, _, _) => p.attr.eq_ignore_ascii_case(attr),
        Filter::ValuePath(p, inner) => {
            p.attr.eq_ignore_ascii_case(attr) || filter_mentions(inner, attr)
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            filter_mentions(a, attr) || filter_mentions(b, attr)
        }
        Filter::Not(inner) => filter_mentions(inner, attr),
    }
}

/// The member ids a group filter asks about. Only `members[value eq "id"]` and
/// `members.value eq "id"` can be answered without reading a whole member list (what
/// Entra ID and Okta send to check one membership); any other use of `members` is
/// refused rather than answered wrongly.
fn member_ids_in_filter(f: &Filter) -> Result<Vec<String>, ScimError> {
    let unsupported = || {
        ScimError::of(
            ErrorKind::InvalidFilter,
            "members can only be filtered as members[value eq \"<id>\"]; list a group's members with GET /Groups/{id}/members",
        )
    };
    let is_members = |p: &crate::filter::AttrPath| p.attr.eq_ignore_ascii_case("members");
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(id))
            if is_members(p)
                && p.sub_attr
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("value")) =>
        {
            Ok(vec![id.clone()])
        }
        Filter::ValuePath(p, inner) if is_members(p) => match inner.as_ref() {
            Filter::Compare(v, CompareOp::Eq, CompValue::String(id))
                if v.sub_attr.is_none() && v.attr.eq_ignore_ascii_case("value") =>
            {
                Ok(vec![id.clone()])
            }
            _ => Err(unsupported()),
        },
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _)
            if is_members(p) =>
        {
            Err(unsupported())
        }
        Filter::Present(_) | Filter::Compare(..) | Filter::ValuePath(..) => Ok(vec![]),
        Filter::And(a, b) | Filter::Or(a, b) => {
            let mut ids = member_ids_in_filter(a)?;
            ids.extend(member_ids_in_filter(b)?);
            Ok(ids)
        }
        Filter::Not(inner) => member_ids_in_filter(inner),
    }
}

/// A PatchOp request body.
pub fn parse_patch(body: Value) -> Result<PatchRequest, ScimError> {
    serde_json::from_value(body).map_err(|e| {
        ScimError::of(
            ErrorKind::InvalidSyntax,
            format!("not a PatchOp request: {e}"),
        )
    })
}

/// The stored attributes plus `id`, as filters, sorting and PATCH see a resource.
/// A stored resource as filters and sortBy see it: with its `id` and `meta`.
fn probe(r: &Resource) -> Value {
    let mut v = with_id(r);
    if let Some(o) = v.as_object_mut() {
        o.insert("meta".into(), meta(r));
    }
    v
}

/// `meta` but its `location` (RFC 7643 §3.1).
fn meta(r: &Resource) -> Value {
    json!({
        "resourceType": ResourceKind::name(r.kind),
        "created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "lastModified": r.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "version": etag(r.version),
    })
}

fn with_id(r: &Resource) -> Value {
    let mut v = r.body.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(r.id));
    }
    v
}

/// Member ids of a POST/PUT body's `members`.
fn patch_members(body: &Value) -> Result<Vec<String>, ScimError> {
    let Some(members) = get_ci(body, "members") else {
        return Ok(vec![]);
    };
    let Value::Array(items) = members else {
        return Err(ScimError::of(
            ErrorKind::InvalidValue,
            "members must be a list",
        ));
    };
    items
        .iter()
        .map(|m| {
            get_ci(m, "value")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ScimError::of(ErrorKind::InvalidValue, "each member needs a string value")
                })
        })
        .collect()
}
