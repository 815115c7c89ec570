//! The SCIM operations over a `ScimStore`, independent of HTTP: validation, rendering
//! (`id`, `meta`, ETags, derived `groups`/`members`), optimistic concurrency, and the
//! outbox events every committed change carries.

use chrono::{DateTime, Utc};
use envelope::{Actor, EventId, TenantId};
use serde_json::{Map, Value, json};

use crate::filter::{CompValue, CompareOp, CoreSchemas, Filter, FilterError, get_ci};
use crate::patch::{self, MemberChange, PatchError, PatchRequest, ResourceKind};
use crate::projection::{self, ProjectionError};
use crate::store::{OutboxEntry, Resource, ScimStore, StoreError, UniqueAttr};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Members rendered inline when a group is read. Past this, `members` holds the first
/// page only and clients list the rest with `members` filters; reads never materialise
/// an unbounded list.
pub const MAX_INLINE_MEMBERS: usize = 1000;
/// Largest page a list request returns (`count` is capped to it).
pub const MAX_PAGE: usize = 200;
/// Resources scanned at most to answer a filter the store has no index for.
pub const MAX_SCAN: usize = 100_000;

/// An error as SCIM clients expect it (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {scim_type:?}: {detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// Seconds, for 429 and 503 answers (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, None, format!("{what} not found"))
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"schemas": [ERROR_SCHEMA], "status": self.status.to_string(), "detail": self.detail});
        if let Some(t) = self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("resource"),
            StoreError::Uniqueness { attr, value } => ScimError::new(
                409,
                Some("uniqueness"),
                format!("{attr} {value:?} is already taken"),
            ),
            StoreError::VersionMismatch { .. } => {
                ScimError::new(412, None, "resource was modified; re-read it and retry")
            }
            StoreError::Throttled(detail) => {
                tracing::warn!(detail, "store throttled");
                ScimError::new(429, None, "too many requests; retry later")
            }
            StoreError::Unavailable(detail) => {
                // internal detail goes to the log, not to the client
                tracing::error!(detail, "store unavailable");
                ScimError::new(503, None, "service temporarily unavailable")
            }
        }
    }
}

impl From<PatchError> for ScimError {
    fn from(e: PatchError) -> Self {
        ScimError::new(400, Some(e.scim_type()), e.to_string())
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::new(400, Some("invalidFilter"), e.to_string())
    }
}

impl From<ProjectionError> for ScimError {
    fn from(e: ProjectionError) -> Self {
        ScimError::new(400, Some("invalidSyntax"), e.to_string())
    }
}

/// Who is calling: the tenant (from the bearer token) and the IdP acting.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub tenant: TenantId,
    pub actor: Actor,
}

/// What a list or search asks for, paging included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort: Option<Sort>,
    /// 1-based (RFC 7644 §3.4.2.4); values below 1 are read as 1.
    pub start_index: usize,
    pub count: Option<usize>,
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

pub struct ScimService<S> {
    store: S,
    base_url: String,
}

fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "User",
        ResourceKind::Group => "Group",
    }
}

pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// Attributes a client may not set, and nulls (Entra sends `null` for unset fields).
fn clean_body(mut body: Value, kind: ResourceKind) -> Result<Value, ScimError> {
    let Some(obj) = body.as_object_mut() else {
        return Err(ScimError::new(
            400,
            Some("invalidSyntax"),
            "the request body must be a JSON object",
        ));
    };
    obj.retain(|k, v| {
        let k = k.to_ascii_lowercase();
        !v.is_null()
            && !matches!(
                k.as_str(),
                "id" | "meta" | "groups" | "password" | "members" | "schemas"
            )
    });
    obj.values_mut().for_each(drop_nulls);
    let attr = match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    };
    match get_ci(&body, attr) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            return Err(ScimError::new(
                400,
                Some("invalidValue"),
                format!("{attr} is required and must be a non-empty string"),
            ));
        }
    }
    if let Some(active) = get_ci(&body, "active")
        && !active.is_boolean()
    {
        return Err(ScimError::new(
            400,
            Some("invalidValue"),
            "active must be a boolean",
        ));
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

fn check_schemas(body: &Value, kind: ResourceKind) -> Result<(), ScimError> {
    let want = if kind == ResourceKind::User {
        USER_SCHEMA
    } else {
        GROUP_SCHEMA
    };
    match body.get("schemas") {
        // lenient: some clients omit schemas; a present list must name the resource's
        None => Ok(()),
        Some(Value::Array(list))
            if list
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(want))) =>
        {
            Ok(())
        }
        Some(_) => Err(ScimError::new(
            400,
            Some("invalidSyntax"),
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

impl<S: ScimStore> ScimService<S> {
    pub fn new(store: S, base_url: impl Into<String>) -> Self {
        Self {
            store,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn event(
        &self,
        caller: &Caller,
        event_type: &str,
        at: DateTime<Utc>,
        payload: Value,
    ) -> OutboxEntry {
        OutboxEntry {
            event_id: EventId::new_v7(),
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
        let obj = v
            .as_object_mut()
            .ok_or_else(|| ScimError::new(500, None, "stored resource is not an object"))?;
        let schema = if r.kind == ResourceKind::User {
            USER_SCHEMA
        } else {
            GROUP_SCHEMA
        };
        let mut schemas = vec![json!(schema)];
        schemas.extend(
            obj.keys()
                .filter(|k| k.to_ascii_lowercase().contains(":extension:"))
                .map(|k| json!(k)),
        );
        obj.insert("schemas".into(), Value::Array(schemas));
        obj.insert("id".into(), json!(r.id));
        let plural = if r.kind == ResourceKind::User {
            "Users"
        } else {
            "Groups"
        };
        obj.insert(
            "meta".into(),
            json!({
                "resourceType": kind_name(r.kind),
                "created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "lastModified": r.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "location": format!("{}/{plural}/{}", self.base_url, r.id),
                "version": etag(r.version),
            }),
        );
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
        check_schemas(&body, kind)?;
        let members = if kind == ResourceKind::Group {
            patch_members(&body)?
        } else {
            vec![]
        };
        let body = clean_body(body, kind)?;
        let now = Utc::now();
        let r = Resource {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            version: 1,
            created: now,
            last_modified: now,
            body,
        };
        let event_type = if kind == ResourceKind::User {
            "scim.user.created"
        } else {
            "scim.group.created"
        };
        let ev = self.event(caller, event_type, now, Self::summary(&r));
        self.store.create(&caller.tenant, &r, &[ev]).await?;
        if !members.is_empty() {
            self.change_members(caller, &r, &[MemberChange::Add(members)])
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
        let r = self
            .store
            .get(&caller.tenant, kind, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ScimError::not_found(&format!("{} {id}", kind_name(kind))),
                e => e.into(),
            })?;
        Ok((self.render(caller, &r, shape).await?, r.version))
    }

    async fn load(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        let r = self
            .store
            .get(&caller.tenant, kind, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ScimError::not_found(&format!("{} {id}", kind_name(kind))),
                e => e.into(),
            })?;
        if !if_match_ok(if_match, r.version) {
            return Err(ScimError::new(
                412,
                None,
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
        let now = Utc::now();
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
        let event_type = match old.kind {
            ResourceKind::User if was_active && !is_active => "scim.user.deactivated",
            ResourceKind::User => "scim.user.updated",
            ResourceKind::Group => "scim.group.updated",
        };
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
        check_schemas(&body, kind)?;
        let old = self.load(caller, kind, id, if_match).await?;
        if let Some(sent) = get_ci(&body, "id").and_then(Value::as_str)
            && sent != id
        {
            return Err(ScimError::new(
                400,
                Some("mutability"),
                "id cannot be changed",
            ));
        }
        // PUT replaces members too (Rippling): compute the difference page by page
        let members = if kind == ResourceKind::Group && get_ci(&body, "members").is_some() {
            Some(patch_members(&body)?)
        } else {
            None
        };
        let body = clean_body(body, kind)?;
        let new = self.commit_update(caller, &old, body).await?;
        if let Some(wanted) = members {
            self.change_members(
                caller,
                &new,
                &[MemberChange::RemoveAll, MemberChange::Add(wanted)],
            )
            .await?;
        }
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
        let patched = patch::apply(&with_id(&old), request, kind)?;
        let body = clean_body(patched.resource, kind)?;
        let new = self.commit_update(caller, &old, body).await?;
        self.change_members(caller, &new, &patched.members).await?;
        Ok((self.render(caller, &new, shape).await?, new.version))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let old = self.load(caller, kind, id, if_match).await?;
        let event_type = if kind == ResourceKind::User {
            "scim.user.deleted"
        } else {
            "scim.group.deleted"
        };
        let ev = self.event(caller, event_type, Utc::now(), Self::summary(&old));
        Ok(self
            .store
            .delete(&caller.tenant, kind, id, Some(old.version), &[ev])
            .await?)
    }

    /// Applies membership changes, one membership at a time, each with its event.
    async fn change_members(
        &self,
        caller: &Caller,
        group: &Resource,
        changes: &[MemberChange],
    ) -> Result<(), ScimError> {
        let display = get_ci(&group.body, "displayName")
            .cloned()
            .unwrap_or(Value::Null);
        let group_ref = json!({"id": group.id, "displayName": display});
        let group_ref = &group_ref;
        let event = |event_type: &'static str, now: DateTime<Utc>| {
            move |m: &str| {
                self.event(
                    caller,
                    event_type,
                    now,
                    json!({"group": group_ref, "member": {"id": m, "type": "User"}}),
                )
            }
        };
        for change in changes {
            let now = Utc::now();
            match change {
                MemberChange::Add(ids) => {
                    self.store
                        .add_members(
                            &caller.tenant,
                            &group.id,
                            ids,
                            &event("scim.group.member_added", now),
                        )
                        .await?;
                }
                MemberChange::Remove(ids) => {
                    self.store
                        .remove_members(
                            &caller.tenant,
                            &group.id,
                            ids,
                            &event("scim.group.member_removed", now),
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
                        self.store
                            .remove_members(
                                &caller.tenant,
                                &group.id,
                                &page,
                                &event("scim.group.member_removed", now),
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A ListResponse. `userName eq` / `displayName eq` use the store's index; other
    /// filters scan at most `MAX_SCAN` resources.
    pub async fn list(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        query: &ListQuery,
        shape: &Shape,
    ) -> Result<Value, ScimError> {
        let (sort, start_index, count) = (query.sort.as_ref(), query.start_index, query.count);
        let filter = query
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(Filter::parse)
            .transpose()?;
        let unique_attr = match kind {
            ResourceKind::User => ("userName", UniqueAttr::UserName),
            ResourceKind::Group => ("displayName", UniqueAttr::DisplayName),
        };
        let matches: Vec<Resource> = match &filter {
            Some(Filter::Compare(p, CompareOp::Eq, CompValue::String(v)))
                if p.sub_attr.is_none() && p.attr.eq_ignore_ascii_case(unique_attr.0) =>
            {
                self.store
                    .find_unique(&caller.tenant, unique_attr.1, v)
                    .await?
                    .into_iter()
                    .collect()
            }
            _ => {
                let mut out = Vec::new();
                let mut after: Option<String> = None;
                let mut scanned = 0;
                loop {
                    let page = self
                        .store
                        .list(&caller.tenant, kind, after.as_deref(), 500)
                        .await?;
                    if page.is_empty() {
                        break;
                    }
                    scanned += page.len();
                    if scanned > MAX_SCAN {
                        return Err(ScimError::new(
                            400,
                            Some("tooMany"),
                            "the filter matches too many resources to scan; narrow it",
                        ));
                    }
                    after = page.last().map(|r| r.id.clone());
                    for r in page {
                        let keep = match &filter {
                            None => true,
                            Some(f) => f.matches(&with_id(&r), &CoreSchemas),
                        };
                        if keep {
                            out.push(r);
                        }
                    }
                }
                out
            }
        };
        let mut matches = matches;
        match sort {
            // resources come ordered by id: a stable order across pages without sortBy
            None => matches.sort_by(|a, b| a.id.cmp(&b.id)),
            Some(sort) => {
                let path = crate::filter::PatchPath::parse(&sort.by)
                    .ok()
                    .and_then(|p| match p {
                        crate::filter::PatchPath::Attr(a) => Some(a),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        ScimError::new(
                            400,
                            Some("invalidSyntax"),
                            format!("sortBy {:?} is not an attribute path", sort.by),
                        )
                    })?;
                let exact = crate::filter::CaseExact::case_exact(&CoreSchemas, &path);
                let key = |r: &Resource| -> Option<String> {
                    let probe = with_id(r);
                    let base = get_ci(&probe, &path.attr)?;
                    let v = match &path.sub_attr {
                        Some(sub) => match base {
                            // multi-valued: the primary value, else the first (RFC 7644 §3.4.2.3)
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
                };
                // missing values sort last in either order
                // each key once, not once per comparison (it clones the resource)
                let mut keyed: Vec<(Option<String>, Resource)> =
                    matches.into_iter().map(|r| (key(&r), r)).collect();
                keyed.sort_by(|(ka, a), (kb, b)| match (ka, kb) {
                    (Some(x), Some(y)) if sort.descending => y.cmp(x).then_with(|| a.id.cmp(&b.id)),
                    (Some(x), Some(y)) => x.cmp(y).then_with(|| a.id.cmp(&b.id)),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.id.cmp(&b.id),
                });
                matches = keyed.into_iter().map(|(_, r)| r).collect();
            }
        }
        let total = matches.len();
        let start = start_index.max(1);
        let count = count.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let mut resources = Vec::new();
        for r in matches.iter().skip(start - 1).take(count) {
            resources.push(self.render(caller, r, shape).await?);
        }
        Ok(json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }))
    }
}

/// The stored attributes plus `id`, as filters, sorting and PATCH see a resource.
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
        return Err(ScimError::new(
            400,
            Some("invalidValue"),
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
                    ScimError::new(
                        400,
                        Some("invalidValue"),
                        "each member needs a string value",
                    )
                })
        })
        .collect()
}
