//! `/Schemas` and `/ResourceTypes` (RFC 7643 §6, §7) as documents: what this service
//! supports. The attribute declarations themselves live in `crate::schema`.

use serde_json::{Value, json};

use crate::kind::ResourceKind;

pub use crate::service::ENTERPRISE_SCHEMA;

/// `/Schemas`: the declarations of `crate::schema`, which writes are also checked against.
pub fn schemas() -> Vec<Value> {
    crate::schema::all()
        .iter()
        .map(crate::schema::Schema::to_json)
        .collect()
}

/// `/ResourceTypes`: each kind's endpoint and the schemas `crate::schema::of` gives it.
pub fn resource_types() -> Vec<Value> {
    ResourceKind::ALL
        .into_iter()
        .map(|kind| {
            let (core, extensions) = crate::schema::of(kind);
            let name = kind.name();
            let mut rt = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": name, "name": name,
                "endpoint": format!("/{}", kind.collection()), "schema": core.id,
                "meta": {"resourceType": "ResourceType", "location": format!("/ResourceTypes/{name}")}
            });
            if !extensions.is_empty() {
                rt["schemaExtensions"] = extensions
                    .iter()
                    .map(|e| json!({"schema": e.id, "required": false}))
                    .collect();
            }
            rt
        })
        .collect()
}

/// A ListResponse of everything, as `/Schemas` and `/ResourceTypes` answer.
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [crate::service::LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
