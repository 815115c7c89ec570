//! The HTTP edge: an axum `Router` over `ScimService`. Bearer tokens resolve to a tenant
//! (tokens are kept as SHA-256 hashes); every error leaves as a SCIM Error document
//! (`application/scim+json`, string `status`, `scimType`), unknown routes included.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use envelope::{Actor, ActorType, TenantId};
use serde_json::{Value, json};

use crate::error::{ErrorKind, ScimError};
use crate::kind::ResourceKind;
use crate::service::{Caller, ScimService, Shape, etag, parse_patch};
use crate::store::ScimStore;
use crate::store::StoreError;
use crate::tenants::{ScimDirectory, Scope, token_hash};

pub const SCIM_JSON: &str = "application/scim+json";

/// A per-tenant token bucket: `rate` requests per second on average, bursts of `burst`.
/// One IdP's sync storm must not starve the other tenants.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    buckets: std::sync::Mutex<HashMap<TenantId, (f64, std::time::Instant)>>,
}

impl RateLimit {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Self {
            rate: rate_per_sec.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` more requests' worth (at most a burst) or answers 429.
    fn take_n(&self, tenant: &TenantId, n: usize) -> Result<(), ScimError> {
        if n == 0 {
            return Ok(());
        }
        let n = (n as f64).min(self.burst);
        self.take_weighted(tenant, n).map_err(too_many)
    }

    /// Ok, or the seconds to wait.
    fn take(&self, tenant: &TenantId) -> Result<(), u64> {
        self.take_weighted(tenant, 1.0)
    }

    fn take_weighted(&self, tenant: &TenantId, cost: f64) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let (tokens, last) = buckets.entry(tenant.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= cost {
            *tokens -= cost;
            Ok(())
        } else {
            Err(((cost - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

fn too_many(secs: u64) -> ScimError {
    let mut e = ScimError::of(
        ErrorKind::TooManyRequests,
        "too many requests for this tenant; retry later",
    );
    e.retry_after = Some(secs);
    e
}

/// The default per-tenant limit: 500 requests a second on average, bursts of 1,000.
/// - It exists for fairness: one tenant's sync storm must not take the capacity (the
///   function's concurrency, the table's throughput) the other tenants need.
/// - It must not trip what IdPs do on purpose: an initial sync or a full re-sync
///   (Entra ID and Okta send tens of requests a second per app, in bursts), or a
///   conformance run (about 100 checks of 3-5 requests each in two seconds: 250/s with
///   bursts of several hundred). Past it, IdPs back off on 429 with `Retry-After`.
/// - The bucket is per process (per Lambda instance), so a tenant spread over several
///   instances gets more; what it bounds is one instance's share.
pub const DEFAULT_RATE_PER_SECOND: f64 = 500.0;
pub const DEFAULT_BURST: u32 = 1_000;

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(DEFAULT_RATE_PER_SECOND, DEFAULT_BURST)
    }
}

/// What every handler shares: the service, the tenants, the rate limit.
struct AppState {
    service: ScimService,
    directory: Arc<dyn ScimDirectory>,
    limits: RateLimit,
}

type Shared = Arc<AppState>;

/// Query parameters; SCIM's names are case-insensitive (`param`).
type Params = HashMap<String, String>;

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, self.to_json().to_string()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

fn scim(status: StatusCode, body: Value, version: Option<u64>) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if let Some(v) = version
        && let Ok(h) = HeaderValue::from_str(&etag(v))
    {
        r.headers_mut().insert(header::ETAG, h);
    }
    r
}

/// Every SCIM endpoint authenticates first: the tenant and IdP behind the bearer token,
/// with the tenant's policy, then the tenant's rate limit. Handlers take a `Caller` as
/// their first extractor, so nothing (not even a 404) answers before it.
impl FromRequestParts<Shared> for Caller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ScimError> {
        let unauthorized =
            || ScimError::of(ErrorKind::Unauthorized, "missing or invalid bearer token");
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let credential = state
            .directory
            .credential(&token_hash(token))
            .await
            .map_err(StoreError::from)?
            .filter(|c| c.valid_at(state.service.now()))
            .ok_or_else(unauthorized)?;
        if !credential.allows(Scope::Scim) {
            // an audit API token of the same tenant: valid, but not for provisioning
            return Err(ScimError::of(
                ErrorKind::Forbidden,
                "this token is not for the SCIM API",
            ));
        }
        state.limits.take(&credential.tenant).map_err(too_many)?;
        let policy = state.directory.policy(&credential.tenant).await?;
        Ok(Caller {
            tenant: credential.tenant,
            actor: Actor {
                kind: ActorType::Idp,
                id: credential.idp,
                name: None,
            },
            policy,
        })
    }
}

/// A query parameter by name; SCIM parameter names are case-insensitive.
fn param<'q>(q: &'q Params, name: &str) -> Option<&'q str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn shape(q: &Params) -> Shape {
    Shape {
        attributes: param(q, "attributes").map(str::to_owned),
        excluded: param(q, "excludedAttributes").map(str::to_owned),
    }
}

fn json_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| {
        ScimError::of(
            ErrorKind::InvalidSyntax,
            format!("request body is not valid JSON: {e}"),
        )
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_index(q: &Params, name: &str) -> Result<Option<usize>, ScimError> {
    match param(q, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(|n| Some(n.max(0) as usize))
            .map_err(|_| {
                ScimError::of(
                    ErrorKind::InvalidValue,
                    format!("{name} must be an integer"),
                )
            }),
    }
}

/// A list request's query parameters.
fn list_query(q: &Params) -> Result<crate::service::ListQuery, ScimError> {
    let filter = param(q, "filter").map(str::to_owned);
    let start = parse_index(q, "startIndex")?;
    let count = parse_index(q, "count")?;
    let sort = match param(q, "sortBy").map(str::to_owned) {
        None => None,
        Some(by) => {
            let descending = match param(q, "sortOrder")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("ascending") => false,
                Some("descending") => true,
                Some(other) => {
                    return Err(ScimError::of(
                        ErrorKind::InvalidValue,
                        format!("sortOrder {other:?} is neither ascending nor descending"),
                    ));
                }
            };
            Some(crate::service::Sort { by, descending })
        }
    };
    Ok(crate::service::ListQuery {
        filter,
        sort,
        start_index: start,
        count,
        cursor: param(q, "cursor").map(str::to_owned),
    })
}

/// `GET /Users`, `GET /Groups`.
async fn list(
    caller: Caller,
    State(st): State<Shared>,
    Extension(kind): Extension<ResourceKind>,
    Query(q): Query<Params>,
) -> Result<Response, ScimError> {
    list_of(&st, &caller, kind, &q).await
}

async fn list_of(
    st: &AppState,
    caller: &Caller,
    kind: ResourceKind,
    q: &Params,
) -> Result<Response, ScimError> {
    let body = st
        .service
        .list(caller, kind, &list_query(q)?, &shape(q))
        .await?;
    Ok(scim(StatusCode::OK, body, None))
}

/// A search at the root (RFC 7644 §3.4.2, §3.4.3): every resource type, users first,
/// then groups, one index-paged sequence over both. Sorting and cursors are each type's
/// own order, so a root search takes neither: it answers 400 and names the endpoint
/// that does.
async fn root_list(st: &AppState, caller: &Caller, q: &Params) -> Result<Response, ScimError> {
    let mut query = list_query(q)?;
    if query.sort.is_some() || query.cursor.is_some() {
        return Err(ScimError::of(
            ErrorKind::InvalidValue,
            "a search at the root pages by startIndex only; sort or use cursors with /Users/.search or /Groups/.search",
        ));
    }
    let start = query.start_index.unwrap_or(1).max(1);
    let count = query
        .count
        .unwrap_or(crate::service::MAX_PAGE)
        .min(crate::service::MAX_PAGE);
    let shape = shape(q);
    query.start_index = Some(start);
    query.count = Some(count);
    let users = st
        .service
        .list(caller, ResourceKind::User, &query, &shape)
        .await?;
    let total_of = |v: &Value| v["totalResults"].as_u64().unwrap_or(0) as usize;
    let items_of = |v: &Value| v["Resources"].as_array().cloned().unwrap_or_default();
    let mut resources = items_of(&users);
    // the groups continue where the users end
    query.start_index = Some(start.saturating_sub(total_of(&users)).max(1));
    query.count = Some(count.saturating_sub(resources.len()));
    let groups = st
        .service
        .list(caller, ResourceKind::Group, &query, &shape)
        .await?;
    resources.extend(items_of(&groups));
    let body = json!({
        "schemas": [crate::service::LIST_SCHEMA],
        "totalResults": total_of(&users) + total_of(&groups),
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    Ok(scim(StatusCode::OK, body, None))
}

/// `POST /Users`, `POST /Groups`.
async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Extension(kind): Extension<ResourceKind>,
    Query(q): Query<Params>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (v, version) = st
        .service
        .create(&caller, kind, json_body(&body)?, &shape(&q))
        .await?;
    let mut r = scim(StatusCode::CREATED, v.clone(), Some(version));
    if let Some(loc) = v
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// What every request on one resource (`/Users/{id}`, `/Groups/{id}`) carries: its kind
/// (from the route), its id, the ETag preconditions and the response shape asked for.
struct ItemRequest {
    kind: ResourceKind,
    id: String,
    if_match: Option<String>,
    if_none_match: Option<String>,
    shape: Shape,
}

impl FromRequestParts<Shared> for ItemRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let Extension(kind) = Extension::<ResourceKind>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(q) = Query::<Params>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let header = |name| header_str(&parts.headers, name).map(str::to_owned);
        Ok(ItemRequest {
            kind,
            id,
            if_match: header(header::IF_MATCH),
            if_none_match: header(header::IF_NONE_MATCH),
            shape: shape(&q),
        })
    }
}

/// `GET /Users/{id}`: 304 when `If-None-Match` names the current version.
async fn read(
    caller: Caller,
    State(st): State<Shared>,
    item: ItemRequest,
) -> Result<Response, ScimError> {
    let (v, version) = st
        .service
        .get(&caller, item.kind, &item.id, &item.shape)
        .await?;
    if item
        .if_none_match
        .is_some_and(|t| t.split(',').any(|t| t.trim() == etag(version)))
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(scim(StatusCode::OK, v, Some(version)))
}

/// `PUT /Users/{id}`.
async fn replace(
    caller: Caller,
    State(st): State<Shared>,
    item: ItemRequest,
    body: Bytes,
) -> Result<Response, ScimError> {
    let ItemRequest {
        kind,
        id,
        if_match,
        shape,
        ..
    } = item;
    let (v, version) = st
        .service
        .replace(
            &caller,
            kind,
            &id,
            json_body(&body)?,
            if_match.as_deref(),
            &shape,
        )
        .await?;
    Ok(scim(StatusCode::OK, v, Some(version)))
}

/// `PATCH /Users/{id}`.
async fn modify(
    caller: Caller,
    State(st): State<Shared>,
    item: ItemRequest,
    body: Bytes,
) -> Result<Response, ScimError> {
    let ItemRequest {
        kind,
        id,
        if_match,
        shape,
        ..
    } = item;
    let request = parse_patch(json_body(&body)?)?;
    let (v, version) = st
        .service
        .patch(&caller, kind, &id, &request, if_match.as_deref(), &shape)
        .await?;
    Ok(scim(StatusCode::OK, v, Some(version)))
}

/// `DELETE /Users/{id}`.
async fn remove(
    caller: Caller,
    State(st): State<Shared>,
    item: ItemRequest,
) -> Result<Response, ScimError> {
    st.service
        .delete(&caller, item.kind, &item.id, item.if_match.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /Groups/{id}/members` (our extension): a group's members, cursor paged.
async fn members(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response, ScimError> {
    let cursor = param(&q, "cursor");
    let body = st
        .service
        .list_members(&caller, &id, cursor, parse_index(&q, "count")?)
        .await?;
    Ok(scim(StatusCode::OK, body, None))
}

/// A SearchRequest body (RFC 7644 §3.4.3) as the query parameters it stands for.
fn search_params(body: &Bytes) -> Result<Params, ScimError> {
    let v = json_body(body)?;
    let text = |k: &str| {
        crate::filter::get_ci(&v, k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let num = |k: &str| crate::filter::get_ci(&v, k).and_then(Value::as_u64);
    let mut q = Params::new();
    for (key, value) in [
        ("filter", text("filter")),
        ("attributes", list_param(&v, "attributes")),
        ("excludedAttributes", list_param(&v, "excludedAttributes")),
        ("startIndex", num("startIndex").map(|n| n.to_string())),
        ("count", num("count").map(|n| n.to_string())),
        ("sortBy", text("sortBy")),
        ("sortOrder", text("sortOrder")),
        ("cursor", text("cursor")),
    ] {
        if let Some(value) = value {
            q.insert(key.to_owned(), value);
        }
    }
    Ok(q)
}

/// `POST /Users/.search`, `POST /Groups/.search`.
async fn search(
    caller: Caller,
    State(st): State<Shared>,
    Extension(kind): Extension<ResourceKind>,
    body: Bytes,
) -> Result<Response, ScimError> {
    list_of(&st, &caller, kind, &search_params(&body)?).await
}

/// `POST /.search`.
async fn root_search(
    caller: Caller,
    State(st): State<Shared>,
    body: Bytes,
) -> Result<Response, ScimError> {
    root_list(&st, &caller, &search_params(&body)?).await
}

/// `POST /Bulk`: the body is read up to `maxPayloadSize` and no further (413 past it).
async fn bulk(
    caller: Caller,
    State(st): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ScimError> {
    use http_body_util::BodyExt;
    let too_large = || {
        ScimError::of(
            ErrorKind::PayloadTooLarge,
            format!(
                "the bulk request exceeds maxPayloadSize ({} bytes)",
                crate::bulk::MAX_PAYLOAD
            ),
        )
    };
    if header_str(&headers, header::CONTENT_LENGTH)
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > crate::bulk::MAX_PAYLOAD)
    {
        return Err(too_large());
    }
    let bytes = http_body_util::Limited::new(body, crate::bulk::MAX_PAYLOAD)
        .collect()
        .await
        .map_err(|_| too_large())?
        .to_bytes();
    let request = json_body(&bytes)?;
    let ops = crate::filter::get_ci(&request, "Operations")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    // a bulk request costs its operations against the tenant's rate limit
    st.limits.take_n(&caller.tenant, ops.saturating_sub(1))?;
    let response = st.service.bulk(&caller, &request).await?;
    Ok(scim(StatusCode::OK, response, None))
}

/// `attributes` in a SearchRequest is a JSON array; as a query parameter, a comma list.
fn list_param(v: &Value, key: &str) -> Option<String> {
    match crate::filter::get_ci(v, key)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `GET /ServiceProviderConfig` (RFC 7643 §5).
async fn service_provider_config(_: Caller) -> Response {
    scim(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {
                "supported": true,
                "maxOperations": crate::bulk::MAX_OPERATIONS,
                "maxPayloadSize": crate::bulk::MAX_PAYLOAD
            },
            "filter": {"supported": true, "maxResults": crate::service::MAX_PAGE},
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": crate::service::MAX_PAGE,
                "maxPageSize": crate::service::MAX_PAGE,
                "cursorTimeout": crate::paging::CURSOR_TIMEOUT_SECS
            },
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken", "name": "OAuth Bearer Token",
                "description": "Authentication with a per-tenant bearer token", "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": "/ServiceProviderConfig"}
        }),
        None,
    )
}

/// `GET /Schemas`.
async fn schemas(_: Caller) -> Response {
    scim(
        StatusCode::OK,
        crate::discovery::list(crate::discovery::schemas()),
        None,
    )
}

/// `GET /ResourceTypes`.
async fn resource_types(_: Caller) -> Response {
    scim(
        StatusCode::OK,
        crate::discovery::list(crate::discovery::resource_types()),
        None,
    )
}

/// `GET /Schemas/{id}`.
async fn schema(_: Caller, Path(id): Path<String>) -> Result<Response, ScimError> {
    discovery_item(crate::discovery::schemas(), "schema", &id)
}

/// `GET /ResourceTypes/{id}`.
async fn resource_type(_: Caller, Path(id): Path<String>) -> Result<Response, ScimError> {
    discovery_item(crate::discovery::resource_types(), "resource type", &id)
}

/// One discovery document by its `id`.
fn discovery_item(docs: Vec<Value>, what: &str, id: &str) -> Result<Response, ScimError> {
    docs.into_iter()
        .find(|d| d["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
        .map(|doc| scim(StatusCode::OK, doc, None))
        .ok_or_else(|| ScimError::not_found(&format!("{what} {id}")))
}

/// The SCIM router with the default per-tenant rate limit. `base_url` is what
/// `meta.location` starts with.
pub fn router(
    store: Arc<dyn ScimStore>,
    directory: Arc<dyn ScimDirectory>,
    base_url: &str,
) -> Router {
    router_with_limits(store, directory, base_url, RateLimit::default())
}

pub fn router_with_limits(
    store: Arc<dyn ScimStore>,
    directory: Arc<dyn ScimDirectory>,
    base_url: &str,
    limits: RateLimit,
) -> Router {
    let state = Arc::new(AppState {
        service: ScimService::new(store, base_url),
        directory,
        limits,
    });
    let mut app = Router::new();
    for kind in ResourceKind::ALL {
        let at = format!("/{}", kind.collection());
        let kind = Extension(kind);
        app = app
            .route(&at, get(list).post(create).layer(kind))
            .route(&format!("{at}/.search"), post(search).layer(kind))
            .route(
                &format!("{at}/{{id}}"),
                get(read)
                    .put(replace)
                    .patch(modify)
                    .delete(remove)
                    .layer(kind),
            );
    }
    app.route("/Groups/{id}/members", get(members))
        .route("/.search", post(root_search))
        .route("/Bulk", post(bulk))
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route(
            "/Me",
            any(|| async { ScimError::of(ErrorKind::NotImplemented, "/Me is not supported") }),
        )
        .fallback(|| async { ScimError::of(ErrorKind::NotFound, "no such endpoint") })
        .layer(axum::middleware::map_response(scim_errors_only))
        .with_state(state)
}

/// Where the SCIM API is served: under `/scim/v2`, the version in the path (RFC 7644
/// §3.13).
pub const MOUNT: &str = "/scim/v2";

/// Mounts a SCIM router at `/scim/v2`. A request for another protocol version under
/// `/scim/` (such as `/scim/v1/Users`) gets 400 `invalidVers`; an unknown path under
/// `/scim/v2` gets the SCIM 404 like any unknown endpoint.
pub fn mounted(api: Router) -> Router {
    let other_version = |version: String| async move {
        if version == MOUNT.trim_start_matches("/scim/") {
            return ScimError::of(ErrorKind::NotFound, "no such endpoint");
        }
        ScimError::of(
            ErrorKind::InvalidVers,
            format!("SCIM protocol version {version:?} is not supported; use {MOUNT}"),
        )
    };
    Router::new()
        .nest(MOUNT, api)
        .route(
            "/scim/{version}/{*rest}",
            axum::routing::any(move |Path((version, _)): Path<(String, String)>| {
                other_version(version)
            }),
        )
        .route(
            "/scim/{version}",
            axum::routing::any(move |Path(version): Path<String>| other_version(version)),
        )
}

/// Any error an extractor or axum itself answers (a body over the limit, a malformed
/// query string, an unsupported method) leaves as a SCIM error document too: an IdP
/// reads `application/scim+json` errors, not axum's plain text.
async fn scim_errors_only(response: Response) -> Response {
    let status = response.status();
    let is_scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(SCIM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_scim {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let detail = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
    };
    let mut r = ScimError::of(ErrorKind::Http(status.as_u16()), detail).into_response();
    if let Some(v) = retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
