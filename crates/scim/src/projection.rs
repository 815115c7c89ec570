//! `attributes` and `excludedAttributes` (RFC 7644 §3.9, §3.4.2.5): which attributes a
//! response carries. `id` and `schemas` are always returned; `password` never is.
//! Names are case-insensitive and may be URN-qualified; an extension URN alone selects
//! the whole extension.

use serde_json::{Map, Value};

use crate::filter::{AttrPath, FilterError, PatchPath};

/// Attributes returned whatever was asked (returned "always").
const ALWAYS: &[&str] = &["id", "schemas"];
/// Attributes never returned (returned "never").
const NEVER: &[&str] = &["password"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid attribute list: {0}")]
pub struct ProjectionError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Selector {
    /// A whole extension object, e.g. `urn:...:enterprise:2.0:User`.
    Extension(String),
    Path(AttrPath),
}

fn parse_list(list: &str) -> Result<Vec<Selector>, ProjectionError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            match PatchPath::parse(item) {
                Ok(PatchPath::Attr(p)) => Ok(Selector::Path(p)),
                // `urn:...:User` alone names the extension; `urn:...:User:attr` an attribute in it
                Ok(PatchPath::Schema(urn)) => Ok(Selector::Extension(urn.to_owned())),
                Ok(_) => Err(ProjectionError(format!(
                    "{item:?}: value filters are not allowed here"
                ))),
                Err(FilterError { message, .. }) => {
                    Err(ProjectionError(format!("{item:?}: {message}")))
                }
            }
        })
        .collect()
}

fn is_extension_key(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("urn:") && key.to_ascii_lowercase().contains(":extension:")
}

/// The selectors that apply inside `scope` (None: the resource's top level; Some(urn):
/// inside that extension object).
fn matches_key(
    selectors: &[Selector],
    scope: Option<&str>,
    key: &str,
) -> Option<Vec<Option<String>>> {
    let mut subs = Vec::new();
    for s in selectors {
        match (s, scope) {
            (Selector::Extension(urn), None) if urn.eq_ignore_ascii_case(key) => {
                return Some(vec![None]);
            }
            (Selector::Path(p), _) => {
                let in_scope = match (&p.urn, scope) {
                    (None, None) => true,
                    (Some(u), Some(sc)) => u.eq_ignore_ascii_case(sc),
                    // a core-schema URN prefix addresses the top level
                    (Some(u), None) => !is_extension_key(u),
                    (None, Some(_)) => false,
                };
                if in_scope && p.attr.eq_ignore_ascii_case(key) {
                    subs.push(p.sub_attr.clone());
                }
            }
            _ => {}
        }
    }
    (!subs.is_empty()).then_some(subs)
}

/// Whether the selectors name what to keep (`attributes`) or what to drop
/// (`excludedAttributes`). One walk serves both, so the always/never rules and the
/// extension and sub-attribute handling cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Include,
    Exclude,
}

fn select(
    obj: &Map<String, Value>,
    selectors: &[Selector],
    scope: Option<&str>,
    mode: Mode,
) -> Map<String, Value> {
    let include = mode == Mode::Include;
    let mut out = Map::new();
    for (key, value) in obj {
        if NEVER.iter().any(|n| n.eq_ignore_ascii_case(key)) {
            continue;
        }
        if scope.is_none() && ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(key)) {
            out.insert(key.clone(), value.clone());
            continue;
        }
        if scope.is_none() && is_extension_key(key) {
            if matches_key(selectors, None, key).is_some() {
                if include {
                    out.insert(key.clone(), value.clone());
                }
            } else if let Value::Object(ext) = value {
                let inner = select(ext, selectors, Some(key), mode);
                // an included extension with nothing selected in it is left out
                if !(include && inner.is_empty()) {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            continue;
        }
        let kept = match matches_key(selectors, scope, key) {
            None => (!include).then(|| value.clone()),
            Some(subs) if subs.iter().any(Option::is_none) => include.then(|| value.clone()),
            Some(subs) => {
                let named = |k: &str| subs.iter().flatten().any(|s| s.eq_ignore_ascii_case(k));
                let pick = |o: &Map<String, Value>| -> Value {
                    Value::Object(
                        o.iter()
                            .filter(|(k, _)| named(k) == include)
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                };
                Some(match value {
                    Value::Object(o) => pick(o),
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|v| v.as_object().map_or_else(|| v.clone(), pick))
                            .collect(),
                    ),
                    v => v.clone(),
                })
            }
        };
        if let Some(v) = kept {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// Applies `attributes` (if given, it wins) or `excludedAttributes` to a resource.
pub fn project(
    resource: &Value,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Value, ProjectionError> {
    let Some(obj) = resource.as_object() else {
        return Ok(resource.clone());
    };
    let out = if let Some(list) = attributes.filter(|l| !l.trim().is_empty()) {
        select(obj, &parse_list(list)?, None, Mode::Include)
    } else {
        let selectors = match excluded {
            Some(list) => parse_list(list)?,
            None => vec![],
        };
        select(obj, &selectors, None, Mode::Exclude)
    };
    Ok(Value::Object(drop_unlisted_extensions(obj, out)))
}

/// `schemas` names an extension only while the projected resource holds it (RFC 7643
/// §3): excluding an extension takes it out of `schemas` too.
fn drop_unlisted_extensions(
    before: &Map<String, Value>,
    mut after: Map<String, Value>,
) -> Map<String, Value> {
    let held = |urn: &str, m: &Map<String, Value>| m.keys().any(|k| k.eq_ignore_ascii_case(urn));
    let gone: Vec<String> = before
        .keys()
        .filter(|k| !held(k, &after))
        .cloned()
        .collect();
    if let Some(Value::Array(list)) = after.get_mut("schemas") {
        list.retain(|s| {
            s.as_str()
                .is_none_or(|s| !gone.iter().any(|g| g.eq_ignore_ascii_case(s)))
        });
    }
    after
}

/// Whether a projection asks for `attr` at all (e.g. to skip loading `members` or
/// `groups` when a client excludes them, as Entra does with `excludedAttributes=members`).
pub fn wants(attr: &str, attributes: Option<&str>, excluded: Option<&str>) -> bool {
    let probe = serde_json::json!({ attr: true });
    project(&probe, attributes, excluded)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.keys().any(|k| k.eq_ignore_ascii_case(attr)))
        })
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1",
            "userName": "ada",
            "password": "hunter2",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "a@x", "type": "work"}],
            "groups": [{"value": "g1", "display": "Admins"}],
            ENT: {"department": "R&D", "employeeNumber": "7"},
            "meta": {"resourceType": "User", "version": "W/\"1\""}
        })
    }

    #[test]
    fn password_is_never_returned() {
        assert!(
            project(&user(), None, None)
                .unwrap()
                .get("password")
                .is_none()
        );
        assert!(
            project(&user(), Some("password"), None)
                .unwrap()
                .get("password")
                .is_none()
        );
    }

    #[test]
    fn attributes_keep_only_what_is_asked_plus_always_returned() {
        let v = project(&user(), Some("userName,NAME.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), None).unwrap();
        assert_eq!(
            v,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
                "id": "u1",
                "userName": "ada",
                "name": {"givenName": "Ada"},
                "emails": [{"value": "a@x"}],
                ENT: {"department": "R&D"}
            })
        );
        let v = project(
            &user(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User:userName"),
            None,
        )
        .unwrap();
        assert_eq!(v["userName"], "ada");
        let v = project(&user(), Some(ENT), None).unwrap();
        assert_eq!(v[ENT]["employeeNumber"], "7");
    }

    #[test]
    fn an_excluded_extension_leaves_schemas_too() {
        let v = project(&user(), None, Some(ENT)).unwrap();
        assert!(v.get(ENT).is_none());
        assert!(
            !v["schemas"].as_array().unwrap().contains(&json!(ENT)),
            "{v}"
        );
        let v = project(&user(), Some("userName"), None).unwrap();
        assert!(
            !v["schemas"].as_array().unwrap().contains(&json!(ENT)),
            "{v}"
        );
        let v = project(&user(), Some(ENT), None).unwrap();
        assert!(
            v["schemas"].as_array().unwrap().contains(&json!(ENT)),
            "{v}"
        );
    }

    #[test]
    fn excluded_attributes_drop_only_those() {
        let v = project(&user(), None, Some("groups,emails.type,id,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber")).unwrap();
        assert!(v.get("groups").is_none());
        assert_eq!(v["emails"], json!([{"value": "a@x"}]));
        assert_eq!(v["id"], "u1", "id is always returned");
        assert_eq!(v[ENT], json!({"department": "R&D"}));
        assert_eq!(v["meta"]["version"], "W/\"1\"");
    }

    /// Deep union of two projections of the same resource.
    fn merge(a: Value, b: Value) -> Value {
        match (a, b) {
            (Value::Object(mut a), Value::Object(b)) => {
                for (k, v) in b {
                    let merged = match a.remove(&k) {
                        // each side lists the extensions it kept
                        Some(Value::Array(mut av)) if k == "schemas" => {
                            for s in v.as_array().into_iter().flatten() {
                                if !av.contains(s) {
                                    av.push(s.clone());
                                }
                            }
                            Value::Array(av)
                        }
                        Some(av) => merge(av, v),
                        None => v,
                    };
                    a.insert(k, merged);
                }
                Value::Object(a)
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                Value::Array(a.into_iter().zip(b).map(|(a, b)| merge(a, b)).collect())
            }
            (a, b) => {
                assert_eq!(a, b, "a leaf kept by both sides must be the same value");
                a
            }
        }
    }

    #[test]
    fn attributes_and_excluded_attributes_split_a_resource_between_them() {
        // For every list: what `attributes` keeps and what `excludedAttributes` keeps add
        // up to the whole resource (the always-returned attributes are in both).
        let items = [
            "userName",
            "NAME.givenName",
            "emails.type",
            "groups",
            ENT,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "urn:ietf:params:scim:schemas:core:2.0:User:meta",
        ];
        let whole = project(&user(), None, None).unwrap();
        for mask in 1..(1u32 << items.len()) {
            let list: Vec<&str> = (0..items.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| items[i])
                .collect();
            let list = list.join(",");
            let kept = project(&user(), Some(&list), None).unwrap();
            let rest = project(&user(), None, Some(&list)).unwrap();
            assert_eq!(merge(kept.clone(), rest.clone()), whole, "{list}");
            assert_ne!(kept, whole, "{list}: attributes kept everything");
            assert_ne!(rest, whole, "{list}: excludedAttributes dropped nothing");
        }
    }

    #[test]
    fn wants_tells_whether_to_load_expensive_attributes() {
        assert!(!wants("members", None, Some("members")));
        assert!(wants("members", None, None));
        assert!(!wants("members", Some("displayName"), None));
        assert!(wants("members", Some("members.value"), None));
    }

    #[test]
    fn bad_lists_are_errors() {
        assert!(project(&user(), Some("emails[type eq \"work\"]"), None).is_err());
        assert!(project(&user(), None, Some("a b")).is_err());
    }
}
