//! What a write must satisfy before it is stored: sizes, required and declared
//! attributes (`crate::schema::conform`), `schemas`, `If-Match`, PatchOp bodies.

#[allow(unused_imports)] // the parent's imports, shared by its parts
use super::*;

/// The largest resource stored, as JSON: under DynamoDB's 400 KB item with room for
/// its key and bookkeeping, and far above any user or group an IdP sends.
pub const MAX_RESOURCE_BYTES: usize = 256 * 1024;

/// The longest id or unique name (userName, a group's displayName): both are keys, and
/// DynamoDB keys hold at most 1-2 KB. Longer ones cannot exist, so reads naming one
/// find nothing; writes naming one get 400.
pub const MAX_KEY_VALUE_BYTES: usize = 512;

/// A resource about to be written fits the store, on every store alike.
pub(super) fn check_size(r: &Resource) -> Result<(), ScimError> {
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
pub(super) fn clean_body(
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

pub(super) fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|_, v| !v.is_null());
            o.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

pub(super) fn check_schemas(
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

pub(super) fn if_match_ok(if_match: Option<&str>, version: u64) -> bool {
    match if_match.map(str::trim) {
        None | Some("*") => true,
        Some(tags) => tags.split(',').any(|t| {
            let t = t.trim();
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.trim_matches('"') == version.to_string()
        }),
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

/// Member ids of a POST/PUT body's `members`.
pub(super) fn patch_members(body: &Value) -> Result<Vec<String>, ScimError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::CompatPolicy;

    #[test]
    fn if_match_takes_weak_strong_lists_and_star() {
        assert!(if_match_ok(None, 3));
        assert!(if_match_ok(Some("*"), 3));
        assert!(if_match_ok(Some("W/\"3\""), 3));
        assert!(if_match_ok(Some("\"3\""), 3));
        assert!(if_match_ok(Some("W/\"1\", W/\"3\""), 3));
        assert!(!if_match_ok(Some("W/\"2\""), 3));
    }

    #[test]
    fn a_body_is_cleaned_checked_and_stripped_of_what_the_server_sets() {
        let body = json!({
            "schemas": [USER_SCHEMA], "id": "x", "meta": {}, "password": "p",
            "userName": "ada", "title": null,
            "groups": [{"value": "g1"}],
            ENTERPRISE_SCHEMA: {"manager": "boss-id", "department": null},
        });
        let clean = clean_body(body, ResourceKind::User, &CompatPolicy::default(), None).unwrap();
        assert_eq!(
            clean,
            json!({"userName": "ada", ENTERPRISE_SCHEMA: {"manager": {"value": "boss-id"}}}),
            "nulls dropped, Entra's bare manager id made complex, server attributes gone"
        );
        for (body, kind) in [
            (json!({"userName": " "}), ErrorKind::InvalidValue),
            (
                json!({"userName": "ada", "password": 7}),
                ErrorKind::InvalidValue,
            ),
            (
                json!({"userName": "ada", "nickname2": "x"}),
                ErrorKind::InvalidValue,
            ),
            (json!(["not an object"]), ErrorKind::InvalidSyntax),
        ] {
            let e = clean_body(
                body.clone(),
                ResourceKind::User,
                &CompatPolicy::default(),
                None,
            )
            .unwrap_err();
            assert_eq!(e.kind, kind, "{body}: {e}");
        }
    }

    #[test]
    fn schemas_must_name_the_resource_unless_the_policy_lets_it_be_left_out() {
        let lenient = CompatPolicy::default();
        let strict = CompatPolicy::strict();
        assert!(check_schemas(&json!({}), ResourceKind::User, &lenient).is_ok());
        assert!(check_schemas(&json!({}), ResourceKind::User, &strict).is_err());
        let group = json!({"schemas": [GROUP_SCHEMA]});
        assert!(check_schemas(&group, ResourceKind::Group, &strict).is_ok());
        assert!(check_schemas(&group, ResourceKind::User, &lenient).is_err());
    }
}
