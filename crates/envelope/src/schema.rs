//! Versioned JSON Schemas, one per event type and version, kept as files under
//! `crates/envelope/schemas/<event_type>.v<version>.json` and compiled once at start-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::event::EnvelopeError;
use crate::sorted_json::{SortedJson, SortedJsonRepr};

/// A compiled schema that reads payloads as `SortedJson` (no `serde_json::Value` needed).
type PayloadValidator = jsonschema::Validator<SortedJsonRepr>;

/// A schema file that does not compile is a programming error in this repository, but it
/// is still reported, not panicked on.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema {name} is not valid JSON: {reason}")]
    NotJson { name: String, reason: String },
    #[error("schema {name} does not compile: {reason}")]
    Invalid { name: String, reason: String },
    #[error(
        "{name}: a schema file is named <event_type>.v<version>.json, like scim.user.created.v1.json"
    )]
    BadFileName { name: String },
    #[error(
        "{name} redefines {event_type} v{version}, already defined by {by}: add a new version instead"
    )]
    Redefined {
        name: String,
        event_type: String,
        version: u32,
        by: String,
    },
}

/// Families: every `app.<anything>` event type is validated by the `app.generic` schema
/// unless a more specific one is registered.
const FAMILIES: &[(&str, &str)] = &[("app.", "app.generic")];

macro_rules! builtin {
    ($($name:literal => $version:literal),* $(,)?) => {
        &[$(($name, $version, include_str!(concat!("../schemas/", $name, ".v", stringify!($version), ".json")))),*]
    };
}

const BUILTIN: &[(&str, u32, &str)] = builtin![
    "scim.user.created" => 1,
    "scim.user.updated" => 1,
    "scim.user.deactivated" => 1,
    "scim.user.deleted" => 1,
    "scim.group.created" => 1,
    "scim.group.updated" => 1,
    "scim.group.deleted" => 1,
    "scim.group.member_added" => 1,
    "scim.group.member_removed" => 1,
    "app.generic" => 1,
    "audit.log.viewed" => 1,
    "audit.log.searched" => 1,
    "audit.log.exported" => 1,
    "audit.token.created" => 1,
    "audit.token.revoked" => 1,
];

/// Maps `(event_type, schema_version)` to a compiled validator.
#[derive(Clone, Default)]
pub struct SchemaRegistry {
    // keyed by type first so that a lookup borrows the event type instead of copying it
    schemas: BTreeMap<String, BTreeMap<u32, Arc<PayloadValidator>>>,
    /// Each schema's definition and where it came from ("built-in" or a file name).
    sources: BTreeMap<(String, u32), (Value, String)>,
}

/// `<event_type>.v<version>.json` → (event_type, version).
pub fn parse_schema_file_name(name: &str) -> Option<(String, u32)> {
    let stem = name.strip_suffix(".json")?;
    let (event_type, version) = stem.rsplit_once(".v")?;
    let version: u32 = version.parse().ok()?;
    let valid = event_type.split('.').count() >= 2
        && event_type
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.');
    (valid && version > 0).then(|| (event_type.to_owned(), version))
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

impl SchemaRegistry {
    /// The schemas shipped with this crate.
    pub fn builtin() -> Result<Self, SchemaError> {
        let mut registry = Self::default();
        for (name, version, text) in BUILTIN {
            let schema: Value = serde_json::from_str(text).map_err(|e| SchemaError::NotJson {
                name: (*name).to_owned(),
                reason: e.to_string(),
            })?;
            registry.register(name, *version, &schema)?;
            registry.sources.insert(
                ((*name).to_owned(), *version),
                (schema, "built-in".to_owned()),
            );
        }
        Ok(registry)
    }

    /// Adds a deployment's schema file (`<event_type>.v<version>.json`), so teams add
    /// event types and versions without rebuilding. A file identical to a schema already
    /// known is accepted; one that changes a known (type, version) is refused, since
    /// events were accepted under the old definition.
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<(String, u32), SchemaError> {
        let (event_type, version) =
            parse_schema_file_name(name).ok_or_else(|| SchemaError::BadFileName {
                name: name.to_owned(),
            })?;
        let schema: Value = serde_json::from_str(text).map_err(|e| SchemaError::NotJson {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some((known, by)) = self.sources.get(&(event_type.clone(), version)) {
            if *known == schema {
                return Ok((event_type, version));
            }
            return Err(SchemaError::Redefined {
                name: name.to_owned(),
                event_type,
                version,
                by: by.clone(),
            });
        }
        self.register(&event_type, version, &schema)?;
        self.sources
            .insert((event_type.clone(), version), (schema, name.to_owned()));
        Ok((event_type, version))
    }

    /// Where a schema came from: "built-in", or the file that added it.
    pub fn origin(&self, event_type: &str, version: u32) -> Option<&str> {
        self.sources
            .get(&(event_type.to_owned(), version))
            .map(|(_, by)| by.as_str())
    }

    pub fn register(
        &mut self,
        event_type: &str,
        version: u32,
        schema: &Value,
    ) -> Result<(), SchemaError> {
        let validator = jsonschema::options_for::<SortedJsonRepr>()
            .build(schema)
            .map_err(|e| SchemaError::Invalid {
                name: format!("{event_type}.v{version}"),
                reason: e.to_string(),
            })?;
        self.schemas
            .entry(event_type.to_owned())
            .or_default()
            .insert(version, Arc::new(validator));
        Ok(())
    }

    /// Every registered `(event_type, version)`, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u32)> {
        self.schemas
            .iter()
            .flat_map(|(t, versions)| versions.keys().map(move |v| (t.as_str(), *v)))
    }

    fn lookup(&self, event_type: &str, version: u32) -> Option<&PayloadValidator> {
        let exact = |t: &str| self.schemas.get(t).and_then(|vs| vs.get(&version));
        exact(event_type)
            .or_else(|| {
                FAMILIES
                    .iter()
                    .find(|(prefix, _)| event_type.starts_with(prefix))
                    .and_then(|(_, family)| exact(family))
            })
            .map(Arc::as_ref)
    }

    /// True when some schema covers this event type at this version.
    pub fn knows(&self, event_type: &str, version: u32) -> bool {
        self.lookup(event_type, version).is_some()
    }

    /// Validates a payload held as a `serde_json::Value` (producers).
    pub fn validate(
        &self,
        event_type: &str,
        version: u32,
        payload: &Value,
    ) -> Result<(), EnvelopeError> {
        self.validate_sorted(event_type, version, &SortedJson::from_value(payload))
    }

    /// Validates a payload, listing every violation with its JSON pointer.
    pub fn validate_sorted(
        &self,
        event_type: &str,
        version: u32,
        payload: &SortedJson<'_>,
    ) -> Result<(), EnvelopeError> {
        let validator =
            self.lookup(event_type, version)
                .ok_or_else(|| EnvelopeError::UnknownSchema {
                    event_type: event_type.chars().take(128).collect(),
                    version,
                })?;
        if validator.is_valid(payload) {
            return Ok(());
        }
        let errors = validator
            .iter_errors(payload)
            .take(10)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
                format!("at {path}: {e}")
            })
            .collect();
        Err(EnvelopeError::SchemaViolation {
            event_type: event_type.to_owned(),
            version,
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_builtin_schema_compiles() {
        let r = SchemaRegistry::builtin().unwrap();
        assert_eq!(r.entries().count(), BUILTIN.len());
    }

    #[test]
    fn app_family_falls_back_to_generic() {
        let r = SchemaRegistry::builtin().unwrap();
        assert!(r.knows("app.document.shared", 1));
        assert!(!r.knows("app.document.shared", 2));
        assert!(!r.knows("billing.invoice.paid", 1));
        r.validate("app.document.shared", 1, &json!({"action": "share"}))
            .unwrap();
        let err = r
            .validate("app.document.shared", 1, &json!({"outcome": "maybe"}))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("action") && text.contains("/outcome"),
            "{text}"
        );
    }

    #[test]
    fn a_specific_schema_wins_over_the_family() {
        let mut r = SchemaRegistry::builtin().unwrap();
        r.register(
            "app.billing.paid",
            1,
            &json!({"type": "object", "required": ["amount"]}),
        )
        .unwrap();
        assert!(
            r.validate("app.billing.paid", 1, &json!({"action": "pay"}))
                .is_err()
        );
        assert!(
            r.validate("app.billing.paid", 1, &json!({"amount": 3}))
                .is_ok()
        );
    }

    #[test]
    fn deployment_files_add_types_and_versions_but_never_redefine() {
        let mut r = SchemaRegistry::builtin().unwrap();
        let (t, v) = r
            .add_file(
                "billing.invoice.paid.v1.json",
                r#"{"type": "object", "required": ["amount"]}"#,
            )
            .unwrap();
        assert_eq!((t.as_str(), v), ("billing.invoice.paid", 1));
        assert!(r.knows("billing.invoice.paid", 1));
        assert_eq!(
            r.origin("billing.invoice.paid", 1),
            Some("billing.invoice.paid.v1.json")
        );
        assert_eq!(r.origin("scim.user.created", 1), Some("built-in"));
        // a second version beside the first
        r.add_file("billing.invoice.paid.v2.json", r#"{"type": "object"}"#)
            .unwrap();
        assert!(r.knows("billing.invoice.paid", 2));
        // the same definition again is fine; another one for a known version is not
        r.add_file(
            "billing.invoice.paid.v1.json",
            r#"{"required": ["amount"], "type": "object"}"#,
        )
        .unwrap();
        let err = r
            .add_file("scim.user.created.v1.json", r#"{"type": "object"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("built-in"), "{err}");
        for bad in [
            "billing.json",
            "billing.invoice.v0.json",
            "Billing.x.v1.json",
            "x.v1.json",
            "a.b.v1.yaml",
        ] {
            assert!(
                matches!(r.add_file(bad, "{}"), Err(SchemaError::BadFileName { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            r.add_file("a.b.v1.json", "{"),
            Err(SchemaError::NotJson { .. })
        ));
        assert!(matches!(
            r.add_file("a.b.v1.json", r#"{"type": 12}"#),
            Err(SchemaError::Invalid { .. })
        ));
    }

    #[test]
    fn a_broken_schema_is_an_error() {
        let mut r = SchemaRegistry::default();
        assert!(r.register("x.y", 1, &json!({"type": 12})).is_err());
    }
}
