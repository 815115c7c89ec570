//! The tenants' retention as the compactor needs it to lock the parts it writes (S3
//! Object Lock retain-until per object, following each tenant's retention): a snapshot
//! the log's one writer publishes at `trust/_retention.json` when it applies retention,
//! so that the compactor reads one object instead of the tenant directory.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::{BlobError, BlobStore};

pub const RETENTION_SNAPSHOT: &str = "trust/_retention.json";

/// Days each tenant's events are kept; a tenant not listed has the deployment default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSnapshot {
    pub tenants: BTreeMap<String, u32>,
}

impl RetentionSnapshot {
    /// The published snapshot; none yet, or unreadable, is an empty one (every tenant
    /// then has the default: a lock at worst longer than the tenant's retention, never
    /// shorter than the default).
    pub async fn load(blobs: &dyn BlobStore) -> Result<Self, BlobError> {
        match blobs.get(RETENTION_SNAPSHOT).await {
            Ok(b) => Ok(serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the retention snapshot is unreadable; defaults apply");
                Self::default()
            })),
            Err(BlobError::NotFound(_)) => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    pub async fn publish(&self, blobs: &dyn BlobStore) -> Result<(), BlobError> {
        // a map of strings to numbers always serialises
        let body = serde_json::to_vec(self).unwrap_or_default();
        blobs.put(RETENTION_SNAPSHOT, body.into()).await
    }

    pub fn days(&self, tenant: &str, default_days: u32) -> u32 {
        self.tenants.get(tenant).copied().unwrap_or(default_days)
    }
}

/// Until when a part of `day` stays locked under a retention of `days`: the end of the
/// day retention removes it on, so the lock has run out by the time it goes.
pub fn retain_until(day: NaiveDate, days: u32) -> DateTime<Utc> {
    (day + chrono::Days::new(u64::from(days) + 1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBlobStore;

    #[tokio::test]
    async fn published_read_back_and_the_default_for_the_others() {
        let blobs = MemoryBlobStore::default();
        assert_eq!(
            RetentionSnapshot::load(&blobs).await.unwrap(),
            RetentionSnapshot::default()
        );
        let mut s = RetentionSnapshot::default();
        s.tenants.insert("acme".into(), 90);
        s.publish(&blobs).await.unwrap();
        let back = RetentionSnapshot::load(&blobs).await.unwrap();
        assert_eq!(
            (back.days("acme", 365), back.days("globex", 365)),
            (90, 365)
        );
        blobs
            .put(RETENTION_SNAPSHOT, bytes::Bytes::from_static(b"{oops"))
            .await
            .unwrap();
        assert_eq!(
            RetentionSnapshot::load(&blobs)
                .await
                .unwrap()
                .days("acme", 365),
            365
        );
    }

    #[test]
    fn a_part_is_locked_until_the_day_after_retention_would_remove_it() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        assert_eq!(
            retain_until(day, 90).to_rfc3339(),
            "2027-02-19T00:00:00+00:00"
        );
    }
}
