//! `/Bulk` (RFC 7644 §3.7): many operations in one request, with `bulkId` references
//! from later operations to resources that earlier ones create, and `failOnErrors`.
//!
//! Operations run one by one through the same `ScimService` calls as single requests,
//! so each one is atomic and carries its own events; a bulk request as a whole is not a
//! transaction (the RFC does not ask for one), and its response says what happened to
//! each operation. An operation whose `bulkId` reference names an operation that has not
//! run yet waits for it; references that can never resolve (unknown, circular, or to a
//! failed operation) fail that operation with 409.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::{ErrorKind, ScimError};
use crate::filter::get_ci;
use crate::kind::ResourceKind;
use crate::service::{Caller, ScimService, Shape, etag, parse_patch};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Operations accepted in one request (advertised as `bulk.maxOperations`).
pub const MAX_OPERATIONS: usize = 1000;
/// Bytes accepted in one request (advertised as `bulk.maxPayloadSize`).
pub const MAX_PAYLOAD: usize = 1024 * 1024;

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

/// Outcome of one operation, as it appears in the BulkResponse.
fn outcome(op: &Operation, result: Result<(Option<String>, Option<u64>, u16), ScimError>) -> Value {
    let mut v = json!({"method": op.method});
    if let Some(b) = &op.bulk_id {
        v["bulkId"] = json!(b);
    }
    match result {
        Ok((location, version, status)) => {
            if let Some(l) = location {
                v["location"] = json!(l);
            }
            if let Some(ver) = version {
                v["version"] = json!(etag(ver));
            }
            v["status"] = json!(status.to_string());
        }
        Err(e) => {
            v["status"] = json!(e.status.to_string());
            v["response"] = e.to_json();
        }
    }
    v
}

fn parse_operations(request: &Value) -> Result<Vec<Operation>, ScimError> {
    let invalid = |d: String| ScimError::of(ErrorKind::InvalidSyntax, d);
    let ops = get_ci(request, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("a BulkRequest needs an Operations list".into()))?;
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::of(
            ErrorKind::PayloadTooLarge,
            format!(
                "the request has {} operations; at most {MAX_OPERATIONS} are accepted",
                ops.len()
            ),
        ));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let text = |k: &str| get_ci(op, k).and_then(Value::as_str).map(str::to_owned);
            let method = text("method")
                .ok_or_else(|| invalid(format!("operation {i} has no method")))?
                .to_ascii_uppercase();
            let path = text("path").ok_or_else(|| invalid(format!("operation {i} has no path")))?;
            let bulk_id = text("bulkId");
            if method == "POST" && bulk_id.is_none() {
                return Err(invalid(format!("operation {i} is a POST without a bulkId")));
            }
            Ok(Operation {
                method,
                path,
                bulk_id,
                version: text("version"),
                data: get_ci(op, "data").cloned(),
            })
        })
        .collect()
}

/// What a reference resolves to: the new resource's id, or `Err(bulkId)` when it names
/// an operation that has not produced one (yet).
fn substitute(v: &mut Value, ids: &HashMap<String, String>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if let Some(reference) = s.strip_prefix("bulkId:") {
                match ids.get(reference) {
                    Some(id) => *s = id.clone(),
                    None => return Err(reference.to_owned()),
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|i| substitute(i, ids)),
        Value::Object(map) => map.values_mut().try_for_each(|i| substitute(i, ids)),
        _ => Ok(()),
    }
}

fn target(path: &str) -> Result<(ResourceKind, Option<String>), ScimError> {
    let trimmed = path.trim().trim_start_matches('/');
    let (collection, id) = match trimmed.split_once('/') {
        Some((c, id)) => (c, Some(id.to_owned())),
        None => (trimmed, None),
    };
    let Some(kind) = ResourceKind::of_collection(collection) else {
        return Err(ScimError::of(
            ErrorKind::InvalidPath,
            format!("{path:?} is not /Users or /Groups"),
        ));
    };
    if id
        .as_deref()
        .is_some_and(|i| i.is_empty() || i.contains('/'))
    {
        return Err(ScimError::of(
            ErrorKind::InvalidPath,
            format!("{path:?} is not a resource path"),
        ));
    }
    Ok((kind, id))
}

impl ScimService {
    /// Runs a BulkRequest and returns the BulkResponse.
    pub async fn bulk(&self, caller: &Caller, request: &Value) -> Result<Value, ScimError> {
        let ops = parse_operations(request)?;
        let fail_on_errors = match get_ci(request, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ScimError::of(
                    ErrorKind::InvalidValue,
                    "failOnErrors must be a positive integer",
                )
            })?),
        };
        let defined: HashMap<&str, usize> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| op.bulk_id.as_deref().map(|b| (b, i)))
            .collect();
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut results: Vec<Option<Value>> = vec![None; ops.len()];
        let mut order: Vec<usize> = Vec::with_capacity(ops.len());
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        let mut errors = 0u64;
        'passes: while !pending.is_empty() {
            let mut waiting = Vec::new();
            let mut progressed = false;
            for &i in &pending {
                if fail_on_errors.is_some_and(|max| errors >= max) {
                    break 'passes;
                }
                let op = &ops[i];
                let mut data = op.data.clone();
                // in a path the reference is the last segment: /Users/bulkId:qwerty
                let mut path = op.path.clone();
                let resolved = match data.as_mut() {
                    Some(d) => substitute(d, &ids),
                    None => Ok(()),
                }
                .and_then(|()| match path.rsplit_once('/') {
                    Some((collection, last)) => {
                        let mut segment = Value::String(last.to_owned());
                        substitute(&mut segment, &ids)?;
                        path = format!("{collection}/{}", segment.as_str().unwrap_or(last));
                        Ok(())
                    }
                    None => Ok(()),
                });
                let result = match resolved {
                    // waits for an operation that has not run yet
                    Err(reference)
                        if defined
                            .get(reference.as_str())
                            .is_some_and(|j| results[*j].is_none() && *j != i) =>
                    {
                        waiting.push(i);
                        continue;
                    }
                    Err(reference) => Err(ScimError::of(
                        ErrorKind::UnresolvedBulkId,
                        format!(
                            "bulkId {reference:?} does not name an operation that created a resource"
                        ),
                    )),
                    Ok(()) => self.bulk_one(caller, op, &path, data).await,
                };
                progressed = true;
                if let (Ok((Some(location), _, 201)), Some(b)) = (&result, &op.bulk_id)
                    && let Some(id) = location.rsplit('/').next()
                {
                    ids.insert(b.clone(), id.to_owned());
                }
                if result.is_err() {
                    errors += 1;
                }
                results[i] = Some(outcome(op, result));
                order.push(i);
            }
            if !progressed {
                // everything left waits on something else left: a cycle
                for &i in &waiting {
                    if fail_on_errors.is_some_and(|max| errors >= max) {
                        break;
                    }
                    errors += 1;
                    results[i] = Some(outcome(
                        &ops[i],
                        Err(ScimError::of(
                            ErrorKind::UnresolvedBulkId,
                            "circular bulkId references cannot be resolved",
                        )),
                    ));
                    order.push(i);
                }
                break;
            }
            pending = waiting;
        }
        // in request order, leaving out what failOnErrors stopped before it ran
        order.sort_unstable();
        let operations: Vec<Value> = order
            .into_iter()
            .filter_map(|i| results[i].take())
            .collect();
        Ok(json!({"schemas": [BULK_RESPONSE], "Operations": operations}))
    }

    async fn bulk_one(
        &self,
        caller: &Caller,
        op: &Operation,
        path: &str,
        data: Option<Value>,
    ) -> Result<(Option<String>, Option<u64>, u16), ScimError> {
        let (kind, id) = target(path)?;
        let shape = Shape::default();
        let need_data = || {
            data.clone().ok_or_else(|| {
                ScimError::of(
                    ErrorKind::InvalidSyntax,
                    format!("{} needs data", op.method),
                )
            })
        };
        let need_id = || {
            id.clone().ok_or_else(|| {
                ScimError::of(
                    ErrorKind::InvalidPath,
                    format!("{} needs a resource path like /Users/<id>", op.method),
                )
            })
        };
        let location = |v: &Value| {
            v.pointer("/meta/location")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let if_match = op.version.as_deref();
        match op.method.as_str() {
            "POST" if id.is_none() => {
                let (v, version) = self.create(caller, kind, need_data()?, &shape).await?;
                Ok((location(&v), Some(version), 201))
            }
            "PUT" => {
                let (v, version) = self
                    .replace(caller, kind, &need_id()?, need_data()?, if_match, &shape)
                    .await?;
                Ok((location(&v), Some(version), 200))
            }
            "PATCH" => {
                let request = parse_patch(need_data()?)?;
                let (v, version) = self
                    .patch(caller, kind, &need_id()?, &request, if_match, &shape)
                    .await?;
                Ok((location(&v), Some(version), 200))
            }
            "DELETE" => {
                let id = need_id()?;
                self.delete(caller, kind, &id, if_match).await?;
                Ok((Some(self.location(kind, &id)), None, 204))
            }
            other => Err(ScimError::of(
                ErrorKind::InvalidSyntax,
                format!("{other} is not a bulk method for {path}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_anywhere_in_data() {
        let ids = HashMap::from([("u1".to_owned(), "id-1".to_owned())]);
        let mut v = json!({"members": [{"value": "bulkId:u1"}], "note": "bulkId: is text"});
        assert_eq!(
            substitute(&mut v, &ids),
            Err(" is text".to_owned()),
            "the first unresolved reference is reported"
        );
        let mut v = json!({"members": [{"value": "bulkId:u1"}]});
        substitute(&mut v, &ids).unwrap();
        assert_eq!(v["members"][0]["value"], "id-1");
    }

    #[test]
    fn paths_name_a_collection_or_one_resource() {
        assert_eq!(target("/Users").unwrap(), (ResourceKind::User, None));
        assert_eq!(
            target("/Groups/abc").unwrap(),
            (ResourceKind::Group, Some("abc".into()))
        );
        assert_eq!(
            target("/Schemas").unwrap_err().scim_type,
            Some("invalidPath")
        );
        assert_eq!(
            target("/Users/a/b").unwrap_err().scim_type,
            Some("invalidPath")
        );
    }
}
