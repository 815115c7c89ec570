//! SCIM filters and attribute paths (RFC 7644 §3.4.2.2 and §3.5.2): parsing into an AST
//! and evaluating it against a resource.
//!
//! Attribute names are case-insensitive (RFC 7643 §2.1); string comparison is
//! case-insensitive unless the attribute is `caseExact`, which the caller says through
//! `CaseExact`. Hostile input is bounded: filters longer than `MAX_FILTER_LEN` and nesting
//! deeper than `MAX_DEPTH` are refused with an error, never a stack overflow.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses, `not` and value filters.
pub const MAX_DEPTH: usize = 32;

/// An attribute path: optional schema URN, attribute, optional sub-attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix as written (e.g. the enterprise extension), if any.
    pub urn: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// Case-insensitive equality of two paths, URN included when both have one.
    pub fn same_as(&self, other: &AttrPath) -> bool {
        let urn_ok = match (&self.urn, &other.urn) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        urn_ok
            && self.attr.eq_ignore_ascii_case(&other.attr)
            && match (&self.sub_attr, &other.sub_attr) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A comparison value: `true`, `false`, `null`, a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Bool(bool),
    Null,
    Number(f64),
    String(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`, whose
    /// paths are relative to that value.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH path (RFC 7644 §3.5.2): `attrPath`, or `valuePath` with an optional
/// sub-attribute, e.g. `emails[type eq "work"].value` or `members[value eq "2819c223"]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPath {
    Attr(AttrPath),
    /// A whole schema by its URN: an extension object (or the core attributes).
    Schema(&'static str),
    Value {
        attr: AttrPath,
        filter: Box<Filter>,
        sub_attr: Option<String>,
    },
}

/// A filter or path that cannot be parsed; maps to 400 `invalidFilter` (or
/// `invalidPath` for PATCH paths).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {position}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Number(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// `.subAttr` right after `]` in a PATCH path.
    Dot,
}

fn err(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(err(
            MAX_FILTER_LEN,
            format!("filter is longer than {MAX_FILTER_LEN} bytes"),
        ));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((i, Token::LParen));
                i += 1;
            }
            b')' => {
                out.push((i, Token::RParen));
                i += 1;
            }
            b'[' => {
                out.push((i, Token::LBracket));
                i += 1;
            }
            b']' => {
                out.push((i, Token::RBracket));
                i += 1;
            }
            b'.' if matches!(out.last(), Some((_, Token::RBracket))) => {
                out.push((i, Token::Dot));
                i += 1;
            }
            b'"' => {
                // A JSON string literal: let serde_json handle escapes exactly.
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() {
                    return Err(err(start, "unterminated string"));
                }
                i += 1;
                let s: String = serde_json::from_str(&input[start..i])
                    .map_err(|e| err(start, format!("invalid string literal: {e}")))?;
                out.push((start, Token::Str(s)));
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let n: f64 = input[start..i]
                    .parse()
                    .map_err(|_| err(start, "invalid number"))?;
                out.push((start, Token::Number(n)));
            }
            _ if c.is_ascii_alphabetic() || c == b'$' || c == b'_' => {
                let start = i;
                // words include URNs (`urn:ietf:...:User:userName`) and dotted paths
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b':' | b'.' | b'_' | b'-' | b'$'))
                {
                    i += 1;
                }
                out.push((start, Token::Word(input[start..i].to_owned())));
            }
            _ => return Err(err(i, format!("unexpected character {:?}", char::from(c)))),
        }
    }
    Ok(out)
}

/// The schema URNs this service knows, longest first, so that a path resolves to the
/// longest it starts with: `urn:...:enterprise:2.0:User:manager` is the extension's
/// `manager`, and `urn:...:enterprise:2.0:User` the whole extension, never an
/// attribute `User` of a schema `urn:...:enterprise:2.0`.
pub const KNOWN_SCHEMAS: [&str; 3] = [
    crate::service::ENTERPRISE_SCHEMA,
    crate::service::GROUP_SCHEMA,
    crate::service::USER_SCHEMA,
];

/// The known schema `word` names whole (case-insensitively), in its canonical spelling.
pub fn whole_schema(word: &str) -> Option<&'static str> {
    KNOWN_SCHEMAS
        .into_iter()
        .find(|urn| word.eq_ignore_ascii_case(urn))
}

/// A known schema's URN and the attribute path after it, for `urn:...:attr.sub`.
fn known_prefix(word: &str) -> Option<(&'static str, &str)> {
    KNOWN_SCHEMAS.into_iter().find_map(|urn| {
        let head = word.get(..urn.len())?;
        let rest = word.get(urn.len()..)?.strip_prefix(':')?;
        head.eq_ignore_ascii_case(urn).then_some((urn, rest))
    })
}

/// Splits `urn:...:Resource:attr.sub` into its parts. The URN is the longest known
/// schema the word starts with (an unknown one: everything up to the last `:`); the
/// attribute name must start with a letter (RFC 7643 §2.1 ATTRNAME).
fn parse_attr_path(word: &str, position: usize) -> Result<AttrPath, FilterError> {
    if let Some(urn) = whole_schema(word) {
        return Err(err(
            position,
            format!("{urn} names a whole schema, not an attribute"),
        ));
    }
    let (urn, rest) = match (known_prefix(word), word.rfind(':')) {
        (Some((urn, rest)), _) => (Some(urn.to_owned()), rest),
        (None, Some(i)) => (Some(word[..i].to_owned()), &word[i + 1..]),
        (None, None) => (None, word),
    };
    let mut parts = rest.split('.');
    let attr = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(err(
            position,
            format!("attribute path {word:?} has more than one sub-attribute"),
        ));
    }
    let name_ok = |n: &str| {
        n.as_bytes()
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'$')
            && n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'$')
    };
    if !name_ok(attr) || sub.is_some_and(|s| !name_ok(s)) {
        return Err(err(position, format!("{word:?} is not an attribute path")));
    }
    Ok(AttrPath {
        urn,
        attr: attr.to_owned(),
        sub_attr: sub.map(str::to_owned),
    })
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(p, _)| *p)
    }

    fn next(&mut self) -> Option<(usize, Token)> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                self.at(),
                format!("filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// FILTER = or-expression; `and` binds tighter than `or`.
    fn filter(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and_expr()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.peek_keyword("not")
            && matches!(self.tokens.get(self.pos + 1), Some((_, Token::LParen)))
        {
            self.pos += 1;
            self.enter()?;
            let inner = self.parenthesised()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if matches!(self.peek(), Some(Token::LParen)) {
            self.enter()?;
            let inner = self.parenthesised()?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.attr_expr()
    }

    fn parenthesised(&mut self) -> Result<Filter, FilterError> {
        let open = self.at();
        self.pos += 1; // (
        let inner = self.filter()?;
        match self.next() {
            Some((_, Token::RParen)) => Ok(inner),
            _ => Err(err(open, "unbalanced parenthesis")),
        }
    }

    fn attr_expr(&mut self) -> Result<Filter, FilterError> {
        let at = self.at();
        let path = match self.next() {
            Some((p, Token::Word(w))) => parse_attr_path(&w, p)?,
            Some((p, t)) => {
                return Err(err(
                    p,
                    format!("expected an attribute name, found {}", describe(&t)),
                ));
            }
            None => {
                return Err(err(
                    at,
                    "expected an attribute name, found the end of the filter",
                ));
            }
        };
        if matches!(self.peek(), Some(Token::LBracket)) {
            let open = self.at();
            self.pos += 1;
            self.enter()?;
            let inner = self.filter()?;
            self.depth -= 1;
            return match self.next() {
                Some((_, Token::RBracket)) => Ok(Filter::ValuePath(path, Box::new(inner))),
                _ => Err(err(open, "unbalanced bracket")),
            };
        }
        let op_at = self.at();
        let op = match self.next() {
            Some((_, Token::Word(w))) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some((p, Token::Word(w))) => {
                CompareOp::parse(&w).ok_or_else(|| err(p, format!("unknown operator {w:?}")))?
            }
            Some((p, t)) => {
                return Err(err(
                    p,
                    format!("expected an operator, found {}", describe(&t)),
                ));
            }
            None => return Err(err(op_at, format!("expected an operator after {path}"))),
        };
        let value_at = self.at();
        let value = match self.next() {
            Some((_, Token::Str(s))) => CompValue::String(s),
            Some((_, Token::Number(n))) => CompValue::Number(n),
            Some((_, Token::Word(w))) if w == "true" => CompValue::Bool(true),
            Some((_, Token::Word(w))) if w == "false" => CompValue::Bool(false),
            Some((_, Token::Word(w))) if w == "null" => CompValue::Null,
            Some((p, t)) => {
                return Err(err(
                    p,
                    format!(
                        "expected a value (string, number, true, false, null), found {}",
                        describe(&t)
                    ),
                ));
            }
            None => {
                return Err(err(
                    value_at,
                    "expected a value, found the end of the filter",
                ));
            }
        };
        if matches!(
            op,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        ) && matches!(value, CompValue::Bool(_) | CompValue::Null)
        {
            return Err(err(value_at, "gt, ge, lt and le need a string or number"));
        }
        Ok(Filter::Compare(path, op, value))
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("{w:?}"),
        Token::Str(s) => format!("string {s:?}"),
        Token::Number(n) => format!("number {n}"),
        Token::LParen => "\"(\"".into(),
        Token::RParen => "\")\"".into(),
        Token::LBracket => "\"[\"".into(),
        Token::RBracket => "\"]\"".into(),
        Token::Dot => "\".\"".into(),
    }
}

impl Filter {
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        let tokens = tokenize(input)?;
        if tokens.is_empty() {
            return Err(err(0, "empty filter"));
        }
        let mut p = Parser {
            tokens,
            pos: 0,
            end: input.len(),
            depth: 0,
        };
        let f = p.filter()?;
        if let Some((pos, t)) = p.tokens.get(p.pos) {
            return Err(err(
                *pos,
                format!("unexpected {} after a complete filter", describe(t)),
            ));
        }
        Ok(f)
    }
}

impl PatchPath {
    pub fn parse(input: &str) -> Result<PatchPath, FilterError> {
        if let Some(urn) = whole_schema(input.trim()) {
            return Ok(PatchPath::Schema(urn));
        }
        let tokens = tokenize(input)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: input.len(),
            depth: 0,
        };
        let attr = match p.next() {
            Some((pos, Token::Word(w))) => parse_attr_path(&w, pos)?,
            _ => return Err(err(0, "a path starts with an attribute name")),
        };
        if p.peek().is_none() {
            return Ok(PatchPath::Attr(attr));
        }
        if attr.sub_attr.is_some() || !matches!(p.peek(), Some(Token::LBracket)) {
            return Err(err(p.at(), "unexpected text after the attribute path"));
        }
        let open = p.at();
        p.pos += 1;
        p.enter()?;
        let filter = p.filter()?;
        if !matches!(p.next(), Some((_, Token::RBracket))) {
            return Err(err(open, "unbalanced bracket"));
        }
        let sub_attr = match (p.next(), p.next()) {
            (None, _) => None,
            (Some((_, Token::Dot)), Some((pos, Token::Word(w)))) => {
                let sub = parse_attr_path(&w, pos)?;
                if sub.urn.is_some() || sub.sub_attr.is_some() {
                    return Err(err(pos, "only one sub-attribute may follow a value filter"));
                }
                Some(sub.attr)
            }
            (Some((pos, _)), _) => return Err(err(pos, "unexpected text after the value filter")),
        };
        if let Some((pos, _)) = p.tokens.get(p.pos) {
            return Err(err(*pos, "unexpected text at the end of the path"));
        }
        Ok(PatchPath::Value {
            attr,
            filter: Box::new(filter),
            sub_attr,
        })
    }
}

/// Whether string comparisons on an attribute are case-sensitive (RFC 7643 `caseExact`).
pub trait CaseExact {
    fn case_exact(&self, path: &AttrPath) -> bool;
}

/// The declared schemas' answer (`crate::schema`): `caseExact` as `/Schemas` states it
/// (ids, `externalId` and the `value` of references are case-exact, `userName` is not),
/// plus the common attributes: `id` and `meta.version` are case-exact.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreSchemas;

impl CaseExact for CoreSchemas {
    fn case_exact(&self, path: &AttrPath) -> bool {
        let sub = path.sub_attr.as_deref();
        if path.attr.eq_ignore_ascii_case("id") {
            return true;
        }
        if path.attr.eq_ignore_ascii_case("meta") {
            return sub.is_some_and(|s| s.eq_ignore_ascii_case("version"));
        }
        let core = crate::schema::all().iter().filter(|s| {
            path.urn
                .as_deref()
                .is_none_or(|u| s.id.eq_ignore_ascii_case(u))
        });
        core.filter_map(|s| s.attribute(&path.attr))
            .find_map(|a| match sub {
                Some(sub) => a.sub(sub),
                None => Some(a),
            })
            .is_some_and(|a| a.case_exact)
    }
}

/// Looks up a key case-insensitively.
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The top-level attribute a path names: inside the extension object of a URN-qualified
/// path when the resource has one, at the top level for core schema URNs.
pub fn top_value<'a>(resource: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let base = match &path.urn {
        Some(urn) => get_ci(resource, urn).unwrap_or(resource),
        None => resource,
    };
    get_ci(base, &path.attr)
}

/// The values an attribute path reaches in a resource (flattening multi-valued
/// attributes). A URN-qualified path looks inside the extension object of that URN
/// when the resource has one, and at the top level otherwise (core schema URNs).
fn resolve<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let Some(top) = top_value(resource, path) else {
        return vec![];
    };
    let tops: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        v => vec![v],
    };
    match &path.sub_attr {
        None => tops,
        Some(sub) => tops
            .into_iter()
            .filter_map(|v| get_ci(v, sub))
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                v => vec![v],
            })
            .collect(),
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => o.values().any(present),
        _ => true,
    }
}

fn compare_one(v: &Value, op: CompareOp, want: &CompValue, exact: bool) -> bool {
    match (v, want) {
        (Value::String(s), CompValue::String(w)) => {
            let (s, w) = if exact {
                (s.clone(), w.clone())
            } else {
                (s.to_lowercase(), w.to_lowercase())
            };
            match op {
                CompareOp::Eq => s == w,
                CompareOp::Ne => s != w,
                CompareOp::Co => s.contains(&w),
                CompareOp::Sw => s.starts_with(&w),
                CompareOp::Ew => s.ends_with(&w),
                // ISO 8601 timestamps in one format compare correctly as text
                CompareOp::Gt => s > w,
                CompareOp::Ge => s >= w,
                CompareOp::Lt => s < w,
                CompareOp::Le => s <= w,
            }
        }
        (Value::Number(n), CompValue::Number(w)) => {
            let Some(n) = n.as_f64() else { return false };
            let ord = n.partial_cmp(w);
            match op {
                CompareOp::Eq => ord == Some(Ordering::Equal),
                CompareOp::Ne => ord != Some(Ordering::Equal),
                CompareOp::Gt => ord == Some(Ordering::Greater),
                CompareOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                CompareOp::Lt => ord == Some(Ordering::Less),
                CompareOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                _ => false,
            }
        }
        (Value::Bool(b), CompValue::Bool(w)) => match op {
            CompareOp::Eq => b == w,
            CompareOp::Ne => b != w,
            _ => false,
        },
        // Entra sends booleans as strings ("False"); compare them as booleans
        (Value::Bool(b), CompValue::String(w))
            if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") =>
        {
            let w = w.eq_ignore_ascii_case("true");
            match op {
                CompareOp::Eq => *b == w,
                CompareOp::Ne => *b != w,
                _ => false,
            }
        }
        (Value::Null, CompValue::Null) => op == CompareOp::Eq,
        _ => op == CompareOp::Ne,
    }
}

impl Filter {
    /// Does `resource` match? `case` says which attributes compare case-exactly.
    pub fn matches(&self, resource: &Value, case: &dyn CaseExact) -> bool {
        match self {
            Filter::Present(path) => resolve(resource, path).into_iter().any(present),
            Filter::Compare(path, op, want) => {
                let values = resolve(resource, path);
                let exact = case.case_exact(path);
                if values.is_empty() {
                    // absent: "ne" anything and "eq null" are true
                    return *op == CompareOp::Ne
                        || (*op == CompareOp::Eq && *want == CompValue::Null);
                }
                if *op == CompareOp::Ne {
                    return values
                        .iter()
                        .all(|v| compare_one(v, CompareOp::Ne, want, exact));
                }
                values.iter().any(|v| compare_one(v, *op, want, exact))
            }
            Filter::And(a, b) => a.matches(resource, case) && b.matches(resource, case),
            Filter::Or(a, b) => a.matches(resource, case) || b.matches(resource, case),
            Filter::Not(f) => !f.matches(resource, case),
            Filter::ValuePath(path, inner) => {
                let scoped = ScopedCase {
                    outer: path,
                    inner: case,
                };
                resolve(resource, path)
                    .into_iter()
                    .any(|v| inner.matches(v, &scoped))
            }
        }
    }
}

/// Inside `attr[...]`, paths are relative to the attribute's values: `value` there means
/// `attr.value` for case-exactness.
struct ScopedCase<'a> {
    outer: &'a AttrPath,
    inner: &'a dyn CaseExact,
}

impl CaseExact for ScopedCase<'_> {
    fn case_exact(&self, path: &AttrPath) -> bool {
        self.inner.case_exact(&AttrPath {
            urn: self.outer.urn.clone(),
            attr: self.outer.attr.clone(),
            sub_attr: Some(path.attr.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Bjensen",
            "userName": "Bjensen@Example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "title": "Tour Guide",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff591\""},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
            "loginCount": 42
        })
    }

    fn m(f: &str) -> bool {
        Filter::parse(f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .matches(&user(), &CoreSchemas)
    }

    #[test]
    fn paths_resolve_against_the_longest_known_schema_urn() {
        const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let PatchPath::Attr(p) = PatchPath::parse(&format!("{EXT}:manager.value")).unwrap() else {
            panic!("an attribute path");
        };
        assert_eq!(
            (p.urn.as_deref(), p.attr.as_str(), p.sub_attr.as_deref()),
            (Some(EXT), "manager", Some("value"))
        );
        assert_eq!(PatchPath::parse(EXT).unwrap(), PatchPath::Schema(EXT));
        assert_eq!(
            PatchPath::parse(&EXT.to_ascii_uppercase()).unwrap(),
            PatchPath::Schema(EXT),
            "URNs are case-insensitive; the canonical spelling is kept"
        );
        // a filter comparing a whole schema is no filter
        assert!(Filter::parse(&format!("{EXT} eq \"x\"")).is_err());
        let f = Filter::parse(&format!("{EXT}:employeeNumber eq \"701984\"")).unwrap();
        let doc = serde_json::json!({EXT: {"employeeNumber": "701984"}});
        assert!(f.matches(&doc, &CoreSchemas));
    }

    #[test]
    fn rfc_7644_examples_parse() {
        // RFC 7644 §3.4.2.2, the filter examples
        for f in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn evaluates_like_the_rfc_says() {
        assert!(
            m(r#"userName eq "bjensen@example.com""#),
            "userName is case-insensitive"
        );
        assert!(
            m(r#"USERNAME Eq "BJENSEN@EXAMPLE.COM""#),
            "attribute names and operators too"
        );
        assert!(!m(r#"externalId eq "bjensen""#), "externalId is caseExact");
        assert!(m(r#"externalId eq "Bjensen""#));
        assert!(m(r#"name.familyName sw "jen""#));
        assert!(m(r#"emails[type eq "work"]"#));
        assert!(m(r#"emails[type eq "home" and value ew "jensen.org"]"#));
        assert!(
            !m(r#"emails[type eq "home" and value ew "example.com"]"#),
            "both on the same value"
        );
        assert!(m(r#"emails.value co "jensen""#), "multi-valued: any value");
        assert!(m("title pr and not (nickName pr)"));
        assert!(m(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#));
        assert!(m(
            "active eq true and loginCount gt 41 and loginCount le 42"
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#
        ));
        assert!(m(r#"nickName ne "x""#) && m("nickName eq null") && !m("nickName pr"));
        assert!(m(r#"active eq "True""#), "Entra's string booleans");
        assert!(m(r#"userName eq "nobody" or title eq "tour guide""#));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = Filter::parse("a pr or b pr and c pr").unwrap();
        assert!(matches!(f, Filter::Or(_, ref r) if matches!(**r, Filter::And(_, _))));
    }

    #[test]
    fn bad_filters_say_where_and_why() {
        for (f, needle) in [
            ("", "empty"),
            ("userName", "operator"),
            ("userName eq", "value"),
            (r#"userName xx "a""#, "unknown operator"),
            (r#"userName eq "a"#, "unterminated"),
            (r#"(userName eq "a""#, "parenthesis"),
            (r#"emails[type eq "work""#, "bracket"),
            (r#"userName eq "a" userName"#, "after a complete filter"),
            ("active gt true", "string or number"),
            ("a.b.c pr", "more than one sub-attribute"),
            ("1abc pr", "attribute"),
            ("userName eq 'single'", "unexpected character"),
        ] {
            let e = Filter::parse(f).unwrap_err();
            assert!(e.to_string().contains(needle), "{f:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}a pr{}", "(".repeat(1_000), ")".repeat(1_000));
        assert!(
            Filter::parse(&deep)
                .unwrap_err()
                .to_string()
                .contains("nests deeper")
        );
        let nots = format!("{}a pr{}", "not (".repeat(40), ")".repeat(40));
        assert!(Filter::parse(&nots).is_err());
        let ok = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok).is_ok());
        assert!(
            Filter::parse(&"a pr and ".repeat(2000)).is_err(),
            "too long"
        );
    }

    #[test]
    fn patch_paths() {
        assert_eq!(
            PatchPath::parse("name.givenName").unwrap(),
            PatchPath::Attr(AttrPath {
                urn: None,
                attr: "name".into(),
                sub_attr: Some("givenName".into())
            })
        );
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert!(
            matches!(p, PatchPath::Value { ref sub_attr, .. } if sub_attr.as_deref() == Some("value"))
        );
        let p = PatchPath::parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#)
            .unwrap();
        assert!(matches!(p, PatchPath::Value { sub_attr: None, .. }));
        let p = PatchPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert!(matches!(p, PatchPath::Attr(ref a) if a.urn.is_some() && a.attr == "manager"));
        for bad in [
            "",
            "emails[",
            r#"emails[type eq "work"]x"#,
            r#"emails[type eq "work"].a.b"#,
            "a b",
        ] {
            assert!(PatchPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn member_values_compare_case_exactly() {
        let group = json!({"members": [{"value": "AbC"}]});
        let f = Filter::parse(r#"members[value eq "abc"]"#).unwrap();
        assert!(!f.matches(&group, &CoreSchemas));
        let f = Filter::parse(r#"members[value eq "AbC"]"#).unwrap();
        assert!(f.matches(&group, &CoreSchemas));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,200}") {
            let _ = Filter::parse(&s);
            let _ = PatchPath::parse(&s);
        }

        #[test]
        fn random_nesting_never_panics(depth in 0usize..200, s in "[()\\[\\]a-z \"]{0,300}") {
            let _ = Filter::parse(&format!("{}{s}", "(".repeat(depth)));
        }
    }
}
