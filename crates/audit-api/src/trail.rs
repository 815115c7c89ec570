//! Reading the log is audited: views, searches, exports and token changes publish their
//! own events through the same publisher as every producer, so they land in the
//! tenant's own history like any other event.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::{Actor, Detail, EventBus, EventId, Metadata, OutgoingEvent, Publisher, TenantId};
use serde_json::Value;

/// The EventBridge `source` and `producer` of the audit API's own events.
pub const AUDIT_API_SOURCE: &str = "auditlog.audit-api";
pub const AUDIT_API_PRODUCER: &str = "audit-api";

pub const LOG_VIEWED: &str = "audit.log.viewed";
pub const LOG_SEARCHED: &str = "audit.log.searched";
pub const LOG_EXPORTED: &str = "audit.log.exported";
pub const TOKEN_CREATED: &str = "audit.token.created";
pub const TOKEN_REVOKED: &str = "audit.token.revoked";

/// Where the audit API's own events go.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    async fn record(&self, event: OutgoingEvent) -> Result<(), String>;
}

#[async_trait]
impl<B: EventBus> AuditTrail for Publisher<B> {
    async fn record(&self, event: OutgoingEvent) -> Result<(), String> {
        let report = self
            .publish(std::slice::from_ref(&event))
            .await
            .map_err(|e| e.to_string())?;
        match report.failed.first() {
            None => Ok(()),
            Some((_, code, message)) => Err(format!("{code}: {message}")),
        }
    }
}

/// One of our events, by `actor` about `tenant`'s log.
pub fn audit_event(
    tenant: &TenantId,
    actor: &Actor,
    event_type: &str,
    payload: Value,
    now: DateTime<Utc>,
    origin: (Option<String>, Option<String>),
) -> OutgoingEvent {
    OutgoingEvent {
        source: AUDIT_API_SOURCE.to_owned(),
        resources: vec![],
        detail: Detail {
            metadata: Metadata {
                event_id: EventId::new_v7(),
                tenant_id: tenant.clone(),
                event_type: event_type.to_owned(),
                schema_version: 1,
                occurred_at: now,
                producer: AUDIT_API_PRODUCER.to_owned(),
                actor: actor.clone(),
                correlation_id: None,
                request_id: None,
                source_ip: origin.0,
                user_agent: origin.1,
            },
            payload,
        },
    }
}

/// An in-memory trail for tests: keeps what was recorded, or fails when told.
#[derive(Default)]
pub struct RecordedTrail {
    pub events: std::sync::Mutex<Vec<OutgoingEvent>>,
    pub failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl AuditTrail for RecordedTrail {
    async fn record(&self, event: OutgoingEvent) -> Result<(), String> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the bus is down (test)".into());
        }
        self.events
            .lock()
            .map_err(|_| "poisoned".to_owned())?
            .push(event);
        Ok(())
    }
}
