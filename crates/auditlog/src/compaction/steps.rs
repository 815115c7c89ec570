//! The steps of one day's compaction, each a bounded worker over the blob store, run in
//! order: `plan_day` (list) → `count` × n (tenants per file) → `plan_units` (cut the
//! day into bounded units) → `route` × n (rows to their units) → `fold` × m (write the
//! tenant parts) → `finish` (register partitions, then remove what was folded).
//!
//! On AWS each step is one Lambda invocation of a Step Functions execution (the counts,
//! routes and folds as Map states); `Compactor` runs the same steps in one process.
//! Steps talk only through objects under the attempt's scratch prefix, so any step can
//! be retried, and nothing is removed before everything that replaces it is durable:
//! a crash between any two steps leaves at worst copies that readers deduplicate.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::parts::{HashRange, PartName, event_hash, event_id_hash, part_key};
use super::plan::{
    Counts, Damaged, DayPlan, ExistingPart, IngestFile, TenantLoad, Unit, UnitIndex, UnitPlan,
    pack, plan_units,
};
use super::{CompactorConfig, quarantine_conflict};
use crate::codec::{Tier, decode_parquet, decode_where, encode_parquet, tenant_row_counts};
use crate::layout::{ObjectKey, PartitionKey, ingest_day_prefix};
use crate::leaf_marker::LeafMarker;
use crate::ports::{BlobError, BlobStore, PartitionCatalog};
use crate::reader::{Originals, StorageError};
use crate::record::AuditRecord;
use crate::retention_snapshot::{RetentionSnapshot, retain_until};
use envelope::TenantId;

/// Scratch space of compaction attempts: `compaction/dt=<day>/<attempt>/`.
pub const COMPACTION_PREFIX: &str = "compaction/";
/// Files that could not be decoded, moved aside: `damaged/<original key>` and beside it
/// `<original key>.reason.json`.
pub const DAMAGED_PREFIX: &str = "damaged/";

/// Listings in flight at once when planning (one per tenant of the day).
const LIST_CONCURRENCY: usize = 32;

pub fn day_scratch(day: NaiveDate) -> String {
    format!("{COMPACTION_PREFIX}dt={day}/")
}

/// The days with ingest files, oldest first, before `before` if given.
pub async fn days<B: BlobStore>(
    blobs: &B,
    before: Option<NaiveDate>,
) -> Result<Vec<NaiveDate>, StorageError> {
    let mut days = BTreeSet::new();
    for o in blobs.list(crate::layout::INGEST_PREFIX).await? {
        if let Ok(ObjectKey::Ingest { dt }) = ObjectKey::parse(&o.key)
            && before.is_none_or(|b| dt < b)
        {
            days.insert(dt);
        }
    }
    Ok(days.into_iter().collect())
}

async fn put_json<B: BlobStore, T: Serialize>(
    blobs: &B,
    key: &str,
    value: &T,
) -> Result<(), StorageError> {
    let body = serde_json::to_vec(value).map_err(|e| StorageError::Plan {
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    blobs.put(key, Bytes::from(body)).await?;
    Ok(())
}

async fn get_json<B: BlobStore, T: DeserializeOwned>(
    blobs: &B,
    key: &str,
) -> Result<T, StorageError> {
    let bytes = blobs.get(key).await?;
    serde_json::from_slice(&bytes).map_err(|e| StorageError::Plan {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Where an attempt keeps its plans and intermediate files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// `compaction/dt=<day>/<attempt id>/`
    pub prefix: String,
}

impl Attempt {
    fn plan(&self) -> String {
        format!("{}plan.json", self.prefix)
    }
    fn counts(&self, task: usize) -> String {
        format!("{}count-{task}.json", self.prefix)
    }
    fn units(&self) -> String {
        format!("{}units.json", self.prefix)
    }
    fn routed_prefix(&self, unit: usize) -> String {
        format!("{}u{unit}/", self.prefix)
    }
    fn routed(&self, unit: usize, task: usize) -> String {
        format!("{}t{task}.parquet", self.routed_prefix(unit))
    }
    fn folded(&self, unit: usize) -> String {
        format!("{}done/u{unit}.json", self.prefix)
    }
}

/// Step 1: lists the day's ingest files and groups them into count tasks. A new
/// attempt each time, so that nothing of an interrupted attempt is mistaken for its own.
/// `None` when the day has nothing to fold.
pub async fn plan_day<B: BlobStore>(
    blobs: &B,
    day: NaiveDate,
    config: &CompactorConfig,
) -> Result<Option<(Attempt, DayPlan)>, StorageError> {
    let integrated: Option<std::collections::HashSet<String>> = if config.integrated_only {
        let markers = format!(
            "{}{}",
            crate::layout::INTEGRATED_PREFIX,
            ingest_day_prefix(day)
        );
        Some(
            blobs
                .list(&markers)
                .await?
                .into_iter()
                .filter_map(|o| {
                    o.key
                        .strip_prefix(crate::layout::INTEGRATED_PREFIX)
                        .map(str::to_owned)
                })
                .collect(),
        )
    } else {
        None
    };
    let files: Vec<IngestFile> = blobs
        .list(&ingest_day_prefix(day))
        .await?
        .into_iter()
        .filter(|o| matches!(ObjectKey::parse(&o.key), Ok(ObjectKey::Ingest { .. })))
        .filter(|o| integrated.as_ref().is_none_or(|done| done.contains(&o.key)))
        .map(|o| IngestFile {
            key: o.key,
            bytes: o.size,
        })
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.key.as_bytes());
        h.update(b"\n");
    }
    let plan_id = hex::encode(&h.finalize()[..8]);
    let attempt = Attempt {
        prefix: format!("{}{}-{plan_id}/", day_scratch(day), uuid::Uuid::now_v7()),
    };
    let weights: Vec<(usize, u64)> = files.iter().map(|f| f.bytes).enumerate().collect();
    let plan = DayPlan {
        day,
        plan_id,
        count_tasks: pack(&weights, config.count_task_bytes),
        files,
        leaf_markers: config.integrated_only,
    };
    put_json(blobs, &attempt.plan(), &plan).await?;
    Ok(Some((attempt, plan)))
}

/// Moves an undecodable file aside with its reason, so the day goes on without it
/// and the bytes stay for whoever investigates.
async fn move_aside<B: BlobStore>(
    blobs: &B,
    key: &str,
    bytes: Bytes,
    reason: String,
) -> Result<Damaged, StorageError> {
    let moved_to = format!("{DAMAGED_PREFIX}{key}");
    let damaged = Damaged {
        key: key.to_owned(),
        moved_to: moved_to.clone(),
        reason,
    };
    blobs.put(&moved_to, bytes).await?;
    put_json(blobs, &format!("{moved_to}.reason.json"), &damaged).await?;
    blobs.delete(key).await?;
    // the log line the DamagedFiles metric filter counts: we wrote it, so corruption
    tracing::error!(
        key,
        reason = damaged.reason,
        damaged_files = 1,
        "undecodable file moved aside"
    );
    Ok(damaged)
}

/// Step 2 (one per count task): rows per tenant of each file, reading only the
/// `tenant_id` column; undecodable files are moved aside.
pub async fn count<B: BlobStore>(
    blobs: &B,
    attempt: &Attempt,
    task: usize,
) -> Result<Counts, StorageError> {
    let plan: DayPlan = get_json(blobs, &attempt.plan()).await?;
    let files = plan
        .count_tasks
        .get(task)
        .ok_or_else(|| StorageError::Plan {
            key: attempt.plan(),
            reason: format!("no count task {task}"),
        })?;
    let mut counts = Counts::default();
    for &i in files {
        let Some(file) = plan.files.get(i) else {
            continue;
        };
        let bytes = blobs.get(&file.key).await?;
        match tenant_row_counts(bytes.clone()) {
            Ok(per_tenant) => {
                counts.rows.push((i, per_tenant.values().sum()));
                for (t, n) in per_tenant {
                    *counts.tenants.entry(t).or_insert(0) += n;
                }
            }
            Err(e) => counts
                .damaged
                .push(move_aside(blobs, &file.key, bytes, e.to_string()).await?),
        }
    }
    put_json(blobs, &attempt.counts(task), &counts).await?;
    Ok(counts)
}

/// The existing parts of a tenant-day, from their names (or, for files named before
/// ranges, from their footer).
async fn existing_parts<B: BlobStore>(
    blobs: &B,
    partition: &PartitionKey,
) -> Result<Vec<ExistingPart>, StorageError> {
    let mut out = Vec::new();
    for o in blobs.list(&partition.prefix()).await? {
        if !matches!(ObjectKey::parse(&o.key), Ok(ObjectKey::Tenant { .. })) {
            continue;
        }
        let Some(name) = o.key.rsplit('/').next().and_then(PartName::parse) else {
            continue;
        };
        let rows = match name.rows {
            Some(n) => n,
            None => crate::codec::row_count(blobs.get(&o.key).await?).map_err(|source| {
                StorageError::Codec {
                    key: o.key.clone(),
                    source,
                }
            })?,
        };
        out.push(ExistingPart {
            key: o.key,
            range: name.range,
            rows,
        });
    }
    Ok(out)
}

/// Step 3: from the counts and the existing parts, the route tasks (bounded rows) and
/// the fold units (bounded rows).
pub async fn plan_fold<B: BlobStore>(
    blobs: &B,
    attempt: &Attempt,
    config: &CompactorConfig,
) -> Result<UnitPlan, StorageError> {
    let plan: DayPlan = get_json(blobs, &attempt.plan()).await?;
    let mut fresh: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows: Vec<(usize, u64)> = Vec::new();
    let mut damaged = Vec::new();
    for task in 0..plan.count_tasks.len() {
        let c: Counts = get_json(blobs, &attempt.counts(task)).await?;
        for (t, n) in c.tenants {
            *fresh.entry(t).or_insert(0) += n;
        }
        rows.extend(c.rows.iter().map(|&(i, n)| (i, n as u64)));
        damaged.extend(c.damaged);
    }
    rows.sort_unstable();
    let tenants: Vec<(String, PartitionKey)> = fresh
        .keys()
        .filter_map(|t| {
            TenantId::parse(t)
                .ok()
                .map(|id| (t.clone(), PartitionKey::new(id, plan.day)))
        })
        .collect();
    let listed: Vec<Result<(String, Vec<ExistingPart>), StorageError>> = futures::stream::iter(
        tenants
            .into_iter()
            .map(|(t, p)| async move { existing_parts(blobs, &p).await.map(|parts| (t, parts)) }),
    )
    .buffered(LIST_CONCURRENCY)
    .collect()
    .await;
    let mut loads: BTreeMap<String, TenantLoad> = BTreeMap::new();
    for item in listed {
        let (t, parts) = item?;
        let n = fresh.get(&t).copied().unwrap_or(0);
        loads.insert(t, TenantLoad { fresh: n, parts });
    }
    let (units, superseded) = plan_units(&loads, config.unit_rows);
    let unit_plan = UnitPlan {
        day: plan.day,
        plan_id: plan.plan_id,
        route_tasks: pack(&rows, config.task_rows as u64),
        units,
        superseded,
        damaged,
    };
    put_json(blobs, &attempt.units(), &unit_plan).await?;
    Ok(unit_plan)
}

/// What a route task did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    pub rows: usize,
    pub files: usize,
    pub objects: usize,
    pub damaged: Vec<Damaged>,
}

/// Step 4 (one per route task): reads its ingest files and writes, for each unit that
/// has rows among them, one intermediate file of those rows.
pub async fn route<B: BlobStore>(
    blobs: &B,
    attempt: &Attempt,
    task: usize,
) -> Result<Routed, StorageError> {
    let plan: DayPlan = get_json(blobs, &attempt.plan()).await?;
    let units: UnitPlan = get_json(blobs, &attempt.units()).await?;
    let files = units
        .route_tasks
        .get(task)
        .ok_or_else(|| StorageError::Plan {
            key: attempt.units(),
            reason: format!("no route task {task}"),
        })?;
    let index = UnitIndex::new(&units.units);
    let mut by_unit: BTreeMap<usize, Vec<AuditRecord>> = BTreeMap::new();
    let mut report = Routed::default();
    for &i in files {
        let Some(file) = plan.files.get(i) else {
            continue;
        };
        let bytes = blobs.get(&file.key).await?;
        let records = match decode_parquet(bytes.clone(), None) {
            Ok(r) if plan.leaf_markers => with_leaf_indexes(blobs, &file.key, r).await?,
            Ok(r) => r,
            Err(e) => {
                report
                    .damaged
                    .push(move_aside(blobs, &file.key, bytes, e.to_string()).await?);
                continue;
            }
        };
        report.files += 1;
        report.rows += records.len();
        for r in records {
            let unit = index
                .find(r.tenant_id.as_str(), event_id_hash(&r.event_id))
                .ok_or_else(|| StorageError::Plan {
                    key: attempt.units(),
                    reason: format!(
                        "no unit for tenant {} in {} (the file changed since it was counted)",
                        r.tenant_id, file.key
                    ),
                })?;
            by_unit.entry(unit).or_default().push(r);
        }
    }
    for (unit, records) in by_unit {
        let key = attempt.routed(unit, task);
        let bytes =
            encode_parquet(&records, Tier::Ingest, 1).map_err(|source| StorageError::Codec {
                key: key.clone(),
                source,
            })?;
        blobs.put(&key, Bytes::from(bytes)).await?;
        report.objects += 1;
    }
    Ok(report)
}

/// The rows of an integrated ingest file with the leaf indices its marker gives.
async fn with_leaf_indexes<B: BlobStore>(
    blobs: &B,
    key: &str,
    mut records: Vec<AuditRecord>,
) -> Result<Vec<AuditRecord>, StorageError> {
    let marker_key = format!("{}{key}", crate::layout::INTEGRATED_PREFIX);
    let bytes = blobs.get(&marker_key).await?;
    let marker = LeafMarker::parse(&marker_key, &bytes).map_err(|e| StorageError::Plan {
        key: marker_key.clone(),
        reason: e.to_string(),
    })?;
    for r in &mut records {
        r.leaf_index = marker.get(&r.tenant_id, &r.event_id);
    }
    Ok(records)
}

/// What a fold unit did; stored as the unit's completion record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folded {
    /// The part files that now hold the unit's rows.
    pub outputs: Vec<String>,
    pub written: usize,
    pub rows: usize,
    pub input_rows: usize,
    pub duplicates_removed: usize,
    pub conflicts_quarantined: usize,
    pub bytes_written: usize,
    pub partitions: Vec<String>,
    pub damaged: Vec<Damaged>,
}

/// Step 5 (one per unit): merges the rows routed to the unit with the existing parts it
/// supersedes, one row per event id (conflicting copies quarantined first), and writes
/// a part per range (more when a range holds more than `max_part_rows`).
pub async fn fold<B: BlobStore>(
    blobs: &B,
    attempt: &Attempt,
    unit_no: usize,
    config: &CompactorConfig,
) -> Result<Folded, StorageError> {
    let units: UnitPlan = get_json(blobs, &attempt.units()).await?;
    let unit: &Unit = units.units.get(unit_no).ok_or_else(|| StorageError::Plan {
        key: attempt.units(),
        reason: format!("no unit {unit_no}"),
    })?;
    let in_unit = |tenant: &str, hash: u64| {
        unit.ranges
            .iter()
            .position(|r| r.tenant == tenant && r.range.contains(hash))
    };
    let mut by_range: Vec<Originals> = unit.ranges.iter().map(|_| Originals::default()).collect();
    let mut report = Folded::default();
    let mut offer = |r: AuditRecord, report: &mut Folded| {
        if let Some(i) = in_unit(r.tenant_id.as_str(), event_id_hash(&r.event_id)) {
            report.input_rows += 1;
            if let Some(o) = by_range.get_mut(i) {
                o.offer(r);
            }
        }
    };
    for o in blobs.list(&attempt.routed_prefix(unit_no)).await? {
        let bytes = blobs.get(&o.key).await?;
        let records = decode_parquet(bytes, None).map_err(|source| StorageError::Codec {
            key: o.key.clone(),
            source,
        })?;
        for r in records {
            offer(r, &mut report);
        }
    }
    for key in &unit.parts {
        let Ok(ObjectKey::Tenant { partition }) = ObjectKey::parse(key) else {
            continue;
        };
        // a part another compactor removed: its rows are in the part that replaced
        // it, which this plan did not see; fail the unit, the next run plans again
        let bytes = blobs.get(key).await?;
        let tenant = partition.tenant.as_str().to_owned();
        let keep = |t: &str, id: &str| t == tenant && in_unit(t, event_hash(id)).is_some();
        match decode_where(bytes.clone(), Some(&partition.tenant), &keep) {
            Ok(records) => records.into_iter().for_each(|r| offer(r, &mut report)),
            Err(e) => report
                .damaged
                .push(move_aside(blobs, key, bytes, e.to_string()).await?),
        }
    }
    let lock = match config.lock_parts_default_days {
        Some(days) => Some((RetentionSnapshot::load(blobs).await?, days)),
        None => None,
    };
    let mut partitions = BTreeSet::new();
    for (tr, originals) in unit.ranges.iter().zip(by_range) {
        let (rows, conflicts) = originals.into_parts();
        // quarantined before anything that holds the copies is removed
        for c in &conflicts {
            quarantine_conflict(blobs, c).await?;
        }
        report.conflicts_quarantined += conflicts.len();
        if rows.is_empty() {
            continue;
        }
        let Ok(tenant) = TenantId::parse(&tr.tenant) else {
            continue;
        };
        let partition = PartitionKey::new(tenant, units.day);
        for (range, part_rows) in split_rows(tr.range, rows, config.max_part_rows) {
            let key = part_key(&partition, range, &part_rows);
            let bytes =
                encode_parquet(&part_rows, Tier::Tenant, config.zstd_level).map_err(|source| {
                    StorageError::Codec {
                        key: key.clone(),
                        source,
                    }
                })?;
            report.bytes_written += bytes.len();
            match &lock {
                Some((snapshot, default_days)) => {
                    let days = snapshot.days(&tr.tenant, *default_days);
                    let until = retain_until(units.day, days);
                    blobs.put_retained(&key, Bytes::from(bytes), until).await?;
                }
                None => blobs.put(&key, Bytes::from(bytes)).await?,
            }
            report.written += 1;
            report.rows += part_rows.len();
            report.outputs.push(key);
        }
        partitions.insert(tr.tenant.clone());
    }
    report.duplicates_removed = report.input_rows - report.rows - report.conflicts_quarantined;
    report.partitions = partitions.into_iter().collect();
    put_json(blobs, &attempt.folded(unit_no), &report).await?;
    Ok(report)
}

/// Cuts a range's rows into parts of at most `max` rows, by equal hash sub-ranges
/// (hashes are uniform, so the parts come out even).
fn split_rows(
    range: HashRange,
    rows: Vec<AuditRecord>,
    max: usize,
) -> Vec<(HashRange, Vec<AuditRecord>)> {
    if rows.len() <= max.max(1) {
        return vec![(range, rows)];
    }
    let k = rows.len().div_ceil(max.max(1)) + 1;
    let subs = range.split(k);
    let mut out: Vec<(HashRange, Vec<AuditRecord>)> =
        subs.iter().map(|r| (*r, Vec::new())).collect();
    for r in rows {
        let h = event_id_hash(&r.event_id);
        let i = subs.partition_point(|s| s.hi < h);
        if let Some((_, v)) = out.get_mut(i) {
            v.push(r);
        }
    }
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// What finishing a day did, with the totals of its units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    pub units: usize,
    pub partitions: usize,
    pub ingest_files_folded: usize,
    pub tenant_files_written: usize,
    pub tenant_files_removed: usize,
    pub rows_written: usize,
    pub duplicates_removed: usize,
    /// Copies under an already stored event id with another payload: quarantined as
    /// conflicts (the subscriber catches these while its claims remember the id; this
    /// catches them after the claim retention or a lease takeover).
    pub conflicts_quarantined: usize,
    pub bytes_written: usize,
    /// Undecodable files moved aside (`damaged/`): corruption, so an alarm.
    pub damaged: Vec<Damaged>,
}

impl std::ops::AddAssign<&Finished> for Finished {
    fn add_assign(&mut self, o: &Finished) {
        self.units += o.units;
        self.partitions += o.partitions;
        self.ingest_files_folded += o.ingest_files_folded;
        self.tenant_files_written += o.tenant_files_written;
        self.tenant_files_removed += o.tenant_files_removed;
        self.rows_written += o.rows_written;
        self.duplicates_removed += o.duplicates_removed;
        self.conflicts_quarantined += o.conflicts_quarantined;
        self.bytes_written += o.bytes_written;
        self.damaged.extend(o.damaged.iter().cloned());
    }
}

/// Step 6: once every unit has written its parts, registers the partitions, then
/// removes the superseded parts and the folded ingest files (in that order: nothing
/// leaves a view before its replacement is registered), then the attempt's scratch.
pub async fn finish<B: BlobStore>(
    blobs: &B,
    attempt: &Attempt,
    catalog: Option<&dyn PartitionCatalog>,
) -> Result<Finished, StorageError> {
    let plan: DayPlan = get_json(blobs, &attempt.plan()).await?;
    let units: UnitPlan = get_json(blobs, &attempt.units()).await?;
    let mut report = Finished::default();
    let mut outputs = BTreeSet::new();
    let mut partitions = BTreeSet::new();
    for unit in 0..units.units.len() {
        // a unit that never completed stops the day: its rows are only in ingest files
        let folded: Folded = get_json(blobs, &attempt.folded(unit)).await?;
        outputs.extend(folded.outputs);
        partitions.extend(folded.partitions);
        report.tenant_files_written += folded.written;
        report.rows_written += folded.rows;
        report.duplicates_removed += folded.duplicates_removed;
        report.conflicts_quarantined += folded.conflicts_quarantined;
        report.bytes_written += folded.bytes_written;
        report.damaged.extend(folded.damaged);
    }
    report.damaged.extend(units.damaged.iter().cloned());
    report.units = units.units.len();
    if let Some(catalog) = catalog {
        let keys: Vec<PartitionKey> = partitions
            .iter()
            .filter_map(|t| TenantId::parse(t).ok())
            .map(|t| PartitionKey::new(t, plan.day))
            .collect();
        catalog.add_partitions(&keys).await?;
    }
    report.partitions = partitions.len();
    for old in units.superseded.iter().filter(|k| !outputs.contains(*k)) {
        blobs.delete(old).await?;
        report.tenant_files_removed += 1;
    }
    for file in &plan.files {
        blobs.delete(&file.key).await?;
        report.ingest_files_folded += 1;
    }
    delete_prefix(blobs, &attempt.prefix).await?;
    // with the day's ingest tier empty, no attempt of it has anything left to do
    if blobs.list(&ingest_day_prefix(plan.day)).await?.is_empty() {
        delete_prefix(blobs, &day_scratch(plan.day)).await?;
    }
    Ok(report)
}

/// Removes the scratch of days whose ingest tier is empty: what an attempt left when it
/// was interrupted after folding its day (no attempt can need it any more).
pub async fn sweep_scratch<B: BlobStore>(blobs: &B) -> Result<usize, StorageError> {
    let mut days = BTreeSet::new();
    for o in blobs.list(COMPACTION_PREFIX).await? {
        if let Some(day) = o
            .key
            .strip_prefix(COMPACTION_PREFIX)
            .and_then(|rest| rest.strip_prefix("dt="))
            .and_then(|rest| rest.split('/').next())
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        {
            days.insert(day);
        }
    }
    let mut swept = 0;
    for day in days {
        if blobs.list(&ingest_day_prefix(day)).await?.is_empty() {
            delete_prefix(blobs, &day_scratch(day)).await?;
            swept += 1;
        }
    }
    Ok(swept)
}

async fn delete_prefix<B: BlobStore>(blobs: &B, prefix: &str) -> Result<(), BlobError> {
    for o in blobs.list(prefix).await? {
        blobs.delete(&o.key).await?;
    }
    Ok(())
}
