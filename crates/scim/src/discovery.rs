//! `/Schemas` and `/ResourceTypes` (RFC 7643 §6, §7) as documents: what this service
//! supports. The attribute declarations themselves live in `crate::schema`.

use serde_json::{Value, json};

use crate::service::{GROUP_SCHEMA, USER_SCHEMA};

pub use crate::service::ENTERPRISE_SCHEMA;

/// `/Schemas`: the declarations of `crate::schema`, which writes are also checked against.
pub fn schemas() -> Vec<Value> {
    crate::schema::all()
        .iter()
        .map(crate::schema::Schema::to_json)
        .collect()
}

pub fn resource_types() -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users", "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/User"}
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group", "name": "Group", "endpoint": "/Groups", "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/Group"}
        }),
    ]
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
