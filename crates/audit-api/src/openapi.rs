//! The OpenAPI document: generated from the `#[utoipa::path]` of each handler that the
//! router mounts (`utoipa_axum::routes!` registers the route and its description
//! together, so neither can change alone), served at `/v1/openapi.json`. The types here
//! only describe bodies the handlers build as JSON.

#![allow(dead_code)] // fields are read by the derive, not by code

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use history::EventView;

/// A page of events, newest first.
#[derive(ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView<'static>>,
    /// The cursor of the next page (also in the `Link` header); null on the last page.
    pub next: Option<String>,
}

/// A poll's events, in the order they were accepted, and where to poll from next.
#[derive(ToSchema)]
pub struct StreamPage {
    pub events: Vec<EventView<'static>>,
    /// Always given, also when `events` is empty: send it back as `after`.
    pub next: String,
    /// Without a tenant log: everything accepted before this time has been considered.
    pub horizon: Option<String>,
    /// With a tenant log: the size of the signed checkpoint the stream went up to; every
    /// event given is below it.
    pub tree_size: Option<u64>,
}

/// An event's place in its tenant's log, and the proof that it is there.
#[derive(ToSchema)]
pub struct InclusionProof {
    pub event_id: String,
    pub leaf_index: u64,
    /// The leaf as the log holds it: `v1 event <tenant> <event_id> <accepted_at µs>
    /// <payload_sha256>`; its hash is SHA-256 over `0x00 || leaf`.
    pub leaf: String,
    /// Base64, as every hash here.
    pub leaf_hash: String,
    pub tree_size: u64,
    pub root_hash: String,
    /// RFC 9162 §2.1.3, from the leaf up.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint the proof is into (C2SP signed note).
    pub checkpoint: String,
}

/// Proof that the latest checkpoint's log extends an older one.
#[derive(ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub tree_size: u64,
    pub root_hash: String,
    /// RFC 9162 §2.1.4.
    pub consistency_proof: Vec<String>,
    pub checkpoint: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The size of the older log (a checkpoint you kept).
    pub from: u64,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    pub status: u16,
    /// `unauthorized`, `forbidden`, `invalid_parameter`, `invalid_cursor`,
    /// `invalid_checkpoint`, `invalid_body`, `not_found`, `throttled`, `unavailable`.
    pub code: String,
    pub message: String,
}

#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// An export: the filters of `GET /v1/events` (all strings) and a format. `bundle` is
/// the events accepted in `[from, to)` (both required, no other filter) with what an
/// offline verifier needs (`auditlog verify FILE`): their entries in the tenant's log,
/// the signed checkpoint, and the proofs.
#[derive(ToSchema)]
pub struct ExportRequest {
    /// csv (default), ndjson or bundle.
    pub format: Option<history::ExportFormat>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub event_type: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<String>,
    pub q: Option<String>,
}

#[derive(ToSchema)]
pub struct SessionRequest {
    /// The viewer token the SaaS backend minted (HS256 JWT, at most 5 minutes).
    pub viewer_token: String,
}

/// The filters of `GET /v1/events` and of exports.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// occurred_at at or after: RFC 3339 or a day (`2026-11-21`).
    pub from: Option<String>,
    /// occurred_at before.
    pub to: Option<String>,
    /// The actor: `type:id` (`user:u-1`) or an id.
    pub actor: Option<String>,
    /// The action, exact or a prefix (`member_*`).
    pub action: Option<String>,
    /// The event type, exact or a prefix (`scim.group.*`).
    pub event_type: Option<String>,
    /// The target, `type:id`.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// Words that must all appear in the actor's or target's id or name.
    pub q: Option<String>,
    /// 1 to 1000; default 50.
    pub limit: Option<usize>,
    /// `next` of the previous page, with the same filters.
    pub cursor: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// `next` of the previous poll; none to start from the beginning.
    pub after: Option<String>,
    /// Instead of `after`: start with the events accepted at or after this time.
    pub since: Option<String>,
    /// 1 to 10000; default 1000.
    pub limit: Option<usize>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An audit API token (`auditlog tokens issue --scope audit:read`) or a viewer session token",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Audit log API",
        version = "1",
        description = "A tenant's own audit history: browse newest first, poll in acceptance order (SIEMs), export. The tenant comes from the token."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(EventPage, StreamPage, ErrorBody, ExportRequest, SessionRequest, InclusionProof, ConsistencyProof))
)]
pub struct ApiDoc;
