//! Replays an IdP's recorded conversation (`tests/fixtures/idp/*.json`) against the
//! router and checks every answer and the stored state after each step.
//!
//! A fixture is a list of steps: a request (`method`, `path`, optional `body`) with the
//! expected `status`, an `expect` document that the response must contain (objects by
//! key, arrays element for element in any order, with the same length), `absent` keys
//! that must not appear, and `capture` of JSON pointers into `${names}` that later
//! paths and bodies use. A `parallel` step sends its requests at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::collections::HashMap;

use serde_json::Value;

use crate::scim_http::{ACME, Api};

/// Does `actual` contain `expected`?
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| contains(av, ev))),
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return false;
            }
            let mut used = vec![false; a.len()];
            e.iter().all(|ev| {
                let hit = a
                    .iter()
                    .enumerate()
                    .position(|(i, av)| !used[i] && contains(av, ev));
                hit.map(|i| used[i] = true).is_some()
            })
        }
        (a, e) => a == e,
    }
}

fn fill(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    assert!(!out.contains("${"), "unresolved variable in {out}");
    out
}

fn fill_value(v: &Value, vars: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|i| fill_value(i, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_value(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn run_step<S>(
    api: &Api<S>,
    schemas: &crate::scim_schema::Discovered,
    fixture: &str,
    step: &Value,
    vars: &HashMap<String, String>,
) -> Value {
    let name = step["name"].as_str().unwrap_or("(parallel request)");
    let method = step["method"].as_str().unwrap();
    let path = fill(step["path"].as_str().unwrap(), vars);
    let body = step.get("body").map(|b| fill_value(b, vars));
    let r = api.call(method, &path, Some(ACME), body, &[]).await;
    let want = step["status"].as_u64().unwrap();
    assert_eq!(
        u64::from(r.status.as_u16()),
        want,
        "{fixture}: step {name:?}: {method} {path} answered {}",
        r.body
    );
    // every resource the server answers validates against its own /Schemas
    let wrong = schemas.violations(&r.body);
    assert!(
        wrong.is_empty(),
        "{fixture}: step {name:?}: the response does not validate against /Schemas:\n  {}\n{}",
        wrong.join("\n  "),
        r.body
    );
    if let Some(expect) = step.get("expect") {
        let expect = fill_value(expect, vars);
        assert!(
            contains(&r.body, &expect),
            "{fixture}: step {name:?}: response\n{}\ndoes not contain\n{expect}",
            r.body
        );
    }
    for key in step["absent"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap();
        assert!(
            r.body.get(key).is_none(),
            "{fixture}: step {name:?}: {key} should be absent from {}",
            r.body
        );
    }
    r.body
}

/// Replays one fixture file; returns the number of steps run.
pub async fn replay<S>(api: &Api<S>, file: &str) -> usize {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/idp")
        .join(file);
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut vars: HashMap<String, String> = HashMap::new();
    let schemas = crate::scim_schema::Discovered::read(api).await;
    let steps = fixture["steps"].as_array().unwrap();
    for step in steps {
        if let Some(parallel) = step.get("parallel").and_then(Value::as_array) {
            futures::future::join_all(
                parallel
                    .iter()
                    .map(|s| run_step(api, &schemas, file, s, &vars)),
            )
            .await;
            continue;
        }
        let body = run_step(api, &schemas, file, step, &vars).await;
        for (name, pointer) in step["capture"].as_object().into_iter().flatten() {
            let v = body
                .pointer(pointer.as_str().unwrap())
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{file}: nothing at {pointer} in {body}"));
            vars.insert(name.clone(), v.to_owned());
        }
    }
    steps.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containment_is_by_key_and_unordered_for_arrays() {
        let actual = json!({"a": 1, "m": [{"value": "x", "t": 1}, {"value": "y"}]});
        assert!(contains(
            &actual,
            &json!({"m": [{"value": "y"}, {"value": "x"}]})
        ));
        assert!(
            !contains(&actual, &json!({"m": [{"value": "y"}]})),
            "same length"
        );
        assert!(!contains(&actual, &json!({"a": 2})));
        assert!(!contains(&actual, &json!({"b": null})));
    }
}
