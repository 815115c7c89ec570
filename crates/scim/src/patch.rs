//! The PATCH engine (RFC 7644 §3.5.2) over a resource held as JSON, with the dialects
//! real IdPs send (capitalised ops, booleans as strings, path-less operations keyed by
//! dotted paths or schema URNs, filtered paths that match nothing).
//!
//! A group's `members` are never materialised: every operation on `members` becomes a
//! `MemberChange` for the store to apply one membership at a time, so a PATCH costs
//! O(members named), whatever the group's size. Operations apply to a copy and the
//! caller keeps the result only if every operation succeeded (all-or-nothing).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::filter::{
    AttrPath, CaseExact, CompValue, CompareOp, CoreSchemas, Filter, FilterError, PatchPath, get_ci,
};
use crate::kind::ResourceKind;
use crate::tenants::CompatPolicy;

pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PatchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<PatchOperation>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PatchOperation {
    pub op: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

/// Why a PATCH was refused, with the RFC 7644 §3.12 `scimType` it maps to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("invalid filter in path: {0}")]
    InvalidFilter(FilterError),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    Mutability(String),
}

impl PatchError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            PatchError::InvalidSyntax(_) => ErrorKind::InvalidSyntax,
            PatchError::InvalidPath(_) => ErrorKind::InvalidPath,
            PatchError::InvalidFilter(_) => ErrorKind::InvalidFilter,
            PatchError::NoTarget(_) => ErrorKind::NoTarget,
            PatchError::InvalidValue(_) => ErrorKind::InvalidValue,
            PatchError::Mutability(_) => ErrorKind::Mutability,
        }
    }

    pub fn scim_type(&self) -> &'static str {
        self.kind().scim_type().unwrap_or("invalidValue")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    /// Case-insensitive: Entra sends `Replace`, OneLogin `replace`, some clients `ADD`.
    pub fn parse(s: &str) -> Result<Op, PatchError> {
        match s.to_ascii_lowercase().as_str() {
            "add" => Ok(Op::Add),
            "remove" => Ok(Op::Remove),
            "replace" => Ok(Op::Replace),
            _ => Err(PatchError::InvalidSyntax(format!(
                "unknown PATCH op {s:?}; expected add, remove or replace"
            ))),
        }
    }
}

/// A change to a group's membership, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    /// Remove every member (`remove` of `members` without a value, or `replace` with `[]`
    /// before its adds): the store walks the membership pages.
    RemoveAll,
}

/// Attributes the service owns: a client may send them back unchanged, never change them.
const READ_ONLY: &[&str] = &["id", "meta", "groups"];
/// Booleans some IdPs send as strings ("False").
const BOOLEAN_ATTRS: &[&str] = &["active", "primary"];

/// The outcome of a PATCH: the new resource and the membership changes to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    pub resource: Value,
    pub members: Vec<MemberChange>,
}

/// Applies `request` to a copy of `resource`. Nothing is changed unless every operation
/// succeeds.
pub fn apply(
    resource: &Value,
    request: &PatchRequest,
    kind: ResourceKind,
    policy: &CompatPolicy,
) -> Result<Patched, PatchError> {
    if request.schemas.is_empty() && !policy.optional_schemas {
        return Err(PatchError::InvalidSyntax(format!(
            "a PATCH request must carry the schema {PATCH_OP_URN}"
        )));
    }
    if !request.schemas.is_empty()
        && !request
            .schemas
            .iter()
            .any(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))
    {
        return Err(PatchError::InvalidSyntax(format!(
            "a PATCH request must carry the schema {PATCH_OP_URN}"
        )));
    }
    if request.operations.is_empty() {
        return Err(PatchError::InvalidSyntax(
            "a PATCH request needs at least one operation".into(),
        ));
    }
    let mut doc = resource.clone();
    let mut members = Vec::new();
    for operation in &request.operations {
        let op = Op::parse(&operation.op)?;
        let value = operation.value.clone().map(|v| {
            if policy.string_booleans {
                coerce_booleans(v)
            } else {
                v
            }
        });
        match operation
            .path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            None => apply_pathless(&mut doc, op, value, kind, &mut members)?,
            Some(path) => {
                // a broken value filter is invalidFilter; anything else invalidPath
                let parsed = PatchPath::parse(path).map_err(|e| {
                    if path.contains('[') {
                        PatchError::InvalidFilter(e)
                    } else {
                        PatchError::InvalidPath(format!("{path:?}: {e}"))
                    }
                })?;
                let value = if policy.string_booleans {
                    value.map(|v| coerce_for_path(&parsed, v))
                } else {
                    value
                };
                apply_path(&mut doc, op, &parsed, value, kind, policy, &mut members)?;
            }
        }
    }
    Ok(Patched {
        resource: doc,
        members,
    })
}

/// A bare string value for a boolean path (`"path": "active", "value": "False"`).
fn coerce_for_path(path: &PatchPath, v: Value) -> Value {
    let name = match path {
        PatchPath::Attr(a) => a.sub_attr.as_deref().unwrap_or(&a.attr),
        PatchPath::Value { attr, sub_attr, .. } => sub_attr.as_deref().unwrap_or(&attr.attr),
        PatchPath::Schema(_) => return v,
    };
    match v {
        Value::String(s) if BOOLEAN_ATTRS.iter().any(|b| b.eq_ignore_ascii_case(name)) => {
            match s.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(s),
            }
        }
        other => other,
    }
}

/// `"False"` → `false` for boolean attributes, anywhere in the value.
pub(crate) fn coerce_booleans(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s)
                            if BOOLEAN_ATTRS.iter().any(|b| b.eq_ignore_ascii_case(&k)) =>
                        {
                            match s.to_ascii_lowercase().as_str() {
                                "true" => Value::Bool(true),
                                "false" => Value::Bool(false),
                                _ => Value::String(s),
                            }
                        }
                        other => coerce_booleans(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(coerce_booleans).collect()),
        other => other,
    }
}

fn key_ci(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// The object that holds `path`'s attribute: the extension object for an extension URN,
/// the resource itself for a core URN or none.
fn container<'a>(
    doc: &'a mut Value,
    path: &AttrPath,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, PatchError> {
    let Some(root) = doc.as_object_mut() else {
        return Err(PatchError::InvalidValue("resource is not an object".into()));
    };
    let Some(urn) = &path.urn else {
        return Ok(Some(root));
    };
    if urn.to_ascii_lowercase().contains(":extension:") {
        let key = match key_ci(root, urn) {
            Some(k) => k,
            None if create => {
                root.insert(urn.clone(), Value::Object(Map::new()));
                urn.clone()
            }
            None => return Ok(None),
        };
        return Ok(root.get_mut(&key).and_then(Value::as_object_mut));
    }
    Ok(Some(root))
}

fn is_read_only(path: &AttrPath) -> bool {
    path.urn.is_none() && READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(&path.attr))
}

fn check_writable(path: &AttrPath, current: &Value, new: Option<&Value>) -> Result<(), PatchError> {
    if is_read_only(path) {
        // Sending the current value back (Okta's rename carries `id`) is not a change.
        if new.is_some_and(|v| get_ci(current, &path.attr) == Some(v)) {
            return Ok(());
        }
        return Err(PatchError::Mutability(format!(
            "attribute {path} is read-only"
        )));
    }
    Ok(())
}

fn is_members(path: &AttrPath, kind: ResourceKind) -> bool {
    kind == ResourceKind::Group && path.urn.is_none() && path.attr.eq_ignore_ascii_case("members")
}

/// Member ids from `[{"value": "id"}, ...]` (or a single object).
fn member_ids(value: Option<&Value>) -> Result<Vec<String>, PatchError> {
    let items: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(Value::Null) | None => vec![],
        Some(other) => {
            return Err(PatchError::InvalidValue(format!(
                "members must be a list of {{\"value\": id}}, not {other}"
            )));
        }
    };
    items
        .into_iter()
        .map(|m| {
            get_ci(m, "value")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    PatchError::InvalidValue("each member needs a string \"value\"".into())
                })
        })
        .collect()
}

fn apply_pathless(
    doc: &mut Value,
    op: Op,
    value: Option<Value>,
    kind: ResourceKind,
    members: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    if op == Op::Remove {
        return Err(PatchError::NoTarget("remove needs a path".into()));
    }
    let Some(Value::Object(map)) = value else {
        return Err(PatchError::InvalidValue(format!(
            "{op:?} without a path needs an object value"
        )));
    };
    for (key, v) in map {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        // An extension URN key carrying an object: its attributes, one by one.
        if key.to_ascii_lowercase().contains(":extension:")
            && !key.contains('.')
            && let Value::Object(attrs) = v
        {
            set_each(doc, op, &key, attrs, kind, members)?;
            continue;
        }
        // Keys may be paths themselves: "name.givenName", or URN-qualified (Entra), or
        // a whole known schema holding its attributes
        let path = match PatchPath::parse(&key) {
            Ok(PatchPath::Attr(p)) => p,
            Ok(PatchPath::Schema(urn)) => {
                schema_op(doc, op, urn, Some(v), kind, members)?;
                continue;
            }
            _ => {
                return Err(PatchError::InvalidPath(format!(
                    "{key:?} is not an attribute path"
                )));
            }
        };
        set_attr(doc, op, &path, v, kind, members)?;
    }
    Ok(())
}

/// An operation whose path is a whole schema (RFC 7644 §3.5.2): add and replace set
/// each attribute of the object value inside it, leaving the others; remove drops an
/// extension whole. The core schema itself cannot be removed.
fn schema_op(
    doc: &mut Value,
    op: Op,
    urn: &'static str,
    value: Option<Value>,
    kind: ResourceKind,
    members: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    let extension = urn.contains(":extension:");
    let core = kind.schema();
    // the enterprise extension extends users only
    if (extension && kind != ResourceKind::User) || (!extension && urn != core) {
        return Err(PatchError::InvalidPath(format!(
            "{urn} is not a schema of this resource type"
        )));
    }
    match op {
        Op::Remove if extension => {
            if let Some(root) = doc.as_object_mut()
                && let Some(key) = key_ci(root, urn)
            {
                root.remove(&key);
            }
            Ok(())
        }
        Op::Remove => Err(PatchError::InvalidPath(format!(
            "{urn} is the resource's core schema; remove its attributes one by one"
        ))),
        Op::Add | Op::Replace => {
            let Some(Value::Object(attrs)) = value else {
                return Err(PatchError::InvalidValue(format!(
                    "{op:?} of the schema {urn} needs an object of its attributes"
                )));
            };
            set_each(doc, op, urn, attrs, kind, members)
        }
    }
}

/// add/replace of each attribute of `attrs` inside the schema `urn`.
fn set_each(
    doc: &mut Value,
    op: Op,
    urn: &str,
    attrs: Map<String, Value>,
    kind: ResourceKind,
    members: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    for (attr, v) in attrs {
        let path = AttrPath {
            urn: Some(urn.to_owned()),
            attr,
            sub_attr: None,
        };
        set_attr(doc, op, &path, v, kind, members)?;
    }
    Ok(())
}

/// add/replace of an attribute path (with optional sub-attribute).
fn set_attr(
    doc: &mut Value,
    op: Op,
    path: &AttrPath,
    value: Value,
    kind: ResourceKind,
    members: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    if is_members(path, kind) && path.sub_attr.is_none() {
        let ids = member_ids(Some(&value))?;
        if op == Op::Replace {
            members.push(MemberChange::RemoveAll);
        }
        if !ids.is_empty() {
            members.push(MemberChange::Add(ids));
        }
        return Ok(());
    }
    check_writable(path, doc, path.sub_attr.is_none().then_some(&value))?;
    if is_read_only(path) {
        return Ok(()); // unchanged read-only value sent back
    }
    let Some(obj) = container(doc, path, true)? else {
        return Ok(());
    };
    let key = key_ci(obj, &path.attr).unwrap_or_else(|| path.attr.clone());
    match &path.sub_attr {
        None => {
            let merged = match (op, obj.remove(&key), value) {
                // add to a multi-valued attribute appends what is not there yet
                (Op::Add, Some(Value::Array(mut old)), Value::Array(new)) => {
                    for v in new {
                        if !old.contains(&v) {
                            old.push(v);
                        }
                    }
                    Value::Array(old)
                }
                (Op::Add, Some(Value::Array(mut old)), v) => {
                    if !old.contains(&v) {
                        old.push(v);
                    }
                    Value::Array(old)
                }
                // add to a complex attribute merges its sub-attributes
                (Op::Add, Some(Value::Object(mut old)), Value::Object(new)) => {
                    old.extend(new);
                    Value::Object(old)
                }
                (_, _, v) => v,
            };
            if merged.is_null() {
                obj.remove(&key);
            } else {
                obj.insert(key, merged);
            }
        }
        Some(sub) => {
            let target = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
            match target {
                Value::Object(inner) => {
                    let sub_key = key_ci(inner, sub).unwrap_or_else(|| sub.clone());
                    if value.is_null() {
                        inner.remove(&sub_key);
                    } else {
                        inner.insert(sub_key, value);
                    }
                }
                // a sub-attribute of a multi-valued attribute: set it on every value
                Value::Array(items) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        let sub_key = key_ci(item, sub).unwrap_or_else(|| sub.clone());
                        item.insert(sub_key, value.clone());
                    }
                }
                _ => {
                    return Err(PatchError::InvalidPath(format!(
                        "{path}: {} is not complex",
                        path.attr
                    )));
                }
            }
        }
    }
    Ok(())
}

fn apply_path(
    doc: &mut Value,
    op: Op,
    path: &PatchPath,
    value: Option<Value>,
    kind: ResourceKind,
    policy: &CompatPolicy,
    members: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    match path {
        PatchPath::Schema(urn) => schema_op(doc, op, urn, value, kind, members),
        PatchPath::Attr(attr) => match op {
            Op::Add | Op::Replace => {
                let value = value.ok_or_else(|| {
                    PatchError::InvalidValue(format!("{op:?} of {attr} needs a value"))
                })?;
                // Entra/Okta: `add` with path "members" and a list
                set_attr(doc, op, attr, value, kind, members)
            }
            Op::Remove => {
                if is_members(attr, kind) && attr.sub_attr.is_none() {
                    // Entra's default: remove with a value names the members to remove;
                    // read strictly (RFC 7644 §3.5.2.2), a remove without a filter
                    // removes them all
                    let ids = if policy.remove_members_by_value {
                        member_ids(value.as_ref())?
                    } else {
                        vec![]
                    };
                    members.push(if ids.is_empty() {
                        MemberChange::RemoveAll
                    } else {
                        MemberChange::Remove(ids)
                    });
                    return Ok(());
                }
                check_writable(attr, doc, None)?;
                let Some(obj) = container(doc, attr, false)? else {
                    return Ok(());
                };
                let Some(key) = key_ci(obj, &attr.attr) else {
                    return Ok(());
                };
                match &attr.sub_attr {
                    None => {
                        // remove of specific values of a multi-valued attribute
                        match (obj.get_mut(&key), value) {
                            (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                                items.retain(|v| !gone.contains(v))
                            }
                            _ => {
                                obj.remove(&key);
                            }
                        }
                    }
                    Some(sub) => match obj.get_mut(&key) {
                        Some(Value::Object(inner)) => {
                            if let Some(k) = key_ci(inner, sub) {
                                inner.remove(&k);
                            }
                        }
                        Some(Value::Array(items)) => {
                            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                                if let Some(k) = key_ci(item, sub) {
                                    item.remove(&k);
                                }
                            }
                        }
                        _ => {}
                    },
                }
                Ok(())
            }
        },
        PatchPath::Value {
            attr,
            filter,
            sub_attr,
        } => {
            if is_members(attr, kind) {
                return member_filter(op, filter, sub_attr.as_deref(), value, members);
            }
            check_writable(attr, doc, None)?;
            let scoped = FilterScope { attr };
            let obj = container(doc, attr, op != Op::Remove)?;
            let Some(obj) = obj else { return Ok(()) };
            let key = key_ci(obj, &attr.attr).unwrap_or_else(|| attr.attr.clone());
            let items = obj
                .entry(key.clone())
                .or_insert_with(|| Value::Array(vec![]));
            let Value::Array(items) = items else {
                return Err(PatchError::InvalidPath(format!(
                    "{} is not multi-valued",
                    attr.attr
                )));
            };
            let matching: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, v)| filter.matches(v, &scoped))
                .map(|(i, _)| i)
                .collect();
            match op {
                Op::Remove => {
                    if matching.is_empty() {
                        return Ok(());
                    }
                    match sub_attr {
                        None => {
                            let mut i = 0;
                            items.retain(|_| {
                                let keep = !matching.contains(&i);
                                i += 1;
                                keep
                            });
                        }
                        Some(sub) => {
                            for &i in &matching {
                                if let Some(o) = items.get_mut(i).and_then(Value::as_object_mut)
                                    && let Some(k) = key_ci(o, sub)
                                {
                                    o.remove(&k);
                                }
                            }
                        }
                    }
                    if items.is_empty() {
                        obj.remove(&key);
                    }
                    Ok(())
                }
                Op::Add | Op::Replace => {
                    let value = value
                        .ok_or_else(|| PatchError::InvalidValue(format!("{op:?} needs a value")))?;
                    if matching.is_empty() {
                        // RFC 7644 §3.5.2.3: a replace whose filter matches nothing is
                        // noTarget
                        if op == Op::Replace && !policy.replace_adds_filtered_value {
                            return Err(PatchError::NoTarget(format!(
                                "no value of {} matches the filter",
                                attr.attr
                            )));
                        }
                        // Entra: a filtered path that matches nothing creates the entry,
                        // seeded from the filter's equality tests.
                        let mut entry = seed_from_filter(filter).ok_or_else(|| {
                            PatchError::NoTarget(format!(
                                "no value of {} matches the filter",
                                attr.attr
                            ))
                        })?;
                        match (sub_attr, value) {
                            (Some(sub), v) => {
                                entry.insert(sub.clone(), v);
                            }
                            (None, Value::Object(m)) => entry.extend(m),
                            (None, other) => {
                                return Err(PatchError::InvalidValue(format!(
                                    "expected an object for {}, got {other}",
                                    attr.attr
                                )));
                            }
                        }
                        items.push(Value::Object(entry));
                        return Ok(());
                    }
                    for &i in &matching {
                        let Some(item) = items.get_mut(i) else {
                            continue;
                        };
                        match (sub_attr, &value) {
                            (Some(sub), v) => {
                                if let Some(o) = item.as_object_mut() {
                                    let k = key_ci(o, sub).unwrap_or_else(|| sub.clone());
                                    o.insert(k, v.clone());
                                }
                            }
                            (None, Value::Object(m)) if op == Op::Add => {
                                if let Some(o) = item.as_object_mut() {
                                    o.extend(m.clone());
                                }
                            }
                            (None, v) => *item = v.clone(),
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

/// `members[value eq "id"]` (the `aadOptscim062020` dialect, and Okta's removal).
fn member_filter(
    op: Op,
    filter: &Filter,
    sub_attr: Option<&str>,
    value: Option<Value>,
    members: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    let ids = filter_ids(filter).ok_or_else(|| {
        PatchError::InvalidFilter(FilterError {
            position: 0,
            message: "a members filter must test value with eq (and or-combinations of it)".into(),
        })
    })?;
    match (op, sub_attr) {
        (Op::Remove, None) => members.push(MemberChange::Remove(ids)),
        (Op::Add | Op::Replace, _) if value.is_some() => members.push(MemberChange::Add(ids)),
        _ => {
            return Err(PatchError::InvalidPath(
                "only remove of members[value eq \"id\"] is supported".into(),
            ));
        }
    }
    Ok(())
}

/// Ids from `value eq "a"` or `value eq "a" or value eq "b"`.
fn filter_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(id))
            if p.attr.eq_ignore_ascii_case("value") && p.sub_attr.is_none() =>
        {
            Some(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = filter_ids(a)?;
            ids.extend(filter_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}

/// The entry a filter describes when every test in it is `eq` joined by `and`.
fn seed_from_filter(f: &Filter) -> Option<Map<String, Value>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, v) if p.sub_attr.is_none() => {
            let v = match v {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number)?,
                CompValue::Null => return None,
            };
            let mut m = Map::new();
            m.insert(p.attr.clone(), v);
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = seed_from_filter(a)?;
            m.extend(seed_from_filter(b)?);
            Some(m)
        }
        _ => None,
    }
}

struct FilterScope<'a> {
    attr: &'a AttrPath,
}

impl CaseExact for FilterScope<'_> {
    fn case_exact(&self, path: &AttrPath) -> bool {
        CoreSchemas.case_exact(&AttrPath {
            urn: None,
            attr: self.attr.attr.clone(),
            sub_attr: Some(path.attr.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "ada@example.com",
            "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "meta": {"resourceType": "User"}
        })
    }

    fn req(ops: Value) -> PatchRequest {
        serde_json::from_value(json!({"schemas": [PATCH_OP_URN], "Operations": ops})).unwrap()
    }

    fn patch(doc: &Value, ops: Value, kind: ResourceKind) -> Result<Patched, PatchError> {
        apply(doc, &req(ops), kind, &CompatPolicy::default())
    }

    #[test]
    fn a_whole_extension_urn_as_path_is_the_extension_not_an_attribute_user() {
        const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let mut doc = user();
        doc[EXT] = json!({"costCenter": "4130", "division": "R&D"});
        let added = patch(
            &doc,
            json!([{"op": "add", "path": EXT, "value": {"employeeNumber": "701984", "department": "Tour Ops"}}]),
            ResourceKind::User,
        )
        .unwrap()
        .resource;
        assert_eq!(
            added[EXT],
            json!({"costCenter": "4130", "division": "R&D", "employeeNumber": "701984", "department": "Tour Ops"})
        );
        let bogus = "urn:ietf:params:scim:schemas:extension:enterprise:2.0";
        assert!(added.get(bogus).is_none(), "{added}");
        // replace sets what it names and leaves the rest (RFC 7644 §3.5.2.3)
        let replaced = patch(
            &doc,
            json!([{"op": "replace", "path": EXT.to_ascii_lowercase(), "value": {"division": "Ops"}}]),
            ResourceKind::User,
        )
        .unwrap()
        .resource;
        assert_eq!(
            replaced[EXT],
            json!({"costCenter": "4130", "division": "Ops"})
        );
        let removed = patch(
            &doc,
            json!([{"op": "remove", "path": EXT}]),
            ResourceKind::User,
        )
        .unwrap()
        .resource;
        assert!(removed.get(EXT).is_none(), "{removed}");
        // an attribute inside it still resolves to the extension
        let sub = patch(
            &doc,
            json!([{"op": "remove", "path": format!("{EXT}:costCenter")}]),
            ResourceKind::User,
        )
        .unwrap()
        .resource;
        assert_eq!(sub[EXT], json!({"division": "R&D"}));
        // schemas that are not this resource's, and values that are not objects
        for (ops, kind) in [
            (
                json!([{"op": "add", "path": EXT, "value": {"x": 1}}]),
                ResourceKind::Group,
            ),
            (
                json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User"}]),
                ResourceKind::User,
            ),
            (
                json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group", "value": {"displayName": "x"}}]),
                ResourceKind::User,
            ),
        ] {
            assert!(matches!(
                patch(&doc, ops, kind),
                Err(PatchError::InvalidPath(_))
            ));
        }
        assert!(matches!(
            patch(
                &doc,
                json!([{"op": "add", "path": EXT, "value": "4130"}]),
                ResourceKind::User
            ),
            Err(PatchError::InvalidValue(_))
        ));
        // the core schema as a path: its attributes
        let core = patch(
            &doc,
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": {"title": "Tour Guide"}}]),
            ResourceKind::User,
        )
        .unwrap()
        .resource;
        assert_eq!(core["title"], "Tour Guide");
    }

    #[test]
    fn a_strict_policy_reads_rfc_7644_literally() {
        let strict = CompatPolicy::strict();
        let group = json!({"displayName": "Admins"});
        let entra_removal =
            req(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]));
        assert_eq!(
            apply(&group, &entra_removal, ResourceKind::Group, &strict)
                .unwrap()
                .members,
            vec![MemberChange::RemoveAll],
            "strictly, remove without a filter removes every member"
        );
        assert_eq!(
            apply(
                &group,
                &entra_removal,
                ResourceKind::Group,
                &CompatPolicy::default()
            )
            .unwrap()
            .members,
            vec![MemberChange::Remove(vec!["u1".into()])]
        );
        // a filtered replace that matches nothing: Entra's upsert, or noTarget
        let home = req(
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h@x"}]),
        );
        let upserted = apply(&user(), &home, ResourceKind::User, &CompatPolicy::default())
            .unwrap()
            .resource;
        assert!(
            upserted["emails"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "home", "value": "h@x"})),
            "{upserted}"
        );
        let e = apply(&user(), &home, ResourceKind::User, &strict).unwrap_err();
        assert_eq!(e.scim_type(), "noTarget");
        let string_bool = req(json!([{"op": "replace", "path": "active", "value": "False"}]));
        let lenient = apply(
            &user(),
            &string_bool,
            ResourceKind::User,
            &CompatPolicy::default(),
        )
        .unwrap();
        assert_eq!(lenient.resource["active"], json!(false));
        let kept = apply(&user(), &string_bool, ResourceKind::User, &strict).unwrap();
        assert_eq!(
            kept.resource["active"],
            json!("False"),
            "left for validation to refuse"
        );
        let no_schemas: PatchRequest = serde_json::from_value(
            json!({"Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
        )
        .unwrap();
        assert!(
            apply(
                &user(),
                &no_schemas,
                ResourceKind::User,
                &CompatPolicy::default()
            )
            .is_ok()
        );
        assert_eq!(
            apply(&user(), &no_schemas, ResourceKind::User, &strict)
                .unwrap_err()
                .scim_type(),
            "invalidSyntax"
        );
    }

    #[test]
    fn entra_pathless_replace_with_dotted_urn_keys_and_string_booleans() {
        let p = patch(
            &user(),
            json!([{"op": "Replace", "value": {
                "active": "False",
                "name.givenName": "Augusta",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Analytics",
                "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Ada L."
            }}]),
            ResourceKind::User,
        )
        .unwrap();
        let r = p.resource;
        assert_eq!(r["active"], json!(false));
        assert_eq!(r["name"]["givenName"], "Augusta");
        assert_eq!(r["name"]["familyName"], "Lovelace", "siblings kept");
        assert_eq!(
            r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Analytics"
        );
        assert_eq!(r["displayName"], "Ada L.");
    }

    #[test]
    fn filtered_paths_update_match_or_create() {
        let p = patch(
            &user(),
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada@lovelace.org"},
                {"op": "add", "path": "emails[type eq \"home\"].value", "value": "ada@home.org"}
            ]),
            ResourceKind::User,
        )
        .unwrap();
        let emails = p.resource["emails"].as_array().unwrap().clone();
        assert_eq!(emails.len(), 2);
        assert_eq!(emails[0]["value"], "ada@lovelace.org");
        assert_eq!(emails[0]["primary"], true);
        assert_eq!(emails[1], json!({"type": "home", "value": "ada@home.org"}));
    }

    #[test]
    fn remove_without_path_is_no_target() {
        let e = patch(&user(), json!([{"op": "remove"}]), ResourceKind::User).unwrap_err();
        assert_eq!(e.scim_type(), "noTarget");
    }

    #[test]
    fn all_or_nothing() {
        let doc = user();
        let e = patch(
            &doc,
            json!([{"op": "replace", "path": "title", "value": "Countess"}, {"op": "frobnicate", "path": "title"}]),
            ResourceKind::User,
        )
        .unwrap_err();
        assert_eq!(e.scim_type(), "invalidSyntax");
        assert_eq!(doc, user(), "the input is untouched");
    }

    #[test]
    fn read_only_attributes() {
        let e = patch(
            &user(),
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            ResourceKind::User,
        )
        .unwrap_err();
        assert_eq!(e.scim_type(), "mutability");
        // Okta renames a group with a path-less replace that carries the id back
        let group = json!({"id": "g1", "displayName": "Old"});
        let p = patch(
            &group,
            json!([{"op": "replace", "value": {"id": "g1", "displayName": "New"}}]),
            ResourceKind::Group,
        )
        .unwrap();
        assert_eq!(p.resource, json!({"id": "g1", "displayName": "New"}));
    }

    #[test]
    fn okta_deactivation() {
        let p = patch(
            &user(),
            json!([{"op": "replace", "value": {"active": false}}]),
            ResourceKind::User,
        )
        .unwrap();
        assert_eq!(p.resource["active"], false);
    }

    #[test]
    fn remove_paths() {
        let p = patch(
            &user(),
            json!([
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "emails[type eq \"work\"]"},
                {"op": "Remove", "path": "nickName"}
            ]),
            ResourceKind::User,
        )
        .unwrap();
        assert!(p.resource["name"].get("givenName").is_none());
        assert!(p.resource.get("emails").is_none());
    }

    #[test]
    fn group_members_become_changes_not_lists() {
        let group = json!({"id": "g1", "displayName": "Admins"});
        let p = patch(
            &group,
            json!([
                {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
                {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
                {"op": "remove", "path": "members[value eq \"u4\"]"},
                {"op": "replace", "path": "members", "value": []}
            ]),
            ResourceKind::Group,
        )
        .unwrap();
        assert_eq!(
            p.members,
            vec![
                MemberChange::Add(vec!["u1".into(), "u2".into()]),
                MemberChange::Remove(vec!["u3".into()]),
                MemberChange::Remove(vec!["u4".into()]),
                MemberChange::RemoveAll,
            ]
        );
        assert!(
            p.resource.get("members").is_none(),
            "the member list is never materialised"
        );
        // path-less add of members (some IdPs) too
        let p = patch(
            &group,
            json!([{"op": "add", "value": {"members": [{"value": "u9"}]}}]),
            ResourceKind::Group,
        )
        .unwrap();
        assert_eq!(p.members, vec![MemberChange::Add(vec!["u9".into()])]);
    }

    #[test]
    fn bad_requests() {
        let bad_schema: PatchRequest = serde_json::from_value(
            json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "a", "value": 1}]}),
        )
        .unwrap();
        assert_eq!(
            apply(
                &user(),
                &bad_schema,
                ResourceKind::User,
                &CompatPolicy::default()
            )
            .unwrap_err()
            .scim_type(),
            "invalidSyntax"
        );
        assert_eq!(
            patch(&user(), json!([]), ResourceKind::User)
                .unwrap_err()
                .scim_type(),
            "invalidSyntax"
        );
        assert_eq!(
            patch(
                &user(),
                json!([{"op": "add", "path": "emails[type eq]", "value": 1}]),
                ResourceKind::User
            )
            .unwrap_err()
            .scim_type(),
            "invalidFilter"
        );
        assert_eq!(
            patch(
                &user(),
                json!([{"op": "add", "path": "a b", "value": 1}]),
                ResourceKind::User
            )
            .unwrap_err()
            .scim_type(),
            "invalidPath"
        );
        assert_eq!(
            patch(
                &user(),
                json!([{"op": "add", "path": "title"}]),
                ResourceKind::User
            )
            .unwrap_err()
            .scim_type(),
            "invalidValue"
        );
        assert_eq!(
            patch(
                &user(),
                json!([{"op": "replace", "value": 3}]),
                ResourceKind::User
            )
            .unwrap_err()
            .scim_type(),
            "invalidValue"
        );
        let group = json!({"id": "g1"});
        assert_eq!(
            patch(
                &group,
                json!([{"op": "remove", "path": "members[display co \"x\"]"}]),
                ResourceKind::Group
            )
            .unwrap_err()
            .scim_type(),
            "invalidFilter"
        );
    }

    #[test]
    fn adding_an_existing_value_is_a_no_op() {
        let p = patch(&user(), json!([{"op": "add", "path": "emails", "value": [{"value": "ada@example.com", "type": "work", "primary": true}]}]), ResourceKind::User).unwrap();
        assert_eq!(p.resource["emails"].as_array().unwrap().len(), 1);
    }
}

#[cfg(test)]
mod path_booleans {
    use super::*;
    use serde_json::json;

    #[test]
    fn entra_string_boolean_on_a_path() {
        let req: PatchRequest = serde_json::from_value(
            json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        )
        .unwrap();
        let p = apply(
            &json!({"active": true}),
            &req,
            ResourceKind::User,
            &CompatPolicy::default(),
        )
        .unwrap();
        assert_eq!(p.resource["active"], json!(false));
    }
}
