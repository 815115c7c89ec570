//! The subscriber's batch algorithm, in five named steps: decode and validate (and drop
//! copies within the batch), claim against the `DedupeStore` one completion unit per day
//! touched, quarantine what can never be accepted, write one ingest file per unit, and
//! complete exactly the units whose file is durable; then say which messages to retry.
//!
//! Error edge, in one place: a message that can never succeed is quarantined (with its
//! reason and raw body) and acknowledged; a message that failed for a transient reason
//! (store throttled, write failed, claim held elsewhere) is reported for retry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use envelope::{EventId, SchemaRegistry, TenantId};
use serde::Serialize;

use crate::codec::{Tier, encode_parquet};
use crate::layout::{ingest_object_key, quarantine_object_key};
use crate::ports::{
    BlobStore, ClaimContext, ClaimOutcome, ClaimRequest, Clock, DedupeError, DedupeStore,
};
use crate::record::AuditRecord;
use crate::window::AcceptedWindow;

/// Quarantine reason: the event id was already accepted with another payload.
pub const CONFLICT: &str = "conflict";
/// Quarantine reason: `occurred_at` is outside the accepted window.
pub const OUT_OF_WINDOW: &str = "occurred_at_out_of_range";

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
    /// The `occurred_at` range accepted; outside it, quarantine.
    pub window: AcceptedWindow,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: envelope::PUT_EVENTS_MAX_BYTES + 16 * 1024,
            lease: Duration::from_secs(15 * 60),
            retention: Duration::from_secs(90 * 24 * 3600),
            zstd_level: 1,
            window: AcceptedWindow::default(),
        }
    }
}

/// What is stored for a quarantined message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// Completion records written (one per durable ingest file whose claims are all known).
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
    /// Why each of `failed_message_ids` is retried.
    pub retry_reasons: BTreeMap<String, RetryReason>,
    /// The quarantine object stored for each quarantined message.
    pub quarantined: BTreeMap<String, String>,
}

/// Why a message is retried rather than decided: each is transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    /// Another consumer holds the event's claim (or a failed one left it until its
    /// lease runs out).
    ClaimHeld,
    /// The dedupe store did not give a definite answer (throttled, unavailable).
    DedupeUnavailable,
    /// The ingest file could not be written.
    WriteFailed,
    /// The quarantine record could not be written.
    QuarantineWriteFailed,
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RetryReason::ClaimHeld => "claim held by another consumer until its lease runs out",
            RetryReason::DedupeUnavailable => "dedupe store unavailable or throttled",
            RetryReason::WriteFailed => "ingest file write failed",
            RetryReason::QuarantineWriteFailed => "quarantine write failed",
        })
    }
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

impl Pending<'_> {
    fn claim_request(&self) -> ClaimRequest {
        claim_request(&self.record)
    }
}

fn claim_request(r: &AuditRecord) -> ClaimRequest {
    ClaimRequest {
        tenant_id: r.tenant_id.clone(),
        event_id: r.event_id.clone(),
        payload_sha256: r.payload_sha256.clone(),
    }
}

type Key = (TenantId, EventId);

/// One completion unit: the events of one day of this invocation, claimed together,
/// written into one ingest file, completed together.
struct Unit<'m> {
    ctx: ClaimContext,
    day: NaiveDate,
    claimed: Vec<Pending<'m>>,
    /// Some claim's outcome is unknown (the store erred after maybe applying it): that
    /// claim may carry this unit's id, so completing the unit could mark an event that
    /// is not in the file as written. Such a unit is written but never completed; its
    /// claims lapse with the lease.
    in_doubt: bool,
}

/// What one invocation has decided so far.
struct Tally {
    now: DateTime<Utc>,
    stats: BatchStats,
    failed: BTreeMap<String, RetryReason>,
    quarantine: Vec<QuarantineRecord>,
    quarantined: BTreeMap<String, String>,
}

impl Tally {
    fn retry(&mut self, message_id: &str, why: RetryReason) {
        self.failed.entry(message_id.to_owned()).or_insert(why);
    }
}

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

    pub fn config(&self) -> &SubscriberConfig {
        &self.config
    }

    /// Handles one queue batch: the messages to retry, and what happened to the rest.
    pub async fn handle(&self, messages: &[InboundMessage]) -> BatchOutcome {
        let mut tally = Tally {
            now: self.clock.now(),
            stats: BatchStats {
                received: messages.len(),
                ..BatchStats::default()
            },
            failed: BTreeMap::new(),
            quarantine: Vec::new(),
            quarantined: BTreeMap::new(),
        };
        let accepted = self.decode(messages, &mut tally);
        let units = self.claim(accepted, &mut tally).await;
        self.store_quarantine(&mut tally).await;
        let durable = self.write(units, &mut tally).await;
        self.complete(&durable, &mut tally).await;
        tally.stats.retried = tally.failed.len();
        BatchOutcome {
            failed_message_ids: tally.failed.keys().cloned().collect(),
            stats: tally.stats,
            retry_reasons: tally.failed,
            quarantined: tally.quarantined,
        }
    }

    /// 1. Decode and validate each message, and drop copies within the batch. What can
    ///    never be accepted goes to quarantine with its reason.
    fn decode<'m>(&self, messages: &'m [InboundMessage], tally: &mut Tally) -> Vec<Pending<'m>> {
        let now = tally.now;
        let mut pending: Vec<Pending> = Vec::with_capacity(messages.len());
        let mut first_seen: HashMap<Key, usize> = HashMap::with_capacity(messages.len());
        for m in messages {
            let record = match envelope::decode_bus_event(
                &m.body,
                &self.registry,
                self.config.max_event_bytes,
            ) {
                Ok(event) => AuditRecord::from_event(event, now),
                Err(e) => {
                    tally
                        .quarantine
                        .push(rejected(m, e.code(), e.to_string(), None, now));
                    continue;
                }
            };
            if let Some(why) = self.config.window.check(record.occurred_at, now) {
                tally
                    .quarantine
                    .push(rejected(m, OUT_OF_WINDOW, why, Some(&record), now));
                continue;
            }
            let key = (record.tenant_id.clone(), record.event_id.clone());
            match first_seen.get(&key) {
                Some(&j) if pending[j].record.payload_sha256 == record.payload_sha256 => {
                    tally.stats.duplicates += 1;
                }
                Some(&j) => {
                    let accepted = pending[j].record.payload_sha256.clone();
                    tally.quarantine.push(conflict(m, &record, accepted, now));
                }
                None => {
                    first_seen.insert(key, pending.len());
                    pending.push(Pending { message: m, record });
                }
            }
        }
        pending
    }

    /// 2. Claim each day's events as one completion unit. A definite answer decides the
    ///    event (ours to write, a duplicate, a conflict, held elsewhere); an unknown one
    ///    retries the message and marks the unit in doubt.
    async fn claim<'m>(&self, accepted: Vec<Pending<'m>>, tally: &mut Tally) -> Vec<Unit<'m>> {
        let batch_id = uuid::Uuid::now_v7();
        let mut by_day: BTreeMap<NaiveDate, Vec<Pending>> = BTreeMap::new();
        for p in accepted {
            by_day.entry(p.record.dt()).or_default().push(p);
        }
        let mut units = Vec::with_capacity(by_day.len());
        for (day, pending) in by_day {
            let ctx = ClaimContext {
                unit_id: format!("{batch_id}/{day}"),
                now: tally.now,
                lease: self.config.lease,
                retention: self.config.retention,
            };
            let requests: Vec<ClaimRequest> = pending.iter().map(Pending::claim_request).collect();
            tally.stats.claims += requests.len();
            let mut unit = Unit {
                ctx,
                day,
                claimed: Vec::with_capacity(pending.len()),
                in_doubt: false,
            };
            let outcomes = match self.dedupe.claim(&unit.ctx, &requests).await {
                Ok(o) if o.len() == pending.len() => o,
                Ok(o) => {
                    tracing::error!(
                        expected = pending.len(),
                        got = o.len(),
                        "dedupe store answered the wrong number of claims"
                    );
                    let e = DedupeError::Unavailable("wrong number of outcomes".into());
                    vec![ClaimOutcome::Unavailable(e); pending.len()]
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dedupe claim failed; its messages will be retried");
                    vec![ClaimOutcome::Unavailable(e); pending.len()]
                }
            };
            let mut unknown: Vec<ClaimRequest> = Vec::new();
            for ((p, outcome), request) in pending.into_iter().zip(outcomes).zip(requests) {
                match outcome {
                    ClaimOutcome::Claimed => unit.claimed.push(p),
                    ClaimOutcome::Completed { payload_sha256 }
                        if payload_sha256 == p.record.payload_sha256 =>
                    {
                        tally.stats.duplicates += 1;
                    }
                    ClaimOutcome::Completed { payload_sha256 } => {
                        let q = conflict(p.message, &p.record, payload_sha256, tally.now);
                        tally.quarantine.push(q);
                    }
                    ClaimOutcome::InProgress => {
                        tally.retry(&p.message.message_id, RetryReason::ClaimHeld)
                    }
                    ClaimOutcome::Unavailable(e) => {
                        tracing::warn!(error = %e, "dedupe claim unknown; message will be retried");
                        unit.in_doubt = true;
                        unknown.push(request);
                        tally.retry(&p.message.message_id, RetryReason::DedupeUnavailable);
                    }
                }
            }
            if !unknown.is_empty() {
                // so the retry need not wait for the lease, if the claim was applied
                self.release(&unit.ctx, &unknown).await;
            }
            units.push(unit);
        }
        units
    }

    /// 3. Store what can never be accepted. Only a stored quarantine record lets us
    ///    acknowledge the message; if the write fails, the message is retried.
    async fn store_quarantine(&self, tally: &mut Tally) {
        tally.stats.conflicts = tally
            .quarantine
            .iter()
            .filter(|q| q.reason_code == CONFLICT)
            .count();
        for q in std::mem::take(&mut tally.quarantine) {
            let key =
                quarantine_object_key(tally.now.date_naive(), &q.reason_code, q.body.as_bytes());
            let body = serde_json::to_vec_pretty(&q).unwrap_or_default();
            match self.blobs.put(&key, Bytes::from(body)).await {
                Ok(()) => {
                    tally.stats.quarantined += 1;
                    tally.quarantined.insert(q.message_id, key);
                }
                Err(e) => {
                    tracing::warn!(error = %e, key, "quarantine write failed; message will be retried");
                    tally.retry(&q.message_id, RetryReason::QuarantineWriteFailed);
                }
            }
        }
    }

    /// 4. One ingest file per unit (a replay may span days), rows sorted by tenant then
    ///    time, named by its event set. A failed write releases the unit's claims and
    ///    retries its messages. Returns the units whose file is durable.
    async fn write(&self, units: Vec<Unit<'_>>, tally: &mut Tally) -> Vec<ClaimContext> {
        let mut durable = Vec::with_capacity(units.len());
        for unit in units.into_iter().filter(|u| !u.claimed.is_empty()) {
            let (messages, records): (Vec<&InboundMessage>, Vec<AuditRecord>) = unit
                .claimed
                .into_iter()
                .map(|p| (p.message, p.record))
                .unzip();
            let key = ingest_object_key(unit.day, &records);
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
                    tally.stats.files += 1;
                    tally.stats.bytes += len;
                    tally.stats.written += records.len();
                    if unit.in_doubt {
                        tracing::warn!(
                            unit = unit.ctx.unit_id,
                            "unit not completed: a claim's outcome is unknown; its claims lapse with the lease"
                        );
                    } else {
                        durable.push(unit.ctx);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, key, rows = records.len(), "ingest write failed; messages will be retried");
                    let keys: Vec<ClaimRequest> = records.iter().map(claim_request).collect();
                    self.release(&unit.ctx, &keys).await;
                    for m in messages {
                        tally.retry(&m.message_id, RetryReason::WriteFailed);
                    }
                }
            }
        }
        durable
    }

    /// 5. Complete each unit whose file is durable. If this fails the data is already
    ///    stored: the claims lapse with the lease, a later redelivery writes a second
    ///    copy, and compaction (one row per event id) removes it.
    async fn complete(&self, durable: &[ClaimContext], tally: &mut Tally) {
        for ctx in durable {
            match self.dedupe.complete(ctx).await {
                Ok(()) => tally.stats.completions += 1,
                Err(e) => {
                    tracing::warn!(error = %e, unit = ctx.unit_id, "completing claims failed")
                }
            }
        }
    }

    /// Best effort: the lease is the safety net, and a failed release never turns into
    /// a completion (completion is per durable unit only).
    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) {
        if let Err(e) = self.dedupe.release(ctx, keys).await {
            tracing::warn!(error = %e, "releasing claims failed; they expire with the lease");
        }
    }
}

/// A message that can never be accepted as it is.
fn rejected(
    m: &InboundMessage,
    code: &str,
    reason: String,
    record: Option<&AuditRecord>,
    now: DateTime<Utc>,
) -> QuarantineRecord {
    QuarantineRecord {
        reason_code: code.to_owned(),
        reason,
        message_id: m.message_id.clone(),
        received_at: now,
        tenant_id: record.map(|r| r.tenant_id.to_string()),
        event_id: record.map(|r| r.event_id.to_string()),
        accepted_payload_sha256: None,
        payload_sha256: record.map(|r| r.payload_sha256.clone()),
        body: m.body.clone(),
    }
}

fn conflict(
    m: &InboundMessage,
    record: &AuditRecord,
    accepted: String,
    now: DateTime<Utc>,
) -> QuarantineRecord {
    QuarantineRecord {
        reason_code: CONFLICT.to_owned(),
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
