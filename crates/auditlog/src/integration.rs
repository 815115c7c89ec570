//! Integration: every accepted event into its tenant's transparency log
//! (`transparency::integrate`), from the ingest files the subscriber wrote.
//!
//! A run lists the ingest tier and takes the files not yet integrated, oldest write
//! first, in rounds of up to `ROUND_LEAVES` rows. Each round appends its rows, tenant by
//! tenant in file and row order, to the tenants' logs, then leaves a marker
//! `trust/_integrated/<ingest key>` per file (`LeafMarker`: each row's leaf index, which
//! compaction writes into the row), so the next run skips them.
//! A crash before the marker makes the next run offer the file again: its events are
//! then duplicates, and add no leaf. Markers of files compaction has since folded are
//! removed. Last, every tenant whose log grew since its last checkpoint gets one when
//! the interval says so (or at once, with `sign_pending`).
//!
//! The compactor folds only integrated files (`integrated`), so no accepted event
//! reaches the tenant tier without its leaf.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use transparency::integrate::{IntegrateError, Integrator, LeafIndex, LogStore, StoreError};
use transparency::verify::{Evidence, Report, StoredRow};
use transparency::{EventLeaf, Leaf, LeafError};

use crate::codec::{CodecError, decode_parquet};
use crate::layout::{INGEST_PREFIX, ObjectKey};
use crate::leaf_marker::LeafMarker;
use crate::ports::{BlobError, BlobStore, ObjectInfo};
use crate::reader::{StorageError, TenantReader};

pub use crate::layout::INTEGRATED_PREFIX;

/// Leaves one round of integration holds before it appends them (the bound on its
/// memory: about 200 bytes each).
const ROUND_LEAVES: usize = 200_000;

/// The tenant logs' objects in the audit bucket (or data directory).
pub struct BlobLog<'a>(pub &'a dyn BlobStore);

fn unavailable(e: BlobError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[async_trait]
impl LogStore for BlobLog<'_> {
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.0.get(path).await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.0
            .put(path, Bytes::from(bytes))
            .await
            .map_err(unavailable)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error(transparent)]
    Read(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] StoreError),
    #[error("{tenant} has no signed checkpoint yet: integrate first")]
    NoCheckpoint { tenant: TenantId },
    #[error("event {event} of {tenant} is not in its log yet: integrate before expiring")]
    NotIntegrated { tenant: TenantId, event: String },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("ingest file {key}: {source}")]
    Decode { key: String, source: CodecError },
    #[error("ingest file {key}: {source}")]
    Leaf { key: String, source: LeafError },
    #[error(transparent)]
    Log(#[from] IntegrateError),
    #[error("retention settings: {0}")]
    Settings(String),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IntegrationReport {
    pub files: usize,
    pub added: u64,
    pub duplicates: u64,
    /// Events offered again with another payload (the compactor quarantines the copy).
    pub conflicts: u64,
    pub tenants: usize,
    pub checkpoints: usize,
    /// Leaves added for rows compacted before the log existed (`backfill`).
    pub backfilled: u64,
}

/// The marker of an integrated ingest file.
fn marker(key: &str) -> String {
    format!("{INTEGRATED_PREFIX}{key}")
}

/// The ingest files already integrated (by key), from their markers.
pub async fn integrated(blobs: &dyn BlobStore) -> Result<HashSet<String>, BlobError> {
    Ok(blobs
        .list(INTEGRATED_PREFIX)
        .await?
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(INTEGRATED_PREFIX).map(str::to_owned))
        .collect())
}

/// The tenants that have compacted parts (`audit/tenant_id=<t>/`).
pub async fn tenants_with_parts(blobs: &dyn BlobStore) -> Result<Vec<TenantId>, BlobError> {
    Ok(blobs
        .list_prefixes(crate::layout::AUDIT_PREFIX)
        .await?
        .iter()
        .filter_map(|prefix| {
            prefix
                .strip_prefix(crate::layout::AUDIT_PREFIX)
                .and_then(|p| p.strip_prefix("tenant_id="))
                .and_then(|p| p.strip_suffix('/'))
                .and_then(|t| TenantId::parse(t).ok())
        })
        .collect())
}

/// The verifier keys the logs have been signed with, one per line, oldest first:
/// published so that a customer can fetch them (`GET /v1/log/keys`) and compare them
/// with the key they were given out of band. Not a trust anchor in itself.
pub const VERIFIER_KEYS: &str = "trust/_keys";

/// Adds the signer's verifier key to `VERIFIER_KEYS` if it is not there yet (a new key
/// after a rotation; the old ones stay, as old checkpoints keep verifying with them).
pub async fn publish_verifier_key(
    blobs: &dyn BlobStore,
    verifier_key: &str,
) -> Result<(), BlobError> {
    let mut text = match blobs.get(VERIFIER_KEYS).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(BlobError::NotFound(_)) => String::new(),
        Err(e) => return Err(e),
    };
    if text.lines().any(|l| l.trim() == verifier_key) {
        return Ok(());
    }
    text.push_str(verifier_key);
    text.push('\n');
    blobs.put(VERIFIER_KEYS, Bytes::from(text)).await
}

/// Tenants whose parts compacted before the log existed have been put in their logs:
/// `trust/_backfilled/<tenant>`, one marker per tenant done.
pub const BACKFILLED_PREFIX: &str = "trust/_backfilled/";

/// Puts in the tenants' logs the rows compacted before the logs existed (rows without a
/// `leaf_index`), oldest acceptance first, so that the log-ordered stream and the
/// verifier see every accepted event, not only those accepted since. Runs at the start
/// of every integration until each tenant is marked done; rows already in a log are
/// duplicates and add no leaf, so an interrupted backfill resumes where it was.
async fn backfill(
    blobs: &dyn BlobStore,
    integrator: &Integrator<'_>,
    now: DateTime<Utc>,
    report: &mut IntegrationReport,
    touched: &mut HashSet<TenantId>,
) -> Result<(), IntegrationError> {
    let done: HashSet<String> = blobs
        .list(BACKFILLED_PREFIX)
        .await?
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(BACKFILLED_PREFIX).map(str::to_owned))
        .collect();
    for tenant in tenants_with_parts(blobs).await? {
        if done.contains(tenant.as_str()) {
            continue;
        }
        let mut legacy = Vec::new();
        for f in blobs.list(&crate::layout::tenant_prefix(&tenant)).await? {
            if !matches!(ObjectKey::parse(&f.key), Ok(ObjectKey::Tenant { .. })) {
                continue;
            }
            let bytes = blobs.get(&f.key).await?;
            let rows = decode_parquet(bytes, Some(&tenant)).map_err(|source| {
                IntegrationError::Decode {
                    key: f.key.clone(),
                    source,
                }
            })?;
            legacy.extend(
                rows.into_iter()
                    .filter(|r| r.leaf_index.is_none())
                    .map(|r| (r.ingested_at, r.event_id, r.payload_sha256)),
            );
        }
        legacy.sort();
        for chunk in legacy.chunks(ROUND_LEAVES) {
            let mut leaves = Vec::with_capacity(chunk.len());
            for (accepted, id, sha) in chunk {
                leaves.push(
                    EventLeaf::of_row(&tenant, id, *accepted, sha).map_err(|source| {
                        IntegrationError::Leaf {
                            key: id.to_string(),
                            source,
                        }
                    })?,
                );
            }
            let out = integrator.append(&tenant, leaves, now).await?;
            report.backfilled += out.added;
            report.checkpoints += usize::from(out.signed);
            touched.insert(tenant.clone());
        }
        blobs
            .put(&format!("{BACKFILLED_PREFIX}{tenant}"), Bytes::new())
            .await?;
    }
    Ok(())
}

/// One integration run over everything the ingest tier holds. With `sign_pending`, every
/// tenant log that grew ends the run covered by a checkpoint, whatever the interval
/// (the embedded default, where runs are rare and someone may verify right after).
pub async fn integrate(
    blobs: &dyn BlobStore,
    integrator: &Integrator<'_>,
    now: DateTime<Utc>,
    sign_pending: bool,
) -> Result<IntegrationReport, IntegrationError> {
    let done = integrated(blobs).await?;
    let mut pending: Vec<ObjectInfo> = blobs
        .list(INGEST_PREFIX)
        .await?
        .into_iter()
        .filter(|o| matches!(ObjectKey::parse(&o.key), Ok(ObjectKey::Ingest { .. })))
        .collect();
    let present: HashSet<String> = pending.iter().map(|o| o.key.clone()).collect();
    pending.retain(|o| !done.contains(&o.key));
    // the order the subscriber wrote them: acceptance order, as near as storage tells
    pending.sort_by(|a, b| (a.modified, &a.key).cmp(&(b.modified, &b.key)));

    let mut report = IntegrationReport::default();
    let mut touched: HashSet<TenantId> = HashSet::new();
    publish_verifier_key(blobs, integrator.signer.verifier_key()).await?;
    // before any ingest file: a log starts with what was compacted before it existed
    backfill(blobs, integrator, now, &mut report, &mut touched).await?;
    // files are taken in rounds: each round's rows go to each tenant's log in one
    // append (one load of its edge, one set of partial tiles, not one per file), then
    // the round's markers are written
    // each file of the round with its rows' (tenant, event), for its marker
    let mut round: Vec<(&ObjectInfo, Vec<(TenantId, EventId)>)> = Vec::new();
    let mut by_tenant: BTreeMap<TenantId, Vec<EventLeaf>> = BTreeMap::new();
    let mut leaves_in_round = 0usize;
    for (k, file) in pending.iter().enumerate() {
        let bytes = match blobs.get(&file.key).await {
            Ok(b) => Some(b),
            // compacted since the listing, which the compactor does only once integrated
            Err(BlobError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(bytes) = bytes {
            let rows = decode_parquet(bytes, None).map_err(|source| IntegrationError::Decode {
                key: file.key.clone(),
                source,
            })?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                ids.push((r.tenant_id.clone(), r.event_id.clone()));
                let leaf =
                    EventLeaf::of_row(&r.tenant_id, &r.event_id, r.ingested_at, &r.payload_sha256)
                        .map_err(|source| IntegrationError::Leaf {
                            key: file.key.clone(),
                            source,
                        })?;
                by_tenant.entry(r.tenant_id.clone()).or_default().push(leaf);
            }
            leaves_in_round += rows.len();
            round.push((file, ids));
        }
        if leaves_in_round < ROUND_LEAVES && k + 1 < pending.len() {
            continue;
        }
        let mut placed: HashMap<TenantId, HashMap<EventId, u64>> = HashMap::new();
        for (tenant, leaves) in std::mem::take(&mut by_tenant) {
            let out = integrator.append(&tenant, leaves, now).await?;
            placed.insert(tenant.clone(), out.indexes.into_iter().collect());
            report.added += out.added;
            report.duplicates += out.duplicates;
            report.conflicts += out.conflicts.len() as u64;
            report.checkpoints += usize::from(out.signed);
            touched.insert(tenant);
        }
        for (f, ids) in round.drain(..) {
            let mut m = LeafMarker::default();
            for (t, e) in ids {
                // every offered event has an index, new or found
                if let Some(i) = placed.get(&t).and_then(|p| p.get(&e)) {
                    m.insert(t, e, *i);
                }
            }
            blobs.put(&marker(&f.key), Bytes::from(m.encode())).await?;
            report.files += 1;
        }
        leaves_in_round = 0;
    }
    // markers of files the compactor has folded since
    for key in done.iter().filter(|k| !present.contains(*k)) {
        blobs.delete(&marker(key)).await?;
    }
    // tenants whose log grew but whose checkpoint was not due when it did
    for prefix in blobs.list_prefixes("trust/").await? {
        let Some(name) = prefix
            .strip_prefix("trust/")
            .and_then(|p| p.strip_suffix('/'))
        else {
            continue;
        };
        let Ok(tenant) = TenantId::parse(name) else {
            continue; // `_integrated`, `_backfilled`
        };
        let signed = if sign_pending {
            integrator.sign_pending(&tenant, now).await?
        } else {
            !touched.contains(&tenant) && integrator.sign_due(&tenant, now).await?
        };
        report.checkpoints += usize::from(signed);
    }
    report.tenants = touched.len();
    Ok(report)
}

/// Each row's index in its tenant's log: the row's `leaf_index` once compaction wrote
/// it, else what the index store recorded (None: accepted, not integrated yet).
pub async fn leaf_indexes(
    index: &dyn LeafIndex,
    tenant: &TenantId,
    rows: &[crate::record::AuditRecord],
) -> Result<Vec<Option<u64>>, StoreError> {
    place(
        index,
        tenant,
        rows.iter().map(|r| (&r.event_id, r.leaf_index)),
    )
    .await
}

/// Each event's index: the one it carries, else what the index store recorded.
async fn place<'a>(
    index: &dyn LeafIndex,
    tenant: &TenantId,
    rows: impl Iterator<Item = (&'a EventId, Option<u64>)> + Clone,
) -> Result<Vec<Option<u64>>, StoreError> {
    let ids: Vec<EventId> = rows
        .clone()
        .filter(|(_, at)| at.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let placed = if ids.is_empty() {
        HashMap::new()
    } else {
        index.lookup(tenant, &ids).await?
    };
    Ok(rows
        .map(|(id, at)| at.or_else(|| placed.get(id).map(|p| p.index)))
        .collect())
}

/// What `verify_tenant` checked against.
pub struct TrustAnchor<'a> {
    /// The keys to trust (`checkpoint::trusted`).
    pub trusted: &'a transparency::checkpoint::VerifierList,
    /// The first part of the tenant log's origin line.
    pub log_name: &'a str,
    /// An older checkpoint the customer kept.
    pub pinned: Option<&'a [u8]>,
}

/// Every stored row of `tenant` (both tiers, as readers see them) against its signed
/// log, each at the index its `leaf_index` column says (the index store's, for rows not
/// compacted since integration). Each row's leaf is made from its fields, with the
/// payload's SHA-256 recomputed from the payload itself, never taken from the stored
/// column. Returns the report and
/// the rows not integrated yet (no index).
pub async fn verify_tenant<B: BlobStore + Clone>(
    blobs: &B,
    index: &dyn LeafIndex,
    anchor: &TrustAnchor<'_>,
    tenant: &TenantId,
) -> Result<(Report, usize), IntegrationError> {
    let store = BlobLog(blobs);
    let prefix = transparency::integrate::log_prefix(tenant);
    let Some(note) = store.get(&format!("{prefix}checkpoint")).await? else {
        return Err(IntegrationError::NoCheckpoint {
            tenant: tenant.clone(),
        });
    };
    let rows = TenantReader::new(blobs.clone())
        .read(tenant, None, None)
        .await?;
    let at = leaf_indexes(index, tenant, &rows).await?;
    let mut stored = Vec::with_capacity(rows.len());
    let mut pending = 0usize;
    for (r, at) in rows.iter().zip(at) {
        let Some(at) = at else {
            pending += 1; // accepted, not integrated yet
            continue;
        };
        let sha = crate::record::payload_sha256(&r.payload);
        let leaf =
            EventLeaf::of_row(tenant, &r.event_id, r.ingested_at, &sha).map_err(|source| {
                IntegrationError::Leaf {
                    key: r.event_id.to_string(),
                    source,
                }
            })?;
        stored.push(StoredRow {
            index: at,
            leaf: Leaf::Event(leaf),
            location: format!("event {} ({})", r.event_id, r.occurred_at.to_rfc3339()),
        });
    }
    let origin = transparency::checkpoint::origin(anchor.log_name, tenant);
    let tiles = transparency::integrate::tiles_of(&store, tenant);
    let evidence = Evidence {
        origin: &origin,
        checkpoint: &note,
        pinned: anchor.pinned,
        trusted: anchor.trusted,
        tiles: &tiles,
    };
    Ok((
        transparency::verify::verify(&evidence, stored).await,
        pending,
    ))
}

/// What one expiry did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExpiryReport {
    /// Compacted files removed.
    pub files: usize,
    pub rows: usize,
    /// The leaf indices the log now says were removed by policy.
    pub ranges: Vec<std::ops::Range<u64>>,
}

/// Removes `tenant`'s compacted days before `before` under `policy`, after recording in
/// its log which leaf indices go (one expiry leaf per run of indices). Ingest-tier rows
/// are left to compaction; run it after compacting.
pub async fn expire_tenant<B: BlobStore + Clone>(
    blobs: &B,
    integrator: &Integrator<'_>,
    tenant: &TenantId,
    before: chrono::NaiveDate,
    policy: &str,
    now: DateTime<Utc>,
) -> Result<ExpiryReport, IntegrationError> {
    let parts = TenantReader::new(blobs.clone()).parts(tenant).await?;
    let files: Vec<ObjectInfo> = parts.range(..before).flat_map(|(_, v)| v.clone()).collect();
    // only the event ids and the indices compaction wrote: a day of a big tenant is
    // millions of rows, and retention removes a day of every tenant each day
    let mut rows: Vec<(EventId, Option<u64>)> = Vec::new();
    for f in &files {
        let bytes = blobs.get(&f.key).await?;
        rows.extend(crate::codec::event_leaf_indexes(bytes).map_err(|source| {
            IntegrationError::Decode {
                key: f.key.clone(),
                source,
            }
        })?);
    }
    let placed = place(
        integrator.index,
        tenant,
        rows.iter().map(|(id, at)| (id, *at)),
    )
    .await?;
    let mut indexes = Vec::with_capacity(rows.len());
    for ((id, _), at) in rows.iter().zip(placed) {
        // a row without a leaf cannot be accounted for once gone: refuse, name it
        let Some(at) = at else {
            return Err(IntegrationError::NotIntegrated {
                tenant: tenant.clone(),
                event: id.to_string(),
            });
        };
        indexes.push(at);
    }
    indexes.sort_unstable();
    indexes.dedup();
    let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
    for i in indexes {
        match ranges.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => ranges.push(i..i + 1),
        }
    }
    if !ranges.is_empty() {
        integrator
            .record_expiry(tenant, &ranges, policy, now)
            .await?;
    }
    for f in &files {
        blobs.delete(&f.key).await?;
    }
    Ok(ExpiryReport {
        files: files.len(),
        rows: rows.len(),
        ranges,
    })
}

/// What one retention run did, over every tenant with compacted parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionReport {
    pub tenants: usize,
    /// Tenants that had days past their retention.
    pub expired_tenants: usize,
    pub files: usize,
    pub rows: usize,
    pub ranges: usize,
}

/// Applies each tenant's retention (its own setting, else `default`): its compacted
/// days before `today - retention` go, after their removal is recorded in its log and
/// signed. The log's one writer runs it, as it runs integration.
pub async fn apply_retention<B: BlobStore + Clone>(
    blobs: &B,
    integrator: &Integrator<'_>,
    settings: &dyn tenants::RetentionSettings,
    default: tenants::Retention,
    now: DateTime<Utc>,
) -> Result<RetentionReport, IntegrationError> {
    let mut report = RetentionReport::default();
    let mut snapshot = crate::retention_snapshot::RetentionSnapshot::default();
    for tenant in tenants_with_parts(blobs).await? {
        let own = settings
            .retention(&tenant)
            .await
            .map_err(|e| IntegrationError::Settings(e.to_string()))?;
        if let Some(r) = own {
            snapshot.tenants.insert(tenant.to_string(), r.get());
        }
        let retention = own.unwrap_or(default);
        let before = retention.first_kept(now.date_naive());
        let out =
            expire_tenant(blobs, integrator, &tenant, before, &retention.policy(), now).await?;
        report.tenants += 1;
        if out.files > 0 {
            integrator.sign_pending(&tenant, now).await?;
            report.expired_tenants += 1;
            report.files += out.files;
            report.rows += out.rows;
            report.ranges += out.ranges.len();
        }
    }
    // what the compactor locks new parts by, until the next run
    snapshot.publish(blobs).await?;
    Ok(report)
}
