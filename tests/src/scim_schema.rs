//! A SCIM client's view of the server's own discovery documents: it reads `/Schemas`
//! and `/ResourceTypes` as a strict client does, then checks that a resource the server
//! returns is what they declare (RFC 7643 §2, §3, §6, §7): every attribute declared,
//! each value of its type and multiplicity, sub-attributes of complex ones declared,
//! nothing `returned: never`, and `schemas` naming exactly the core schema and the
//! extensions present.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::collections::HashMap;

use serde_json::Value;

use crate::scim_http::{ACME, Api};

/// The common attributes of every resource (RFC 7643 §3.1), declared by no schema.
const COMMON: [&str; 3] = ["id", "externalId", "meta"];

pub struct Discovered {
    /// By lowercased URN.
    schemas: HashMap<String, Value>,
    /// By resource type name.
    types: HashMap<String, Value>,
}

fn find_ci<'a>(attrs: &'a [Value], name: &str) -> Option<&'a Value> {
    attrs.iter().find(|a| {
        a["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

impl Discovered {
    /// Reads the discovery endpoints through the API, as a client would.
    pub async fn read<S>(api: &Api<S>) -> Self {
        let list = |path: &'static str| async move {
            let r = api.call("GET", path, Some(ACME), None, &[]).await;
            assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
            r.body["Resources"].as_array().cloned().unwrap_or_default()
        };
        let schemas = list("/Schemas")
            .await
            .into_iter()
            .map(|s| (s["id"].as_str().unwrap().to_ascii_lowercase(), s))
            .collect();
        let types = list("/ResourceTypes")
            .await
            .into_iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t))
            .collect();
        Self { schemas, types }
    }

    pub fn schema(&self, urn: &str) -> Option<&Value> {
        self.schemas.get(&urn.to_ascii_lowercase())
    }

    /// The resource types of `/ResourceTypes`, by name.
    pub fn resource_types(&self) -> impl Iterator<Item = &Value> {
        let mut names: Vec<&String> = self.types.keys().collect();
        names.sort();
        names.into_iter().filter_map(|n| self.types.get(n))
    }

    /// What is wrong with a response body: a resource, or each resource of a
    /// ListResponse. Empty when it validates.
    pub fn violations(&self, body: &Value) -> Vec<String> {
        if let Some(items) = body.get("Resources").and_then(Value::as_array) {
            return items.iter().flat_map(|r| self.resource(r)).collect();
        }
        if body.pointer("/meta/resourceType").is_some() || body.get("id").is_some() {
            return self.resource(body);
        }
        Vec::new()
    }

    /// The resource type of a resource: its `meta.resourceType`, or (when `attributes`
    /// left `meta` out) the type whose core schema `schemas` lists.
    fn kind_of<'a>(&'a self, r: &'a Value) -> Option<&'a str> {
        if let Some(kind) = r.pointer("/meta/resourceType").and_then(Value::as_str) {
            return Some(kind);
        }
        let listed: Vec<&str> = r["schemas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        self.types.iter().find_map(|(name, t)| {
            let core = t["schema"].as_str()?;
            listed
                .iter()
                .any(|s| s.eq_ignore_ascii_case(core))
                .then_some(name.as_str())
        })
    }

    fn resource(&self, r: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let Some(kind) = self.kind_of(r) else {
            return vec![format!(
                "neither meta.resourceType nor a known core schema in {r}"
            )];
        };
        let Some(rt) = self.types.get(kind) else {
            return vec![format!("resource type {kind} is not in /ResourceTypes")];
        };
        let core_urn = rt["schema"].as_str().unwrap_or_default();
        let extensions: Vec<&str> = rt["schemaExtensions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["schema"].as_str())
            .collect();
        let Some(core) = self.schema(core_urn) else {
            return vec![format!("schema {core_urn} is not in /Schemas")];
        };
        let Some(obj) = r.as_object() else {
            return vec![format!("a resource is an object: {r}")];
        };
        let listed: Vec<String> = r["schemas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect();
        if !listed.contains(&core_urn.to_ascii_lowercase()) {
            out.push(format!(
                "schemas {listed:?} lacks the core schema {core_urn}"
            ));
        }
        let attrs = core["attributes"].as_array().cloned().unwrap_or_default();
        for (key, value) in obj {
            if key == "schemas" || COMMON.iter().any(|c| c.eq_ignore_ascii_case(key)) {
                continue;
            }
            if key.to_ascii_lowercase().starts_with("urn:") {
                let Some(ext) = extensions.iter().find(|e| e.eq_ignore_ascii_case(key)) else {
                    out.push(format!("{key} is not an extension of {kind}"));
                    continue;
                };
                if !listed.contains(&ext.to_ascii_lowercase()) {
                    out.push(format!("{key} is present but not in schemas {listed:?}"));
                }
                let Some(schema) = self.schema(ext) else {
                    out.push(format!("extension {ext} is not in /Schemas"));
                    continue;
                };
                let ext_attrs = schema["attributes"].as_array().cloned().unwrap_or_default();
                match value.as_object() {
                    Some(o) if !o.is_empty() => {
                        for (k, v) in o {
                            self.attribute(&ext_attrs, k, v, &format!("{key}:{k}"), &mut out);
                        }
                    }
                    _ => out.push(format!("{key} is present but holds no attributes: {value}")),
                }
                continue;
            }
            self.attribute(&attrs, key, value, key, &mut out);
        }
        for urn in &listed {
            if *urn != core_urn.to_ascii_lowercase()
                && !obj.keys().any(|k| k.eq_ignore_ascii_case(urn))
            {
                out.push(format!(
                    "schemas lists {urn}, which the resource does not hold"
                ));
            }
        }
        out
    }

    fn attribute(&self, attrs: &[Value], name: &str, v: &Value, at: &str, out: &mut Vec<String>) {
        let Some(def) = find_ci(attrs, name) else {
            out.push(format!("{at} is not declared"));
            return;
        };
        if def["returned"] == "never" {
            out.push(format!("{at} is returned: never, yet returned"));
        }
        if def["multiValued"] == true {
            match v.as_array() {
                Some(items) => items.iter().for_each(|i| self.single(def, i, at, out)),
                None => out.push(format!("{at} is multi-valued but not an array: {v}")),
            }
        } else {
            self.single(def, v, at, out);
        }
    }

    fn single(&self, def: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        let ok = match def["type"].as_str().unwrap_or_default() {
            "string" | "reference" | "binary" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "decimal" => v.is_number(),
            "dateTime" => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            "complex" => {
                let Some(o) = v.as_object() else {
                    out.push(format!("{at} is complex but not an object: {v}"));
                    return;
                };
                let subs = def["subAttributes"].as_array().cloned().unwrap_or_default();
                for (k, sv) in o {
                    match find_ci(&subs, k) {
                        None => out.push(format!("{at}.{k} is not declared")),
                        Some(sub) if sub["multiValued"] == true => {
                            out.push(format!(
                                "{at}.{k}: a sub-attribute cannot be multi-valued here"
                            ));
                        }
                        Some(sub) => self.single(sub, sv, &format!("{at}.{k}"), out),
                    }
                }
                true
            }
            other => {
                out.push(format!("{at} has an unknown type {other}"));
                true
            }
        };
        if !ok {
            out.push(format!("{at} is not a {}: {v}", def["type"]));
        }
    }
}
