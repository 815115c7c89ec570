//! The JSON shape of an event in the API: what `GET /v1/events` lists (without the
//! payload, which may be large) and what `GET /v1/events/{id}` and NDJSON exports give.

use chrono::SecondsFormat;
use serde::Serialize;

use auditlog::RecordRef;

/// Who did it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventActor)]
pub struct Actor<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// What it was done to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventTarget)]
pub struct Target<'a> {
    #[serde(rename = "type")]
    pub kind: Option<&'a str>,
    pub id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// One audit event. Lists leave `payload` out; one event and the stream include it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct EventView<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: i32,
    /// When it happened (RFC 3339, UTC, microseconds).
    pub occurred_at: String,
    /// When the audit log accepted it: the order the stream delivers in.
    pub ingested_at: String,
    pub action: &'a str,
    pub outcome: &'a str,
    pub actor: Actor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target<'a>>,
    pub producer: &'a str,
    pub source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    pub payload_sha256: &'a str,
    /// The event's index in the tenant's transparency log (`/v1/log/...`), once
    /// integrated and compacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// The event-type-specific body, as the producer sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

impl<'a> EventView<'a> {
    /// Without the payload: a list row.
    pub fn summary(r: impl Into<RecordRef<'a>>) -> Self {
        let r = r.into();
        let target = (r.target_type.is_some() || r.target_id.is_some()).then_some(Target {
            kind: r.target_type,
            id: r.target_id,
            name: r.target_name,
        });
        Self {
            event_id: r.event_id,
            event_type: r.event_type,
            schema_version: r.schema_version,
            occurred_at: r.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            ingested_at: r.ingested_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            action: r.action,
            outcome: r.outcome,
            actor: Actor {
                kind: r.actor_type,
                id: r.actor_id,
                name: r.actor_name,
            },
            target,
            producer: r.producer,
            source: r.source,
            correlation_id: r.correlation_id,
            request_id: r.request_id,
            source_ip: r.source_ip,
            user_agent: r.user_agent,
            payload_sha256: r.payload_sha256,
            leaf_index: r.leaf_index,
            payload: None,
        }
    }

    /// With the payload as JSON.
    pub fn full(r: impl Into<RecordRef<'a>>) -> Self {
        let r = r.into();
        let mut v = Self::summary(r);
        // we stored the payload as canonical JSON; text that is not JSON stays a string
        v.payload = Some(
            serde_json::from_str(r.payload)
                .unwrap_or_else(|_| serde_json::Value::String(r.payload.to_owned())),
        );
        v
    }
}
