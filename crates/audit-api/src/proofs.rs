//! The tenant's transparency log through the API: its latest signed checkpoint, an
//! event's inclusion proof, and a consistency proof from an older size, so a customer
//! checks offline that what they were shown is in the log and the log only grew.
//!
//! Every inclusion proof is verified against the checkpoint before it is served: a tile
//! changed in storage must surface as an error here, never as a proof that fails later
//! on the customer's side.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use envelope::{EventId, TenantId};
use serde_json::json;
use tenants::Scope;
use transparency::integrate::{LeafIndex, log_prefix, tiles_of};
use transparency::{Hash, proof};

use crate::{Api, ApiError, AuditApi, json_response, openapi, pairs, param};

/// The tenant logs, where the deployment keeps them (None: not enabled here).
#[derive(Clone)]
pub struct TenantLogs {
    pub leaves: Arc<dyn LeafIndex>,
    /// The first part of each tenant log's origin (`<log name>/<tenant>`).
    pub log_name: String,
}

fn b64(h: &Hash) -> String {
    h.to_string()
}

fn not_enabled() -> ApiError {
    ApiError::not_found("this deployment keeps no tamper-evident log")
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("the tenant log: {e}"))
}

impl AuditApi {
    /// The tenant's latest checkpoint: the note as published, and what it states.
    async fn checkpoint(&self, tenant: &TenantId) -> Result<(Vec<u8>, u64, Hash), ApiError> {
        let key = format!("{}checkpoint", log_prefix(tenant));
        let note = match self.blobs.get(&key).await {
            Ok(b) => b.to_vec(),
            Err(auditlog::BlobError::NotFound(_)) => {
                return Err(ApiError::not_found(
                    "this tenant's log has no signed checkpoint yet",
                ));
            }
            Err(e) => return Err(unavailable(e)),
        };
        let (_, size, root) =
            transparency::checkpoint::parse_unverified(&note).map_err(unavailable)?;
        Ok((note, size, root))
    }
}

/// The latest signed checkpoint of the caller's tenant's log (C2SP tlog-checkpoint in a
/// C2SP signed note), as generic transparency-log tools read it.
#[utoipa::path(get, path = "/v1/log/checkpoint", tag = "log",
    responses((status = 200, description = "The signed note", content_type = "text/plain"),
        (status = 404, body = openapi::ErrorBody), (status = 401, body = openapi::ErrorBody)))]
pub(crate) async fn log_checkpoint(
    State(api): Api,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    api.logs.as_ref().ok_or_else(not_enabled)?;
    let (note, _, _) = api.checkpoint(&caller.tenant).await?;
    let mut r = (StatusCode::OK, note).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// The verifier keys the tenant logs are signed with (C2SP signed-note verifier keys,
/// one per line, oldest first). Compare them with the key you were given out of band:
/// a key fetched from the operator proves nothing about the operator.
#[utoipa::path(get, path = "/v1/log/keys", tag = "log",
    responses((status = 200, description = "The verifier keys, one per line", content_type = "text/plain"),
        (status = 404, body = openapi::ErrorBody), (status = 401, body = openapi::ErrorBody)))]
pub(crate) async fn log_keys(State(api): Api, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    api.logs.as_ref().ok_or_else(not_enabled)?;
    let keys = match api.blobs.get(auditlog::integration::VERIFIER_KEYS).await {
        Ok(b) => b.to_vec(),
        Err(auditlog::BlobError::NotFound(_)) => {
            return Err(ApiError::not_found("no checkpoint has been signed yet"));
        }
        Err(e) => return Err(unavailable(e)),
    };
    let mut r = (StatusCode::OK, keys).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// Proof that one event is in the caller's tenant's log: its leaf, its index and the
/// inclusion proof (RFC 9162 §2.1.3) into the latest checkpoint, given with it.
#[utoipa::path(get, path = "/v1/log/events/{id}/proof", tag = "log",
    params(("id" = String, Path, description = "The event id")),
    responses((status = 200, body = openapi::InclusionProof), (status = 404, body = openapi::ErrorBody),
        (status = 401, body = openapi::ErrorBody)))]
pub(crate) async fn event_proof(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    let logs = api.logs.as_ref().ok_or_else(not_enabled)?;
    let missing = || ApiError::not_found(format!("no event {id:?} in this tenant's log"));
    let event = EventId::parse(&id).map_err(|_| missing())?;
    let placed = logs
        .leaves
        .lookup(&caller.tenant, std::slice::from_ref(&event))
        .await
        .map_err(unavailable)?
        .remove(&event)
        .ok_or_else(missing)?;
    let (note, size, root) = api.checkpoint(&caller.tenant).await?;
    if placed.index >= size {
        return Err(ApiError::not_found(format!(
            "event {id} is in the log at {} but not yet under a signed checkpoint (of {size}); \
             retry after the next one",
            placed.index
        )));
    }
    let store = auditlog::integration::BlobLog(api.blobs.as_ref());
    let tiles = tiles_of(&store, &caller.tenant);
    let entry = proof::entry_at(&tiles, placed.index, size)
        .await
        .map_err(unavailable)?;
    let leaf = transparency::leaf::record_hash(&entry);
    let hashes = proof::inclusion(&tiles, size, root, placed.index)
        .await
        .map_err(unavailable)?;
    proof::verify_inclusion(&hashes, size, root, placed.index, leaf).map_err(|_| {
        unavailable("the published tiles do not prove this event into the checkpoint")
    })?;
    let body = json!({
        "event_id": event.as_str(),
        "leaf_index": placed.index,
        "leaf": String::from_utf8_lossy(&entry),
        "leaf_hash": b64(&leaf),
        "tree_size": size,
        "root_hash": b64(&root),
        "inclusion_proof": hashes.iter().map(b64).collect::<Vec<_>>(),
        "checkpoint": String::from_utf8_lossy(&note),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Proof that the latest checkpoint's log extends the log of `from` leaves (RFC 9162
/// §2.1.4): check it against a checkpoint of that size you kept.
#[utoipa::path(get, path = "/v1/log/consistency", tag = "log", params(openapi::ConsistencyParams),
    responses((status = 200, body = openapi::ConsistencyProof), (status = 400, body = openapi::ErrorBody),
        (status = 401, body = openapi::ErrorBody)))]
pub(crate) async fn log_consistency(
    State(api): Api,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    api.logs.as_ref().ok_or_else(not_enabled)?;
    let q = pairs(&raw);
    let (note, size, root) = api.checkpoint(&caller.tenant).await?;
    let from = param(&q, "from")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| (1..=size).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("query parameter `from`: a log size from 1 to {size}"),
            )
        })?;
    let store = auditlog::integration::BlobLog(api.blobs.as_ref());
    let tiles = tiles_of(&store, &caller.tenant);
    let hashes = proof::consistency(&tiles, from, size, root)
        .await
        .map_err(unavailable)?;
    let body = json!({
        "from": from,
        "tree_size": size,
        "root_hash": b64(&root),
        "consistency_proof": hashes.iter().map(b64).collect::<Vec<_>>(),
        "checkpoint": String::from_utf8_lossy(&note),
    });
    Ok(json_response(StatusCode::OK, &body))
}
