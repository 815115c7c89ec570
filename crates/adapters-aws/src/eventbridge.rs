//! `EventBus` on EventBridge PutEvents.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use envelope::{BusError, EntryOutcome, EventBus, PutEventsEntry};

use crate::classify::{Kind, classify, describe};

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> Result<Vec<EntryOutcome>, BusError> {
        let mut request = self.client.put_events();
        for e in entries {
            let time = e.time.as_deref().and_then(|t| {
                aws_smithy_types::DateTime::from_str(
                    t,
                    aws_smithy_types::date_time::Format::DateTime,
                )
                .ok()
            });
            request = request.entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .set_resources(Some(e.resources.clone()))
                    .set_time(time)
                    .build(),
            );
        }
        let out = request.send().await.map_err(|e| match classify(&e) {
            Kind::Throttled => BusError::Throttled(describe(&e)),
            Kind::Transient => BusError::Transient(describe(&e)),
            _ => BusError::Permanent(describe(&e)),
        })?;
        Ok(out
            .entries()
            .iter()
            .map(|r| match (r.event_id(), r.error_code()) {
                (Some(id), None) => EntryOutcome::Accepted {
                    bus_event_id: id.to_owned(),
                },
                (_, code) => EntryOutcome::Failed {
                    code: code.unwrap_or("InternalFailure").to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect())
    }
}
