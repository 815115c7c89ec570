//! One audit record: a row of the Parquet files, derived from a validated bus event.

use chrono::{DateTime, NaiveDate, Utc};
use envelope::{EventId, SortedJson, TenantId, ValidatedEvent};
use sha2::{Digest, Sha256};

/// The audit row. `tenant_id` is carried here but stored in the object path for the
/// tenant-partitioned tier (and as a column only in the ingest tier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub event_type: String,
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub ingested_at: DateTime<Utc>,
    pub producer: String,
    pub source: String,
    pub actor_type: String,
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub outcome: String,
    pub correlation_id: Option<String>,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Canonical JSON of `detail.payload`.
    pub payload: String,
    /// Lowercase hex SHA-256 of `payload`.
    pub payload_sha256: String,
    pub bus_event_id: String,
    pub account: String,
    pub region: String,
    /// The event's index in its tenant's transparency log, once compaction has written
    /// it (None before, and for rows folded before the log existed).
    pub leaf_index: Option<u64>,
}

/// One row borrowed from where it lives (a record, or a decoded Parquet batch): what
/// filters, views and export encoders read, so that a bulk read need not build an
/// `AuditRecord` (two dozen allocations) per row. The tenant is the reader's to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub ingested_at: DateTime<Utc>,
    pub producer: &'a str,
    pub source: &'a str,
    pub actor_type: &'a str,
    pub actor_id: &'a str,
    pub actor_name: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub target_name: Option<&'a str>,
    pub outcome: &'a str,
    pub correlation_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub payload: &'a str,
    pub payload_sha256: &'a str,
    pub bus_event_id: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub leaf_index: Option<u64>,
}

impl<'a> From<&'a AuditRecord> for RecordRef<'a> {
    fn from(r: &'a AuditRecord) -> Self {
        Self {
            event_id: r.event_id.as_str(),
            event_type: &r.event_type,
            schema_version: r.schema_version,
            occurred_at: r.occurred_at,
            ingested_at: r.ingested_at,
            producer: &r.producer,
            source: &r.source,
            actor_type: &r.actor_type,
            actor_id: &r.actor_id,
            actor_name: r.actor_name.as_deref(),
            action: &r.action,
            target_type: r.target_type.as_deref(),
            target_id: r.target_id.as_deref(),
            target_name: r.target_name.as_deref(),
            outcome: &r.outcome,
            correlation_id: r.correlation_id.as_deref(),
            request_id: r.request_id.as_deref(),
            source_ip: r.source_ip.as_deref(),
            user_agent: r.user_agent.as_deref(),
            payload: &r.payload,
            payload_sha256: &r.payload_sha256,
            bus_event_id: &r.bus_event_id,
            account: &r.account,
            region: &r.region,
            leaf_index: r.leaf_index,
        }
    }
}

/// Lowercase hex SHA-256 of the canonical payload text.
pub fn payload_sha256(canonical_payload: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // once per event: a table lookup per nibble instead of hex::encode's char iterator
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(canonical_payload.as_bytes()) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

impl AuditRecord {
    /// Builds the row from a validated event. The who/what/whom columns are derived from
    /// the event type and payload so that compliance queries need not parse JSON.
    pub fn from_event(event: ValidatedEvent<'_>, ingested_at: DateTime<Utc>) -> Self {
        let payload_sha256 = payload_sha256(&event.payload_json);
        let m = event.metadata;
        let derived = derive(&m.event_type, &event.payload);
        AuditRecord {
            tenant_id: m.tenant_id,
            event_id: m.event_id,
            schema_version: i32::try_from(m.schema_version).unwrap_or(i32::MAX),
            occurred_at: m.occurred_at,
            ingested_at,
            producer: m.producer,
            source: event.bus.source,
            actor_type: m.actor.kind.as_str().to_owned(),
            actor_id: m.actor.id,
            actor_name: m.actor.name,
            action: derived.action,
            target_type: derived.target_type,
            target_id: derived.target_id,
            target_name: derived.target_name,
            outcome: derived.outcome,
            correlation_id: m.correlation_id,
            request_id: m.request_id,
            source_ip: m.source_ip,
            user_agent: m.user_agent,
            payload: event.payload_json,
            payload_sha256,
            bus_event_id: event.bus.id,
            account: event.bus.account,
            region: event.bus.region,
            leaf_index: None,
            event_type: m.event_type,
        }
    }

    /// The bus event this row was accepted from, as EventBridge delivered it (wrapper,
    /// metadata and the canonical payload): what a quarantine record keeps as its body
    /// when the copy was found in storage rather than in a message, so that a redrive
    /// can submit it like any other message.
    pub fn to_bus_event(&self) -> serde_json::Value {
        let mut metadata = serde_json::json!({
            "event_id": self.event_id,
            "tenant_id": self.tenant_id,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "occurred_at": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "producer": self.producer,
            "actor": {"type": self.actor_type, "id": self.actor_id},
        });
        if let Some(name) = &self.actor_name {
            metadata["actor"]["name"] = name.as_str().into();
        }
        for (k, v) in [
            ("correlation_id", &self.correlation_id),
            ("request_id", &self.request_id),
            ("source_ip", &self.source_ip),
            ("user_agent", &self.user_agent),
        ] {
            if let Some(v) = v {
                metadata[k] = v.as_str().into();
            }
        }
        // the payload was stored as canonical JSON that we wrote ourselves
        let payload: serde_json::Value =
            serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "version": "0",
            "id": self.bus_event_id,
            "detail-type": self.event_type,
            "source": self.source,
            "account": self.account,
            "time": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": self.region,
            "resources": [],
            "detail": {"metadata": metadata, "payload": payload},
        })
    }

    /// The partition date: UTC date of `occurred_at`, so a replay lands beside the original.
    pub fn dt(&self) -> NaiveDate {
        self.occurred_at.date_naive()
    }
}

struct Derived {
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    target_name: Option<String>,
    outcome: String,
}

fn text(v: &SortedJson<'_>, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_owned)
}

fn derive(event_type: &str, payload: &SortedJson<'_>) -> Derived {
    let last = event_type
        .rsplit('.')
        .next()
        .unwrap_or(event_type)
        .to_owned();
    let outcome = text(payload, &["outcome"]).unwrap_or_else(|| "success".to_owned());
    if let Some(kind) = event_type.strip_prefix("scim.") {
        let noun = kind.split('.').next().unwrap_or_default();
        if last == "member_added" || last == "member_removed" {
            // The subject of a membership change is the member whose access changed.
            return Derived {
                action: last,
                target_type: text(payload, &["member", "type"]).map(|t| t.to_lowercase()),
                target_id: text(payload, &["member", "id"]),
                target_name: text(payload, &["member", "display"]),
                outcome,
            };
        }
        let name = if noun == "user" {
            text(payload, &["userName"])
        } else {
            text(payload, &["displayName"])
        };
        return Derived {
            action: last,
            target_type: Some(noun.to_owned()),
            target_id: text(payload, &["id"]),
            target_name: name,
            outcome,
        };
    }
    let target = payload.get("target");
    let of_target = |key: &str| target.and_then(|t| text(t, &[key]));
    Derived {
        action: text(payload, &["action"]).unwrap_or(last),
        target_type: of_target("type"),
        target_id: of_target("id"),
        target_name: of_target("name"),
        outcome,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use envelope::SchemaRegistry;
    use serde_json::{Value, json};

    pub fn bus_event(tenant: &str, event_id: &str, event_type: &str, payload: Value) -> Value {
        json!({
            "version": "0", "id": format!("bus-{event_id}"), "detail-type": event_type,
            "source": "auditlog.test", "account": "111122223333",
            "time": "2026-11-21T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "metadata": {
                    "event_id": event_id, "tenant_id": tenant, "event_type": event_type,
                    "schema_version": 1, "occurred_at": "2026-11-21T10:00:00.123456Z",
                    "producer": "test", "actor": {"type": "idp", "id": "okta", "name": "Okta"}
                },
                "payload": payload
            }
        })
    }

    fn record(event_type: &str, payload: Value) -> AuditRecord {
        let v = bus_event(
            "acme",
            "0192f4a0-7b3c-7d4e-8f00-112233445566",
            event_type,
            payload,
        );
        let text = v.to_string();
        let e = envelope::decode_bus_event(&text, &SchemaRegistry::builtin().unwrap(), 1 << 20)
            .unwrap();
        AuditRecord::from_event(e, Utc::now())
    }

    #[test]
    fn a_row_turns_back_into_the_event_it_came_from() {
        let mut v = bus_event(
            "acme",
            "0192f4a0-7b3c-7d4e-8f00-112233445566",
            "app.doc.shared",
            json!({"action": "share", "n": 2.5, "target": {"type": "doc", "id": "d1"}}),
        );
        v["detail"]["metadata"]["correlation_id"] = json!("c-9");
        v["detail"]["metadata"]["user_agent"] = json!("curl/8");
        let text = v.to_string();
        let registry = SchemaRegistry::builtin().unwrap();
        let r = AuditRecord::from_event(
            envelope::decode_bus_event(&text, &registry, 1 << 20).unwrap(),
            Utc::now(),
        );
        let again_text = r.to_bus_event().to_string();
        let again = AuditRecord::from_event(
            envelope::decode_bus_event(&again_text, &registry, 1 << 20).unwrap(),
            r.ingested_at,
        );
        assert_eq!(again, r);
    }

    #[test]
    fn payload_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            payload_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn derives_scim_user_columns() {
        let r = record(
            "scim.user.deactivated",
            json!({"id": "u1", "userName": "ada", "active": false}),
        );
        assert_eq!(
            (r.action.as_str(), r.target_type.as_deref()),
            ("deactivated", Some("user"))
        );
        assert_eq!(
            (r.target_id.as_deref(), r.target_name.as_deref()),
            (Some("u1"), Some("ada"))
        );
        assert_eq!(r.outcome, "success");
        assert_eq!(r.actor_type, "idp");
        assert_eq!(r.occurred_at.timestamp_subsec_micros(), 123_456);
        assert_eq!(r.dt().to_string(), "2026-11-21");
        assert_eq!(r.payload_sha256, payload_sha256(&r.payload));
    }

    #[test]
    fn membership_targets_the_member() {
        let r = record(
            "scim.group.member_added",
            json!({"group": {"id": "g1", "displayName": "Admins"}, "member": {"id": "u9", "type": "User"}}),
        );
        assert_eq!(r.action, "member_added");
        assert_eq!(
            (r.target_type.as_deref(), r.target_id.as_deref()),
            (Some("user"), Some("u9"))
        );
    }

    #[test]
    fn app_events_carry_their_own_action_and_outcome() {
        let r = record(
            "app.document.shared",
            json!({"action": "share", "target": {"type": "document", "id": "d1"}, "outcome": "denied"}),
        );
        assert_eq!((r.action.as_str(), r.outcome.as_str()), ("share", "denied"));
        assert_eq!(r.target_id.as_deref(), Some("d1"));
    }
}
