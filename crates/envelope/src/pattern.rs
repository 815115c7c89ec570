//! EventBridge event patterns, matched locally: the in-process bus routes with them, and
//! tests check that the deployed rule's pattern matches every event type we emit.
//!
//! Supported: exact values, `prefix`, `suffix`, `equals-ignore-case`, `wildcard`,
//! `anything-but` (value, list, or `{"prefix": ..}`), `exists`, `numeric`, and `$or`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern: {0}")]
pub struct PatternError(String);

/// A parsed, checked event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern(Value);

impl EventPattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PatternError(e.to_string()))?;
        Self::from_value(v)
    }

    pub fn from_value(v: Value) -> Result<Self, PatternError> {
        check(&v)?;
        Ok(Self(v))
    }

    /// Does `event` (the full envelope, `detail` included) match?
    pub fn matches(&self, event: &Value) -> bool {
        match_object(&self.0, Some(event))
    }
}

fn check(pattern: &Value) -> Result<(), PatternError> {
    let Value::Object(map) = pattern else {
        return Err(PatternError("a pattern must be a JSON object".into()));
    };
    for (key, v) in map {
        match v {
            Value::Object(_) => check(v)?,
            Value::Array(items) if key == "$or" => {
                for item in items {
                    check(item)?;
                }
            }
            Value::Array(_) => {}
            _ => {
                return Err(PatternError(format!(
                    "the value of {key:?} must be an array or an object"
                )));
            }
        }
    }
    Ok(())
}

fn match_object(pattern: &Value, event: Option<&Value>) -> bool {
    let Value::Object(map) = pattern else {
        return false;
    };
    map.iter().all(|(key, rule)| {
        if key == "$or" {
            return rule
                .as_array()
                .is_some_and(|alts| alts.iter().any(|alt| match_object(alt, event)));
        }
        let field = event.and_then(|e| e.get(key));
        match rule {
            Value::Object(_) => match_object(rule, field),
            Value::Array(matchers) => match_field(matchers, field),
            _ => false,
        }
    })
}

/// A field matches when any matcher matches (for an array field: any element).
fn match_field(matchers: &[Value], field: Option<&Value>) -> bool {
    let values: Vec<&Value> = match field {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    matchers.iter().any(|m| match m {
        Value::Object(op) => {
            if let Some(exists) = op.get("exists").and_then(Value::as_bool) {
                return exists == field.is_some();
            }
            values.iter().any(|v| match_operator(op, v))
        }
        literal => values.contains(&literal),
    })
}

fn match_operator(op: &serde_json::Map<String, Value>, v: &Value) -> bool {
    let s = v.as_str();
    if let Some(p) = op.get("prefix") {
        return match (p, s) {
            (Value::String(p), Some(s)) => s.starts_with(p.as_str()),
            (Value::Object(o), Some(s)) => o
                .get("equals-ignore-case")
                .and_then(Value::as_str)
                .is_some_and(|p| s.to_lowercase().starts_with(&p.to_lowercase())),
            _ => false,
        };
    }
    if let Some(p) = op.get("suffix").and_then(Value::as_str) {
        return s.is_some_and(|s| s.ends_with(p));
    }
    if let Some(p) = op.get("equals-ignore-case").and_then(Value::as_str) {
        return s.is_some_and(|s| s.eq_ignore_ascii_case(p));
    }
    if let Some(p) = op.get("wildcard").and_then(Value::as_str) {
        return s.is_some_and(|s| wildcard(p, s));
    }
    if let Some(but) = op.get("anything-but") {
        return match but {
            Value::Array(list) => !list.contains(v),
            Value::Object(o) => match (o.get("prefix").and_then(Value::as_str), s) {
                (Some(p), Some(s)) => !s.starts_with(p),
                _ => false,
            },
            other => other != v,
        };
    }
    if let Some(Value::Array(conds)) = op.get("numeric") {
        let Some(x) = v.as_f64() else { return false };
        return conds.chunks(2).all(|c| {
            match (
                c.first().and_then(Value::as_str),
                c.get(1).and_then(Value::as_f64),
            ) {
                (Some("="), Some(n)) => x == n,
                (Some("<"), Some(n)) => x < n,
                (Some("<="), Some(n)) => x <= n,
                (Some(">"), Some(n)) => x > n,
                (Some(">="), Some(n)) => x >= n,
                _ => false,
            }
        });
    }
    false
}

fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == s;
    }
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "source": "auditlog.scim",
            "detail-type": "scim.user.created",
            "account": "111122223333",
            "detail": {"metadata": {"tenant_id": "acme", "schema_version": 1}, "tags": ["a", "b"]}
        })
    }

    fn m(p: Value) -> bool {
        EventPattern::from_value(p).unwrap().matches(&event())
    }

    #[test]
    fn exact_and_nested() {
        assert!(m(json!({"source": ["auditlog.scim", "other"]})));
        assert!(!m(json!({"source": ["other"]})));
        assert!(m(json!({"detail": {"metadata": {"tenant_id": ["acme"]}}})));
        assert!(m(json!({"detail": {"tags": ["b"]}})));
        assert!(!m(json!({"detail": {"missing": ["x"]}})));
    }

    #[test]
    fn operators() {
        assert!(m(json!({"detail-type": [{"prefix": "scim."}]})));
        assert!(m(json!({"detail-type": [{"suffix": ".created"}]})));
        assert!(m(json!({"detail-type": [{"wildcard": "scim.*.created"}]})));
        assert!(!m(json!({"detail-type": [{"wildcard": "app.*"}]})));
        assert!(m(
            json!({"source": [{"equals-ignore-case": "AUDITLOG.SCIM"}]})
        ));
        assert!(m(json!({"source": [{"anything-but": "x"}]})));
        assert!(!m(json!({"source": [{"anything-but": ["auditlog.scim"]}]})));
        assert!(!m(
            json!({"source": [{"anything-but": {"prefix": "auditlog"}}]})
        ));
        assert!(m(
            json!({"detail": {"metadata": {"tenant_id": [{"exists": true}]}}})
        ));
        assert!(m(json!({"detail": {"nope": [{"exists": false}]}})));
        assert!(m(
            json!({"detail": {"metadata": {"schema_version": [{"numeric": [">=", 1, "<", 2]}]}}})
        ));
        assert!(!m(
            json!({"detail": {"metadata": {"schema_version": [{"numeric": [">", 1]}]}}})
        ));
    }

    #[test]
    fn or_and_catch_all() {
        assert!(m(
            json!({"$or": [{"source": ["x"]}, {"account": ["111122223333"]}]})
        ));
        assert!(!m(json!({"$or": [{"source": ["x"]}, {"account": ["1"]}]})));
        // the audit rule: every event with an account (i.e. every event) matches
        assert!(m(json!({"account": [{"exists": true}]})));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(EventPattern::parse("[]").is_err());
        assert!(EventPattern::parse(r#"{"source": "x"}"#).is_err());
        assert!(EventPattern::parse("{").is_err());
    }
}
