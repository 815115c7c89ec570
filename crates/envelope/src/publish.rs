//! The producer side: validate, size, pack into PutEvents requests, send through an
//! `EventBus` port, and retry only the entries that failed with a retryable code.

use std::time::Duration;

use async_trait::async_trait;

use crate::event::{Detail, EnvelopeError};
use crate::ids::EventId;
use crate::schema::SchemaRegistry;
use crate::size::{PutEventsEntry, entry_size};
use crate::{PUT_EVENTS_MAX_BYTES, PUT_EVENTS_MAX_ENTRIES};

/// The outcome of one entry of one PutEvents request, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Accepted; EventBridge's own id for it.
    Accepted { bus_event_id: String },
    /// Refused; the AWS error code (e.g. `ThrottlingException`, `InternalFailure`,
    /// `MalformedDetail`) and message.
    Failed { code: String, message: String },
}

/// A failure of a whole PutEvents call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("event bus throttled the request: {0}")]
    Throttled(String),
    #[error("transient event bus failure: {0}")]
    Transient(String),
    #[error("event bus refused the request: {0}")]
    Permanent(String),
}

/// The port: one PutEvents call. Implemented by EventBridge and by the in-process bus.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Sends one request of at most `PUT_EVENTS_MAX_ENTRIES` entries and returns one
    /// outcome per entry, in order.
    async fn put_events(&self, entries: &[PutEventsEntry]) -> Result<Vec<EntryOutcome>, BusError>;
}

#[async_trait]
impl<T: EventBus + ?Sized> EventBus for std::sync::Arc<T> {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> Result<Vec<EntryOutcome>, BusError> {
        (**self).put_events(entries).await
    }
}

/// Entry codes AWS documents as worth retrying.
const RETRYABLE_CODES: &[&str] = &[
    "InternalFailure",
    "ThrottlingException",
    "InternalException",
];

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Per-entry and per-request byte limit: 1 MiB since January 2026, 256 KiB before.
    pub max_request_bytes: usize,
    pub max_entries: usize,
    /// Attempts per entry, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled on every retry, with full jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: PUT_EVENTS_MAX_BYTES,
            max_entries: PUT_EVENTS_MAX_ENTRIES,
            max_attempts: 6,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// An event ready to publish: its detail (with the producer-assigned event_id) and the
/// EventBridge `source` and `resources` to send it with.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub source: String,
    pub resources: Vec<String>,
    pub detail: Detail,
}

impl OutgoingEvent {
    pub fn to_entry(&self) -> PutEventsEntry {
        PutEventsEntry {
            source: self.source.clone(),
            detail_type: self.detail.metadata.event_type.clone(),
            detail: self.detail.to_json(),
            resources: self.resources.clone(),
            time: Some(
                self.detail
                    .metadata
                    .occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        }
    }
}

/// Refusals that happen before anything is sent: nothing of the call reached the bus.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishError {
    #[error("event {event_id} is {size} bytes as a PutEvents entry, over the {limit}-byte limit")]
    Oversize {
        event_id: EventId,
        size: usize,
        limit: usize,
    },
    #[error("event {event_id} is invalid: {source}")]
    Invalid {
        event_id: EventId,
        #[source]
        source: EnvelopeError,
    },
}

/// What happened to each event of a `publish` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub accepted: Vec<(EventId, String)>,
    /// Events that failed permanently or ran out of attempts: code and message.
    pub failed: Vec<(EventId, String, String)>,
    pub requests: usize,
    pub retries: usize,
}

impl PublishReport {
    pub fn all_accepted(&self) -> bool {
        self.failed.is_empty()
    }
}

pub struct Publisher<B> {
    bus: B,
    registry: SchemaRegistry,
    config: PublisherConfig,
}

impl<B: EventBus> Publisher<B> {
    pub fn new(bus: B, registry: SchemaRegistry, config: PublisherConfig) -> Self {
        Self {
            bus,
            registry,
            config,
        }
    }

    /// Validates every event and checks every size first, so an invalid or oversize event
    /// fails the call before any request is sent. Then packs and sends, retrying only
    /// retryable failures. The event_id inside each detail is never changed, so a retry
    /// (by us or by the caller) is recognisable downstream as the same event.
    pub async fn publish(&self, events: &[OutgoingEvent]) -> Result<PublishReport, PublishError> {
        let mut pending: Vec<(usize, PutEventsEntry, usize)> = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let (entry, size) = self.checked_entry(event)?;
            pending.push((i, entry, size));
        }

        let mut report = PublishReport::default();
        let mut attempt: u32 = 0;
        while !pending.is_empty() {
            attempt += 1;
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            let last_attempt = attempt >= self.config.max_attempts;
            let mut retry = Vec::new();
            let sizes: Vec<usize> = pending.iter().map(|(_, _, size)| *size).collect();
            for range in pack(
                &sizes,
                self.config.max_entries,
                self.config.max_request_bytes,
            ) {
                let request = &pending[range];
                report.requests += 1;
                let entries: Vec<PutEventsEntry> =
                    request.iter().map(|(_, e, _)| e.clone()).collect();
                match self.bus.put_events(&entries).await {
                    Ok(outcomes) => {
                        for (item, outcome) in
                            request
                                .iter()
                                .zip(outcomes.into_iter().chain(std::iter::repeat_with(|| {
                                    EntryOutcome::Failed {
                                        code: "InternalFailure".into(),
                                        message: "no outcome returned for entry".into(),
                                    }
                                })))
                        {
                            let event_id = events[item.0].detail.metadata.event_id.clone();
                            match outcome {
                                EntryOutcome::Accepted { bus_event_id } => {
                                    report.accepted.push((event_id, bus_event_id));
                                }
                                EntryOutcome::Failed { code, message } => {
                                    if !last_attempt && RETRYABLE_CODES.contains(&code.as_str()) {
                                        retry.push(item.clone());
                                    } else {
                                        report.failed.push((event_id, code, message));
                                    }
                                }
                            }
                        }
                    }
                    Err(BusError::Permanent(message)) => {
                        for item in request {
                            let event_id = events[item.0].detail.metadata.event_id.clone();
                            report.failed.push((
                                event_id,
                                "RequestRejected".into(),
                                message.clone(),
                            ));
                        }
                    }
                    Err(e @ (BusError::Throttled(_) | BusError::Transient(_))) => {
                        tracing::warn!(error = %e, attempt, "PutEvents call failed; will retry");
                        for item in request {
                            if last_attempt {
                                let event_id = events[item.0].detail.metadata.event_id.clone();
                                report.failed.push((
                                    event_id,
                                    "RequestFailed".into(),
                                    e.to_string(),
                                ));
                            } else {
                                retry.push(item.clone());
                            }
                        }
                    }
                }
            }
            report.retries += retry.len();
            pending = retry;
        }
        Ok(report)
    }

    /// The checks `publish` makes before sending anything, for one event.
    pub fn check(&self, event: &OutgoingEvent) -> Result<(), PublishError> {
        self.checked_entry(event).map(|_| ())
    }

    fn checked_entry(
        &self,
        event: &OutgoingEvent,
    ) -> Result<(PutEventsEntry, usize), PublishError> {
        let m = &event.detail.metadata;
        self.registry
            .validate(&m.event_type, m.schema_version, &event.detail.payload)
            .map_err(|source| PublishError::Invalid {
                event_id: m.event_id.clone(),
                source,
            })?;
        let entry = event.to_entry();
        let size = entry_size(&entry);
        if size > self.config.max_request_bytes {
            return Err(PublishError::Oversize {
                event_id: m.event_id.clone(),
                size,
                limit: self.config.max_request_bytes,
            });
        }
        Ok((entry, size))
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .config
            .base_backoff
            .saturating_mul(1u32 << retry.min(16))
            .min(self.config.max_backoff);
        // Full jitter: uniform in [0, exp], from a v4 UUID's random bits.
        let unit = (uuid::Uuid::new_v4().as_u128() % 10_000) as f64 / 10_000.0;
        exp.mul_f64(unit)
    }
}

/// Greedy packing in order: a new request starts when the next entry would exceed the
/// entry count or the byte limit. Returns the requests as ranges of `sizes`.
fn pack(sizes: &[usize], max_entries: usize, max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut requests = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == max_entries || bytes + size > max_bytes) {
            requests.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        requests.push(start..sizes.len());
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, ActorType, Metadata};
    use crate::ids::TenantId;
    use std::sync::Mutex;

    /// Per call: the failure code of each entry (None: accepted), or a whole-call error.
    type Step = Result<Vec<Option<&'static str>>, BusError>;

    /// A scripted bus: records every request, answers with scripted failures.
    struct ScriptedBus {
        requests: Mutex<Vec<Vec<PutEventsEntry>>>,
        /// Per call: entry index -> failure code.
        script: Mutex<Vec<Step>>,
    }

    #[async_trait]
    impl EventBus for ScriptedBus {
        async fn put_events(
            &self,
            entries: &[PutEventsEntry],
        ) -> Result<Vec<EntryOutcome>, BusError> {
            self.requests.lock().unwrap().push(entries.to_vec());
            let step = {
                let mut s = self.script.lock().unwrap();
                if s.is_empty() {
                    Ok(vec![])
                } else {
                    s.remove(0)
                }
            };
            let codes = step?;
            Ok(entries
                .iter()
                .enumerate()
                .map(|(i, _)| match codes.get(i).copied().flatten() {
                    Some(code) => EntryOutcome::Failed {
                        code: code.into(),
                        message: "scripted".into(),
                    },
                    None => EntryOutcome::Accepted {
                        bus_event_id: format!("bus-{i}"),
                    },
                })
                .collect())
        }
    }

    fn bus(script: Vec<Step>) -> ScriptedBus {
        ScriptedBus {
            requests: Mutex::new(vec![]),
            script: Mutex::new(script),
        }
    }

    fn event(n: usize, payload_bytes: usize) -> OutgoingEvent {
        OutgoingEvent {
            source: "test".into(),
            resources: vec![],
            detail: Detail {
                metadata: Metadata {
                    event_id: EventId::new_v7(),
                    tenant_id: TenantId::parse("t1").unwrap(),
                    event_type: "app.doc.shared".into(),
                    schema_version: 1,
                    occurred_at: chrono::Utc::now(),
                    producer: "test".into(),
                    actor: Actor {
                        kind: ActorType::User,
                        id: format!("u{n}"),
                        name: None,
                    },
                    correlation_id: None,
                    request_id: None,
                    source_ip: None,
                    user_agent: None,
                },
                payload: serde_json::json!({"action": "share", "details": {"pad": "x".repeat(payload_bytes)}}),
            },
        }
    }

    fn config() -> PublisherConfig {
        PublisherConfig {
            base_backoff: Duration::from_millis(1),
            ..PublisherConfig::default()
        }
    }

    #[tokio::test]
    async fn packs_by_count_and_by_bytes() {
        let b = bus(vec![]);
        let p = Publisher::new(b, SchemaRegistry::builtin().unwrap(), config());
        let events: Vec<_> = (0..25).map(|i| event(i, 10)).collect();
        let report = p.publish(&events).await.unwrap();
        assert_eq!(report.accepted.len(), 25);
        let sizes: Vec<usize> = p
            .bus
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);

        // 300 KB events: three fit in 1 MiB, so 7 events make requests of 3, 3, 1
        let b = bus(vec![]);
        let p = Publisher::new(b, SchemaRegistry::builtin().unwrap(), config());
        let events: Vec<_> = (0..7).map(|i| event(i, 300_000)).collect();
        p.publish(&events).await.unwrap();
        let reqs = p.bus.requests.lock().unwrap();
        assert_eq!(reqs.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
        for r in reqs.iter() {
            assert!(r.iter().map(entry_size).sum::<usize>() <= PUT_EVENTS_MAX_BYTES);
        }
    }

    #[tokio::test]
    async fn oversize_fails_before_anything_is_sent() {
        let b = bus(vec![]);
        let legacy = PublisherConfig {
            max_request_bytes: crate::PUT_EVENTS_LEGACY_MAX_BYTES,
            ..config()
        };
        let p = Publisher::new(b, SchemaRegistry::builtin().unwrap(), legacy);
        let events = vec![event(0, 10), event(1, 300_000)];
        let err = p.publish(&events).await.unwrap_err();
        assert!(
            matches!(err, PublishError::Oversize { limit: 262_144, .. }),
            "{err}"
        );
        assert!(p.bus.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn invalid_payload_fails_before_anything_is_sent() {
        let p = Publisher::new(bus(vec![]), SchemaRegistry::builtin().unwrap(), config());
        let mut e = event(0, 1);
        e.detail.payload = serde_json::json!({"no_action": true});
        assert!(matches!(
            p.publish(&[e]).await,
            Err(PublishError::Invalid { .. })
        ));
        assert!(p.bus.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn retries_only_retryable_entries_with_the_same_event_id() {
        let b = bus(vec![
            Ok(vec![
                None,
                Some("ThrottlingException"),
                Some("MalformedDetail"),
                Some("InternalFailure"),
            ]),
            Ok(vec![None, Some("InternalFailure")]),
        ]);
        let p = Publisher::new(b, SchemaRegistry::builtin().unwrap(), config());
        let events: Vec<_> = (0..4).map(|i| event(i, 1)).collect();
        let report = p.publish(&events).await.unwrap();
        let reqs = p.bus.requests.lock().unwrap();
        assert_eq!(reqs.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 2, 1]);
        // the retried entries are byte-identical to the originals: same event_id
        assert_eq!(reqs[1][0], reqs[0][1]);
        assert_eq!(reqs[1][1], reqs[0][3]);
        assert_eq!(reqs[2][0], reqs[0][3]);
        assert_eq!(report.accepted.len(), 3);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, events[2].detail.metadata.event_id);
        assert_eq!(report.failed[0].1, "MalformedDetail");
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_retries_whole_request_errors() {
        let b = bus(vec![
            Err(BusError::Throttled("slow down".into())),
            Ok(vec![Some("ThrottlingException")]),
            Ok(vec![Some("ThrottlingException")]),
        ]);
        let cfg = PublisherConfig {
            max_attempts: 3,
            ..config()
        };
        let p = Publisher::new(b, SchemaRegistry::builtin().unwrap(), cfg);
        let report = p.publish(&[event(0, 1)]).await.unwrap();
        assert_eq!(p.bus.requests.lock().unwrap().len(), 3);
        assert!(!report.all_accepted());
        assert_eq!(report.failed[0].1, "ThrottlingException");
    }
}
