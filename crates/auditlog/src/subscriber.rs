//! The subscriber's batch algorithm: decode and validate, deduplicate within the batch
//! and against the `DedupeStore`, write one ingest file per day touched, complete the
//! claims, and say which messages must be retried.
//!
//! Error edge, in one place: a message that can never succeed is quarantined (with its
//! reason and raw body) and acknowledged; a message that failed for a transient reason
//! (store throttled, write failed, claim held elsewhere) is reported for retry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use envelope::{EventId, SchemaRegistry, TenantId};
use serde::Serialize;

use crate::codec::{Tier, encode_parquet};
use crate::layout::{ingest_object_key, quarantine_object_key};
use crate::ports::{BlobStore, ClaimContext, ClaimOutcome, ClaimRequest, Clock, DedupeStore};
use crate::record::AuditRecord;

/// One queue message: its id (for `batchItemFailures`) and its body (a bus event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub message_id: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// Largest accepted message body: a 1 MiB PutEvents entry plus EventBridge's wrapper.
    pub max_event_bytes: usize,
    /// How long our claims block other consumers; set above the function timeout.
    pub lease: Duration,
    /// How long completed claims are remembered. Older duplicates are still removed by
    /// compaction, because a replay lands in the original's partition.
    pub retention: Duration,
    pub zstd_level: i32,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: envelope::PUT_EVENTS_MAX_BYTES + 16 * 1024,
            lease: Duration::from_secs(15 * 60),
            retention: Duration::from_secs(90 * 24 * 3600),
            zstd_level: 1,
        }
    }
}

/// What is stored for a quarantined message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineRecord {
    pub reason_code: String,
    pub reason: String,
    pub message_id: String,
    pub received_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// For conflicts: the hash of the payload already accepted under this event id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_payload_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_sha256: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub received: usize,
    /// Unique events written to an ingest file.
    pub written: usize,
    /// Copies of an event already written (in this batch or before): acknowledged.
    pub duplicates: usize,
    /// Same event id, different payload: quarantined.
    pub conflicts: usize,
    /// Quarantined for any reason, conflicts included.
    pub quarantined: usize,
    /// Reported back for retry.
    pub retried: usize,
    /// Parquet objects written (ingest files).
    pub files: usize,
    pub bytes: usize,
    /// Claim requests sent to the dedupe store.
    pub claims: usize,
    /// Completion records written (one per batch that wrote something).
    pub completions: usize,
}

impl std::ops::AddAssign for BatchStats {
    fn add_assign(&mut self, o: Self) {
        self.received += o.received;
        self.written += o.written;
        self.duplicates += o.duplicates;
        self.conflicts += o.conflicts;
        self.quarantined += o.quarantined;
        self.retried += o.retried;
        self.files += o.files;
        self.bytes += o.bytes;
        self.claims += o.claims;
        self.completions += o.completions;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Message ids to return as `batchItemFailures`.
    pub failed_message_ids: Vec<String>,
    pub stats: BatchStats,
}

pub struct Subscriber<D, B, C> {
    dedupe: D,
    blobs: B,
    clock: C,
    registry: Arc<SchemaRegistry>,
    config: SubscriberConfig,
}

/// An accepted record and the message it came from.
struct Pending<'m> {
    message: &'m InboundMessage,
    record: AuditRecord,
}

type Key = (TenantId, EventId);

impl<D: DedupeStore, B: BlobStore, C: Clock> Subscriber<D, B, C> {
    pub fn new(
        dedupe: D,
        blobs: B,
        clock: C,
        registry: Arc<SchemaRegistry>,
        config: SubscriberConfig,
    ) -> Self {
        Self {
            dedupe,
            blobs,
            clock,
            registry,
            config,
        }
    }

    pub fn blobs(&self) -> &B {
        &self.blobs
    }

    pub fn dedupe(&self) -> &D {
        &self.dedupe
    }

    pub async fn handle(&self, messages: &[InboundMessage]) -> BatchOutcome {
        let now = self.clock.now();
        let ctx = ClaimContext {
            batch_id: uuid::Uuid::now_v7().to_string(),
            now,
            lease: self.config.lease,
            retention: self.config.retention,
        };
        let mut stats = BatchStats {
            received: messages.len(),
            ..BatchStats::default()
        };
        let mut failed: BTreeSet<String> = BTreeSet::new();
        let mut quarantine: Vec<QuarantineRecord> = Vec::new();

        // 1. Decode, validate, and deduplicate within the batch.
        let mut pending: Vec<Pending> = Vec::with_capacity(messages.len());
        let mut first_seen: HashMap<Key, usize> = HashMap::with_capacity(messages.len());
        for m in messages {
            match envelope::decode_bus_event(&m.body, &self.registry, self.config.max_event_bytes) {
                Ok(event) => {
                    let record = AuditRecord::from_event(event, now);
                    let key = (record.tenant_id.clone(), record.event_id.clone());
                    match first_seen.get(&key) {
                        Some(&j) if pending[j].record.payload_sha256 == record.payload_sha256 => {
                            stats.duplicates += 1;
                        }
                        Some(&j) => {
                            let accepted = pending[j].record.payload_sha256.clone();
                            quarantine.push(conflict(m, &record, accepted, now));
                        }
                        None => {
                            first_seen.insert(key, pending.len());
                            pending.push(Pending { message: m, record });
                        }
                    }
                }
                Err(e) => quarantine.push(QuarantineRecord {
                    reason_code: e.code().to_owned(),
                    reason: e.to_string(),
                    message_id: m.message_id.clone(),
                    received_at: now,
                    tenant_id: None,
                    event_id: None,
                    accepted_payload_sha256: None,
                    payload_sha256: None,
                    body: m.body.clone(),
                }),
            }
        }

        // 2. Claim against the store.
        let requests: Vec<ClaimRequest> = pending
            .iter()
            .map(|p| ClaimRequest {
                tenant_id: p.record.tenant_id.clone(),
                event_id: p.record.event_id.clone(),
                payload_sha256: p.record.payload_sha256.clone(),
            })
            .collect();
        stats.claims = requests.len();
        let mut to_write: Vec<Pending> = Vec::with_capacity(pending.len());
        if !requests.is_empty() {
            match self.dedupe.claim(&ctx, &requests).await {
                Ok(outcomes) if outcomes.len() == pending.len() => {
                    for (p, outcome) in pending.into_iter().zip(outcomes) {
                        match outcome {
                            ClaimOutcome::Claimed => to_write.push(p),
                            ClaimOutcome::Completed { payload_sha256 }
                                if payload_sha256 == p.record.payload_sha256 =>
                            {
                                stats.duplicates += 1;
                            }
                            ClaimOutcome::Completed { payload_sha256 } => {
                                quarantine.push(conflict(
                                    p.message,
                                    &p.record,
                                    payload_sha256,
                                    now,
                                ));
                            }
                            ClaimOutcome::InProgress => {
                                failed.insert(p.message.message_id.clone());
                            }
                            ClaimOutcome::Unavailable(e) => {
                                tracing::warn!(error = %e, "dedupe claim unavailable; message will be retried");
                                failed.insert(p.message.message_id.clone());
                            }
                        }
                    }
                }
                Ok(outcomes) => {
                    tracing::error!(
                        expected = pending.len(),
                        got = outcomes.len(),
                        "dedupe store answered the wrong number of claims"
                    );
                    failed.extend(pending.into_iter().map(|p| p.message.message_id.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dedupe claim failed; batch will be retried");
                    failed.extend(pending.into_iter().map(|p| p.message.message_id.clone()));
                }
            }
        }

        // 3. Quarantine what can never succeed. Only a stored quarantine record lets us
        //    acknowledge the message; if the write fails, the message is retried.
        stats.conflicts = quarantine
            .iter()
            .filter(|q| q.reason_code == "conflict")
            .count();
        for q in &quarantine {
            let key = quarantine_object_key(now.date_naive(), &q.reason_code, q.body.as_bytes());
            let body = serde_json::to_vec_pretty(q).unwrap_or_default();
            match self.blobs.put(&key, Bytes::from(body)).await {
                Ok(()) => stats.quarantined += 1,
                Err(e) => {
                    tracing::warn!(error = %e, key, "quarantine write failed; message will be retried");
                    failed.insert(q.message_id.clone());
                }
            }
        }

        // 4. One ingest file per day touched (a replay may span days), rows sorted by
        //    tenant then time; the key is derived from the file's event set.
        let mut by_day: BTreeMap<NaiveDate, Vec<Pending>> = BTreeMap::new();
        for p in to_write {
            by_day.entry(p.record.dt()).or_default().push(p);
        }
        let mut wrote_any = false;
        for (day, group) in by_day {
            let (ids, records): (Vec<String>, Vec<AuditRecord>) = group
                .into_iter()
                .map(|p| (p.message.message_id.clone(), p.record))
                .unzip();
            let key = ingest_object_key(day, &records);
            let written = match encode_parquet(&records, Tier::Ingest, self.config.zstd_level) {
                Ok(bytes) => {
                    let len = bytes.len();
                    self.blobs
                        .put(&key, Bytes::from(bytes))
                        .await
                        .map(|()| len)
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match written {
                Ok(len) => {
                    wrote_any = true;
                    stats.files += 1;
                    stats.bytes += len;
                    stats.written += records.len();
                }
                Err(e) => {
                    tracing::warn!(error = %e, key, rows = records.len(), "ingest write failed; messages will be retried");
                    let keys: Vec<ClaimRequest> = records
                        .iter()
                        .map(|r| ClaimRequest {
                            tenant_id: r.tenant_id.clone(),
                            event_id: r.event_id.clone(),
                            payload_sha256: r.payload_sha256.clone(),
                        })
                        .collect();
                    if let Err(e) = self.dedupe.release(&ctx, &keys).await {
                        tracing::warn!(error = %e, "releasing claims failed; they expire with the lease");
                    }
                    failed.extend(ids);
                }
            }
        }

        // 5. Complete once per batch, after the writes. If this fails the data is already
        //    durable: the claims lapse with the lease, a later redelivery writes a second
        //    copy, and compaction (which keeps one row per event) removes it.
        if wrote_any {
            match self.dedupe.complete(&ctx).await {
                Ok(()) => stats.completions += 1,
                Err(e) => {
                    tracing::warn!(error = %e, batch = ctx.batch_id, "completing claims failed")
                }
            }
        }

        stats.retried = failed.len();
        BatchOutcome {
            failed_message_ids: failed.into_iter().collect(),
            stats,
        }
    }
}

fn conflict(
    m: &InboundMessage,
    record: &AuditRecord,
    accepted: String,
    now: DateTime<Utc>,
) -> QuarantineRecord {
    QuarantineRecord {
        reason_code: "conflict".to_owned(),
        reason: format!(
            "event {} of tenant {} was already accepted with payload sha256 {accepted}; this copy has {}",
            record.event_id, record.tenant_id, record.payload_sha256
        ),
        message_id: m.message_id.clone(),
        received_at: now,
        tenant_id: Some(record.tenant_id.to_string()),
        event_id: Some(record.event_id.to_string()),
        accepted_payload_sha256: Some(accepted),
        payload_sha256: Some(record.payload_sha256.clone()),
        body: m.body.clone(),
    }
}
