//! `json_extract_scalar(json, path)` with Athena's (Trino's) meaning, so that queries
//! reading `payload` run unchanged on both engines: the scalar at a simple JSONPath
//! (`$.a.b`, `$.items[0].id`) as text; NULL when the path is missing, the value is an
//! object or array, or the text is not JSON.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonExtractScalar {
    signature: Signature,
}

pub fn json_extract_scalar() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonExtractScalar {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
    })
}

enum Step {
    Key(String),
    Index(usize),
}

/// `$.a.b[0]` into steps; None for paths outside the simple subset.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            if let Some(quoted) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                steps.push(Step::Key(quoted.to_owned()));
            } else {
                steps.push(Step::Index(inner.parse().ok()?));
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn extract(json: &str, steps: &[Step]) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let mut cur = &v;
    for s in steps {
        cur = match s {
            Step::Key(k) => cur.get(k)?,
            Step::Index(i) => cur.get(*i)?,
        };
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

impl ScalarUDFImpl for JsonExtractScalar {
    fn name(&self) -> &str {
        "json_extract_scalar"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [json, path] = args.args.as_slice() else {
            return exec_err!("json_extract_scalar takes (json, path)");
        };
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(path))) = path else {
            return exec_err!("json_extract_scalar: the path must be a constant string");
        };
        let Some(steps) = parse_path(path) else {
            return exec_err!("json_extract_scalar: unsupported JSONPath {path:?}");
        };
        match json {
            ColumnarValue::Scalar(ScalarValue::Utf8(text)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Utf8(text.as_deref().and_then(|t| extract(t, &steps))),
            )),
            ColumnarValue::Array(array) => {
                let Some(strings) = array.as_any().downcast_ref::<StringArray>() else {
                    return exec_err!("json_extract_scalar: expected a string column");
                };
                let out: StringArray = (0..strings.len())
                    .map(|i| {
                        (!strings.is_null(i))
                            .then(|| extract(strings.value(i), &steps))
                            .flatten()
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }
            _ => exec_err!("json_extract_scalar: expected a string"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(json: &str, path: &str) -> Option<String> {
        extract(json, &parse_path(path).unwrap())
    }

    #[test]
    fn scalars_at_simple_paths_like_athena() {
        let doc =
            r#"{"group": {"id": "g1", "n": 3, "ok": true}, "items": [{"id": "a"}], "k.y": 1}"#;
        assert_eq!(x(doc, "$.group.id").as_deref(), Some("g1"));
        assert_eq!(x(doc, "$.group.n").as_deref(), Some("3"));
        assert_eq!(x(doc, "$.group.ok").as_deref(), Some("true"));
        assert_eq!(x(doc, "$.items[0].id").as_deref(), Some("a"));
        assert_eq!(x(doc, "$[\"k.y\"]").as_deref(), Some("1"));
        assert_eq!(x(doc, "$.group"), None, "objects are not scalars");
        assert_eq!(x(doc, "$.missing.id"), None);
        assert_eq!(x("not json", "$.a"), None);
        assert!(parse_path("group.id").is_none());
    }
}
