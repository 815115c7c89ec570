//! Canonical JSON text: keys sorted, no insignificant whitespace. The payload hash is taken
//! over this form so that the same payload re-serialised by a retry (other key order, other
//! spacing) still hashes the same, whatever serde_json features other crates switch on.

use serde_json::Value;

use crate::sorted_json::SortedJson;

/// Serialises `value` with object keys in byte order and no whitespace.
pub fn canonical_json(value: &Value) -> String {
    SortedJson::from_value(value).to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_spacing_do_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{ "b": 1, "a": {"y": [1, 2], "x": "é\n"} }"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"é\n","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"é\n","y":[1,2]},"b":1}"#);
    }

    #[test]
    fn scalars_round_trip() {
        let v = json!([null, true, 1.5, -3, "q\"uo\\te\u{1}\u{8}\t"]);
        let text = canonical_json(&v);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        // identical to serde_json's own compact form when keys are already sorted
        assert_eq!(text, serde_json::to_string(&v).unwrap());
    }
}
