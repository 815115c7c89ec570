//! The EventBridge envelope and our `detail`, and the decoding that turns untrusted text
//! into a `ValidatedEvent` or a precise, classified `EnvelopeError`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{EventId, IdError, TenantId};
use crate::schema::SchemaRegistry;
use crate::sorted_json::SortedJson;

/// EventBridge's own wrapper. `id` is assigned by EventBridge on every PutEvents call, so it
/// changes on a producer retry or an archive replay: never use it to deduplicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent<D = Detail> {
    #[serde(default)]
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: String,
    pub time: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: D,
}

/// Our `detail`: metadata every event carries, and the event-type specific payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub metadata: Metadata,
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub event_type: String,
    pub schema_version: u32,
    #[serde(with = "rfc3339_millis")]
    pub occurred_at: DateTime<Utc>,
    pub producer: String,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorType,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    Idp,
    User,
    Service,
    System,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Idp => "idp",
            ActorType::User => "user",
            ActorType::Service => "service",
            ActorType::System => "system",
        }
    }
}

mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// `detail` as received, before validation: every metadata field optional so that a
/// missing one is reported by name instead of as a generic serde error.
#[derive(Debug, Deserialize)]
pub struct RawDetail<'a> {
    metadata: Option<RawMetadata>,
    #[serde(borrow)]
    payload: Option<SortedJson<'a>>,
}

#[derive(Debug, Deserialize)]
struct RawMetadata {
    event_id: Option<String>,
    tenant_id: Option<String>,
    event_type: Option<String>,
    schema_version: Option<u32>,
    occurred_at: Option<String>,
    producer: Option<String>,
    actor: Option<Actor>,
    correlation_id: Option<String>,
    request_id: Option<String>,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

/// Why an event can never be accepted. Each variant is permanent: retrying the same bytes
/// gives the same answer, so the subscriber quarantines instead of retrying.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("not an EventBridge event with our detail: {0}")]
    InvalidEnvelope(String),
    #[error("event is {size} bytes, over the {limit}-byte limit")]
    Oversize { size: usize, limit: usize },
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("invalid tenant_id: {0}")]
    InvalidTenant(IdError),
    #[error("unknown event type {event_type:?} schema version {version}")]
    UnknownSchema { event_type: String, version: u32 },
    #[error("payload does not match schema {event_type} v{version}: {}", .errors.join("; "))]
    SchemaViolation {
        event_type: String,
        version: u32,
        errors: Vec<String>,
    },
}

impl EnvelopeError {
    /// A short stable code, used in quarantine object names and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::MalformedJson(_) => "malformed_json",
            EnvelopeError::InvalidEnvelope(_) => "invalid_envelope",
            EnvelopeError::Oversize { .. } => "oversize",
            EnvelopeError::MissingField("tenant_id") | EnvelopeError::InvalidTenant(_) => {
                "invalid_tenant"
            }
            EnvelopeError::MissingField(_) | EnvelopeError::InvalidField { .. } => {
                "invalid_metadata"
            }
            EnvelopeError::UnknownSchema { .. } => "unknown_schema",
            EnvelopeError::SchemaViolation { .. } => "schema_violation",
        }
    }
}

/// The parts of EventBridge's wrapper that we keep for provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMeta {
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub account: String,
    pub region: String,
}

/// An event that passed every check: typed metadata, and its payload both as a tree
/// (borrowing from the decoded text) and as canonical JSON text (what is stored and hashed).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedEvent<'a> {
    pub bus: BusMeta,
    pub metadata: Metadata,
    pub payload: SortedJson<'a>,
    pub payload_json: String,
}

impl ValidatedEvent<'_> {
    /// The same event, no longer borrowing from the text it was decoded from.
    pub fn into_owned(self) -> ValidatedEvent<'static> {
        ValidatedEvent {
            bus: self.bus,
            metadata: self.metadata,
            payload: self.payload.into_owned(),
            payload_json: self.payload_json,
        }
    }
}

const MAX_SHORT_FIELD: usize = 256;
const MAX_USER_AGENT: usize = 1024;

/// Decodes one bus event (the JSON EventBridge delivers, e.g. an SQS message body) and
/// validates its metadata and payload. `max_bytes` bounds the whole text.
pub fn decode_bus_event<'a>(
    text: &'a str,
    registry: &SchemaRegistry,
    max_bytes: usize,
) -> Result<ValidatedEvent<'a>, EnvelopeError> {
    if text.len() > max_bytes {
        return Err(EnvelopeError::Oversize {
            size: text.len(),
            limit: max_bytes,
        });
    }
    let raw: BusEvent<RawDetail<'a>> =
        serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => EnvelopeError::InvalidEnvelope(e.to_string()),
            _ => EnvelopeError::MalformedJson(e.to_string()),
        })?;
    let RawDetail { metadata, payload } = raw.detail;
    let m = metadata.ok_or(EnvelopeError::MissingField("detail.metadata"))?;
    let payload = payload.ok_or(EnvelopeError::MissingField("detail.payload"))?;

    let tenant_id = TenantId::parse(
        m.tenant_id
            .as_deref()
            .ok_or(EnvelopeError::MissingField("tenant_id"))?,
    )
    .map_err(EnvelopeError::InvalidTenant)?;
    let event_id = EventId::parse(
        m.event_id
            .as_deref()
            .ok_or(EnvelopeError::MissingField("event_id"))?,
    )
    .map_err(|e| EnvelopeError::InvalidField {
        field: "event_id",
        reason: e.to_string(),
    })?;
    let event_type = m
        .event_type
        .ok_or(EnvelopeError::MissingField("event_type"))?;
    check_event_type(&event_type)?;
    let schema_version = m
        .schema_version
        .ok_or(EnvelopeError::MissingField("schema_version"))?;
    let occurred_text = m
        .occurred_at
        .ok_or(EnvelopeError::MissingField("occurred_at"))?;
    let occurred_at = DateTime::parse_from_rfc3339(&occurred_text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| EnvelopeError::InvalidField {
            field: "occurred_at",
            reason: format!("{occurred_text:?} is not RFC 3339: {e}"),
        })?;
    let producer = m.producer.ok_or(EnvelopeError::MissingField("producer"))?;
    check_len("producer", &producer, 1, MAX_SHORT_FIELD)?;
    let actor = m.actor.ok_or(EnvelopeError::MissingField("actor"))?;
    check_len("actor.id", &actor.id, 1, MAX_SHORT_FIELD)?;
    if let Some(name) = &actor.name {
        check_len("actor.name", name, 0, MAX_SHORT_FIELD)?;
    }
    for (field, value, max) in [
        ("correlation_id", &m.correlation_id, MAX_SHORT_FIELD),
        ("request_id", &m.request_id, MAX_SHORT_FIELD),
        ("source_ip", &m.source_ip, 64),
        ("user_agent", &m.user_agent, MAX_USER_AGENT),
    ] {
        if let Some(v) = value {
            check_len(field, v, 0, max)?;
        }
    }

    registry.validate_sorted(&event_type, schema_version, &payload)?;
    let payload_json = payload.to_canonical();

    Ok(ValidatedEvent {
        bus: BusMeta {
            id: raw.id,
            source: raw.source,
            detail_type: raw.detail_type,
            account: raw.account,
            region: raw.region,
        },
        metadata: Metadata {
            event_id,
            tenant_id,
            event_type,
            schema_version,
            occurred_at,
            producer,
            actor,
            correlation_id: m.correlation_id,
            request_id: m.request_id,
            source_ip: m.source_ip,
            user_agent: m.user_agent,
        },
        payload,
        payload_json,
    })
}

fn check_len(field: &'static str, v: &str, min: usize, max: usize) -> Result<(), EnvelopeError> {
    if v.len() < min || v.len() > max {
        return Err(EnvelopeError::InvalidField {
            field,
            reason: format!("length {} is outside {min}..={max}", v.len()),
        });
    }
    Ok(())
}

/// `domain.noun.verb` style: dot-separated lowercase segments, at most 128 characters.
fn check_event_type(t: &str) -> Result<(), EnvelopeError> {
    // One pass: every segment starts with a lowercase letter and holds only [a-z0-9_].
    let mut segments = 1;
    let mut at_segment_start = true;
    let mut ok = t.len() <= 128;
    for c in t.bytes() {
        if c == b'.' {
            ok &= !at_segment_start;
            segments += 1;
            at_segment_start = true;
        } else {
            ok &= if at_segment_start {
                c.is_ascii_lowercase()
            } else {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
            };
            at_segment_start = false;
        }
    }
    if !ok || at_segment_start || segments < 2 {
        return Err(EnvelopeError::InvalidField {
            field: "event_type",
            reason: format!(
                "{:?} is not dot-separated lowercase segments like \"scim.user.created\"",
                t.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(())
}

impl Detail {
    /// The `detail` JSON text as sent to PutEvents.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl BusEvent<Detail> {
    /// Wraps a detail the way EventBridge does on delivery (used by the in-process bus
    /// and by tests that need exactly what a rule target receives).
    pub fn wrap(
        id: String,
        source: &str,
        account: &str,
        region: &str,
        resources: Vec<String>,
        detail: Detail,
    ) -> Self {
        BusEvent {
            version: "0".to_owned(),
            id,
            detail_type: detail.metadata.event_type.clone(),
            source: source.to_owned(),
            account: account.to_owned(),
            time: detail
                .metadata
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            region: region.to_owned(),
            resources,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> SchemaRegistry {
        SchemaRegistry::builtin().unwrap()
    }

    fn sample() -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "scim.user.created",
            "source": "auditlog.scim",
            "account": "111122223333",
            "time": "2026-11-21T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "metadata": {
                    "event_id": "0192f4a0-7b3c-7d4e-8f00-112233445566",
                    "tenant_id": "acme-corp",
                    "event_type": "scim.user.created",
                    "schema_version": 1,
                    "occurred_at": "2026-11-21T10:00:00.123Z",
                    "producer": "scim-api",
                    "actor": {"type": "idp", "id": "entra", "name": "Microsoft Entra ID"},
                    "correlation_id": "c-1"
                },
                "payload": {"userName": "ada@acme.test", "id": "u-1", "active": true}
            }
        })
    }

    fn decode(v: &Value) -> Result<ValidatedEvent<'static>, EnvelopeError> {
        decode_bus_event(&v.to_string(), &registry(), crate::PUT_EVENTS_MAX_BYTES)
            .map(ValidatedEvent::into_owned)
    }

    #[test]
    fn decodes_a_valid_event() {
        let e = decode(&sample()).unwrap();
        assert_eq!(e.metadata.tenant_id.as_str(), "acme-corp");
        assert_eq!(e.metadata.actor.kind, ActorType::Idp);
        assert_eq!(e.metadata.occurred_at.timestamp_subsec_millis(), 123);
        assert_eq!(e.bus.account, "111122223333");
        assert_eq!(
            e.payload_json,
            r#"{"active":true,"id":"u-1","userName":"ada@acme.test"}"#
        );
    }

    #[test]
    fn malformed_json_is_classified() {
        let err = decode_bus_event("{\"id\": ", &registry(), 1000).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = decode_bus_event("[1,2]", &registry(), 1000).unwrap_err();
        assert_eq!(err.code(), "invalid_envelope");
    }

    #[test]
    fn oversize_is_rejected_before_parsing() {
        let err = decode_bus_event(&"x".repeat(2000), &registry(), 1000).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::Oversize {
                size: 2000,
                limit: 1000
            }
        );
    }

    #[test]
    fn missing_fields_are_named() {
        for field in [
            "tenant_id",
            "event_id",
            "event_type",
            "occurred_at",
            "actor",
            "producer",
        ] {
            let mut v = sample();
            v["detail"]["metadata"]
                .as_object_mut()
                .unwrap()
                .remove(field);
            let err = decode(&v).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        let mut v = sample();
        v["detail"].as_object_mut().unwrap().remove("payload");
        assert_eq!(
            decode(&v).unwrap_err(),
            EnvelopeError::MissingField("detail.payload")
        );
    }

    #[test]
    fn hostile_tenants_are_invalid_tenant() {
        for t in ["../other", "a=b", "a/b", "", "UPPER"] {
            let mut v = sample();
            v["detail"]["metadata"]["tenant_id"] = json!(t);
            assert_eq!(decode(&v).unwrap_err().code(), "invalid_tenant", "{t:?}");
        }
        let mut v = sample();
        v["detail"]["metadata"]["tenant_id"] = json!(42);
        assert_eq!(decode(&v).unwrap_err().code(), "invalid_envelope");
    }

    #[test]
    fn schema_violations_list_the_paths() {
        let mut v = sample();
        v["detail"]["payload"] = json!({"id": "u-1", "active": "yes"});
        let err = decode(&v).unwrap_err();
        assert_eq!(err.code(), "schema_violation");
        let text = err.to_string();
        assert!(text.contains("userName"), "{text}");
        assert!(text.contains("/active"), "{text}");
    }

    #[test]
    fn unknown_types_and_versions_are_rejected() {
        let mut v = sample();
        v["detail"]["metadata"]["schema_version"] = json!(9);
        assert_eq!(decode(&v).unwrap_err().code(), "unknown_schema");
        let mut v = sample();
        v["detail"]["metadata"]["event_type"] = json!("billing.invoice.paid");
        assert_eq!(decode(&v).unwrap_err().code(), "unknown_schema");
        let mut v = sample();
        v["detail"]["metadata"]["event_type"] = json!("Bad Type");
        assert_eq!(decode(&v).unwrap_err().code(), "invalid_metadata");
    }

    #[test]
    fn event_type_shape() {
        for good in ["scim.user.created", "app.doc_2.v1", "a.b"] {
            assert!(check_event_type(good).is_ok(), "{good}");
        }
        let long = format!("a.{}", "b".repeat(127));
        for bad in [
            "scim",
            "",
            ".a",
            "a.",
            "a..b",
            "A.b",
            "a.B",
            "a.1b",
            "a._b",
            "a.b-c",
            "a b.c",
            long.as_str(),
        ] {
            assert!(check_event_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        let mut v = sample();
        v["detail"]["metadata"]["occurred_at"] = json!("yesterday");
        let err = decode(&v).unwrap_err();
        assert!(err.to_string().contains("occurred_at"), "{err}");
    }

    #[test]
    fn detail_round_trips_through_wrap() {
        let e = decode(&sample()).unwrap();
        let detail = Detail {
            metadata: e.metadata.clone(),
            payload: e.payload.to_value(),
        };
        let wrapped = BusEvent::wrap("x".into(), "src", "1", "eu-west-1", vec![], detail);
        let text = serde_json::to_string(&wrapped).unwrap();
        let again = decode_bus_event(&text, &registry(), 1 << 20).unwrap();
        assert_eq!(again.metadata, e.metadata);
        assert_eq!(again.payload_json, e.payload_json);
    }
}
