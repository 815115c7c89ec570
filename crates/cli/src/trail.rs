//! The embedded audit trail: events the CLI itself causes (tokens issued and revoked)
//! published through the schema-checking publisher onto an in-process bus, and ingested
//! into the local audit log before the command returns, like any producer's events.

use std::path::Path;
use std::sync::Arc;

use adapters_local::{Delivery, DeliveryConfig, InProcessBus, LocalQueue};
use anyhow::{Result, bail};
use audit_api::AuditTrail;
use envelope::pattern::EventPattern;
use envelope::{OutgoingEvent, Publisher, PublisherConfig};

use crate::pipeline::{Embedded, open};

pub(crate) struct LocalTrail {
    publisher: Publisher<Arc<InProcessBus>>,
    delivery: Arc<Delivery>,
    embedded: Embedded,
}

/// A bus whose one rule (every event) feeds `queue`: the audit rule of the template.
pub(crate) fn audit_bus(queue: Arc<LocalQueue>) -> Result<Arc<InProcessBus>> {
    let mut bus = InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
    bus.add_rule(
        EventPattern::parse(r#"{"account": [{"exists": true}]}"#)?,
        queue,
    );
    Ok(Arc::new(bus))
}

impl LocalTrail {
    pub(crate) fn open(data: &Path, schemas: Option<&Path>) -> Result<Self> {
        let embedded = open(data, schemas)?;
        let queue = Arc::new(LocalQueue::default());
        let publisher = Publisher::new(
            audit_bus(queue.clone())?,
            (*embedded.registry).clone(),
            PublisherConfig::default(),
        );
        Ok(Self {
            publisher,
            delivery: Delivery::new(queue, DeliveryConfig::default()),
            embedded,
        })
    }

    /// Publishes and ingests one event; an error if it did not reach the log.
    pub(crate) async fn record(&self, event: OutgoingEvent) -> Result<()> {
        let text = event.to_entry().detail;
        if let Err(e) = self.publisher.record(event).await {
            bail!("the event could not be published ({e}): {text}");
        }
        while let Some((outcome, _)) = self
            .delivery
            .deliver_once(self.embedded.subscriber.as_ref())
            .await
        {
            if !outcome.failed_message_ids.is_empty() {
                // the local queue lives in this process: say what to ingest again
                bail!(
                    "the event was not ingested ({:?}); ingest this detail again: {text}",
                    outcome.retry_reasons
                );
            }
        }
        Ok(())
    }
}
