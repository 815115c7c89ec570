//! `SortedJson`: a JSON value that borrows its strings from the text it was parsed from and
//! keeps object members in canonical (byte) order. It is what a payload is decoded into on
//! the subscriber's hot path: the schema validator reads it directly (it implements
//! jsonschema's representation traits), the canonical text is a straight walk over it, and
//! building it costs a few small vectors instead of a `serde_json::Value`'s owned strings
//! and B-tree nodes.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use jsonschema::json::{Array, Json, Node, NodeIdentity, Object, cmp};
use jsonschema::types::JsonType;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::{Number, Value};

/// Numbers are compared by value, as RFC 8785 (JCS) does: `1`, `1.0` and `1e0` are one
/// number, written `1`, so a payload re-serialised by another JSON library (which may
/// print an integral float either way) hashes the same and is not a conflict. Unlike JCS,
/// integers keep every digit (JCS rounds them through a double): an id-like number
/// beyond 2^53 stays exact. A float that is integral and within ±2^53 (where a double
/// is exact) becomes that integer; other floats keep serde_json's shortest form.
fn float(n: f64) -> SortedJson<'static> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        // in range and integral: the cast is exact (and -0.0 becomes 0)
        return SortedJson::Number(Number::from(n as i64));
    }
    // as serde_json::Value does: a non-finite float becomes null
    Number::from_f64(n).map_or(SortedJson::Null, SortedJson::Number)
}

/// `canonical` form of a number already held by a `serde_json::Value`.
fn canonical_number(n: &Number) -> Number {
    match n.as_f64() {
        Some(f) if n.is_f64() => match float(f) {
            SortedJson::Number(c) => c,
            _ => n.clone(),
        },
        _ => n.clone(),
    }
}

/// A JSON value; objects hold their members sorted by key, one member per key (the last
/// one when the text repeats a key, as `serde_json::Value` does).
#[derive(Debug, Clone, PartialEq)]
pub enum SortedJson<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<SortedJson<'a>>),
    Object(Vec<(Cow<'a, str>, SortedJson<'a>)>),
}

impl<'a> SortedJson<'a> {
    /// Parses JSON text, borrowing every string that needs no unescaping.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A view of a `serde_json::Value` (strings borrowed), for producers that hold one.
    pub fn from_value(value: &'a Value) -> Self {
        match value {
            Value::Null => SortedJson::Null,
            Value::Bool(b) => SortedJson::Bool(*b),
            Value::Number(n) => SortedJson::Number(canonical_number(n)),
            Value::String(s) => SortedJson::String(Cow::Borrowed(s)),
            Value::Array(items) => SortedJson::Array(items.iter().map(Self::from_value).collect()),
            Value::Object(map) => SortedJson::Object(sorted_members(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Self::from_value(v)))
                    .collect(),
            )),
        }
    }

    /// The owned `serde_json::Value` (for error reports and other cold paths).
    pub fn to_value(&self) -> Value {
        match self {
            SortedJson::Null => Value::Null,
            SortedJson::Bool(b) => Value::Bool(*b),
            SortedJson::Number(n) => Value::Number(n.clone()),
            SortedJson::String(s) => Value::String(s.as_ref().to_owned()),
            SortedJson::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            SortedJson::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.as_ref().to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// The same value, owning its strings (to outlive the text it was parsed from).
    pub fn into_owned(self) -> SortedJson<'static> {
        let own = |s: Cow<'a, str>| Cow::Owned(s.into_owned());
        match self {
            SortedJson::Null => SortedJson::Null,
            SortedJson::Bool(b) => SortedJson::Bool(b),
            SortedJson::Number(n) => SortedJson::Number(n),
            SortedJson::String(s) => SortedJson::String(own(s)),
            SortedJson::Array(items) => {
                SortedJson::Array(items.into_iter().map(Self::into_owned).collect())
            }
            SortedJson::Object(members) => SortedJson::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (own(k), v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&SortedJson<'a>> {
        match self {
            SortedJson::Object(members) => members
                .binary_search_by(|(k, _)| k.as_ref().cmp(key))
                .ok()
                .map(|i| &members[i].1),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            SortedJson::String(s) => Some(s),
            _ => None,
        }
    }

    /// Canonical JSON text: members in key order, no insignificant whitespace, strings
    /// escaped as serde_json escapes them.
    pub fn to_canonical(&self) -> String {
        let mut out = String::with_capacity(1024);
        self.write_canonical(&mut out);
        out
    }

    pub fn write_canonical(&self, out: &mut String) {
        match self {
            SortedJson::Null => out.push_str("null"),
            SortedJson::Bool(true) => out.push_str("true"),
            SortedJson::Bool(false) => out.push_str("false"),
            // `Number`'s Display is the formatting serde_json serialises numbers with.
            SortedJson::Number(n) => out.push_str(&n.to_string()),
            SortedJson::String(s) => write_string(s, out),
            SortedJson::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_canonical(out);
                }
                out.push(']');
            }
            SortedJson::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write_canonical(out);
                }
                out.push('}');
            }
        }
    }
}

/// Sorts members by key; of repeated keys the last one stays, as in `serde_json::Value`.
fn sorted_members<'a>(
    mut members: Vec<(Cow<'a, str>, SortedJson<'a>)>,
) -> Vec<(Cow<'a, str>, SortedJson<'a>)> {
    if !members.is_sorted_by(|a, b| a.0 < b.0) {
        // stable, so repeated keys keep their text order and the dedup below keeps the last
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(later, kept);
                true
            } else {
                false
            }
        });
    }
    members
}

/// The same escaping serde_json uses: `"`, `\\` and control characters only.
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    // Most strings need no escaping: one scan, one copy. A fold without early exit, so
    // that the compiler vectorises it (`any` stops at each byte to test).
    let needs_escape = s.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A string that borrows from the input when it needs no unescaping.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SortedJson<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor(PhantomData))
    }
}

struct TreeVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TreeVisitor<'a> {
    type Value = SortedJson<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(SortedJson::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(SortedJson::Number(n.into()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(SortedJson::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(float(n))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(SortedJson::String(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(SortedJson::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(SortedJson::String(Cow::Owned(s)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(SortedJson::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(SortedJson::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        SortedJson::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(SortedJson::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(CowStr(key)) = map.next_key::<CowStr<'a>>()? {
            members.push((key, map.next_value()?));
        }
        Ok(SortedJson::Object(sorted_members(members)))
    }
}

/// The marker that lets jsonschema validators read `SortedJson` directly.
pub struct SortedJsonRepr;

impl Json for SortedJsonRepr {
    type Node<'a> = &'a SortedJson<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        _buffer: &mut (),
        string: &str,
        f: impl FnOnce(<Self as Json>::Node<'_>) -> T,
    ) -> T {
        f(&SortedJson::String(Cow::Borrowed(string)))
    }
}

impl<'a> Node<'a, SortedJsonRepr> for &'a SortedJson<'a> {
    type Object = &'a [(Cow<'a, str>, SortedJson<'a>)];
    type Array = &'a [SortedJson<'a>];
    type Number = &'a Number;

    fn as_object(&self) -> Option<Self::Object> {
        match self {
            SortedJson::Object(members) => Some(members),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<Self::Array> {
        match self {
            SortedJson::Array(items) => Some(items),
            _ => None,
        }
    }
    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            SortedJson::String(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }
    fn as_number(&self) -> Option<&'a Number> {
        match self {
            SortedJson::Number(n) => Some(n),
            _ => None,
        }
    }
    fn as_boolean(&self) -> Option<bool> {
        match self {
            SortedJson::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn is_null(&self) -> bool {
        matches!(self, SortedJson::Null)
    }
    fn json_type(&self) -> JsonType {
        match self {
            SortedJson::Null => JsonType::Null,
            SortedJson::Bool(_) => JsonType::Boolean,
            SortedJson::Number(_) => JsonType::Number,
            SortedJson::String(_) => JsonType::String,
            SortedJson::Array(_) => JsonType::Array,
            SortedJson::Object(_) => JsonType::Object,
        }
    }
    fn string_length(&self) -> Option<u64> {
        match self {
            SortedJson::String(s) if s.is_ascii() => Some(s.len() as u64),
            SortedJson::String(s) => Some(s.chars().count() as u64),
            _ => None,
        }
    }
    // `enum`/`const` run on every event (e.g. `outcome`): compare strings in place
    // instead of building a `Value` first.
    fn equals_value(&self, expected: &Value) -> bool {
        match (self, expected) {
            (SortedJson::String(s), Value::String(e)) => s == e,
            (SortedJson::String(_), _) => false,
            (SortedJson::Bool(b), Value::Bool(e)) => b == e,
            (SortedJson::Null, Value::Null) => true,
            _ => cmp::equal(&self.to_value(), expected),
        }
    }
    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(SortedJson::to_value(self))
    }
    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(
            std::ptr::from_ref::<SortedJson<'a>>(*self) as usize,
        ))
    }
}

impl<'a> Object<'a, SortedJsonRepr> for &'a [(Cow<'a, str>, SortedJson<'a>)] {
    type Node = &'a SortedJson<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        <[_]>::len(self)
    }
    fn get(&self, key: &Box<str>) -> Option<&'a SortedJson<'a>> {
        self.binary_search_by(|(k, _)| k.as_ref().cmp(key.as_ref()))
            .ok()
            .map(|i| &self[i].1)
    }
    fn members(&self) -> Members<'a> {
        Members(self.iter())
    }
}

pub struct Members<'a>(std::slice::Iter<'a, (Cow<'a, str>, SortedJson<'a>)>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a SortedJson<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<'a> Array<'a, SortedJsonRepr> for &'a [SortedJson<'a>] {
    type Node = &'a SortedJson<'a>;
    type ElementsIter = std::slice::Iter<'a, SortedJson<'a>>;

    fn len(&self) -> usize {
        <[_]>::len(self)
    }
    fn elements(&self) -> Self::ElementsIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn borrows_plain_strings_and_owns_escaped_ones() {
        let text = r#"{"b":"plain","a":"esc\"aped"}"#;
        let v = SortedJson::parse(text).unwrap();
        let SortedJson::Object(members) = &v else {
            panic!("object")
        };
        assert_eq!(members[0].0, "a");
        assert!(matches!(members[0].1, SortedJson::String(Cow::Owned(_))));
        assert!(matches!(members[1].1, SortedJson::String(Cow::Borrowed(_))));
        assert_eq!(v.get("a").and_then(SortedJson::as_str), Some("esc\"aped"));
        assert_eq!(v.get("c"), None);
    }

    #[test]
    fn repeated_keys_keep_the_last_value_like_serde_json() {
        let text = r#"{"k":1,"a":0,"k":2,"k":3}"#;
        let v = SortedJson::parse(text).unwrap();
        let reference: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v.to_value(), reference);
        assert_eq!(v.to_canonical(), r#"{"a":0,"k":3}"#);
    }

    #[test]
    fn satisfies_the_validator_contract() {
        let doc = jsonschema::json::conformance::document();
        let tree = SortedJson::from_value(&doc);
        jsonschema::json::conformance::assert_conformance::<SortedJsonRepr>(&&tree);
    }

    #[test]
    fn validates_like_the_value_validator() {
        let schema = json!({
            "type": "object", "required": ["action"],
            "properties": {
                "action": {"type": "string", "minLength": 2, "maxLength": 4},
                "outcome": {"enum": ["success", "denied", 3]},
                "n": {"type": "integer", "maximum": 10},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
            },
            "additionalProperties": false
        });
        let tree_validator = jsonschema::options_for::<SortedJsonRepr>()
            .build(&schema)
            .unwrap();
        let value_validator = jsonschema::validator_for(&schema).unwrap();
        for instance in [
            json!({"action": "go"}),
            json!({"action": "g"}),
            json!({"action": "héllo"}),
            json!({"action": "héll"}),
            json!({"action": "go", "outcome": "denied"}),
            json!({"action": "go", "outcome": "maybe"}),
            json!({"action": "go", "outcome": 3}),
            json!({"action": "go", "outcome": 3.0}),
            json!({"action": "go", "n": 11}),
            json!({"action": "go", "n": 1.5}),
            json!({"action": "go", "tags": ["a", "b"]}),
            json!({"action": "go", "tags": ["a", "a"]}),
            json!({"action": "go", "extra": true}),
            json!([1]),
        ] {
            let tree = SortedJson::from_value(&instance);
            assert_eq!(
                tree_validator.is_valid(&tree),
                value_validator.is_valid(&instance),
                "{instance}"
            );
            let tree_errors: Vec<String> = tree_validator
                .iter_errors(&tree)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            let value_errors: Vec<String> = value_validator
                .iter_errors(&instance)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert_eq!(tree_errors, value_errors, "{instance}");
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z\"\\\\\u{0}-\u{1f}é😀 ]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-d\"é]{0,3}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// `v` with every integral float within ±2^53 written as the integer it is.
    fn integral_floats_as_integers(v: &Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap();
                if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                    Value::from(f as i64)
                } else {
                    v.clone()
                }
            }
            Value::Array(a) => Value::Array(a.iter().map(integral_floats_as_integers).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), integral_floats_as_integers(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    #[test]
    fn numbers_are_one_value_however_they_are_written() {
        // the decision: 1, 1.0, 1e0 and 10e-1 are the same number, so the same event
        let forms = ["1", "1.0", "1e0", "10e-1", "1.00"];
        let canon: Vec<String> = forms
            .iter()
            .map(|f| {
                SortedJson::parse(&format!(r#"{{"n":{f}}}"#))
                    .unwrap()
                    .to_canonical()
            })
            .collect();
        assert!(canon.iter().all(|c| c == r#"{"n":1}"#), "{canon:?}");
        assert_eq!(SortedJson::parse("-0.0").unwrap().to_canonical(), "0");
        // other numbers stay distinct, and integers keep every digit
        assert_eq!(SortedJson::parse("1.5").unwrap().to_canonical(), "1.5");
        assert_ne!(
            SortedJson::parse("1").unwrap().to_canonical(),
            SortedJson::parse("1.000001").unwrap().to_canonical()
        );
        assert_eq!(
            SortedJson::parse("12345678901234567890")
                .unwrap()
                .to_canonical(),
            "12345678901234567890"
        );
        assert_eq!(SortedJson::parse("1e300").unwrap().to_canonical(), "1e+300");
        // a producer holding a Value gets the same text as the subscriber reading it
        let v: Value = serde_json::from_str(r#"{"n":2.0,"m":[3.0,0.5]}"#).unwrap();
        assert_eq!(
            SortedJson::from_value(&v).to_canonical(),
            r#"{"m":[3,0.5],"n":2}"#
        );
    }

    proptest! {
        // The canonical text is what is hashed: it must equal serde_json's compact form of
        // the same value with sorted keys (integral floats as integers), however the
        // text was spaced and ordered.
        #[test]
        fn canonical_text_matches_serde_json(v in arb_json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let tree = SortedJson::parse(&text).unwrap();
            let expected = integral_floats_as_integers(&v);
            prop_assert_eq!(tree.to_canonical(), serde_json::to_string(&expected).unwrap());
            prop_assert_eq!(SortedJson::from_value(&v).to_canonical(), tree.to_canonical());
            prop_assert_eq!(tree.to_value(), expected);
        }
    }
}
