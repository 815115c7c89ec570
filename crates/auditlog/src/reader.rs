//! Reads one tenant's records across both tiers (tenant partitions and the ingest tier
//! not yet compacted), deduplicated by event id: what `auditlog show` and the audit API
//! return. It lists only `audit/tenant_id=<t>/` and keeps only that tenant's ingest rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use envelope::TenantId;

use crate::codec::{CodecError, decode_parquet};
use crate::layout::{INGEST_PREFIX, ObjectKey, tenant_prefix};
use crate::ports::{BlobError, BlobStore, ObjectInfo};
use crate::record::AuditRecord;

/// Reading or rewriting the stored tiers failed: the store, or a file in it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{key}: {source}")]
    Codec {
        key: String,
        #[source]
        source: CodecError,
    },
    #[error(transparent)]
    Catalog(#[from] crate::ports::CatalogError),
    /// A compaction plan or step record that is missing its part or does not parse.
    #[error("compaction plan {key}: {reason}")]
    Plan { key: String, reason: String },
    /// Files kept vanishing between listing and reading (compaction swapping them
    /// faster than we read): try again, rather than answer with rows missing.
    #[error("the stored files changed under {} consecutive reads (gone: {}); retry", .keys.len(), .keys.join(", "))]
    Unstable { keys: Vec<String> },
}

/// Rows read so far, one per event id (the original, as the views keep it): for a
/// reader that decides file by file whether it needs the next one.
#[derive(Default)]
pub struct Deduplicated(Originals);

impl Deduplicated {
    pub fn rows(&self) -> impl Iterator<Item = &AuditRecord> {
        self.0.kept.values()
    }

    pub fn into_rows(self) -> impl Iterator<Item = AuditRecord> {
        self.0.into_unsorted()
    }
}

/// The files that may hold one tenant's rows, by `dt` day.
#[derive(Debug, Clone, Default)]
pub struct TenantFiles {
    pub days: BTreeMap<NaiveDate, Vec<ObjectInfo>>,
}

pub struct TenantReader<B> {
    blobs: B,
}

impl<B: BlobStore> TenantReader<B> {
    pub fn new(blobs: B) -> Self {
        Self { blobs }
    }

    /// Records of `tenant` with `from <= occurred_at < to`, oldest first, one per event id.
    ///
    /// Compaction may remove a listed file before we read it: its rows are then in a
    /// file written before the removal, so the read starts over from fresh listings. A
    /// read returns every accepted event or an error, never a silent partial answer.
    pub async fn read(
        &self,
        tenant: &TenantId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let mut attempts = ReadAttempts::default();
        loop {
            match self.read_once(tenant, from, to).await? {
                Ok(rows) => return Ok(rows),
                Err(key) => attempts.vanished(key)?,
            }
        }
    }

    pub fn blobs(&self) -> &B {
        &self.blobs
    }

    /// The tenant's tenant-tier parts, by day (`dt`): one listing of its own prefix.
    pub async fn parts(
        &self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<NaiveDate, Vec<ObjectInfo>>, StorageError> {
        let mut days: BTreeMap<NaiveDate, Vec<ObjectInfo>> = BTreeMap::new();
        for object in self.blobs.list(&tenant_prefix(tenant)).await? {
            if let Ok(ObjectKey::Tenant { partition }) = ObjectKey::parse(&object.key)
                // the prefix already confines the listing; this is the second lock
                && &partition.tenant == tenant
            {
                days.entry(partition.dt).or_default().push(object);
            }
        }
        Ok(days)
    }

    /// Every file that may hold rows of `tenant`, by day (`dt`): its tenant-tier parts,
    /// and the ingest files of every day (which hold many tenants). Two listings.
    pub async fn files(&self, tenant: &TenantId) -> Result<TenantFiles, StorageError> {
        let mut days = self.parts(tenant).await?;
        for object in self.blobs.list(INGEST_PREFIX).await? {
            if let Ok(ObjectKey::Ingest { dt }) = ObjectKey::parse(&object.key) {
                days.entry(dt).or_default().push(object);
            }
        }
        Ok(TenantFiles { days })
    }

    /// The rows of `tenant` in `files`, one per event id (the original, as the views
    /// keep it), in no particular order; `Ok(Err(key))` if a listed file was gone.
    pub async fn read_files(
        &self,
        tenant: &TenantId,
        files: &[ObjectInfo],
        keep: &(dyn Fn(&AuditRecord) -> bool + Sync),
    ) -> Result<Result<Vec<AuditRecord>, String>, StorageError> {
        let mut rows = Deduplicated::default();
        for file in files {
            if let Err(key) = self.read_into(tenant, file, &mut rows).await? {
                return Ok(Err(key));
            }
        }
        Ok(Ok(rows.into_rows().filter(|r| keep(r)).collect()))
    }

    /// A listed file's bytes, or None if it is gone since the listing (compaction moved
    /// it): the caller lists again.
    pub async fn fetch(&self, key: &str) -> Result<Option<bytes::Bytes>, StorageError> {
        match self.blobs.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds the rows of `tenant` in one file to `into`; `Ok(Err(key))` if it was gone.
    pub async fn read_into(
        &self,
        tenant: &TenantId,
        file: &ObjectInfo,
        into: &mut Deduplicated,
    ) -> Result<Result<(), String>, StorageError> {
        let Some(bytes) = self.fetch(&file.key).await? else {
            return Ok(Err(file.key.clone()));
        };
        let records =
            decode_parquet(bytes, Some(tenant)).map_err(|source| StorageError::Codec {
                key: file.key.clone(),
                source,
            })?;
        for r in records {
            if &r.tenant_id == tenant {
                into.0.offer(r);
            }
        }
        Ok(Ok(()))
    }

    /// One attempt: the rows, or the key of a listed file that was gone when read.
    async fn read_once(
        &self,
        tenant: &TenantId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Result<Vec<AuditRecord>, String>, StorageError> {
        let day_in_range = |day: chrono::NaiveDate| {
            from.is_none_or(|f| day >= f.date_naive()) && to.is_none_or(|t| day <= t.date_naive())
        };
        let keys: Vec<String> = self
            .files(tenant)
            .await?
            .days
            .into_iter()
            .filter(|(day, _)| day_in_range(*day))
            .flat_map(|(_, files)| files.into_iter().map(|f| f.key))
            .collect();
        // the original of each id does not depend on the order files are read in
        let mut originals = Originals::default();
        for key in keys {
            let Some(bytes) = self.fetch(&key).await? else {
                return Ok(Err(key));
            };
            let records =
                decode_parquet(bytes, Some(tenant)).map_err(|source| StorageError::Codec {
                    key: key.clone(),
                    source,
                })?;
            for r in records {
                if &r.tenant_id != tenant {
                    continue;
                }
                if from.is_some_and(|f| r.occurred_at < f) || to.is_some_and(|t| r.occurred_at >= t)
                {
                    continue;
                }
                originals.offer(r);
            }
        }
        Ok(Ok(originals.into_sorted()))
    }
}

/// Fresh listings a read tries before giving up on a store that keeps changing.
pub const READ_ATTEMPTS: usize = 5;

/// The tries of a read that lists, then reads, and starts over when a listed file
/// vanished under it (compaction swapped it): after `READ_ATTEMPTS` vanishings it gives
/// up with `Unstable`, never a partial answer. A counter, not a closure-taking helper,
/// so the reading futures stay `Send` for the API's spawned jobs.
#[derive(Debug, Default)]
pub struct ReadAttempts {
    vanished: Vec<String>,
}

impl ReadAttempts {
    /// `key` was gone: Ok to try again, or `Unstable` when no tries are left.
    pub fn vanished(&mut self, key: String) -> Result<(), StorageError> {
        self.vanished.push(key);
        if self.vanished.len() >= READ_ATTEMPTS {
            return Err(StorageError::Unstable {
                keys: std::mem::take(&mut self.vanished),
            });
        }
        Ok(())
    }
}

/// One row per event id, whatever copies the tiers hold: of two copies, the first
/// ingested is the original. Shared by the reader and the compactor so that both keep
/// the same row. A copy with another payload hash is not a duplicate but a conflict:
/// it is set aside (`conflicts`) for the compactor to quarantine, never dropped unseen.
#[derive(Default)]
pub(crate) struct Originals {
    kept: HashMap<envelope::EventId, AuditRecord>,
    /// Copies under a kept id with another payload, one per distinct payload.
    conflicts: HashMap<(envelope::EventId, String), AuditRecord>,
}

/// A copy that lost to the original under the same event id, with another payload.
pub(crate) struct Conflict {
    pub(crate) accepted_payload_sha256: String,
    pub(crate) copy: AuditRecord,
}

fn earlier(a: &AuditRecord, b: &AuditRecord) -> bool {
    (a.ingested_at, &a.bus_event_id) <= (b.ingested_at, &b.bus_event_id)
}

impl Originals {
    pub(crate) fn offer(&mut self, r: AuditRecord) {
        let loser = match self.kept.get(&r.event_id) {
            None => {
                self.kept.insert(r.event_id.clone(), r);
                return;
            }
            Some(k) if earlier(k, &r) => r,
            Some(_) => match self.kept.insert(r.event_id.clone(), r) {
                Some(old) => old,
                None => return,
            },
        };
        let kept = self.kept.get_mut(&loser.event_id);
        let same = kept.is_some_and(|k| {
            let same = k.payload_sha256 == loser.payload_sha256;
            // a part folded before the log existed, and a later copy that has its leaf
            if same && k.leaf_index.is_none() {
                k.leaf_index = loser.leaf_index;
            }
            same
        });
        if !same {
            let key = (loser.event_id.clone(), loser.payload_sha256.clone());
            match self.conflicts.get(&key) {
                Some(c) if earlier(c, &loser) => {}
                _ => {
                    self.conflicts.insert(key, loser);
                }
            }
        }
    }

    /// The originals, unordered: the duplicate filter must see every copy first, and only
    /// then may a caller drop rows (a filter applied earlier could keep a later copy).
    pub(crate) fn into_unsorted(self) -> impl Iterator<Item = AuditRecord> {
        self.kept.into_values()
    }

    /// The originals, in the tenant tier's row order (time, then id).
    pub(crate) fn into_sorted(self) -> Vec<AuditRecord> {
        self.into_parts().0
    }

    /// The originals (sorted as `into_sorted`) and the conflicting copies, each with
    /// the hash of the original it lost to.
    pub(crate) fn into_parts(self) -> (Vec<AuditRecord>, Vec<Conflict>) {
        let mut conflicts: Vec<Conflict> = self
            .conflicts
            .into_values()
            .filter_map(|copy| {
                // a copy can only be here while its id is kept
                let accepted = self.kept.get(&copy.event_id)?.payload_sha256.clone();
                (accepted != copy.payload_sha256).then_some(Conflict {
                    accepted_payload_sha256: accepted,
                    copy,
                })
            })
            .collect();
        conflicts.sort_by(|a, b| {
            (&a.copy.event_id, &a.copy.payload_sha256)
                .cmp(&(&b.copy.event_id, &b.copy.payload_sha256))
        });
        let mut out: Vec<AuditRecord> = self.kept.into_values().collect();
        crate::codec::sort_records(&mut out, crate::codec::Tier::Tenant);
        (out, conflicts)
    }
}
