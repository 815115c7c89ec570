//! Folds the ingest tier into tenant-partitioned files: one file per tenant-day, one row
//! per event id, sorted by time.
//!
//! Crash safety comes from the order of steps: the new tenant file (old rows plus new) is
//! written first under a name derived from its event set, then the files it supersedes
//! are deleted, and the ingest files only after every tenant of their day is folded. A
//! crash anywhere leaves at worst both copies, which readers deduplicate and the next run
//! folds again into the same name.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::NaiveDate;
use envelope::TenantId;

use crate::codec::{Tier, decode_ingest_where, decode_parquet, encode_parquet, tenant_row_counts};
use crate::layout::quarantine_object_key;
use crate::layout::{INGEST_PREFIX, ObjectKey, PartitionKey};
use crate::ports::BlobStore;
use crate::reader::{Conflict, Originals, StorageError};
use crate::record::AuditRecord;
use crate::subscriber::{CONFLICT, QuarantineRecord};

/// Writes a conflicting copy found in storage to quarantine, named by its content so
/// that finding it again overwrites the same record.
async fn quarantine_conflict<B: BlobStore>(blobs: &B, c: &Conflict) -> Result<(), StorageError> {
    let r = &c.copy;
    let body = r.to_bus_event().to_string();
    let record = QuarantineRecord {
        reason_code: CONFLICT.to_owned(),
        reason: format!(
            "event {} of tenant {} is stored with payload sha256 {}; this copy, found by compaction, has {}",
            r.event_id, r.tenant_id, c.accepted_payload_sha256, r.payload_sha256
        ),
        message_id: format!("stored:{}", r.bus_event_id),
        received_at: r.ingested_at,
        tenant_id: Some(r.tenant_id.to_string()),
        event_id: Some(r.event_id.to_string()),
        accepted_payload_sha256: Some(c.accepted_payload_sha256.clone()),
        payload_sha256: Some(r.payload_sha256.clone()),
        body,
    };
    let key = quarantine_object_key(r.ingested_at.date_naive(), CONFLICT, record.body.as_bytes());
    let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
    blobs.put(&key, Bytes::from(bytes)).await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct CompactorConfig {
    pub zstd_level: i32,
    /// Rows decoded at once: a day's tenants are folded in groups of about this many rows,
    /// so memory is bounded by the group (plus the day's compressed ingest files), not by
    /// the day. A single tenant-day larger than this is still folded in one piece.
    pub max_rows_in_memory: usize,
    /// Only fold days strictly before this one (None: every day). Folding a closed day
    /// once avoids rewriting a tenant-day file many times while the day is still filling.
    pub before: Option<NaiveDate>,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            zstd_level: 3,
            max_rows_in_memory: 100_000,
            before: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub days: usize,
    pub ingest_files_folded: usize,
    pub ingest_rows: usize,
    pub partitions: usize,
    pub tenant_files_written: usize,
    pub tenant_files_removed: usize,
    pub rows_written: usize,
    pub duplicates_removed: usize,
    /// Copies under an already stored event id with another payload: quarantined as
    /// conflicts (the subscriber catches these while its claims remember the id; this
    /// catches them after the claim retention or a lease takeover).
    pub conflicts_quarantined: usize,
    pub bytes_written: usize,
}

pub struct Compactor<B> {
    blobs: B,
    config: CompactorConfig,
    catalog: Option<std::sync::Arc<dyn crate::ports::PartitionCatalog>>,
}

impl<B: BlobStore> Compactor<B> {
    pub fn new(blobs: B, config: CompactorConfig) -> Self {
        Self {
            blobs,
            config,
            catalog: None,
        }
    }

    /// Registers every tenant-day partition written in a catalog before the folded
    /// ingest files are removed.
    pub fn with_catalog(
        mut self,
        catalog: std::sync::Arc<dyn crate::ports::PartitionCatalog>,
    ) -> Self {
        self.catalog = Some(catalog);
        self
    }

    pub async fn run(&self) -> Result<CompactionReport, StorageError> {
        let mut days: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        for object in self.blobs.list(INGEST_PREFIX).await? {
            if let Ok(ObjectKey::Ingest { dt }) = ObjectKey::parse(&object.key)
                && self.config.before.is_none_or(|b| dt < b)
            {
                days.entry(dt).or_default().push(object.key);
            }
        }
        let mut report = CompactionReport::default();
        for (dt, files) in days {
            self.fold_day(dt, &files, &mut report).await?;
            report.days += 1;
        }
        Ok(report)
    }

    async fn fold_day(
        &self,
        dt: NaiveDate,
        files: &[String],
        report: &mut CompactionReport,
    ) -> Result<(), StorageError> {
        // The compressed files are held (an order of magnitude smaller than the rows);
        // tenants are then decoded and folded a bounded group at a time.
        let mut day: Vec<(String, Bytes)> = Vec::with_capacity(files.len());
        let mut rows_per_tenant: BTreeMap<String, usize> = BTreeMap::new();
        for key in files {
            let bytes = self.blobs.get(key).await?;
            let counts =
                tenant_row_counts(bytes.clone()).map_err(|source| StorageError::Codec {
                    key: key.clone(),
                    source,
                })?;
            for (tenant, n) in counts {
                report.ingest_rows += n;
                *rows_per_tenant.entry(tenant).or_insert(0) += n;
            }
            day.push((key.clone(), bytes));
        }
        let mut written: Vec<PartitionKey> = Vec::new();
        let mut groups: Vec<BTreeSet<String>> = vec![BTreeSet::new()];
        let mut group_rows = 0;
        for (tenant, n) in rows_per_tenant {
            if group_rows > 0 && group_rows + n > self.config.max_rows_in_memory {
                groups.push(BTreeSet::new());
                group_rows = 0;
            }
            group_rows += n;
            if let Some(g) = groups.last_mut() {
                g.insert(tenant);
            }
        }
        for group in groups.into_iter().filter(|g| !g.is_empty()) {
            let mut by_tenant: BTreeMap<TenantId, Vec<AuditRecord>> = BTreeMap::new();
            for (key, bytes) in &day {
                let records = decode_ingest_where(bytes.clone(), &|t| group.contains(t)).map_err(
                    |source| StorageError::Codec {
                        key: key.clone(),
                        source,
                    },
                )?;
                for r in records {
                    by_tenant.entry(r.tenant_id.clone()).or_default().push(r);
                }
            }
            for (tenant, fresh) in by_tenant {
                let partition = PartitionKey::new(tenant, dt);
                self.fold_partition(partition.clone(), fresh, report)
                    .await?;
                written.push(partition);
            }
        }
        // Registered before the ingest files go, so the rows never leave every view.
        if let Some(catalog) = &self.catalog {
            catalog.add_partitions(&written).await?;
        }
        // Only now is every row of these files in a tenant file.
        for key in files {
            self.blobs.delete(key).await?;
            report.ingest_files_folded += 1;
        }
        Ok(())
    }

    async fn fold_partition(
        &self,
        partition: PartitionKey,
        fresh: Vec<AuditRecord>,
        report: &mut CompactionReport,
    ) -> Result<(), StorageError> {
        let existing: Vec<String> = self
            .blobs
            .list(&partition.prefix())
            .await?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| matches!(ObjectKey::parse(k), Ok(ObjectKey::Tenant { .. })))
            .collect();
        let mut all = fresh;
        for key in &existing {
            let bytes = self.blobs.get(key).await?;
            let records = decode_parquet(bytes, Some(&partition.tenant)).map_err(|source| {
                StorageError::Codec {
                    key: key.clone(),
                    source,
                }
            })?;
            all.extend(records);
        }
        let before = all.len();
        let mut originals = Originals::default();
        all.into_iter().for_each(|r| originals.offer(r));
        let (rows, conflicts) = originals.into_parts();
        // Quarantined before the files holding the copies are replaced: a crash in
        // between leaves the copy in storage, and the next run quarantines it again.
        for c in &conflicts {
            quarantine_conflict(&self.blobs, c).await?;
        }
        report.conflicts_quarantined += conflicts.len();
        report.duplicates_removed += before - rows.len() - conflicts.len();
        let key = partition.object_key(&rows);
        let existing_set: BTreeSet<&String> = existing.iter().collect();
        if !existing_set.contains(&key) {
            let bytes =
                encode_parquet(&rows, Tier::Tenant, self.config.zstd_level).map_err(|source| {
                    StorageError::Codec {
                        key: key.clone(),
                        source,
                    }
                })?;
            report.bytes_written += bytes.len();
            self.blobs.put(&key, Bytes::from(bytes)).await?;
            report.tenant_files_written += 1;
        }
        report.rows_written += rows.len();
        report.partitions += 1;
        for old in existing.iter().filter(|k| **k != key) {
            self.blobs.delete(old).await?;
            report.tenant_files_removed += 1;
        }
        Ok(())
    }
}
