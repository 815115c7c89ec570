//! A stored resource as clients see it: `id`, `meta`, `schemas`, derived `groups`
//! and `members`, projected by `attributes` / `excludedAttributes`.

#[allow(unused_imports)] // the parent's imports, shared by its parts
use super::*;

/// A stored resource as filters and sortBy see it: with its `id` and `meta`.
pub(super) fn probe(r: &Resource) -> Value {
    let mut v = with_id(r);
    if let Some(o) = v.as_object_mut() {
        o.insert("meta".into(), meta(r));
    }
    v
}

/// `meta` but its `location` (RFC 7643 §3.1).
pub(super) fn meta(r: &Resource) -> Value {
    json!({
        "resourceType": ResourceKind::name(r.kind),
        "created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "lastModified": r.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "version": etag(r.version),
    })
}

/// The stored attributes plus `id`, as PATCH sees a resource.
pub(super) fn with_id(r: &Resource) -> Value {
    let mut v = r.body.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(r.id));
    }
    v
}

impl ScimService {
    pub(super) fn summary(r: &Resource) -> Value {
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
    pub(super) async fn render(
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
}
