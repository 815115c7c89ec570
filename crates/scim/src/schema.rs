//! The attributes this service supports, as data (RFC 7643 §2.2, §4, §7): `/Schemas`
//! renders them, every write is checked against them (`conform`), and sorting takes its
//! case rules from them. What a strict client validates a response against is exactly
//! what the server enforces on the way in.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::kind::ResourceKind;
use crate::service::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }

    fn holds(self, v: &Value) -> bool {
        match self {
            AttrType::String | AttrType::Binary | AttrType::Reference => v.is_string(),
            AttrType::Boolean => v.is_boolean(),
            AttrType::Decimal => v.is_number(),
            AttrType::Integer => v.is_i64() || v.is_u64(),
            AttrType::DateTime => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            AttrType::Complex => v.is_object(),
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// One attribute's characteristics; a complex one has sub-attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    /// `server` when unique per tenant, else `none`.
    pub unique: bool,
    /// For references: the resource types (or `external`, `uri`) they may point at.
    pub reference_types: &'static [&'static str],
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    fn of(name: &'static str, ty: AttrType) -> Self {
        Self {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            unique: false,
            reference_types: &[],
            sub_attributes: Vec::new(),
        }
    }
    fn string(name: &'static str) -> Self {
        Self::of(name, AttrType::String)
    }
    fn boolean(name: &'static str) -> Self {
        Self::of(name, AttrType::Boolean)
    }
    fn reference(name: &'static str, to: &'static [&'static str]) -> Self {
        Self {
            reference_types: to,
            ..Self::of(name, AttrType::Reference)
        }
    }
    fn complex(name: &'static str, subs: Vec<Attribute>) -> Self {
        Self {
            sub_attributes: subs,
            ..Self::of(name, AttrType::Complex)
        }
    }
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    /// Every sub-attribute takes this mutability too (a read-only `groups`).
    fn all_mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        for s in &mut self.sub_attributes {
            s.mutability = m;
        }
        self
    }

    /// A sub-attribute, by name, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        find(&self.sub_attributes, name)
    }

    /// As `/Schemas` shows it (RFC 7643 §7).
    pub fn to_json(&self) -> Value {
        let mut a = json!({
            "name": self.name,
            "type": self.ty.name(),
            "multiValued": self.multi_valued,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
                Mutability::WriteOnly => "writeOnly",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Never => "never",
                Returned::Default => "default",
                Returned::Request => "request",
            },
            "uniqueness": if self.unique { "server" } else { "none" },
        });
        if !self.reference_types.is_empty() {
            a["referenceTypes"] = json!(self.reference_types);
        }
        if !self.sub_attributes.is_empty() {
            a["subAttributes"] = self.sub_attributes.iter().map(Attribute::to_json).collect();
        }
        a
    }
}

fn find<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A schema (RFC 7643 §7): a URN and its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find(&self.attributes, name)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("/Schemas/{}", self.id)},
        })
    }
}

/// `value`, `display`, `type`, `primary`: the usual sub-attributes of a multi-valued
/// attribute (RFC 7643 §2.4).
fn multi_valued(name: &'static str) -> Attribute {
    Attribute::complex(
        name,
        vec![
            Attribute::string("value"),
            Attribute::string("display"),
            Attribute::string("type"),
            Attribute::boolean("primary"),
        ],
    )
    .multi()
}

/// A list of references to resources of this service: `members`, a user's `groups`.
/// Their `value` is an id (case-exact); the server derives `$ref` and `display`.
fn resource_refs(name: &'static str, to: &'static [&'static str]) -> Attribute {
    Attribute::complex(
        name,
        vec![
            Attribute::string("value")
                .case_exact()
                .mutability(Mutability::Immutable),
            Attribute::reference("$ref", to).mutability(Mutability::Immutable),
            Attribute::string("display").mutability(Mutability::ReadOnly),
            Attribute::string("type").mutability(Mutability::Immutable),
        ],
    )
    .multi()
}

fn external_id() -> Attribute {
    Attribute::string("externalId").case_exact()
}

static SCHEMAS: LazyLock<[Schema; 3]> = LazyLock::new(|| {
    let name = Attribute::complex(
        "name",
        [
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix",
        ]
        .map(Attribute::string)
        .to_vec(),
    );
    let mut address_subs: Vec<Attribute> = [
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
    ]
    .map(Attribute::string)
    .to_vec();
    address_subs.push(Attribute::boolean("primary"));
    let user = Schema {
        id: USER_SCHEMA,
        name: "User",
        description: "User Account",
        attributes: vec![
            Attribute::string("userName").required().unique(),
            name,
            Attribute::string("displayName"),
            Attribute::string("nickName"),
            Attribute::reference("profileUrl", &["external"]),
            Attribute::string("title"),
            Attribute::string("userType"),
            Attribute::string("preferredLanguage"),
            Attribute::string("locale"),
            Attribute::string("timezone"),
            Attribute::boolean("active"),
            Attribute::string("password")
                .mutability(Mutability::WriteOnly)
                .returned(Returned::Never),
            multi_valued("emails"),
            multi_valued("phoneNumbers"),
            multi_valued("ims"),
            multi_valued("photos"),
            Attribute::complex("addresses", address_subs).multi(),
            resource_refs("groups", &["Group"]).all_mutability(Mutability::ReadOnly),
            multi_valued("entitlements"),
            multi_valued("roles"),
            multi_valued("x509Certificates"),
            external_id(),
        ],
    };
    let group = Schema {
        id: GROUP_SCHEMA,
        name: "Group",
        description: "Group",
        attributes: vec![
            Attribute::string("displayName").required().unique(),
            resource_refs("members", &["User", "Group"]),
            external_id(),
        ],
    };
    let manager = Attribute::complex(
        "manager",
        vec![
            Attribute::string("value").case_exact(),
            Attribute::reference("$ref", &["User"]),
            Attribute::string("displayName").mutability(Mutability::ReadOnly),
        ],
    );
    let enterprise = Schema {
        id: ENTERPRISE_SCHEMA,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
        ]
        .map(Attribute::string)
        .into_iter()
        .chain([manager])
        .collect(),
    };
    [user, group, enterprise]
});

/// Every schema this service declares.
pub fn all() -> &'static [Schema] {
    &*SCHEMAS
}

/// A schema by URN, case-insensitively.
pub fn by_urn(urn: &str) -> Option<&'static Schema> {
    all().iter().find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// A resource type's core schema and the extensions it may carry (`/ResourceTypes`).
pub fn of(kind: ResourceKind) -> (&'static Schema, &'static [Schema]) {
    // named as `SCHEMAS` builds them; `every_kind_has_its_declared_schemas` checks the URNs
    let [user, group, enterprise] = &*SCHEMAS;
    match kind {
        ResourceKind::User => (user, std::slice::from_ref(enterprise)),
        ResourceKind::Group => (group, &[]),
    }
}

/// What is wrong with a value a client wrote: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct Nonconforming {
    pub path: String,
    pub problem: String,
}

fn wrong(path: &str, problem: impl Into<String>) -> Nonconforming {
    Nonconforming {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Common attributes (RFC 7643 §3.1) that no schema declares; the service sets them.
const COMMON: [&str; 3] = ["id", "meta", "schemas"];

/// Checks a resource body about to be stored against its schemas (`core`, and the
/// `extensions` it may carry): every attribute declared, each value of its type and
/// multiplicity. Read-only sub-attributes are dropped, as RFC 7644 §3.5.1 has servers
/// ignore them. Attributes whose value equals the one in `before` are not checked
/// again, so a PATCH of one attribute never fails on another that was stored earlier.
pub fn conform(
    body: &mut Value,
    core: &Schema,
    extensions: &[Schema],
    before: Option<&Value>,
) -> Result<(), Nonconforming> {
    let Some(obj) = body.as_object_mut() else {
        return Err(wrong("", "a resource is a JSON object"));
    };
    let unchanged = |key: &str, v: &Value| {
        before
            .and_then(|b| crate::filter::get_ci(b, key))
            .is_some_and(|old| old == v)
    };
    for (key, value) in obj.iter_mut() {
        if COMMON.iter().any(|c| c.eq_ignore_ascii_case(key)) || value.is_null() {
            continue;
        }
        if let Some(ext) = extensions.iter().find(|e| e.id.eq_ignore_ascii_case(key)) {
            let old = before.and_then(|b| crate::filter::get_ci(b, key));
            let Some(inner) = value.as_object_mut() else {
                return Err(wrong(
                    key,
                    "an extension is a JSON object of its attributes",
                ));
            };
            for (k, v) in inner.iter_mut() {
                if v.is_null() || old.and_then(|o| crate::filter::get_ci(o, k)) == Some(v) {
                    continue;
                }
                let at = format!("{key}:{k}");
                let def = ext
                    .attribute(k)
                    .ok_or_else(|| wrong(&at, format!("not an attribute of {}", ext.id)))?;
                check(def, v, &at)?;
            }
            continue;
        }
        if unchanged(key, value) {
            continue;
        }
        let def = core.attribute(key).ok_or_else(|| {
            let what = if key.to_ascii_lowercase().starts_with("urn:") {
                "not a schema extension of this resource type (see /ResourceTypes)".to_owned()
            } else {
                format!("not an attribute of {} (see /Schemas)", core.id)
            };
            wrong(key, what)
        })?;
        check(def, value, key)?;
    }
    Ok(())
}

fn check(def: &Attribute, v: &mut Value, at: &str) -> Result<(), Nonconforming> {
    if def.multi_valued {
        let Some(items) = v.as_array_mut() else {
            return Err(wrong(at, "is multi-valued: a JSON array"));
        };
        let mut primaries = 0;
        for item in items.iter_mut() {
            single(def, item, at)?;
            primaries += usize::from(crate::filter::get_ci(item, "primary") == Some(&json!(true)));
        }
        if primaries > 1 {
            // RFC 7643 §2.4: the primary value appears at most once
            return Err(wrong(at, "more than one value has primary: true"));
        }
        return Ok(());
    }
    single(def, v, at)
}

fn single(def: &Attribute, v: &mut Value, at: &str) -> Result<(), Nonconforming> {
    if !def.ty.holds(v) {
        return Err(wrong(
            at,
            format!("is of type {}, not {}", def.ty.name(), json_kind(v)),
        ));
    }
    if def.ty == AttrType::Complex
        && let Some(o) = v.as_object_mut()
    {
        o.retain(|k, sv| {
            !sv.is_null()
                && def
                    .sub(k)
                    .is_none_or(|s| s.mutability != Mutability::ReadOnly)
        });
        for (k, sv) in o.iter_mut() {
            let at = format!("{at}.{k}");
            let sub = def
                .sub(k)
                .ok_or_else(|| wrong(&at, "not a sub-attribute declared in /Schemas"))?;
            if !sub.ty.holds(sv) {
                return Err(wrong(
                    &at,
                    format!("is of type {}, not {}", sub.ty.name(), json_kind(sv)),
                ));
            }
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user() -> &'static Schema {
        by_urn(USER_SCHEMA).unwrap()
    }
    fn enterprise() -> &'static Schema {
        by_urn(ENTERPRISE_SCHEMA).unwrap()
    }

    #[test]
    fn every_kind_has_its_declared_schemas() {
        for kind in ResourceKind::ALL {
            let (core, extensions) = of(kind);
            assert_eq!(core.id, kind.schema());
            assert!(core.attribute(kind.unique_attribute()).is_some());
            for e in extensions {
                assert!(std::ptr::eq(e, by_urn(e.id).unwrap()));
            }
        }
        assert_eq!(of(ResourceKind::User).1[0].id, ENTERPRISE_SCHEMA);
        assert!(of(ResourceKind::Group).1.is_empty());
    }

    #[test]
    fn declared_values_conform_and_others_say_where_they_are_wrong() {
        let mut ok = json!({
            "userName": "ada", "active": true, "name": {"givenName": "Ada"},
            "emails": [{"value": "a@x", "primary": true}, {"value": "b@x"}],
            ENTERPRISE_SCHEMA: {"employeeNumber": "7", "manager": {"value": "m", "displayName": "dropped"}},
        });
        conform(&mut ok, user(), std::slice::from_ref(enterprise()), None).unwrap();
        assert_eq!(
            ok[ENTERPRISE_SCHEMA]["manager"],
            json!({"value": "m"}),
            "a read-only sub-attribute is ignored"
        );
        for (body, path) in [
            (json!({"userName": 7}), "userName"),
            (json!({"active": "yes"}), "active"),
            (json!({"emails": {"value": "a"}}), "emails"),
            (json!({"name": "Ada"}), "name"),
            (json!({"name": {"nick": "A"}}), "name.nick"),
            (json!({"emails": [{"value": 1}]}), "emails.value"),
            (
                json!({"emails": [{"primary": true}, {"primary": true}]}),
                "emails",
            ),
            (json!({"shoeSize": "9"}), "shoeSize"),
            (
                json!({"urn:example:custom:1.0:User": {"a": "b"}}),
                "urn:example:custom:1.0:User",
            ),
            (
                json!({ENTERPRISE_SCHEMA: {"employeeNumber": 42}}),
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            ),
            (
                json!({ENTERPRISE_SCHEMA: {"badge": "x"}}),
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge",
            ),
            (json!({ENTERPRISE_SCHEMA: "x"}), ENTERPRISE_SCHEMA),
        ] {
            let mut b = body.clone();
            let e = conform(&mut b, user(), std::slice::from_ref(enterprise()), None).unwrap_err();
            assert_eq!(e.path, path, "{body}: {e}");
        }
    }

    #[test]
    fn values_stored_before_are_not_checked_again() {
        let before = json!({"userName": "ada", "shoeSize": 9, ENTERPRISE_SCHEMA: {"badge": 1}});
        let mut after = json!({"userName": "ada", "shoeSize": 9, "title": "Dr", ENTERPRISE_SCHEMA: {"badge": 1, "division": "R"}});
        conform(
            &mut after,
            user(),
            std::slice::from_ref(enterprise()),
            Some(&before),
        )
        .unwrap();
        let mut changed = json!({"userName": "ada", "shoeSize": 10});
        assert!(conform(&mut changed, user(), &[], Some(&before)).is_err());
    }

    #[test]
    fn the_declarations_say_what_rfc_7643_says() {
        let members = by_urn(GROUP_SCHEMA).unwrap().attribute("members").unwrap();
        assert_eq!(members.mutability, Mutability::ReadWrite);
        assert_eq!(
            members.sub("value").unwrap().mutability,
            Mutability::Immutable
        );
        assert_eq!(
            members.sub("$ref").unwrap().reference_types,
            ["User", "Group"]
        );
        let groups = user().attribute("groups").unwrap();
        assert!(
            groups
                .sub_attributes
                .iter()
                .all(|s| s.mutability == Mutability::ReadOnly)
        );
        let json = user().to_json();
        let password = json["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "password")
            .unwrap();
        assert_eq!(password["returned"], "never");
        use crate::filter::{AttrPath, CaseExact, CoreSchemas};
        let path = |urn: Option<&str>, attr: &str, sub: Option<&str>| AttrPath {
            urn: urn.map(str::to_owned),
            attr: attr.to_owned(),
            sub_attr: sub.map(str::to_owned),
        };
        // filters compare by what /Schemas declares
        assert!(CoreSchemas.case_exact(&path(Some(ENTERPRISE_SCHEMA), "manager", Some("VALUE"))));
        assert!(CoreSchemas.case_exact(&path(None, "externalId", None)));
        assert!(CoreSchemas.case_exact(&path(None, "members", Some("value"))));
        assert!(!CoreSchemas.case_exact(&path(None, "userName", None)));
        assert!(!CoreSchemas.case_exact(&path(None, "emails", Some("value"))));
        assert!(CoreSchemas.case_exact(&path(None, "meta", Some("version"))));
    }
}
