//! `/Schemas` and `/ResourceTypes` (RFC 7643 §6, §7): what this service supports, with
//! the attribute characteristics it enforces (`caseExact`, `mutability`, `returned`,
//! `uniqueness`).

use serde_json::{Value, json};

use crate::service::{GROUP_SCHEMA, USER_SCHEMA};

pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[allow(clippy::too_many_arguments)] // one row of RFC 7643's attribute characteristics
fn attr(
    name: &str,
    ty: &str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &str,
    returned: &str,
    uniqueness: &str,
) -> Value {
    json!({
        "name": name, "type": ty, "multiValued": multi, "required": required,
        "caseExact": case_exact, "mutability": mutability, "returned": returned, "uniqueness": uniqueness,
    })
}

fn simple(name: &str) -> Value {
    attr(
        name,
        "string",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
    )
}

fn multi_complex(name: &str, value_mutability: &str) -> Value {
    let mut a = attr(
        name,
        "complex",
        true,
        false,
        false,
        value_mutability,
        "default",
        "none",
    );
    a["subAttributes"] = json!([
        attr(
            "value",
            "string",
            false,
            false,
            false,
            value_mutability,
            "default",
            "none"
        ),
        simple("display"),
        simple("type"),
        attr(
            "primary",
            "boolean",
            false,
            false,
            false,
            "readWrite",
            "default",
            "none"
        ),
    ]);
    // a member or a group the user is in is also a resource: its URI (RFC 7643 §4.1.2, §4.2)
    if matches!(name, "groups" | "members")
        && let Some(subs) = a["subAttributes"].as_array_mut()
    {
        subs.push(attr(
            "$ref",
            "reference",
            false,
            false,
            false,
            value_mutability,
            "default",
            "none",
        ));
    }
    a
}

/// RFC 7643 §4.1.2 `addresses`: its own sub-attributes, not `value` and `display`.
fn addresses() -> Value {
    let mut a = attr(
        "addresses",
        "complex",
        true,
        false,
        false,
        "readWrite",
        "default",
        "none",
    );
    let mut subs: Vec<Value> = [
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
    ]
    .map(simple)
    .to_vec();
    subs.push(attr(
        "primary",
        "boolean",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
    ));
    a["subAttributes"] = Value::Array(subs);
    a
}

pub fn schemas() -> Vec<Value> {
    let mut name = attr(
        "name",
        "complex",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
    );
    name["subAttributes"] = json!(
        [
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix"
        ]
        .map(simple)
    );
    let user = json!({
        "id": USER_SCHEMA, "name": "User", "description": "User Account",
        "attributes": [
            attr("userName", "string", false, true, false, "readWrite", "default", "server"),
            name, simple("displayName"), simple("nickName"), simple("title"), simple("userType"),
            simple("preferredLanguage"), simple("locale"), simple("timezone"),
            attr("active", "boolean", false, false, false, "readWrite", "default", "none"),
            attr("password", "string", false, false, false, "writeOnly", "never", "none"),
            attr("profileUrl", "reference", false, false, false, "readWrite", "default", "none"),
            multi_complex("emails", "readWrite"), multi_complex("phoneNumbers", "readWrite"),
            multi_complex("ims", "readWrite"), multi_complex("photos", "readWrite"),
            addresses(),
            multi_complex("groups", "readOnly"),
            multi_complex("entitlements", "readWrite"), multi_complex("roles", "readWrite"),
            multi_complex("x509Certificates", "readWrite"),
            attr("externalId", "string", false, false, true, "readWrite", "default", "none"),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/Schemas/{USER_SCHEMA}")}
    });
    let group = json!({
        "id": GROUP_SCHEMA, "name": "Group", "description": "Group",
        "attributes": [
            attr("displayName", "string", false, true, false, "readWrite", "default", "none"),
            multi_complex("members", "immutable"),
            attr("externalId", "string", false, false, true, "readWrite", "default", "none"),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/Schemas/{GROUP_SCHEMA}")}
    });
    let mut manager = attr(
        "manager",
        "complex",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
    );
    manager["subAttributes"] = json!([
        simple("value"),
        attr(
            "$ref",
            "reference",
            false,
            false,
            false,
            "readWrite",
            "default",
            "none"
        ),
        attr(
            "displayName",
            "string",
            false,
            false,
            false,
            "readOnly",
            "default",
            "none"
        ),
    ]);
    let enterprise = json!({
        "id": ENTERPRISE_SCHEMA, "name": "EnterpriseUser", "description": "Enterprise User",
        "attributes": [simple("employeeNumber"), simple("costCenter"), simple("organization"), simple("division"), simple("department"), manager],
        "meta": {"resourceType": "Schema", "location": format!("/Schemas/{ENTERPRISE_SCHEMA}")}
    });
    let mut out = vec![user, group, enterprise];
    for s in &mut out {
        s["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]);
    }
    out
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
