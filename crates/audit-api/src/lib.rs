//! The customer-facing audit API: an axum router over ports, the same in `auditlog
//! serve` (embedded stores) and in the audit-api Lambda (S3, DynamoDB, EventBridge).
//!
//! - `GET  /v1/events`: the caller's tenant's events, newest first, filtered, paged by a
//!   sealed cursor (`next` in the body and a `Link` header).
//! - `GET  /v1/events/{id}`: one event with its payload.
//! - `GET  /v1/events/stream?after=CHECKPOINT`: polling in ingestion order (SIEMs).
//! - `POST /v1/exports`, `GET /v1/exports/{id}` (+ `/download` on the local store).
//! - `POST /v1/viewer/session`: a viewer token (minted by the SaaS backend) for a
//!   session token.
//! - `GET  /v1/log/checkpoint`, `/v1/log/events/{id}/proof`, `/v1/log/consistency`:
//!   the tenant's transparency log (`proofs`).
//!
//! The tenant comes from the token alone. Views, searches (first pages), exports and
//! deliveries to pollers publish their own audit events; if that fails, the request
//! fails (503) rather than go unrecorded.

pub mod auth;
pub mod error;
pub mod exports;
pub mod openapi;
pub mod proofs;
pub mod trail;
pub mod viewer;

use std::collections::BTreeMap;
use std::sync::Arc;

use auditlog::{BlobStore, Clock};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tenants::{OneTimeTokens, Scope, TenantDirectory};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use history::{
    DEFAULT_LIMIT, EventQuery, EventView, ExportFormat, ExportStore, History, HistoryConfig,
    MAX_LIMIT, MAX_POLL_LIMIT, SealKey,
};

pub use auth::{Authenticator, Caller, Session, ViewerClaims, mint_viewer_token};
pub use error::ApiError;
pub use exports::{ExportJob, ExportQueue, ExportStatus, JobState};
pub use trail::{AuditTrail, RecordedTrail};

/// Exports reading at most this many bytes of stored files answer at once.
pub const INLINE_EXPORT_BYTES: u64 = 32 * 1024 * 1024;

/// Most events one bundle export holds: its rows are built in memory (about 150 MB
/// at this bound, within the export function's memory).
pub const MAX_BUNDLE_ROWS: usize = 200_000;

/// Everything the API runs over.
pub struct AuditApiParts {
    pub blobs: Arc<dyn BlobStore>,
    pub directory: Arc<dyn TenantDirectory>,
    pub redeemed: Arc<dyn OneTimeTokens>,
    pub exports: Arc<dyn ExportStore>,
    /// None: queued exports run as tasks in this process (`serve`).
    pub queue: Option<Arc<dyn ExportQueue>>,
    pub trail: Arc<dyn AuditTrail>,
    pub clock: Arc<dyn Clock>,
    pub seal: SealKey,
    pub viewer_secret: Option<Vec<u8>>,
    pub history: HistoryConfig,
    pub inline_export_bytes: u64,
    /// Who may frame the viewer (CSP `frame-ancestors`): `'self'`, or the admin
    /// console's origins, space-separated.
    pub frame_ancestors: String,
    /// The tenant transparency logs (their tiles are in `blobs`); None: not kept here.
    pub logs: Option<proofs::TenantLogs>,
}

pub struct AuditApi {
    history: History<Arc<dyn BlobStore>>,
    blobs: Arc<dyn BlobStore>,
    auth: Authenticator,
    exports: Arc<dyn ExportStore>,
    queue: Option<Arc<dyn ExportQueue>>,
    trail: Arc<dyn AuditTrail>,
    clock: Arc<dyn Clock>,
    inline_export_bytes: u64,
    frame_ancestors: String,
    logs: Option<proofs::TenantLogs>,
}

impl AuditApi {
    pub fn new(p: AuditApiParts) -> Arc<Self> {
        Arc::new(Self {
            history: History::new(p.blobs.clone(), p.seal.clone(), p.history),
            blobs: p.blobs,
            auth: Authenticator {
                directory: p.directory,
                redeemed: p.redeemed,
                seal: p.seal,
                viewer_secret: p.viewer_secret,
            },
            exports: p.exports,
            queue: p.queue,
            trail: p.trail,
            clock: p.clock,
            inline_export_bytes: p.inline_export_bytes,
            frame_ancestors: p.frame_ancestors,
            logs: p.logs,
        })
    }

    pub fn history(&self) -> &History<Arc<dyn BlobStore>> {
        &self.history
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let mut caller = self.auth.caller(auth, self.clock.now()).await?;
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect::<String>())
        };
        caller.source_ip = text("x-forwarded-for")
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
            .filter(|s| !s.is_empty());
        caller.user_agent = text("user-agent");
        Ok(caller)
    }

    async fn record(
        &self,
        caller: &Caller,
        event_type: &str,
        payload: Value,
    ) -> Result<(), ApiError> {
        let event = trail::audit_event(
            &caller.tenant,
            &caller.actor,
            event_type,
            payload,
            self.clock.now(),
            (caller.source_ip.clone(), caller.user_agent.clone()),
        );
        self.trail.record(event).await.map_err(|e| {
            tracing::error!(error = %e, event_type, "could not record a read of the audit log");
            ApiError::unavailable(
                "this request could not be recorded in the audit log, so it was not served; retry",
            )
        })
    }

    /// A bundle of the events accepted in the job's `[from, to)`, with what an offline
    /// verifier needs (`auditlog verify FILE`); the rows it holds.
    async fn export_bundle(
        &self,
        job: &ExportJob,
        upload: &mut dyn history::ExportUpload,
    ) -> Result<u64, String> {
        let logs = self
            .logs
            .as_ref()
            .ok_or("this deployment keeps no tamper-evident log")?;
        let (Some(from), Some(to)) = (job.query.from, job.query.to) else {
            return Err("a bundle needs `from` and `to`".into());
        };
        let bundle = auditlog::bundle::build(
            &self.blobs,
            logs.leaves.as_ref(),
            &job.tenant,
            &logs.log_name,
            from,
            to,
            None,
            MAX_BUNDLE_ROWS,
        )
        .await
        .map_err(|e| e.to_string())?;
        let bytes = serde_json::to_vec(&bundle).map_err(|e| e.to_string())?;
        upload
            .write(bytes.into())
            .await
            .map_err(|e| e.to_string())?;
        Ok(bundle.rows.len() as u64)
    }

    /// Runs one export job to its end and records the outcome (status and event).
    pub async fn run_export(&self, job: &ExportJob) -> ExportStatus {
        let mut status = ExportStatus::of(job, JobState::Running);
        let _ = self.put_status(&job.tenant, &status).await;
        let key = exports::file_key(&job.tenant, &job.id, job.format);
        let outcome = async {
            let mut upload = self.exports.create(&key).await.map_err(|e| e.to_string())?;
            let written = match job.format {
                ExportFormat::Bundle => self.export_bundle(job, upload.as_mut()).await,
                _ => self
                    .history
                    .export(&job.tenant, &job.query, job.format, upload.as_mut())
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(rows) => {
                    upload.finish().await.map_err(|e| e.to_string())?;
                    Ok(rows)
                }
                Err(e) => {
                    upload.abort().await;
                    Err(e)
                }
            }
        }
        .await;
        status.finished_at = Some(self.clock.now());
        match outcome {
            Ok(rows) => {
                status.status = JobState::Succeeded;
                status.rows = Some(rows);
            }
            Err(e) => {
                tracing::error!(export = %job.id, error = %e, "export failed");
                status.status = JobState::Failed;
                status.error = Some(e);
            }
        }
        if let Err(e) = self.put_status(&job.tenant, &status).await {
            tracing::error!(export = %job.id, error = %e, "export status could not be saved");
        }
        let caller = Caller {
            tenant: job.tenant.clone(),
            actor: job.requested_by.clone(),
            scopes: vec![],
            source_ip: None,
            user_agent: None,
        };
        let mut payload = export_payload(&status);
        payload["status"] = json!(match status.status {
            JobState::Succeeded => "succeeded",
            _ => "failed",
        });
        if let Err(e) = self.record(&caller, trail::LOG_EXPORTED, payload).await {
            tracing::error!(export = %job.id, error = %e.message, "export event not recorded");
        }
        status
    }

    async fn put_status(
        &self,
        tenant: &envelope::TenantId,
        status: &ExportStatus,
    ) -> Result<(), auditlog::BlobError> {
        // a struct of strings, numbers and times always serialises
        let body = serde_json::to_vec(status).unwrap_or_default();
        self.blobs
            .put(&exports::status_key(tenant, &status.id), body.into())
            .await
    }

    /// The caller's export with this id: only an id we issued, under the caller's own
    /// tenant, so another tenant's id names nothing here.
    async fn export_of(&self, caller: &Caller, id: &str) -> Result<ExportStatus, ApiError> {
        let id =
            exports::parse_export_id(id).ok_or_else(|| ApiError::not_found("no such export"))?;
        self.status(&caller.tenant, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("no such export"))
    }

    async fn status(
        &self,
        tenant: &envelope::TenantId,
        id: &str,
    ) -> Result<Option<ExportStatus>, ApiError> {
        match self.blobs.get(&exports::status_key(tenant, id)).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ApiError::unavailable(format!("export status unreadable: {e}"))),
            Err(auditlog::BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(ApiError::unavailable(e.to_string())),
        }
    }
}

fn export_payload(status: &ExportStatus) -> Value {
    let mut p = json!({
        "action": "exported",
        "target": {"type": "audit_export", "id": status.id},
        "query": status.query,
        "format": status.format,
        "status": "started",
    });
    if let Some(rows) = status.rows {
        p["rows"] = json!(rows);
    }
    if let Some(e) = &status.error {
        p["error"] = json!(e.chars().take(2000).collect::<String>());
    }
    p
}

type Api = State<Arc<AuditApi>>;

/// The documented routes: each handler with its OpenAPI description.
fn documented() -> OpenApiRouter<Arc<AuditApi>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(list_events))
        .routes(routes!(stream_events))
        .routes(routes!(get_event))
        .routes(routes!(create_export))
        .routes(routes!(get_export))
        .routes(routes!(download_export))
        .routes(routes!(viewer_session))
        .routes(routes!(proofs::log_checkpoint))
        .routes(routes!(proofs::log_keys))
        .routes(routes!(proofs::event_proof))
        .routes(routes!(proofs::log_consistency))
}

/// The OpenAPI document of the routes `router` mounts.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

/// The API's routes, mounted at the root (`/v1` and `/viewer`).
pub fn router(api: Arc<AuditApi>) -> Router {
    let (routes, doc) = documented().split_for_parts();
    let doc = Arc::new(doc);
    routes
        .route(
            "/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/viewer", get(viewer_page))
        .route("/viewer/{file}", get(viewer_file))
        .route(
            "/v1/{*rest}",
            axum::routing::any(|| async {
                ApiError::not_found("no such endpoint under /v1 (see /v1/openapi.json)")
            }),
        )
        .with_state(api)
}

/// The query string as pairs, percent-decoded.
fn pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn limit(pairs: &[(String, String)], default: usize, max: usize) -> Result<usize, ApiError> {
    match param(pairs, "limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_parameter",
                format!("query parameter `limit`: a whole number from 1 to {max}"),
            )),
        },
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The tenant's events, newest first by (occurred_at, event_id). The first page of a
/// search is recorded as `audit.log.searched` (or `audit.log.viewed` without filters).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(openapi::EventFilters),
    responses((status = 200, body = openapi::EventPage, description = "A page; `Link: <...>; rel=\"next\"` when there is more"),
        (status = 400, body = openapi::ErrorBody), (status = 401, body = openapi::ErrorBody),
        (status = 403, body = openapi::ErrorBody), (status = 503, body = openapi::ErrorBody)))]
async fn list_events(
    State(api): Api,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    let pairs = pairs(&raw);
    let query = EventQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &["limit", "cursor"],
    )
    .map_err(history::HistoryError::from)?;
    let limit = limit(&pairs, DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = param(&pairs, "cursor").filter(|c| !c.is_empty());
    let page = api
        .history
        .page(&caller.tenant, &query, limit, cursor, api.clock.now())
        .await?;
    // the search itself is recorded once, on its first page
    if cursor.is_none() {
        let results = page.events.len();
        if query.has_filters() {
            let q: BTreeMap<&str, String> = query.to_pairs().into_iter().collect();
            api.record(
                &caller,
                trail::LOG_SEARCHED,
                json!({"action": "searched", "target": {"type": "audit_log", "id": caller.tenant},
                       "query": q, "results": results}),
            )
            .await?;
        } else {
            api.record(
                &caller,
                trail::LOG_VIEWED,
                json!({"action": "viewed", "target": {"type": "audit_log", "id": caller.tenant},
                       "view": "list", "results": results}),
            )
            .await?;
        }
    }
    let events: Vec<EventView> = page.events.iter().map(EventView::summary).collect();
    let body = json!({"events": events, "next": page.next});
    let mut response = json_response(StatusCode::OK, &body);
    if let Some(next) = &page.next {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.to_pairs() {
            qs.append_pair(k, &v);
        }
        qs.append_pair("limit", &limit.to_string());
        qs.append_pair("cursor", next);
        if let Ok(v) = HeaderValue::from_str(&format!("</v1/events?{}>; rel=\"next\"", qs.finish()))
        {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(response)
}

/// One event with its payload; recorded as `audit.log.viewed`.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event id")),
    responses((status = 200, body = history::EventView<'static>), (status = 404, body = openapi::ErrorBody),
        (status = 401, body = openapi::ErrorBody)))]
async fn get_event(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    let Some(r) = api.history.get(&caller.tenant, &id).await? else {
        return Err(ApiError::not_found(format!(
            "no event {id:?} in this tenant's log"
        )));
    };
    api.record(
        &caller,
        trail::LOG_VIEWED,
        json!({"action": "viewed", "target": {"type": "audit_event", "id": r.event_id},
                   "view": "event", "results": 1}),
    )
    .await?;
    Ok(json_response(StatusCode::OK, &json!(EventView::full(&r))))
}

/// Every event after a checkpoint, in the order of the tenant's transparency log, up to
/// its latest signed checkpoint (`tree_size`), each with its `leaf_index`: every event
/// given can be proved (`/v1/log/events/{id}/proof`). A deployment without the log gives
/// them in acceptance order up to `horizon`. Either way a late event with an old
/// occurred_at is still delivered. Poll again with `next`, also after an empty page.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(openapi::StreamParams),
    responses((status = 200, body = openapi::StreamPage), (status = 400, body = openapi::ErrorBody),
        (status = 401, body = openapi::ErrorBody)))]
async fn stream_events(
    State(api): Api,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditRead)?;
    let pairs = pairs(&raw);
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, _)| !["after", "since", "limit"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("query parameter `{k}` is not a parameter of the stream (after, since, limit)"),
        ));
    }
    let limit = limit(&pairs, MAX_LIMIT, MAX_POLL_LIMIT)?;
    let after = param(&pairs, "after").filter(|a| !a.is_empty());
    let since = match (after, param(&pairs, "since")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "give `after` (a checkpoint) or `since` (a time to start from), not both",
            ));
        }
        (None, Some(t)) => {
            let t = history::query::parse_time("since", t).map_err(history::HistoryError::from)?;
            Some(match api.logs {
                Some(_) => api.history.log_checkpoint_at(&caller.tenant, t).await?,
                None => api.history.checkpoint_at(&caller.tenant, t),
            })
        }
        _ => None,
    };
    let from = after.or(since.as_deref());
    // with a tenant log, the stream is in its order and goes up to its signed
    // checkpoint: every event given can be proved; without, in acceptance order
    let page = match api.logs {
        Some(_) => api.history.poll_log(&caller.tenant, from, limit).await?,
        None => {
            api.history
                .poll(&caller.tenant, from, limit, api.clock.now())
                .await?
        }
    };
    // a poll is recorded when it delivers something other than these very records,
    // so that a poller does not feed on its own trail
    let delivered = page
        .events
        .iter()
        .filter(|r| !r.event_type.starts_with("audit.log."))
        .count();
    if delivered > 0 {
        api.record(
            &caller,
            trail::LOG_VIEWED,
            json!({"action": "viewed", "target": {"type": "audit_log", "id": caller.tenant},
                       "view": "stream", "results": page.events.len()}),
        )
        .await?;
    }
    let events: Vec<EventView> = page.events.iter().map(EventView::full).collect();
    let mut body = json!({"events": events, "next": page.next});
    if let Some(h) = page.horizon {
        body["horizon"] = h
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
    }
    if let Some(size) = page.tree_size {
        body["tree_size"] = size.into();
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /v1/exports` body: the filters (as in `GET /v1/events`) and `format`.
fn export_request(body: &[u8]) -> Result<(EventQuery, ExportFormat), ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("the body must be a JSON object: {e}"),
        )
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid_body", "the body must be a JSON object"))?;
    let mut pairs = Vec::new();
    for (k, v) in obj {
        let s = v.as_str().ok_or_else(|| {
            ApiError::bad_request(
                "invalid_body",
                format!("`{k}` must be a string (as in the query string of GET /v1/events)"),
            )
        })?;
        pairs.push((k.as_str(), s));
    }
    let format = match pairs.iter().find(|(k, _)| *k == "format") {
        None => ExportFormat::Csv,
        Some((_, f)) => ExportFormat::parse(f).ok_or_else(|| {
            ApiError::bad_request("invalid_parameter", "`format` is csv, ndjson or bundle")
        })?,
    };
    if format == ExportFormat::Bundle
        && let Some((k, _)) = pairs
            .iter()
            .find(|(k, _)| !["format", "from", "to"].contains(k))
    {
        // a bundle proves a stretch of the log whole: filters would leave holes
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{k}`: a bundle takes only `from` and `to` (when the events were accepted)"),
        ));
    }
    let query = EventQuery::from_pairs(pairs, &["format"]).map_err(history::HistoryError::from)?;
    if format == ExportFormat::Bundle && (query.from.is_none() || query.to.is_none()) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "a bundle needs `from` and `to`",
        ));
    }
    Ok((query, format))
}

/// Exports every matching event, oldest first, as CSV or NDJSON. Small exports answer
/// at once (201, with `download_url`); bigger ones run as a job (202; poll `Location`).
#[utoipa::path(post, path = "/v1/exports", tag = "exports", request_body = openapi::ExportRequest,
    responses((status = 201, body = ExportStatus), (status = 202, body = ExportStatus),
        (status = 400, body = openapi::ErrorBody), (status = 403, body = openapi::ErrorBody)))]
async fn create_export(
    State(api): Api,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditExport)?;
    let (query, format) = export_request(&body)?;
    let job = ExportJob {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        tenant: caller.tenant.clone(),
        query,
        format,
        requested_by: caller.actor.clone(),
        created_at: api.clock.now(),
    };
    let queued = ExportStatus::of(&job, JobState::Queued);
    // the request is recorded before any row leaves
    api.record(&caller, trail::LOG_EXPORTED, export_payload(&queued))
        .await?;
    let size = api.history.export_size(&job.tenant, &job.query).await?;
    let location = format!("/v1/exports/{}", job.id);
    if size <= api.inline_export_bytes {
        let status = api.run_export(&job).await;
        let body = status_body(&api, &caller.tenant, &status).await?;
        let code = if status.status == JobState::Succeeded {
            StatusCode::CREATED
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        return Ok(with_location(json_response(code, &body), &location));
    }
    api.put_status(&caller.tenant, &queued)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    match &api.queue {
        Some(q) => q.submit(&job).await.map_err(ApiError::unavailable)?,
        None => {
            let api = api.clone();
            tokio::spawn(async move {
                api.run_export(&job).await;
            });
        }
    }
    let body = status_body(&api, &caller.tenant, &queued).await?;
    Ok(with_location(
        json_response(StatusCode::ACCEPTED, &body),
        &location,
    ))
}

fn with_location(mut r: Response, location: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn status_body(
    api: &AuditApi,
    tenant: &envelope::TenantId,
    status: &ExportStatus,
) -> Result<Value, ApiError> {
    let mut body = json!(status);
    if status.status == JobState::Succeeded {
        let key = exports::file_key(tenant, &status.id, status.format);
        let name = format!("audit-{tenant}-{}.{}", status.id, status.format.extension());
        let url = api
            .exports
            .download_url(&key, &name, status.format.content_type())
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?
            .unwrap_or_else(|| format!("/v1/exports/{}/download", status.id));
        body["download_url"] = json!(url);
    }
    Ok(body)
}

/// An export's status; `download_url` once it succeeded (presigned on S3).
#[utoipa::path(get, path = "/v1/exports/{id}", tag = "exports",
    params(("id" = String, Path, description = "The export id")),
    responses((status = 200, body = ExportStatus), (status = 404, body = openapi::ErrorBody)))]
async fn get_export(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditExport)?;
    let status = api.export_of(&caller, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &status_body(&api, &caller.tenant, &status).await?,
    ))
}

/// The export file, where the store has no presigned URLs (the embedded store).
#[utoipa::path(get, path = "/v1/exports/{id}/download", tag = "exports",
    params(("id" = String, Path, description = "The export id")),
    responses((status = 200, description = "The CSV or NDJSON file", content_type = "text/csv"),
        (status = 404, body = openapi::ErrorBody)))]
async fn download_export(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = api.caller(&headers).await?;
    caller.require(Scope::AuditExport)?;
    let status = Some(api.export_of(&caller, &id).await?)
        .filter(|s| s.status == JobState::Succeeded)
        .ok_or_else(|| ApiError::not_found("no finished export with this id"))?;
    let id = status.id.clone();
    let key = exports::file_key(&caller.tenant, &id, status.format);
    let bytes = api
        .exports
        .read(&key)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let name = format!("audit-{}-{id}.{}", caller.tenant, status.format.extension());
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(status.format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

async fn viewer_page(State(api): Api) -> Response {
    viewer::asset("", &api.frame_ancestors)
        .unwrap_or_else(|| ApiError::not_found("no viewer").into_response())
}

async fn viewer_file(State(api): Api, Path(file): Path<String>) -> Response {
    viewer::asset(&format!("/{file}"), &api.frame_ancestors)
        .unwrap_or_else(|| ApiError::not_found("no such viewer file").into_response())
}

/// Exchanges a viewer token (minted by the SaaS backend, used once) for a session token
/// of 15 minutes; recorded as `audit.token.created`.
#[utoipa::path(post, path = "/v1/viewer/session", tag = "viewer", security(()),
    request_body = openapi::SessionRequest,
    responses((status = 201, body = Session), (status = 401, body = openapi::ErrorBody)))]
async fn viewer_session(State(api): Api, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "send {\"viewer_token\": \"<jwt>\"}"))?;
    let token = v["viewer_token"].as_str().ok_or_else(|| {
        ApiError::bad_request("invalid_body", "send {\"viewer_token\": \"<jwt>\"}")
    })?;
    let now = api.clock.now();
    let session = api.auth.exchange(token, now).await?;
    let caller = api
        .auth
        .caller(Some(&format!("Bearer {}", session.session_token)), now)
        .await?;
    api.record(
            &caller,
            trail::TOKEN_CREATED,
            json!({"action": "created", "target": {"type": "viewer_session", "id": session.user},
                   "scopes": session.scopes,
                   "expires_at": session.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
        )
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!(session)))
}
