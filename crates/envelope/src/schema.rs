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
];

/// Maps `(event_type, schema_version)` to a compiled validator.
#[derive(Clone, Default)]
pub struct SchemaRegistry {
    // keyed by type first so that a lookup borrows the event type instead of copying it
    schemas: BTreeMap<String, BTreeMap<u32, Arc<PayloadValidator>>>,
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
        }
        Ok(registry)
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
    fn a_broken_schema_is_an_error() {
        let mut r = SchemaRegistry::default();
        assert!(r.register("x.y", 1, &json!({"type": 12})).is_err());
    }
}
