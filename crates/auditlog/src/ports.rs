//! The ports the pipeline runs over. Each has an AWS adapter and an embedded adapter,
//! and the conformance suite in `tests/` runs against both.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};

pub use envelope::clock::{Clock, FixedClock, SystemClock};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// When the object was last written (S3 `LastModified`, a file's mtime), if the
    /// store knows: a file written at `m` holds no row ingested after `m`, which is how
    /// a poll skips files that cannot hold anything new.
    pub modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("blob store throttled: {0}")]
    Throttled(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

/// Object storage: S3, or a local directory.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes the whole object atomically: readers see the old object or the new one.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Bytes, BlobError>;
    /// Every object under `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError>;
    /// Deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Writes the object to be kept unchangeable until `retain_until`, where the store
    /// can lock objects (S3 Object Lock, when the bucket has it); elsewhere a `put`.
    async fn put_retained(
        &self,
        key: &str,
        body: Bytes,
        retain_until: DateTime<Utc>,
    ) -> Result<(), BlobError> {
        let _ = retain_until;
        self.put(key, body).await
    }

    /// The first `max` objects under `prefix`, by key (S3: one request per 1,000).
    async fn list_first(&self, prefix: &str, max: usize) -> Result<Vec<ObjectInfo>, BlobError> {
        let mut all = self.list(prefix).await?;
        all.truncate(max);
        Ok(all)
    }

    /// The "directories" right below `prefix` (`<prefix><segment>/`), sorted (S3: a
    /// delimiter listing, one request per 1,000).
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let mut out: Vec<String> = Vec::new();
        for o in self.list(prefix).await? {
            if let Some(rest) = o.key.strip_prefix(prefix)
                && let Some((segment, _)) = rest.split_once('/')
            {
                let dir = format!("{prefix}{segment}/");
                if out.last() != Some(&dir) {
                    out.push(dir);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl<T: BlobStore + ?Sized> BlobStore for std::sync::Arc<T> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        (**self).put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        (**self).get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        (**self).list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        (**self).delete(key).await
    }
    async fn put_retained(
        &self,
        key: &str,
        body: Bytes,
        retain_until: DateTime<Utc>,
    ) -> Result<(), BlobError> {
        (**self).put_retained(key, body, retain_until).await
    }
    async fn list_first(&self, prefix: &str, max: usize) -> Result<Vec<ObjectInfo>, BlobError> {
        (**self).list_first(prefix, max).await
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        (**self).list_prefixes(prefix).await
    }
}

/// A claim request for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub payload_sha256: String,
}

/// Who claims, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimContext {
    /// One id per completion unit: the claims whose events go into one ingest file of
    /// one invocation. Completion is recorded once per unit, and only after that file
    /// is durable, so it never covers an event that was not written.
    pub unit_id: String,
    pub now: DateTime<Utc>,
    /// How long an unfinished claim blocks others: longer than the function timeout.
    pub lease: Duration,
    /// How long a completed claim is remembered (DynamoDB TTL / SQLite expiry).
    pub retention: Duration,
}

impl ClaimContext {
    pub fn lease_until(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX)
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX)
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Ours now: new, or taken over from a holder whose lease ran out.
    Claimed,
    /// Already written by a completed batch, with this payload hash.
    Completed { payload_sha256: String },
    /// Held by another live batch: retry later.
    InProgress,
    /// The store could not answer for this key (throttled, unavailable): retry later.
    Unavailable(DedupeError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DedupeError {
    #[error("dedupe store throttled: {0}")]
    Throttled(String),
    #[error("dedupe store unavailable: {0}")]
    Unavailable(String),
}

/// Claim-then-complete deduplication by (tenant_id, event_id).
///
/// A claim is recorded per event; completion once per unit (an ingest file's worth of
/// claims), so the steady-state cost is about one write per unique event.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// One outcome per request, in order. A failure of the whole call is an `Err`.
    async fn claim(
        &self,
        ctx: &ClaimContext,
        requests: &[ClaimRequest],
    ) -> Result<Vec<ClaimOutcome>, DedupeError>;

    /// Marks every claim of `unit_id` as written, for `retention`. The caller makes sure
    /// every claim of the unit is in a durable file first.
    async fn complete(&self, ctx: &ClaimContext) -> Result<(), DedupeError>;

    /// Drops this batch's claims on these keys (the write failed), so a retry need not
    /// wait for the lease to run out. Best effort: the lease is the safety net.
    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError>;
}

#[async_trait]
impl<T: DedupeStore + ?Sized> DedupeStore for std::sync::Arc<T> {
    async fn claim(
        &self,
        ctx: &ClaimContext,
        requests: &[ClaimRequest],
    ) -> Result<Vec<ClaimOutcome>, DedupeError> {
        (**self).claim(ctx, requests).await
    }
    async fn complete(&self, ctx: &ClaimContext) -> Result<(), DedupeError> {
        (**self).complete(ctx).await
    }
    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError> {
        (**self).release(ctx, keys).await
    }
}

/// Why partitions could not be registered; the compactor keeps the ingest files (so
/// nothing disappears from the views) and the next run registers again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("partition catalog: {0}")]
pub struct CatalogError(pub String);

/// Where the tenant-day partitions that the compactor writes are registered, for query
/// engines that do not discover them from the layout (Athena's `audit_records_all`,
/// which scans across tenants without partition projection). Registering a partition
/// that exists is a no-op.
#[async_trait]
pub trait PartitionCatalog: Send + Sync {
    async fn add_partitions(&self, partitions: &[crate::PartitionKey]) -> Result<(), CatalogError>;
}
