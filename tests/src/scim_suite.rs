//! A SCIM conformance run driven by discovery, as an outside tester runs one. It reads
//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` and knows nothing else about
//! the server: for every resource type and every attribute they declare (core and
//! extension, sub-attributes, whole extensions) it checks create, GET with `attributes`
//! and `excludedAttributes`, PATCH add / replace / remove (by path, by value filter,
//! without path), PUT, every filter operator on every filterable attribute (answers
//! compared with the filter evaluated here, over the server's own listing), sorting,
//! both paginations and ETags. Every response is validated against `/Schemas`.
//!
//! Failures are collected rather than panicked on, so that one run lists every gap.
//! The tenant must be empty when the run starts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::idp_replay::contains;
use crate::scim_http::{ACME, Api, Reply};
use crate::scim_schema::Discovered;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// Mixed case on purpose: case-insensitive attributes must match either way.
const WORDS: [&str; 6] = ["Ada", "bob", "Cyd", "dee", "Eve", "fox"];

/// What a run found: how many checks it made and which failed.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: usize,
    pub failures: Vec<String>,
}

/// An attribute as discovery declares it: in the core schema or in an extension.
#[derive(Clone, Debug)]
struct Attr {
    ext: Option<String>,
    def: Value,
}

fn is(def: &Value, key: &str, v: &str) -> bool {
    def[key].as_str().is_some_and(|s| s.eq_ignore_ascii_case(v))
}

fn name_of(def: &Value) -> &str {
    def["name"].as_str().unwrap_or_default()
}

fn subs_of(def: &Value) -> Vec<Value> {
    def["subAttributes"].as_array().cloned().unwrap_or_default()
}

fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Does a complex attribute point at resources of this server (`members`, `manager`)?
/// Its `value` must then be an id that exists, and the server derives `$ref`.
fn refers(def: &Value) -> bool {
    subs_of(def).iter().any(|s| {
        name_of(s) == "$ref"
            && s["referenceTypes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t == "User" || t == "Group")
    })
}

impl Attr {
    fn name(&self) -> &str {
        name_of(&self.def)
    }
    /// The attribute's full path as filters, sortBy and PATCH name it.
    fn path(&self) -> String {
        match &self.ext {
            Some(u) => format!("{u}:{}", self.name()),
            None => self.name().to_owned(),
        }
    }
    fn multi(&self) -> bool {
        self.def["multiValued"] == true
    }
    fn complex(&self) -> bool {
        is(&self.def, "type", "complex")
    }
    fn writable(&self) -> bool {
        !is(&self.def, "mutability", "readOnly")
    }
    fn never_returned(&self) -> bool {
        is(&self.def, "returned", "never")
    }
    fn required(&self) -> bool {
        self.def["required"] == true
    }
    fn get<'v>(&self, r: &'v Value) -> Option<&'v Value> {
        let base = match &self.ext {
            Some(u) => get_ci(r, u)?,
            None => r,
        };
        get_ci(base, self.name())
    }
}

/// A resource type as discovery declares it, with every attribute of its schemas.
#[derive(Clone, Debug)]
struct Kind {
    name: String,
    endpoint: String,
    core: String,
    attrs: Vec<Attr>,
}

impl Kind {
    fn uri(&self, id: &str) -> String {
        format!("{}/{id}", self.endpoint)
    }
    fn unique(&self) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.ext.is_none() && is(&a.def, "uniqueness", "server"))
    }
}

/// A filterable leaf: an attribute path with its definition (a simple attribute, or a
/// sub-attribute of a complex one).
#[derive(Clone, Debug)]
struct Leaf {
    path: String,
    attr: Attr,
    sub: Option<Value>,
}

impl Leaf {
    fn def(&self) -> &Value {
        self.sub.as_ref().unwrap_or(&self.attr.def)
    }
    fn case_exact(&self) -> bool {
        self.def()["caseExact"] == true
    }
    /// The values this path reaches in a resource, multi-valued ones flattened.
    fn values<'v>(&self, r: &'v Value) -> Vec<&'v Value> {
        let Some(top) = self.attr.get(r) else {
            return vec![];
        };
        let tops: Vec<&Value> = match top {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        match &self.sub {
            None => tops,
            Some(s) => tops
                .into_iter()
                .filter_map(|t| get_ci(t, name_of(s)))
                .collect(),
        }
    }
    /// The value sortBy orders by: the primary value of a multi-valued attribute, else
    /// its first (RFC 7644 §3.4.2.3).
    fn sort_key(&self, r: &Value) -> Option<String> {
        let top = self.attr.get(r)?;
        let one = match top {
            Value::Array(items) => items
                .iter()
                .find(|i| get_ci(i, "primary") == Some(&json!(true)))
                .or(items.first())?,
            v => v,
        };
        let v = match &self.sub {
            Some(s) => get_ci(one, name_of(s))?,
            None => one,
        };
        Some(match v {
            Value::String(s) if self.case_exact() => s.clone(),
            Value::String(s) => s.to_lowercase(),
            other => other.to_string(),
        })
    }
}

/// The filter operators of RFC 7644 §3.4.2.2, evaluated here as the RFC says, to
/// compare with the server's answers.
fn eval(leaf: &Leaf, r: &Value, op: &str, want: &Value) -> bool {
    let values = leaf.values(r);
    let norm = |s: &str| {
        if leaf.case_exact() {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    let one = |v: &Value, op: &str| match (v, want) {
        (Value::String(s), Value::String(w)) => {
            let (s, w) = (norm(s), norm(w));
            match op {
                "eq" => s == w,
                "co" => s.contains(&w),
                "sw" => s.starts_with(&w),
                "ew" => s.ends_with(&w),
                "gt" => s > w,
                "ge" => s >= w,
                "lt" => s < w,
                "le" => s <= w,
                _ => false,
            }
        }
        (Value::Bool(b), Value::Bool(w)) => op == "eq" && b == w,
        _ => false,
    };
    match op {
        "pr" => values.iter().any(|v| match v {
            Value::String(s) => !s.is_empty(),
            Value::Null => false,
            _ => true,
        }),
        "ne" => !values.iter().any(|v| one(v, "eq")),
        op => values.iter().any(|v| one(v, op)),
    }
}

fn filter_text(path: &str, op: &str, v: &Value) -> String {
    if op == "pr" {
        format!("{path} pr")
    } else {
        format!("{path} {op} {v}")
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub struct Suite<'a, S> {
    api: &'a Api<S>,
    d: Discovered,
    spc: Value,
    kinds: Vec<Kind>,
    /// Users that reference attributes (`members`, `manager`) point at.
    refs: Vec<String>,
    report: Report,
}

impl<'a, S> Suite<'a, S> {
    /// Runs every check against `api`, whose tenant `ACME` holds nothing yet.
    pub async fn run(api: &'a Api<S>) -> Report {
        let d = Discovered::read(api).await;
        let spc = api
            .call("GET", "/ServiceProviderConfig", Some(ACME), None, &[])
            .await
            .body;
        let mut s = Suite {
            api,
            d,
            spc,
            kinds: Vec::new(),
            refs: Vec::new(),
            report: Report::default(),
        };
        s.discovery().await;
        for kind in s.kinds.clone() {
            s.lifecycle(&kind).await;
            s.projection(&kind).await;
            s.patches(&kind).await;
            s.put(&kind).await;
            s.filters(&kind).await;
            s.sorting(&kind).await;
            s.pagination(&kind).await;
            s.etags(&kind).await;
        }
        s.report
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        self.report.checks += 1;
        if !ok {
            self.report.failures.push(what());
        }
        ok
    }

    /// A request whose answer must have `status` and validate against /Schemas.
    async fn expect(
        &mut self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        status: u16,
    ) -> Option<Reply> {
        let r = self
            .api
            .call(method, uri, Some(ACME), body.clone(), headers)
            .await;
        let got = r.status.as_u16();
        let described = || {
            format!(
                "{method} {uri} {} answered {got}, not {status}: {}",
                body.map(|b| b.to_string()).unwrap_or_default(),
                r.body
            )
        };
        if !self.check(got == status, described) {
            return None;
        }
        let wrong = self.d.violations(&r.body);
        let body = r.body.clone();
        self.check(wrong.is_empty(), || {
            format!(
                "{method} {uri}: the answer does not validate against /Schemas: {} in {body}",
                wrong.join("; ")
            )
        });
        Some(r)
    }

    /// A request that must fail with a SCIM error of `status` (and `scim_type`).
    async fn refused(
        &mut self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        status: u16,
        scim_type: Option<&str>,
    ) {
        let r = self
            .api
            .call(method, uri, Some(ACME), body.clone(), &[])
            .await;
        let ok = r.status.as_u16() == status
            && r.body["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:Error"
            && r.body["status"].as_str() == Some(status.to_string().as_str())
            && scim_type.is_none_or(|t| r.body["scimType"] == t);
        self.check(ok, || {
            format!(
                "{method} {uri} {} should be refused with {status} {scim_type:?}, answered {}: {}",
                body.map(|b| b.to_string()).unwrap_or_default(),
                r.status,
                r.body
            )
        });
    }

    async fn discovery(&mut self) {
        for feature in ["patch", "bulk", "filter", "changePassword", "sort", "etag"] {
            let ok = self.spc[feature]["supported"].is_boolean();
            self.check(ok, || {
                format!("ServiceProviderConfig.{feature}.supported is not a boolean")
            });
        }
        let schemes = self.spc["authenticationSchemes"].as_array().map(Vec::len);
        self.check(schemes.unwrap_or(0) > 0, || {
            "ServiceProviderConfig lists no authenticationSchemes".into()
        });
        let types: Vec<Value> = self.d.resource_types().cloned().collect();
        self.check(!types.is_empty(), || "no resource types".into());
        for rt in types {
            let name = rt["name"].as_str().unwrap_or_default().to_owned();
            let one = self
                .api
                .call(
                    "GET",
                    &format!("/ResourceTypes/{name}"),
                    Some(ACME),
                    None,
                    &[],
                )
                .await;
            self.check(one.status == 200 && one.body == rt, || {
                format!(
                    "/ResourceTypes/{name} is not the listed resource type: {}",
                    one.body
                )
            });
            let core = rt["schema"].as_str().unwrap_or_default().to_owned();
            let mut attrs = Vec::new();
            let exts: Vec<String> = rt["schemaExtensions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["schema"].as_str().map(str::to_owned))
                .collect();
            for (urn, ext) in std::iter::once((core.clone(), None))
                .chain(exts.into_iter().map(|e| (e.clone(), Some(e))))
            {
                let Some(schema) = self.d.schema(&urn).cloned() else {
                    self.check(false, || format!("{name}: schema {urn} is not in /Schemas"));
                    continue;
                };
                let one = self
                    .api
                    .call("GET", &format!("/Schemas/{urn}"), Some(ACME), None, &[])
                    .await;
                self.check(one.status == 200 && one.body == schema, || {
                    format!("/Schemas/{urn} is not the listed schema: {}", one.body)
                });
                for def in schema["attributes"].as_array().cloned().unwrap_or_default() {
                    self.declared(&urn, &def);
                    attrs.push(Attr {
                        ext: ext.clone(),
                        def,
                    });
                }
            }
            self.kinds.push(Kind {
                name,
                endpoint: rt["endpoint"].as_str().unwrap_or_default().to_owned(),
                core,
                attrs,
            });
        }
        // users for reference attributes to point at
        let Some(users) = self.kinds.iter().find(|k| k.name == "User").cloned() else {
            self.check(false, || "no User resource type".into());
            return;
        };
        for i in 0..3 {
            let body = json!({"schemas": [users.core], "userName": format!("ref-{i}@example.com")});
            if let Some(r) = self
                .expect("POST", &users.endpoint, Some(body), &[], 201)
                .await
            {
                self.refs
                    .push(r.body["id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }

    /// RFC 7643 §7: each attribute states every characteristic; references name what
    /// they may reference.
    fn declared(&mut self, urn: &str, def: &Value) {
        let name = name_of(def).to_owned();
        for key in [
            "type",
            "multiValued",
            "required",
            "caseExact",
            "mutability",
            "returned",
            "uniqueness",
        ] {
            let ok = def.get(key).is_some();
            self.check(ok, || format!("{urn}:{name} does not declare {key}"));
        }
        if is(def, "type", "reference") {
            let ok = def["referenceTypes"]
                .as_array()
                .is_some_and(|t| !t.is_empty());
            self.check(ok, || {
                format!("{urn}:{name} is a reference without referenceTypes")
            });
        }
        for mut sub in subs_of(def) {
            sub["name"] = json!(format!("{name}.{}", name_of(&sub)));
            self.declared(urn, &sub);
        }
    }

    fn scalar(def: &Value, n: usize, i: usize) -> Value {
        let name = name_of(def);
        let word = WORDS[n % WORDS.len()];
        match def["type"].as_str().unwrap_or_default() {
            "boolean" => json!((n + i).is_multiple_of(2)),
            "reference" => json!(format!("https://example.com/{word}/{n}/{i}/{name}")),
            "integer" => json!(n * 10 + i),
            "decimal" => json!(n as f64 + 0.5),
            "dateTime" => json!(format!("2026-0{}-1{}T08:00:00Z", 1 + n % 9, i % 10)),
            "binary" => json!("QUJDRA=="),
            _ => json!(format!("{word}{n}{}-{name}", if i > 0 { "x" } else { "" })),
        }
    }

    /// One value of a complex attribute: every writable sub-attribute, with the RFC's
    /// conventions for `type` and `primary` in multi-valued ones.
    fn element(&self, def: &Value, n: usize, i: usize) -> Value {
        let multi = def["multiValued"] == true;
        let points = refers(def);
        let mut o = Map::new();
        for sub in subs_of(def) {
            let name = name_of(&sub);
            if is(&sub, "mutability", "readOnly") || (points && matches!(name, "$ref" | "type")) {
                continue;
            }
            let v = match name {
                "value" if points => {
                    if self.refs.is_empty() {
                        continue;
                    }
                    json!(self.refs[(n + i) % self.refs.len()])
                }
                "type" if multi => json!(["work", "home", "other"][i % 3]),
                "primary" if multi => json!(i == 0),
                _ => Self::scalar(&sub, n, i),
            };
            o.insert(name.to_owned(), v);
        }
        Value::Object(o)
    }

    /// A value for a writable attribute; `None` for read-only ones.
    fn sample(&self, a: &Attr, n: usize) -> Option<Value> {
        if !a.writable() {
            return None;
        }
        Some(match (a.multi(), a.complex()) {
            (true, true) if refers(&a.def) => json!([self.element(&a.def, n, 0)]),
            (true, true) => json!([self.element(&a.def, n, 0), self.element(&a.def, n, 1)]),
            (true, false) => json!([Self::scalar(&a.def, n, 0), Self::scalar(&a.def, n, 1)]),
            (false, true) => self.element(&a.def, n, 0),
            (false, false) => Self::scalar(&a.def, n, 0),
        })
    }

    /// A resource with every writable attribute set from seed `n`, leaving out `skip`.
    fn full(&self, kind: &Kind, n: usize, skip: &dyn Fn(&Attr) -> bool) -> Value {
        let mut body = Map::new();
        let mut schemas = vec![json!(kind.core)];
        for a in &kind.attrs {
            if skip(a) {
                continue;
            }
            let Some(v) = self.sample(a, n) else { continue };
            match &a.ext {
                None => {
                    body.insert(a.name().to_owned(), v);
                }
                Some(u) => {
                    if !schemas.contains(&json!(u)) {
                        schemas.push(json!(u));
                    }
                    let ext = body.entry(u.clone()).or_insert_with(|| json!({}));
                    ext[a.name()] = v;
                }
            }
        }
        body.insert("schemas".into(), Value::Array(schemas));
        Value::Object(body)
    }

    /// Each attribute the body sets reads back as set; write-only ones are not returned.
    fn holds(&mut self, what: &str, kind: &Kind, sent: &Value, got: &Value) {
        for a in &kind.attrs {
            let Some(want) = a.get(sent) else { continue };
            let back = a.get(got);
            if a.never_returned() {
                self.check(back.is_none(), || {
                    format!("{what}: {} is returned: never, yet returned", a.path())
                });
                continue;
            }
            self.check(back.is_some_and(|b| contains(b, want)), || {
                format!(
                    "{what}: {} was set to {want} and reads back as {}",
                    a.path(),
                    back.map_or("nothing".into(), Value::to_string)
                )
            });
        }
    }

    async fn create(&mut self, kind: &Kind, n: usize) -> Option<(String, Value)> {
        let body = self.full(kind, n, &|_| false);
        let r = self
            .expect("POST", &kind.endpoint, Some(body.clone()), &[], 201)
            .await?;
        self.holds(&format!("POST {}", kind.endpoint), kind, &body, &r.body);
        let id = r.body["id"].as_str().unwrap_or_default().to_owned();
        Some((id, r.body))
    }

    async fn lifecycle(&mut self, kind: &Kind) {
        let body = self.full(kind, 1, &|_| false);
        let Some(r) = self
            .expect("POST", &kind.endpoint, Some(body.clone()), &[], 201)
            .await
        else {
            return;
        };
        let what = format!("POST {}", kind.endpoint);
        self.holds(&what, kind, &body, &r.body);
        let id = r.body["id"].as_str().unwrap_or_default().to_owned();
        let location = r.headers.get("location").and_then(|v| v.to_str().ok());
        self.check(
            location.is_some() && location == r.body["meta"]["location"].as_str(),
            || format!("{what}: Location header {location:?} is not meta.location"),
        );
        let tag = r.headers.get("etag").and_then(|v| v.to_str().ok());
        self.check(
            tag.is_some() && tag == r.body["meta"]["version"].as_str(),
            || format!("{what}: ETag header {tag:?} is not meta.version"),
        );
        self.check(r.body["meta"]["resourceType"] == kind.name, || {
            format!("{what}: meta.resourceType is not {}", kind.name)
        });
        if let Some(got) = self.expect("GET", &kind.uri(&id), None, &[], 200).await {
            self.check(got.body == r.body, || {
                format!("GET {} differs from what POST answered", kind.uri(&id))
            });
        }
        // the same unique value again is a conflict (RFC 7644 §3.3)
        if kind.unique().is_some() {
            self.refused(
                "POST",
                &kind.endpoint,
                Some(body.clone()),
                409,
                Some("uniqueness"),
            )
            .await;
        }
        for a in kind
            .attrs
            .iter()
            .filter(|a| a.required() && a.ext.is_none())
        {
            let without = self.full(kind, 7, &|b| b.name() == a.name());
            self.refused("POST", &kind.endpoint, Some(without), 400, None)
                .await;
        }
        // a value of the wrong type is refused, not stored (RFC 7644 §3.12 invalidValue)
        for a in kind.attrs.iter().filter(|a| a.writable()) {
            let mut wrong = self.full(kind, 8, &|_| false);
            let bad = match (a.multi(), a.complex()) {
                (true, _) => json!({"not": "a list"}),
                (false, true) => json!(42),
                (false, false) if is(&a.def, "type", "boolean") => json!("maybe"),
                (false, false) => json!(12345),
            };
            match &a.ext {
                None => wrong[a.name()] = bad,
                Some(u) => wrong[u.as_str()][a.name()] = bad,
            }
            self.refused(
                "POST",
                &kind.endpoint,
                Some(wrong),
                400,
                Some("invalidValue"),
            )
            .await;
        }
        let mut unknown = self.full(kind, 9, &|_| false);
        unknown["notDeclaredAnywhere"] = json!("x");
        self.refused(
            "POST",
            &kind.endpoint,
            Some(unknown),
            400,
            Some("invalidValue"),
        )
        .await;
        self.expect("DELETE", &kind.uri(&id), None, &[], 204).await;
        self.refused("GET", &kind.uri(&id), None, 404, None).await;
        self.refused("DELETE", &kind.uri(&id), None, 404, None)
            .await;
    }

    /// `attributes` and `excludedAttributes` for every attribute, sub-attribute and
    /// extension (RFC 7644 §3.4.2.5, §3.9).
    async fn projection(&mut self, kind: &Kind) {
        let Some((id, full)) = self.create(kind, 2).await else {
            return;
        };
        let returned: Vec<Attr> = kind
            .attrs
            .iter()
            .filter(|a| !a.never_returned() && a.get(&full).is_some())
            .cloned()
            .collect();
        let mut asks: Vec<(String, Vec<String>)> = Vec::new();
        for a in &returned {
            asks.push((a.path(), vec![]));
            if a.complex() {
                for sub in subs_of(&a.def) {
                    let present = match a.get(&full) {
                        Some(Value::Array(items)) => {
                            items.iter().any(|i| get_ci(i, name_of(&sub)).is_some())
                        }
                        Some(v) => get_ci(v, name_of(&sub)).is_some(),
                        None => false,
                    };
                    if present {
                        asks.push((
                            format!("{}.{}", a.path(), name_of(&sub)),
                            vec![name_of(&sub).to_owned()],
                        ));
                    }
                }
            }
        }
        for (path, subs) in &asks {
            let attr = returned
                .iter()
                .find(|a| path == &a.path() || path.starts_with(&format!("{}.", a.path())))
                .unwrap();
            let uri = format!("{}?attributes={}", kind.uri(&id), encode(path));
            let Some(r) = self.expect("GET", &uri, None, &[], 200).await else {
                continue;
            };
            self.check(r.body["id"] == full["id"], || {
                format!("{uri}: id is returned always")
            });
            self.check(r.body.get("schemas").is_some(), || {
                format!("{uri}: no schemas")
            });
            let got = attr.get(&r.body).cloned();
            self.check(got.is_some(), || format!("{uri}: {path} is not returned"));
            for other in &returned {
                if other.path() != attr.path() && !is(&other.def, "returned", "always") {
                    self.check(other.get(&r.body).is_none(), || {
                        format!("{uri}: {} is returned though not asked for", other.path())
                    });
                }
            }
            if let (Some(got), Some(sub)) = (got, subs.first()) {
                let items = match got {
                    Value::Array(items) => items,
                    v => vec![v],
                };
                for item in items {
                    let keys: Vec<String> = item
                        .as_object()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    self.check(keys.iter().all(|k| k.eq_ignore_ascii_case(sub)), || {
                        format!("{uri}: {path} selects {sub} only, returned {keys:?}")
                    });
                }
            }
            let uri = format!("{}?excludedAttributes={}", kind.uri(&id), encode(path));
            let Some(r) = self.expect("GET", &uri, None, &[], 200).await else {
                continue;
            };
            let gone = match subs.first() {
                None => attr.get(&r.body).is_none() || is(&attr.def, "returned", "always"),
                Some(sub) => match attr.get(&r.body) {
                    Some(Value::Array(items)) => items.iter().all(|i| get_ci(i, sub).is_none()),
                    Some(v) => get_ci(v, sub).is_none(),
                    None => true,
                },
            };
            self.check(gone, || format!("{uri}: {path} is still returned"));
            for other in &returned {
                if other.path() != attr.path() {
                    self.check(other.get(&r.body).is_some(), || {
                        format!("{uri}: {} went missing", other.path())
                    });
                }
            }
        }
        // a whole extension selects all its attributes, and nothing of the core
        let exts: BTreeSet<String> = returned.iter().filter_map(|a| a.ext.clone()).collect();
        for urn in exts {
            let uri = format!("{}?attributes={}", kind.uri(&id), encode(&urn));
            if let Some(r) = self.expect("GET", &uri, None, &[], 200).await {
                let want = get_ci(&full, &urn).cloned().unwrap_or_default();
                self.check(get_ci(&r.body, &urn) == Some(&want), || {
                    format!("{uri}: the extension is not returned whole: {}", r.body)
                });
                if let Some(u) = kind.unique() {
                    self.check(u.get(&r.body).is_none(), || {
                        format!("{uri}: {} returned though not asked for", u.path())
                    });
                }
            }
            let uri = format!("{}?excludedAttributes={}", kind.uri(&id), encode(&urn));
            if let Some(r) = self.expect("GET", &uri, None, &[], 200).await {
                self.check(get_ci(&r.body, &urn).is_none(), || {
                    format!("{uri}: the extension is still returned")
                });
            }
        }
        // the same on a list
        if let Some(u) = kind.unique() {
            let uri = format!("{}?attributes={}", kind.endpoint, encode(&u.path()));
            if let Some(r) = self.expect("GET", &uri, None, &[], 200).await {
                let only = r.body["Resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|res| {
                        res.as_object().is_some_and(|o| {
                            o.keys()
                                .all(|k| ["id", "schemas", u.name()].contains(&k.as_str()))
                        })
                    });
                self.check(only, || format!("{uri}: resources hold more than asked"));
            }
        }
    }

    async fn patch(&mut self, kind: &Kind, id: &str, ops: Value, status: u16) -> Option<Value> {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        let r = self
            .expect("PATCH", &kind.uri(id), Some(body), &[], status)
            .await?;
        // what PATCH answers is what a read returns
        let got = self.expect("GET", &kind.uri(id), None, &[], 200).await?;
        let (a, b) = (r.body.clone(), got.body.clone());
        self.check(a == b, || {
            format!("PATCH {} answered {a} but GET returns {b}", kind.uri(id))
        });
        Some(got.body)
    }

    /// PATCH add, replace and remove on every writable attribute (RFC 7644 §3.5.2).
    async fn patches(&mut self, kind: &Kind) {
        let Some((id, _)) = self.create(kind, 3).await else {
            return;
        };
        for a in kind.attrs.clone() {
            let path = a.path();
            let Some(v) = self.sample(&a, 4) else {
                // read-only: any change is refused with mutability
                let ops = json!([{"op": "replace", "path": path, "value": "x"}]);
                let body = json!({"schemas": [PATCH_OP], "Operations": ops});
                self.refused("PATCH", &kind.uri(&id), Some(body), 400, Some("mutability"))
                    .await;
                continue;
            };
            let shown = !a.never_returned();
            // replace by path
            let ops = json!([{"op": "replace", "path": path, "value": v}]);
            if let Some(r) = self.patch(kind, &id, ops, 200).await
                && shown
            {
                let got = a.get(&r).cloned();
                self.check(got.as_ref().is_some_and(|g| contains(g, &v)), || {
                    format!("PATCH replace {path} with {v}: reads {got:?}")
                });
            }
            // without a path: the attribute inside the value, and for an extension
            // attribute also its full path as the key
            let v5 = self.sample(&a, 5).unwrap_or_default();
            let mut values = vec![match &a.ext {
                None => json!({ a.name(): v5 }),
                Some(u) => json!({ u.as_str(): { a.name(): v5 } }),
            }];
            if a.ext.is_some() {
                values.push(json!({ path.as_str(): self.sample(&a, 0).unwrap_or_default() }));
            }
            for value in values {
                let want = match &a.ext {
                    Some(_) if value.get(&path).is_some() => value[&path].clone(),
                    Some(u) => value[u.as_str()][a.name()].clone(),
                    None => value[a.name()].clone(),
                };
                let ops = json!([{"op": "replace", "value": value}]);
                if let Some(r) = self.patch(kind, &id, ops, 200).await
                    && shown
                {
                    let got = a.get(&r).cloned();
                    self.check(got.as_ref().is_some_and(|g| contains(g, &want)), || {
                        format!("PATCH replace without path {value}: {path} reads {got:?}")
                    });
                }
            }
            if a.complex() && !a.multi() {
                // a sub-attribute by path leaves the others
                for sub in subs_of(&a.def) {
                    if is(&sub, "mutability", "readOnly")
                        || (refers(&a.def) && name_of(&sub) != "value")
                    {
                        continue;
                    }
                    let sv = if refers(&a.def) {
                        json!(self.refs.last())
                    } else {
                        Self::scalar(&sub, 5, 1)
                    };
                    let sp = format!("{path}.{}", name_of(&sub));
                    let ops = json!([{"op": "replace", "path": sp, "value": sv}]);
                    if let Some(r) = self.patch(kind, &id, ops, 200).await {
                        let got = a.get(&r).and_then(|o| get_ci(o, name_of(&sub))).cloned();
                        self.check(got.as_ref() == Some(&sv), || {
                            format!("PATCH replace {sp} with {sv}: reads {got:?}")
                        });
                    }
                }
            }
            if a.complex() && a.multi() {
                self.multi_valued(kind, &id, &a).await;
            }
            if a.required() {
                let ops = json!([{"op": "remove", "path": path}]);
                let body = json!({"schemas": [PATCH_OP], "Operations": ops});
                self.refused("PATCH", &kind.uri(&id), Some(body), 400, None)
                    .await;
                continue;
            }
            // remove, then add back
            let ops = json!([{"op": "remove", "path": path}]);
            if let Some(r) = self.patch(kind, &id, ops, 200).await {
                self.check(a.get(&r).is_none(), || {
                    format!("PATCH remove {path}: still there")
                });
            }
            let ops = json!([{"op": "add", "path": path, "value": v}]);
            if let Some(r) = self.patch(kind, &id, ops, 200).await
                && shown
            {
                let got = a.get(&r).cloned();
                self.check(got.as_ref().is_some_and(|g| contains(g, &v)), || {
                    format!("PATCH add {path} with {v}: reads {got:?}")
                });
            }
        }
        // an extension removed whole by its URN
        let exts: BTreeSet<String> = kind.attrs.iter().filter_map(|a| a.ext.clone()).collect();
        for urn in exts {
            let ops = json!([{"op": "remove", "path": urn}]);
            if let Some(r) = self.patch(kind, &id, ops, 200).await {
                let listed = r["schemas"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s == &json!(urn));
                self.check(get_ci(&r, &urn).is_none() && !listed, || {
                    format!("PATCH remove {urn}: the extension is still there: {r}")
                });
            }
        }
        self.expect("DELETE", &kind.uri(&id), None, &[], 204).await;
    }

    /// Value filters in PATCH paths on a multi-valued complex attribute.
    async fn multi_valued(&mut self, kind: &Kind, id: &str, a: &Attr) {
        let path = a.path();
        if refers(&a.def) {
            // members: add one, remove it by value filter
            let Some(extra) = self.refs.first().cloned() else {
                return;
            };
            let ops = json!([{"op": "replace", "path": path, "value": [{"value": self.refs[1]}]}]);
            self.patch(kind, id, ops, 200).await;
            let ops = json!([{"op": "add", "path": path, "value": [{"value": extra}]}]);
            if let Some(r) = self.patch(kind, id, ops, 200).await {
                let n = a.get(&r).and_then(Value::as_array).map_or(0, Vec::len);
                self.check(n == 2, || format!("PATCH add to {path}: {n} values, not 2"));
            }
            let ops = json!([{"op": "remove", "path": format!("{path}[value eq \"{extra}\"]")}]);
            if let Some(r) = self.patch(kind, id, ops, 200).await {
                let left: Vec<&Value> = a
                    .get(&r)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .collect();
                self.check(left.len() == 1 && left[0]["value"] == self.refs[1], || {
                    format!("PATCH remove {path}[value eq {extra}]: left {left:?}")
                });
            }
            return;
        }
        let Some(v) = self.sample(a, 6) else { return };
        let ops = json!([{"op": "replace", "path": path, "value": v}]);
        self.patch(kind, id, ops, 200).await;
        // add appends
        let third = self.element(&a.def, 6, 2);
        let ops = json!([{"op": "add", "path": path, "value": [third]}]);
        if let Some(r) = self.patch(kind, id, ops, 200).await {
            let n = a.get(&r).and_then(Value::as_array).map_or(0, Vec::len);
            self.check(n == 3, || format!("PATCH add to {path}: {n} values, not 3"));
        }
        // replace one sub-attribute of the values a filter selects
        let sub = subs_of(&a.def)
            .into_iter()
            .find(|s| is(s, "type", "string") && !matches!(name_of(s), "type" | "display"));
        if let Some(sub) = sub {
            let sname = name_of(&sub).to_owned();
            let target = format!("{path}[type eq \"work\"].{sname}");
            let ops = json!([{"op": "replace", "path": target, "value": "changed-by-filter"}]);
            if let Some(r) = self.patch(kind, id, ops, 200).await {
                let items: Vec<Value> = a
                    .get(&r)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let work = items.iter().find(|i| i["type"] == "work");
                let home = items.iter().find(|i| i["type"] == "home");
                self.check(
                    work.is_some_and(|w| w[&sname] == "changed-by-filter")
                        && home.is_some_and(|h| h[&sname] != "changed-by-filter"),
                    || format!("PATCH replace {target}: {items:?}"),
                );
            }
            // a filter that selects nothing: noTarget (RFC 7644 §3.5.2.3)
            let none = format!("{path}[type eq \"nowhere\"].{sname}");
            let ops = json!([{"op": "replace", "path": none, "value": "x"}]);
            let body = json!({"schemas": [PATCH_OP], "Operations": ops});
            self.refused("PATCH", &kind.uri(id), Some(body), 400, Some("noTarget"))
                .await;
        }
        let target = format!("{path}[type eq \"home\"]");
        let ops = json!([{"op": "remove", "path": target}]);
        if let Some(r) = self.patch(kind, id, ops, 200).await {
            let items: Vec<Value> = a
                .get(&r)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            self.check(
                items.len() == 2 && items.iter().all(|i| i["type"] != "home"),
                || format!("PATCH remove {target}: {items:?}"),
            );
        }
    }

    /// PUT replaces the whole resource: what it sets reads back, what it leaves out is
    /// gone (RFC 7644 §3.5.1).
    async fn put(&mut self, kind: &Kind) {
        let Some((id, _)) = self.create(kind, 4).await else {
            return;
        };
        let body = self.full(kind, 5, &|_| false);
        let mut before = Value::Null;
        if let Some(r) = self
            .expect("PUT", &kind.uri(&id), Some(body.clone()), &[], 200)
            .await
        {
            self.holds(&format!("PUT {}", kind.uri(&id)), kind, &body, &r.body);
            before = r.body;
        }
        let sparse = self.full(kind, 5, &|a| !a.required());
        if let Some(r) = self
            .expect("PUT", &kind.uri(&id), Some(sparse), &[], 200)
            .await
        {
            // RFC 7644 §3.5.1: an omitted attribute is cleared, or (MAY) kept as it was
            for a in kind.attrs.iter().filter(|a| !a.required() && a.writable()) {
                let (now, was) = (a.get(&r.body), a.get(&before));
                self.check(now.is_none() || now == was, || {
                    format!("PUT without {} made it {now:?}", a.path())
                });
            }
        }
        self.refused("PUT", &kind.uri("no-such-id"), Some(body), 404, None)
            .await;
        self.expect("DELETE", &kind.uri(&id), None, &[], 204).await;
    }

    /// Everything of this kind in the tenant, by one unfiltered listing.
    async fn all(&mut self, kind: &Kind) -> Vec<Value> {
        let uri = format!("{}?count=200", kind.endpoint);
        let r = self.expect("GET", &uri, None, &[], 200).await;
        r.map(|r| r.body["Resources"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn leaves(kind: &Kind) -> Vec<Leaf> {
        let mut out = Vec::new();
        for a in kind.attrs.iter().filter(|a| !a.never_returned()) {
            if a.complex() {
                for sub in subs_of(&a.def) {
                    out.push(Leaf {
                        path: format!("{}.{}", a.path(), name_of(&sub)),
                        attr: a.clone(),
                        sub: Some(sub),
                    });
                }
            } else {
                out.push(Leaf {
                    path: a.path(),
                    attr: a.clone(),
                    sub: None,
                });
            }
        }
        out
    }

    async fn search(&mut self, kind: &Kind, filter: &str, extra: Value) -> Option<Value> {
        match self.search_or_refused(kind, filter, extra, None).await {
            Searched::Answer(v) => Some(v),
            Searched::Refused | Searched::Failed => None,
        }
    }

    /// `POST {endpoint}/.search`. With `may_refuse`, a 400 of that scimType is also a
    /// right answer (a server need not filter or sort a list of millions of members).
    async fn search_or_refused(
        &mut self,
        kind: &Kind,
        filter: &str,
        extra: Value,
        may_refuse: Option<&str>,
    ) -> Searched {
        let mut body = json!({"schemas": [SEARCH], "filter": filter, "count": 200});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let uri = format!("{}/.search", kind.endpoint);
        if let Some(scim_type) = may_refuse {
            let r = self
                .api
                .call("POST", &uri, Some(ACME), Some(body.clone()), &[])
                .await;
            if r.status == 400 {
                self.check(r.body["scimType"] == scim_type, || {
                    format!("{body}: refused without {scim_type}: {}", r.body)
                });
                return Searched::Refused;
            }
        }
        match self.expect("POST", &uri, Some(body), &[], 200).await {
            Some(r) => Searched::Answer(r.body),
            None => Searched::Failed,
        }
    }

    /// Creates one resource per seed; the ids of those made.
    async fn batch(&mut self, kind: &Kind, seeds: impl IntoIterator<Item = usize>) -> Vec<String> {
        let mut made = Vec::new();
        for n in seeds {
            if let Some((id, _)) = self.create(kind, n).await {
                made.push(id);
            }
        }
        made
    }

    async fn delete_batch(&mut self, kind: &Kind, made: Vec<String>) {
        for id in made {
            self.expect("DELETE", &kind.uri(&id), None, &[], 204).await;
        }
    }

    async fn all_ids(&mut self, kind: &Kind) -> BTreeSet<String> {
        self.all(kind)
            .await
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every operator on every filterable attribute, answers compared with the filter
    /// evaluated here over the server's own listing (RFC 7644 §3.4.2.2).
    async fn filters(&mut self, kind: &Kind) {
        let made = self.batch(kind, 10..14).await;
        let all = self.all(kind).await;
        let Some(target) = made
            .get(1)
            .and_then(|id| all.iter().find(|r| r["id"] == json!(id)))
        else {
            return;
        };
        let target = target.clone();
        for leaf in Self::leaves(kind) {
            let Some(v) = leaf.values(&target).first().map(|v| (*v).clone()) else {
                continue;
            };
            let mut asks: Vec<(&str, Value)> = vec![("pr", Value::Null)];
            match &v {
                Value::String(s) => {
                    let chars: Vec<char> = s.chars().collect();
                    let mid: String = chars[chars.len() / 3..(2 * chars.len() / 3).max(1)]
                        .iter()
                        .collect();
                    let head: String = chars[..chars.len().div_ceil(2)].iter().collect();
                    let tail: String = chars[chars.len() / 2..].iter().collect();
                    asks.extend([
                        ("eq", v.clone()),
                        ("eq", json!(s.to_uppercase())),
                        ("ne", v.clone()),
                        ("co", json!(mid)),
                        ("sw", json!(head)),
                        ("ew", json!(tail)),
                        ("gt", v.clone()),
                        ("ge", v.clone()),
                        ("lt", v.clone()),
                        ("le", v.clone()),
                    ]);
                }
                Value::Bool(_) => {
                    asks.extend([("eq", v.clone()), ("ne", v.clone())]);
                    // ordering a boolean is an invalid filter (RFC 7644 §3.4.2.2)
                    let f = filter_text(&leaf.path, "gt", &v);
                    let body = json!({"schemas": [SEARCH], "filter": f});
                    let uri = format!("{}/.search", kind.endpoint);
                    self.refused("POST", &uri, Some(body), 400, Some("invalidFilter"))
                        .await;
                }
                _ => {}
            }
            for (op, want) in asks {
                let f = filter_text(&leaf.path, op, &want);
                // a member list may hold millions: the server may answer only `eq` on
                // it, and must then refuse the rest clearly
                let may_refuse = (refers(&leaf.attr.def) && leaf.attr.multi() && op != "eq")
                    .then_some("invalidFilter");
                let Searched::Answer(got) = self
                    .search_or_refused(kind, &f, json!({}), may_refuse)
                    .await
                else {
                    continue;
                };
                let expected: BTreeSet<String> = all
                    .iter()
                    .filter(|r| eval(&leaf, r, op, &want))
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect();
                let got_ids: BTreeSet<String> = ids(&got).into_iter().collect();
                let total = got["totalResults"].as_u64();
                self.check(got_ids == expected && total == Some(expected.len() as u64), || {
                    format!(
                        "{} filter {f}: expected {} resources {expected:?}, got {got_ids:?} (totalResults {total:?})",
                        kind.endpoint,
                        expected.len()
                    )
                });
            }
        }
        // value filters, logic and grouping
        let unique = kind.unique().map(Attr::path);
        let multi = kind
            .attrs
            .iter()
            .find(|a| a.multi() && a.complex() && !refers(&a.def) && a.writable())
            .cloned();
        if let (Some(u), Some(uv)) = (&unique, kind.unique().and_then(|a| a.get(&target)).cloned())
        {
            let one: BTreeSet<String> =
                [target["id"].as_str().unwrap_or_default().to_owned()].into();
            let rest: BTreeSet<String> = all
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .filter(|id| !one.contains(id))
                .collect();
            let cases = [
                (format!("{u} eq {uv} and id pr"), one.clone()),
                (format!("not ({u} eq {uv})"), rest.clone()),
                (
                    format!("({u} eq {uv}) or ({u} eq \"nobody-at-all\")"),
                    one.clone(),
                ),
                (
                    format!("id eq \"{}\"", target["id"].as_str().unwrap_or_default()),
                    one.clone(),
                ),
                (
                    format!("meta.resourceType eq \"{}\" and {u} eq {uv}", kind.name),
                    one.clone(),
                ),
            ];
            for (f, want) in cases {
                if let Some(got) = self.search(kind, &f, json!({})).await {
                    let got: BTreeSet<String> = ids(&got).into_iter().collect();
                    self.check(got == want, || {
                        format!("filter {f}: got {got:?}, want {want:?}")
                    });
                }
            }
            // the same filter as a query parameter, percent-encoded
            let f = format!("{u} eq {uv}");
            let uri = format!("{}?filter={}", kind.endpoint, encode(&f));
            if let Some(r) = self.expect("GET", &uri, None, &[], 200).await {
                let got: BTreeSet<String> = ids(&r.body).into_iter().collect();
                self.check(got == one, || format!("GET {uri}: got {got:?}"));
            }
        }
        if let Some(m) = multi
            && let Some(items) = m.get(&target).and_then(Value::as_array)
            && let Some(first) = items.first()
            && let Some((sname, sv)) = first.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, v)| v.is_string() && k.as_str() != "type")
            })
        {
            let f = format!("{}[type eq \"work\" and {sname} eq {sv}]", m.path());
            let want: BTreeSet<String> = all
                .iter()
                .filter(|r| {
                    m.get(r)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|i| {
                            i["type"] == "work"
                                && i[sname].as_str().map(str::to_lowercase)
                                    == sv.as_str().map(str::to_lowercase)
                        })
                })
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect();
            if let Some(got) = self.search(kind, &f, json!({})).await {
                let got: BTreeSet<String> = ids(&got).into_iter().collect();
                self.check(got == want && !want.is_empty(), || {
                    format!("filter {f}: got {got:?}, want {want:?}")
                });
            }
        }
        for bad in [
            "userName eq",
            "(userName eq \"a\"",
            "userName zz \"a\"",
            "\"a\" eq userName",
        ] {
            let body = json!({"schemas": [SEARCH], "filter": bad});
            let uri = format!("{}/.search", kind.endpoint);
            self.refused("POST", &uri, Some(body), 400, Some("invalidFilter"))
                .await;
        }
        self.delete_batch(kind, made).await;
    }

    /// sortBy on every single-valued attribute, sub-attribute and the primary value of
    /// multi-valued ones, both orders (RFC 7644 §3.4.2.3).
    async fn sorting(&mut self, kind: &Kind) {
        if self.spc["sort"]["supported"] != true {
            return;
        }
        let made = self.batch(kind, [20, 23, 21, 22]).await;
        let all = self.all_ids(kind).await;
        let leaves: Vec<Leaf> = Self::leaves(kind)
            .into_iter()
            .filter(|l| !l.def()["multiValued"].as_bool().unwrap_or(false) || l.sub.is_some())
            .filter(|l| !is(l.def(), "type", "complex"))
            .collect();
        for leaf in leaves {
            for order in ["ascending", "descending"] {
                let extra = json!({"sortBy": leaf.path, "sortOrder": order});
                // sorting by the members of a group, or the groups of a user, is
                // refused (400 invalidValue) or done right
                let may_refuse =
                    (refers(&leaf.attr.def) && leaf.attr.multi()).then_some("invalidValue");
                let Searched::Answer(got) = self
                    .search_or_refused(kind, "id pr", extra, may_refuse)
                    .await
                else {
                    continue;
                };
                let items = got["Resources"].as_array().cloned().unwrap_or_default();
                let keys: Vec<Option<String>> = items.iter().map(|r| leaf.sort_key(r)).collect();
                let present: Vec<&String> = keys.iter().flatten().collect();
                let mut sorted = present.clone();
                sorted.sort();
                if order == "descending" {
                    sorted.reverse();
                }
                // resources without the key sit together at one end
                let contiguous = keys
                    .windows(2)
                    .filter(|w| w[0].is_some() != w[1].is_some())
                    .count()
                    <= 1;
                let got_ids: BTreeSet<String> = ids(&got).into_iter().collect();
                self.check(present == sorted && contiguous && got_ids == all, || {
                    format!(
                        "sortBy {} {order}: keys in answer order {keys:?}",
                        leaf.path
                    )
                });
            }
        }
        let body = json!({"schemas": [SEARCH], "sortBy": "id", "sortOrder": "sideways"});
        let uri = format!("{}/.search", kind.endpoint);
        self.refused("POST", &uri, Some(body), 400, None).await;
        self.delete_batch(kind, made).await;
    }

    /// startIndex/count and cursor paging each visit every resource once (RFC 7644
    /// §3.4.2.4, RFC 9865).
    async fn pagination(&mut self, kind: &Kind) {
        let made = self.batch(kind, 30..35).await;
        let all = self.all_ids(kind).await;
        let mut seen = Vec::new();
        for start in 1..=all.len() {
            let uri = format!("{}?startIndex={start}&count=2", kind.endpoint);
            let Some(r) = self.expect("GET", &uri, None, &[], 200).await else {
                break;
            };
            let page = ids(&r.body);
            let ok = r.body["startIndex"] == start
                && r.body["totalResults"] == all.len()
                && r.body["itemsPerPage"] == page.len()
                && page.len() == 2.min(all.len() + 1 - start);
            self.check(ok, || format!("{uri}: {}", r.body));
            seen.extend(page.first().cloned());
        }
        let by_index: BTreeSet<String> = seen.iter().cloned().collect();
        self.check(by_index == all && seen.len() == all.len(), || {
            format!("index paging saw {seen:?}, not each of {all:?} once")
        });
        let uri = format!("{}?startIndex={}&count=5", kind.endpoint, all.len() + 1);
        if let Some(r) = self.expect("GET", &uri, None, &[], 200).await {
            self.check(
                ids(&r.body).is_empty() && r.body["totalResults"] == all.len(),
                || format!("{uri}: past the end: {}", r.body),
            );
        }
        let uri = format!("{}?count=0", kind.endpoint);
        if let Some(r) = self.expect("GET", &uri, None, &[], 200).await {
            self.check(
                ids(&r.body).is_empty() && r.body["totalResults"] == all.len(),
                || format!("{uri}: count=0 answers the total only: {}", r.body),
            );
        }
        if self.spc["pagination"]["cursor"] == true {
            let mut seen = Vec::new();
            let mut uri = format!("{}?cursor&count=2", kind.endpoint);
            for _ in 0..=all.len() {
                let Some(r) = self.expect("GET", &uri, None, &[], 200).await else {
                    break;
                };
                seen.extend(ids(&r.body));
                match r.body["nextCursor"].as_str() {
                    Some(next) => {
                        uri = format!("{}?cursor={}&count=2", kind.endpoint, encode(next))
                    }
                    None => break,
                }
            }
            let by_cursor: BTreeSet<String> = seen.iter().cloned().collect();
            self.check(by_cursor == all && seen.len() == all.len(), || {
                format!("cursor paging saw {seen:?}, not each of {all:?} once")
            });
            let uri = format!("{}?cursor=not-a-cursor&count=2", kind.endpoint);
            self.refused("GET", &uri, None, 400, Some("invalidCursor"))
                .await;
        }
        self.delete_batch(kind, made).await;
    }

    /// Versions: conditional reads and writes (RFC 7644 §3.14).
    async fn etags(&mut self, kind: &Kind) {
        if self.spc["etag"]["supported"] != true {
            return;
        }
        let Some((id, body)) = self.create(kind, 40).await else {
            return;
        };
        let uri = kind.uri(&id);
        let tag = body["meta"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let r = self
            .api
            .call("GET", &uri, Some(ACME), None, &[("if-none-match", &tag)])
            .await;
        self.check(r.status == 304, || {
            format!("GET {uri} If-None-Match current: {}", r.status)
        });
        let stale = "W/\"stale-version\"";
        let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "externalId", "value": "e-40"}]});
        for (method, b) in [
            ("PATCH", Some(patch.clone())),
            ("PUT", Some(self.full(kind, 40, &|_| false))),
            ("DELETE", None),
        ] {
            let r = self
                .api
                .call(method, &uri, Some(ACME), b, &[("if-match", stale)])
                .await;
            self.check(r.status == 412, || {
                format!("{method} {uri} If-Match stale: {} {}", r.status, r.body)
            });
        }
        if let Some(r) = self
            .expect("PATCH", &uri, Some(patch), &[("if-match", &tag)], 200)
            .await
        {
            let new = r
                .headers
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            self.check(!new.is_empty() && new != tag, || {
                format!("PATCH {uri}: ETag {new} after {tag}")
            });
            self.expect("DELETE", &uri, None, &[("if-match", new)], 204)
                .await;
        }
    }
}

/// How a search the server may refuse went.
enum Searched {
    Answer(Value),
    /// Refused with the allowed 400 (checked).
    Refused,
    /// Answered wrongly (already counted as a failure).
    Failed,
}
