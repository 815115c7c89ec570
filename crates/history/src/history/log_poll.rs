//! Polling in log order: the tenant's events in the order of its transparency log, each
//! with its `leaf_index`, and a checkpoint that is the next index to give. A poll gives
//! only what the latest signed checkpoint covers, so every event a SIEM receives can be
//! proved into a checkpoint it can verify (`/v1/log/events/{id}/proof`).
//!
//! The log gives the order (its entry bundles); the rows come from the files written
//! since the first wanted event was accepted, as the time-ordered poll reads them. An
//! index whose event the tenant's retention removed (`trust/<t>/expired`) is passed
//! over; an index whose row cannot be found is never passed over: the page stops before
//! it, and a page that would start there is an error (storage lost or altered a row:
//! `auditlog verify` says which).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use serde::{Deserialize, Serialize};
use transparency::Leaf;
use transparency::integrate::{EXPIRED, log_prefix, parse_expired, tiles_of};
use transparency::layout::TILE_WIDTH;
use transparency::proof::entries;

use super::{CHECKPOINT, CheckpointClaims, History, HistoryError, PollPage, seal_error};
use auditlog::integration::BlobLog;
use auditlog::{AuditRecord, BlobError, BlobStore};

/// Where a log-order poll stands: every index below `n` was given or passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LogCheckpointClaims {
    t: String,
    /// the next index to give
    n: u64,
}

const LOG_CHECKPOINT: &str = "k2";

/// A leaf of a page: its index, and the event to give there with its acceptance time
/// (None: passed over, an expiry or an event retention removed).
type PageLeaf = (u64, Option<(EventId, DateTime<Utc>)>);

fn log_error(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Log(e.to_string())
}

/// When a leaf's event was accepted (an expiry leaf: when it was recorded).
fn leaf_time(leaf: &Leaf) -> DateTime<Utc> {
    match leaf {
        Leaf::Event(e) => e.accepted_at,
        Leaf::Expiry(x) => x.expired_at,
    }
}

impl<B: BlobStore> History<B> {
    /// The size of the tenant's latest signed checkpoint (0: none yet).
    async fn signed_size(&self, tenant: &TenantId) -> Result<u64, HistoryError> {
        let key = format!("{}{}", log_prefix(tenant), transparency::layout::CHECKPOINT);
        match self.reader.blobs().get(&key).await {
            Ok(note) => Ok(transparency::checkpoint::parse_unverified(&note)
                .map_err(log_error)?
                .1),
            Err(BlobError::NotFound(_)) => Ok(0),
            Err(e) => Err(HistoryError::Storage(e.into())),
        }
    }

    async fn leaves(
        &self,
        tenant: &TenantId,
        from: u64,
        to: u64,
        size: u64,
    ) -> Result<Vec<(u64, Leaf)>, HistoryError> {
        let store = BlobLog(self.reader.blobs());
        entries(&tiles_of(&store, tenant), from, to, size)
            .await
            .map_err(log_error)?
            .into_iter()
            .map(|(i, e)| Ok((i, Leaf::parse(&e).map_err(log_error)?)))
            .collect()
    }

    /// The first index whose event was accepted at `at` or later, give or take the
    /// poll's lag: the log is in acceptance order only to within a subscriber
    /// invocation, so a start from a time gives a little before it (at least once).
    async fn index_at(
        &self,
        tenant: &TenantId,
        at: DateTime<Utc>,
        size: u64,
    ) -> Result<u64, HistoryError> {
        let lag = chrono::Duration::from_std(self.config.poll_lag).unwrap_or_default();
        let from = at - lag;
        // the first bundle whose first leaf is at `from` or later
        let (mut lo, mut hi) = (0u64, size.div_ceil(TILE_WIDTH));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let first = self
                .leaves(tenant, mid * TILE_WIDTH, mid * TILE_WIDTH + 1, size)
                .await?;
            match first.first() {
                Some((_, leaf)) if leaf_time(leaf) < from => lo = mid + 1,
                _ => hi = mid,
            }
        }
        // the bundle before it may end with leaves at `from` or later
        let bundle = lo.saturating_sub(1);
        let leaves = self
            .leaves(tenant, bundle * TILE_WIDTH, (bundle + 1) * TILE_WIDTH, size)
            .await?;
        Ok(leaves
            .iter()
            .find(|(_, l)| leaf_time(l) >= from)
            .map_or((lo * TILE_WIDTH).min(size), |(i, _)| *i))
    }

    /// A log-order checkpoint from which a poll gives the events accepted from `at`.
    pub async fn log_checkpoint_at(
        &self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<String, HistoryError> {
        let size = self.signed_size(tenant).await?;
        let n = self.index_at(tenant, at, size).await?;
        Ok(self.seal_log_checkpoint(tenant, n))
    }

    fn seal_log_checkpoint(&self, tenant: &TenantId, n: u64) -> String {
        self.key.seal(
            LOG_CHECKPOINT,
            &LogCheckpointClaims {
                t: tenant.as_str().to_owned(),
                n,
            },
        )
    }

    /// Where a checkpoint says to go on from: a log-order one as is, and one of the
    /// time-ordered poll (issued before the log existed) converted to the index of its
    /// time, so that a SIEM carries on across the change without a gap.
    async fn log_position(
        &self,
        tenant: &TenantId,
        text: &str,
        size: u64,
    ) -> Result<u64, HistoryError> {
        let (t, n) = match self.key.open::<LogCheckpointClaims>(LOG_CHECKPOINT, text) {
            Ok(c) => (c.t, c.n),
            Err(log_err) => match self.key.open::<CheckpointClaims>(CHECKPOINT, text) {
                Ok(c) if c.t == tenant.as_str() => {
                    let at = DateTime::from_timestamp_micros(c.i).unwrap_or_default();
                    (c.t, self.index_at(tenant, at, size).await?)
                }
                Ok(c) => (c.t, 0),
                Err(_) => return Err(HistoryError::Checkpoint(seal_error(log_err))),
            },
        };
        if t != tenant.as_str() {
            return Err(HistoryError::Checkpoint("issued to another tenant".into()));
        }
        Ok(n)
    }

    /// Up to `limit` events in log order from `checkpoint` (None: from the log's
    /// start), up to the latest signed checkpoint; each event carries its `leaf_index`.
    /// `next` is always given; poll again with it, also after an empty page.
    pub async fn poll_log(
        &self,
        tenant: &TenantId,
        checkpoint: Option<&str>,
        limit: usize,
    ) -> Result<PollPage, HistoryError> {
        let limit = limit.clamp(1, super::MAX_POLL_LIMIT);
        let size = self.signed_size(tenant).await?;
        let start = match checkpoint {
            None => 0,
            Some(text) => self.log_position(tenant, text, size).await?,
        };
        let expired = match self
            .reader
            .blobs()
            .get(&format!("{}{EXPIRED}", log_prefix(tenant)))
            .await
        {
            Ok(b) => parse_expired(&b).map_err(log_error)?,
            Err(BlobError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(HistoryError::Storage(e.into())),
        };
        let removed = |i: u64| expired.iter().any(|r| r.contains(&i));
        // the leaves of this page: up to `limit` events (expiries and removed events
        // are passed over), read a bundle at a time
        let mut page: Vec<PageLeaf> = Vec::new();
        let mut wanted = 0usize;
        let mut at = start;
        while at < size && wanted < limit {
            let to = ((at / TILE_WIDTH) + 1) * TILE_WIDTH;
            for (i, leaf) in self.leaves(tenant, at, to, size).await? {
                if wanted == limit {
                    break;
                }
                match leaf {
                    Leaf::Event(e) if &e.tenant == tenant && !removed(i) => {
                        page.push((i, Some((e.event_id, e.accepted_at))));
                        wanted += 1;
                    }
                    Leaf::Event(e) if &e.tenant != tenant => {
                        return Err(log_error(format!("leaf {i} is of tenant {}", e.tenant)));
                    }
                    _ => page.push((i, None)),
                }
                at = i + 1;
            }
        }
        let mut rows = self.rows_of(tenant, &page).await?;
        let mut events = Vec::with_capacity(wanted);
        let mut next = start;
        for (i, wanted) in page {
            if let Some((id, _)) = wanted {
                let Some(mut r) = rows.remove(&id) else {
                    if events.is_empty() {
                        return Err(log_error(format!(
                            "event {id} (index {i}) is in the log but its row is not readable: `auditlog verify` tells what happened"
                        )));
                    }
                    break; // the next poll starts at it, and says so
                };
                r.leaf_index = Some(i);
                events.push(r);
            }
            next = i + 1;
        }
        Ok(PollPage {
            events,
            next: self.seal_log_checkpoint(tenant, next),
            horizon: None,
            tree_size: Some(size),
        })
    }

    /// The rows of the page's events, from the files written since the first of them
    /// was accepted (both tiers, deduplicated as every read).
    async fn rows_of(
        &self,
        tenant: &TenantId,
        page: &[PageLeaf],
    ) -> Result<HashMap<EventId, AuditRecord>, HistoryError> {
        let wanted: HashMap<&EventId, DateTime<Utc>> = page
            .iter()
            .filter_map(|(_, w)| w.as_ref().map(|(id, t)| (id, *t)))
            .collect();
        let Some(first) = wanted.values().min().copied() else {
            return Ok(HashMap::new());
        };
        let skew = chrono::Duration::from_std(self.config.clock_skew).unwrap_or_default();
        let oldest_useful = first - skew;
        // by id: the copy every read keeps (the log's own check is `auditlog verify`'s)
        let keep = |r: &AuditRecord| wanted.contains_key(&r.event_id);
        let found = self
            .scan(
                tenant,
                |files| {
                    files
                        .into_iter()
                        .map(|(d, fs)| {
                            let fs: Vec<_> = fs
                                .into_iter()
                                .filter(|f| f.modified.is_none_or(|m| m >= oldest_useful))
                                .collect();
                            (d, fs)
                        })
                        .filter(|(_, fs)| !fs.is_empty())
                        .collect()
                },
                &keep,
                HashMap::new,
                |found: &mut HashMap<EventId, AuditRecord>, rows| {
                    for r in rows {
                        found.insert(r.event_id.clone(), r);
                    }
                    true
                },
            )
            .await?;
        Ok(found)
    }
}
