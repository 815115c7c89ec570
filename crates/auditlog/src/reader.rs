//! Reads one tenant's records across both tiers (tenant partitions and the ingest tier
//! not yet compacted), deduplicated by event id: what `auditlog show` and the audit API
//! return. It lists only `audit/tenant_id=<t>/` and keeps only that tenant's ingest rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use envelope::TenantId;

use crate::codec::{CodecError, decode_parquet};
use crate::layout::{INGEST_PREFIX, ObjectKey, tenant_prefix};
use crate::ports::{BlobError, BlobStore};
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
}

pub struct TenantReader<B> {
    blobs: B,
}

impl<B: BlobStore> TenantReader<B> {
    pub fn new(blobs: B) -> Self {
        Self { blobs }
    }

    /// Records of `tenant` with `from <= occurred_at < to`, oldest first, one per event id.
    pub async fn read(
        &self,
        tenant: &TenantId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let day_in_range = |day: chrono::NaiveDate| {
            from.is_none_or(|f| day >= f.date_naive()) && to.is_none_or(|t| day <= t.date_naive())
        };
        let mut keys = Vec::new();
        for object in self.blobs.list(&tenant_prefix(tenant)).await? {
            if let Ok(ObjectKey::Tenant { partition }) = ObjectKey::parse(&object.key) {
                // The prefix already confines the listing; this is the second lock.
                if &partition.tenant == tenant && day_in_range(partition.dt) {
                    keys.push(object.key);
                }
            }
        }
        for object in self.blobs.list(INGEST_PREFIX).await? {
            if let Ok(ObjectKey::Ingest { dt }) = ObjectKey::parse(&object.key)
                && day_in_range(dt)
            {
                keys.push(object.key);
            }
        }
        let mut originals = Originals::default();
        for key in keys {
            let bytes = match self.blobs.get(&key).await {
                Ok(b) => b,
                // compacted away between list and get: its rows are in a tenant file now
                Err(BlobError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
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
        Ok(originals.into_sorted())
    }
}

/// One row per event id, whatever copies the tiers hold: of two copies, the first
/// ingested is the original. Shared by the reader and the compactor so that both keep
/// the same row.
#[derive(Default)]
pub(crate) struct Originals(HashMap<envelope::EventId, AuditRecord>);

impl Originals {
    pub(crate) fn offer(&mut self, r: AuditRecord) {
        let newer =
            |e: &AuditRecord| (e.ingested_at, &e.bus_event_id) <= (r.ingested_at, &r.bus_event_id);
        if !self.0.get(&r.event_id).is_some_and(newer) {
            self.0.insert(r.event_id.clone(), r);
        }
    }

    /// The originals, in the tenant tier's row order (time, then id).
    pub(crate) fn into_sorted(self) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = self.0.into_values().collect();
        crate::codec::sort_records(&mut out, crate::codec::Tier::Tenant);
        out
    }
}
