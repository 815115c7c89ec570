//! The outbox relay: publishes committed changes' events from the store's outbox to the
//! bus and acknowledges what the bus accepted. A change and its event are committed
//! together, so a process that dies after the commit loses nothing: the next relay run
//! publishes the event, under the event_id assigned at commit time, so a second
//! publication (a crash after publishing, before the ack) is a duplicate the audit
//! subscriber drops.

use envelope::{Detail, EventBus, Metadata, OutgoingEvent, PublishError, Publisher};

use crate::store::{PendingEvent, ScimStore, StoreError};

pub const SCIM_SOURCE: &str = "auditlog.scim";
pub const SCIM_PRODUCER: &str = "scim-api";

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayReport {
    pub published: usize,
    /// Failed at the bus; still pending, retried by the next run.
    pub failed: usize,
    /// Refused by our own schema check (a bug in the producer: retrying cannot help),
    /// moved to the outbox's dead letters with the reason, so the rest flows on.
    pub dead_lettered: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

pub struct OutboxRelay<B> {
    store: std::sync::Arc<dyn ScimStore>,
    publisher: Publisher<B>,
    clock: std::sync::Arc<dyn envelope::clock::Clock>,
}

fn outgoing(p: &PendingEvent) -> OutgoingEvent {
    let e = &p.entry;
    OutgoingEvent {
        source: SCIM_SOURCE.to_owned(),
        resources: vec![],
        detail: Detail {
            metadata: Metadata {
                event_id: e.event_id.clone(),
                tenant_id: e.tenant_id.clone(),
                event_type: e.event_type.clone(),
                schema_version: 1,
                occurred_at: e.occurred_at,
                producer: SCIM_PRODUCER.to_owned(),
                actor: e.actor.clone(),
                correlation_id: None,
                request_id: None,
                source_ip: None,
                user_agent: None,
            },
            payload: e.payload.clone(),
        },
    }
}

impl<B: EventBus> OutboxRelay<B> {
    pub fn new(store: std::sync::Arc<dyn ScimStore>, publisher: Publisher<B>) -> Self {
        Self {
            store,
            publisher,
            clock: std::sync::Arc::new(envelope::clock::SystemClock),
        }
    }

    /// The clock dead letters are stamped with.
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn envelope::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Publishes up to `limit` pending events once.
    pub async fn run_once(&self, limit: usize) -> Result<RelayReport, RelayError> {
        let pending = self.store.outbox_pending(limit).await?;
        let mut report = RelayReport::default();
        let mut events = Vec::with_capacity(pending.len());
        let mut receipts = std::collections::HashMap::new();
        let mut dead = Vec::new();
        for p in pending {
            let event = outgoing(&p);
            // one invalid event must not hold back the others: check each alone first
            if let Err(e) = self.publisher.check(&event) {
                tracing::error!(
                    event_id = %p.entry.event_id,
                    tenant_id = %p.entry.tenant_id,
                    event_type = p.entry.event_type,
                    error = %e,
                    "outbox event can never be published; dead-lettered"
                );
                dead.push((p, e.to_string()));
                continue;
            }
            receipts.insert(p.entry.event_id.clone(), p.receipt.clone());
            events.push(event);
        }
        if !dead.is_empty() {
            self.store
                .outbox_dead_letter(&dead, self.clock.now())
                .await?;
            report.dead_lettered = dead.len();
            // the one log line per run that the DeadLetteredOutboxEvents metric counts
            tracing::error!(
                outbox_dead_lettered = dead.len(),
                "outbox events dead-lettered"
            );
        }
        if events.is_empty() {
            return Ok(report);
        }
        let published = self.publisher.publish(&events).await?;
        let acked: Vec<String> = published
            .accepted
            .iter()
            .filter_map(|(id, _)| receipts.get(id).cloned())
            .collect();
        report.published = acked.len();
        report.failed = published.failed.len();
        self.store.outbox_ack(&acked).await?;
        Ok(report)
    }

    /// Runs until the outbox is empty or only holds events that keep failing at the bus.
    pub async fn drain(&self, batch: usize) -> Result<RelayReport, RelayError> {
        let mut total = RelayReport::default();
        loop {
            let r = self.run_once(batch).await?;
            total.published += r.published;
            total.failed += r.failed;
            total.dead_lettered += r.dead_lettered;
            if r.published == 0 && r.dead_lettered == 0 {
                return Ok(total);
            }
        }
    }
}
