//! One tenant's history over both stored tiers: pages newest first by
//! `(occurred_at, event_id)`, one event by id, and polling in ingestion order.
//!
//! A read works a day (`dt`) at a time, so memory follows one day of one tenant, and it
//! starts again from fresh listings when compaction removed a file it had listed (the
//! rows are then in a newer file): an answer has every row or is an error.

use std::collections::BinaryHeap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use envelope::TenantId;
use serde::{Deserialize, Serialize};

use auditlog::{
    AuditRecord, BlobStore, Deduplicated, INGEST_PREFIX, ObjectInfo, ReadAttempts, StorageError,
    TenantReader,
};

use crate::query::{EventQuery, MAX_LIMIT};
use crate::seal::{SealError, SealKey};

mod log_poll;

#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// How long a page cursor stays valid.
    pub cursor_ttl: Duration,
    /// How far behind the clock a poll stays: longer than a subscriber invocation runs
    /// (its timeout), so that every event stamped before the horizon is in a durable
    /// file by the time a poll passes it. This is the poll's freshness.
    pub poll_lag: Duration,
    /// How far object timestamps (S3 `LastModified`) may be off our clock.
    pub clock_skew: Duration,
    /// How far ahead of its acceptance an event's occurred_at may be: the subscriber's
    /// accepted future skew (`AcceptedWindow`), or more.
    pub future_skew: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            cursor_ttl: Duration::from_secs(3600),
            // the subscriber's timeout is 120 s; a minute more for clocks
            poll_lag: Duration::from_secs(180),
            clock_skew: Duration::from_secs(300),
            future_skew: auditlog::AcceptedWindow::default().future_skew,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    #[error("cursor: {0}")]
    Cursor(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The tenant's transparency log could not be read, or disagrees with the rows.
    #[error("the tenant log: {0}")]
    Log(String),
}

/// Where a page ends: the last row returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CursorClaims {
    /// tenant
    t: String,
    /// query fingerprint
    q: String,
    /// occurred_at, microseconds
    o: i64,
    /// event id
    e: String,
    /// expires, Unix seconds
    x: i64,
}

/// Where a poll stands: every event at or before `(ingested_at, event_id)` was given.
/// A later issue adds the event's index in the tenant's append-only log here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CheckpointClaims {
    t: String,
    /// ingested_at, microseconds
    i: i64,
    e: String,
}

const CURSOR: &str = "c1";
const CHECKPOINT: &str = "k1";
/// Sorts after every event id (ULIDs, UUIDs and producers' ids are printable ASCII).
const AFTER_EVERY_ID: &str = "\u{10FFFF}";

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn seal_error(e: SealError) -> String {
    e.to_string()
}

/// One page, newest first, and the cursor of the next one if there is more.
#[derive(Debug)]
pub struct Page {
    pub events: Vec<AuditRecord>,
    pub next: Option<String>,
}

/// One poll, and the checkpoint to poll with next (always given).
#[derive(Debug)]
pub struct PollPage {
    pub events: Vec<AuditRecord>,
    pub next: String,
    /// In acceptance order: everything stamped before this was considered.
    pub horizon: Option<DateTime<Utc>>,
    /// In log order: the size of the signed checkpoint the poll went up to.
    pub tree_size: Option<u64>,
}

pub struct History<B> {
    reader: TenantReader<B>,
    key: SealKey,
    config: HistoryConfig,
}

type Files = Vec<(NaiveDate, Vec<ObjectInfo>)>;

impl<B: BlobStore> History<B> {
    pub fn new(blobs: B, key: SealKey, config: HistoryConfig) -> Self {
        Self {
            reader: TenantReader::new(blobs),
            key,
            config,
        }
    }

    pub(crate) fn reader(&self) -> &TenantReader<B> {
        &self.reader
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    async fn files(&self, tenant: &TenantId) -> Result<Files, StorageError> {
        Ok(self.reader.files(tenant).await?.days.into_iter().collect())
    }

    /// Reads rows day by day (in `days` order) until `enough` says stop; starts again
    /// from fresh listings if a file vanished. `visit` gets each day's rows.
    async fn scan<S>(
        &self,
        tenant: &TenantId,
        order: impl Fn(Files) -> Files,
        keep: &(dyn Fn(&AuditRecord) -> bool + Sync),
        init: impl Fn() -> S,
        mut visit: impl FnMut(&mut S, Vec<AuditRecord>) -> bool,
    ) -> Result<S, StorageError> {
        let mut attempts = ReadAttempts::default();
        'attempt: loop {
            let mut state = init();
            for (_, files) in order(self.files(tenant).await?) {
                match self.reader.read_files(tenant, &files, keep).await? {
                    Ok(rows) => {
                        if !visit(&mut state, rows) {
                            break;
                        }
                    }
                    Err(key) => {
                        attempts.vanished(key)?;
                        continue 'attempt;
                    }
                }
            }
            return Ok(state);
        }
    }

    /// Up to `limit` events matching `query`, newest first, after `cursor`.
    pub async fn page(
        &self,
        tenant: &TenantId,
        query: &EventQuery,
        limit: usize,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Page, HistoryError> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let fingerprint = query.fingerprint();
        let before: Option<(DateTime<Utc>, String)> = match cursor {
            None => None,
            Some(text) => {
                let c: CursorClaims = self
                    .key
                    .open(CURSOR, text)
                    .map_err(|e| HistoryError::Cursor(seal_error(e)))?;
                if c.t != tenant.as_str() {
                    return Err(HistoryError::Cursor("issued to another tenant".into()));
                }
                if c.q != fingerprint {
                    return Err(HistoryError::Cursor(
                        "issued for another query: send the same filters, or start again without a cursor"
                            .into(),
                    ));
                }
                if c.x < now.timestamp() {
                    return Err(HistoryError::Cursor(
                        "expired: start again without a cursor".into(),
                    ));
                }
                let at = DateTime::from_timestamp_micros(c.o)
                    .ok_or_else(|| HistoryError::Cursor("time out of range".into()))?;
                Some((at, c.e))
            }
        };
        let upper_day = match (&before, query.to) {
            (Some((at, _)), Some(to)) => Some((*at).min(to).date_naive()),
            (Some((at, _)), None) => Some(at.date_naive()),
            (None, to) => to.map(|t| t.date_naive()),
        };
        let lower_day = query.from.map(|f| f.date_naive());
        let before_ref = before.as_ref();
        let keep = move |r: &AuditRecord| {
            query.matches(r)
                && before_ref
                    .is_none_or(|(at, id)| (r.occurred_at, r.event_id.as_str()) < (*at, id))
        };
        let below = before.as_ref().map(|(at, _)| *at);
        let mut attempts = ReadAttempts::default();
        let mut rows = loop {
            let days: Vec<(NaiveDate, DayFiles)> = self
                .days_newest_first(tenant)
                .await?
                .into_iter()
                .filter(|(d, _)| upper_day.is_none_or(|u| *d <= u))
                .filter(|(d, _)| lower_day.is_none_or(|l| *d >= l))
                .collect();
            match self
                .newest_first(tenant, days, limit + 1, below, &keep)
                .await?
            {
                Ok(rows) => break rows,
                Err(key) => attempts.vanished(key)?,
            }
        };
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) if more => Some(self.key.seal(
                CURSOR,
                &CursorClaims {
                    t: tenant.as_str().to_owned(),
                    q: fingerprint,
                    o: micros(last.occurred_at),
                    e: last.event_id.as_str().to_owned(),
                    x: now.timestamp()
                        + i64::try_from(self.config.cursor_ttl.as_secs()).unwrap_or(3600),
                },
            )),
            _ => None,
        };
        Ok(Page { events: rows, next })
    }

    /// The days that may hold the tenant's rows, newest first, with its parts of each:
    /// one listing of its parts and one of the ingest tier's days, whatever their size.
    async fn days_newest_first(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(NaiveDate, DayFiles)>, StorageError> {
        let mut days: std::collections::BTreeMap<NaiveDate, DayFiles> = self
            .reader
            .parts(tenant)
            .await?
            .into_iter()
            .map(|(day, parts)| {
                (
                    day,
                    DayFiles {
                        parts,
                        ingest_dir: None,
                    },
                )
            })
            .collect();
        for dir in self.reader.blobs().list_prefixes(INGEST_PREFIX).await? {
            let day = dir
                .strip_prefix(INGEST_PREFIX)
                .and_then(|d| d.strip_prefix("dt="))
                .and_then(|d| d.strip_suffix('/'))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            if let Some(day) = day {
                days.entry(day).or_default().ingest_dir = Some(dir);
            }
        }
        Ok(days.into_iter().rev().collect())
    }

    /// At least `want` rows passing `keep`, newest first (or all there are), reading
    /// days newest first. Within a day, the tenant's parts are read, then the ingest
    /// files newest first (their names sort by their newest occurred_at, which they
    /// carry), stopping when the rows in hand are newer than anything the remaining
    /// files hold. A busy tenant's first page lists the day's first 1,000 ingest files
    /// and reads its newest few, not the whole day.
    async fn newest_first(
        &self,
        tenant: &TenantId,
        days: Vec<(NaiveDate, DayFiles)>,
        want: usize,
        below: Option<DateTime<Utc>>,
        keep: &(dyn Fn(&AuditRecord) -> bool + Sync),
    ) -> Result<Result<Vec<AuditRecord>, String>, StorageError> {
        let ahead = chrono::Duration::from_std(self.config.future_skew + self.config.clock_skew)
            .unwrap_or(chrono::Duration::MAX);
        // the newest a file can hold: from its name, else from when it was written
        let newest = |f: &ObjectInfo| {
            auditlog::ingest_file_newest(&f.key).or_else(|| f.modified.map(|m| m + ahead))
        };
        let blobs = self.reader.blobs();
        let mut out: Vec<AuditRecord> = Vec::new();
        for (_, files) in days {
            let mut day = Deduplicated::default();
            for f in &files.parts {
                if let Err(key) = self.reader.read_into(tenant, f, &mut day).await? {
                    return Ok(Err(key));
                }
            }
            let need = want.saturating_sub(out.len());
            if let Some(dir) = &files.ingest_dir {
                // names carrying their newest time first, in that order; a file without
                // one (an older name) is never skipped
                let by_newest = |files: &mut [ObjectInfo]| {
                    files.sort_by_key(|f| {
                        std::cmp::Reverse(newest(f).map_or(i64::MAX, |t| t.timestamp_micros()))
                    })
                };
                let mut listed = blobs.list_first(dir, FIRST_LISTING).await?;
                let mut complete = listed.len() < FIRST_LISTING;
                by_newest(&mut listed);
                let mut read = std::collections::HashSet::new();
                let mut i = 0;
                loop {
                    if i == listed.len() {
                        if complete {
                            break;
                        }
                        // more than the first listing: the rest of the day
                        listed = blobs.list(dir).await?;
                        listed.retain(|f| !read.contains(&f.key));
                        by_newest(&mut listed);
                        complete = true;
                        i = 0;
                        continue;
                    }
                    let f = &listed[i];
                    i += 1;
                    // every row newer than the cursor: nothing for this page
                    if let (Some((oldest, _)), Some(b)) =
                        (auditlog::ingest_file_span(&f.key), below)
                        && oldest > b
                    {
                        continue;
                    }
                    if let Some(bound) = newest(f)
                        && day
                            .rows()
                            .filter(|r| r.occurred_at > bound && keep(r))
                            .count()
                            >= need
                    {
                        break;
                    }
                    if let Err(key) = self.reader.read_into(tenant, f, &mut day).await? {
                        return Ok(Err(key));
                    }
                    read.insert(f.key.clone());
                }
            }
            let mut rows: Vec<AuditRecord> = day.into_rows().filter(|r| keep(r)).collect();
            rows.sort_by(|a, b| {
                (b.occurred_at, b.event_id.as_str()).cmp(&(a.occurred_at, a.event_id.as_str()))
            });
            out.extend(rows);
            if out.len() >= want {
                break;
            }
        }
        Ok(Ok(out))
    }

    /// The event with this id, payload included, if the tenant has one.
    pub async fn get(
        &self,
        tenant: &TenantId,
        event_id: &str,
    ) -> Result<Option<AuditRecord>, HistoryError> {
        // ULIDs and UUIDv7s carry their creation time, usually the event's day: look
        // there first, then everywhere, newest first
        let hint = id_time(event_id).map(|t| t.date_naive());
        let keep = |r: &AuditRecord| r.event_id.as_str() == event_id;
        let found = self
            .scan(
                tenant,
                |files| {
                    let mut files: Files = files.into_iter().rev().collect();
                    if let Some(h) = hint {
                        files.sort_by_key(|(d, _)| d.signed_duration_since(h).num_days().abs() > 1);
                    }
                    files
                },
                &keep,
                || None,
                |found: &mut Option<AuditRecord>, rows| {
                    if found.is_none() {
                        *found = rows.into_iter().next();
                    }
                    found.is_none()
                },
            )
            .await?;
        Ok(found)
    }

    /// The first checkpoint: before every event.
    pub fn start(&self, tenant: &TenantId) -> String {
        self.seal_checkpoint(tenant, i64::MIN, "")
    }

    /// A checkpoint before every event accepted at or after `at`: where a SIEM that
    /// starts today without the past begins.
    pub fn checkpoint_at(&self, tenant: &TenantId, at: DateTime<Utc>) -> String {
        self.seal_checkpoint(tenant, micros(at) - 1, AFTER_EVERY_ID)
    }

    fn seal_checkpoint(&self, tenant: &TenantId, ingested: i64, id: &str) -> String {
        self.key.seal(
            CHECKPOINT,
            &CheckpointClaims {
                t: tenant.as_str().to_owned(),
                i: ingested,
                e: id.to_owned(),
            },
        )
    }

    /// Up to `limit` events in the order they were accepted (`ingested_at`, then id),
    /// after `checkpoint` (None: from the beginning), and up to the horizon. An event
    /// that arrives late with an old `occurred_at` is still given: it is new in this
    /// order. Delivery is at least once: a copy written twice by a retry that could
    /// not tell whether its first write landed may come again, with the same event_id.
    pub async fn poll(
        &self,
        tenant: &TenantId,
        checkpoint: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<PollPage, HistoryError> {
        let limit = limit.clamp(1, MAX_POLL_LIMIT);
        let after: (i64, String) = match checkpoint {
            None => (i64::MIN, String::new()),
            Some(text) => {
                let c: CheckpointClaims = self
                    .key
                    .open(CHECKPOINT, text)
                    .map_err(|e| HistoryError::Checkpoint(seal_error(e)))?;
                if c.t != tenant.as_str() {
                    return Err(HistoryError::Checkpoint("issued to another tenant".into()));
                }
                (c.i, c.e)
            }
        };
        let lag = chrono::Duration::from_std(self.config.poll_lag).unwrap_or_default();
        let skew = chrono::Duration::from_std(self.config.clock_skew).unwrap_or_default();
        let horizon = now - lag;
        let horizon_us = micros(horizon);
        // a file last written at m holds nothing ingested after m (give or take skew)
        let oldest_useful = DateTime::from_timestamp_micros(after.0).map(|t| t - skew);
        let after_ref = &after;
        let keep = move |r: &AuditRecord| {
            let pos = (micros(r.ingested_at), r.event_id.as_str());
            pos > (after_ref.0, after_ref.1.as_str()) && pos.0 < horizon_us
        };
        let heap = self
            .scan(
                tenant,
                |files| {
                    files
                        .into_iter()
                        .map(|(d, fs)| {
                            let fs = fs
                                .into_iter()
                                .filter(|f| match (f.modified, oldest_useful) {
                                    (Some(m), Some(o)) => m >= o,
                                    _ => true,
                                })
                                .collect::<Vec<_>>();
                            (d, fs)
                        })
                        .filter(|(_, fs)| !fs.is_empty())
                        .collect()
                },
                &keep,
                BinaryHeap::new,
                |heap: &mut BinaryHeap<Ingested>, rows| {
                    // keep the `limit` earliest: a max-heap whose top is the latest kept
                    for r in rows {
                        heap.push(Ingested(r));
                        if heap.len() > limit {
                            heap.pop();
                        }
                    }
                    true
                },
            )
            .await?;
        let events: Vec<AuditRecord> = heap.into_sorted_vec().into_iter().map(|i| i.0).collect();
        let next = match events.last() {
            Some(last) if events.len() == limit => {
                self.seal_checkpoint(tenant, micros(last.ingested_at), last.event_id.as_str())
            }
            // everything before the horizon has been given: move up to it
            _ => {
                let edge = (horizon_us - 1, AFTER_EVERY_ID.to_owned());
                let (i, e) = if edge > after { edge } else { after };
                self.seal_checkpoint(tenant, i, &e)
            }
        };
        Ok(PollPage {
            events,
            next,
            horizon: Some(horizon),
            tree_size: None,
        })
    }
}

/// Ingest files listed at first for a day (one S3 request).
const FIRST_LISTING: usize = 1000;

/// One day's files for a newest-first read: the tenant's parts, and the ingest tier's
/// directory for the day if it has one (listed only when the read gets to the day).
#[derive(Debug, Default)]
struct DayFiles {
    parts: Vec<ObjectInfo>,
    ingest_dir: Option<String>,
}

/// Most events one poll returns: SIEMs catch up in big pages.
pub const MAX_POLL_LIMIT: usize = 10_000;

/// A record ordered by acceptance.
struct Ingested(AuditRecord);

impl Ingested {
    fn key(&self) -> (DateTime<Utc>, &str) {
        (self.0.ingested_at, self.0.event_id.as_str())
    }
}

impl PartialEq for Ingested {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Ingested {}
impl PartialOrd for Ingested {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ingested {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// The creation time a ULID or a UUIDv7 carries (48 bits of Unix milliseconds).
fn id_time(id: &str) -> Option<DateTime<Utc>> {
    if let Ok(u) = uuid::Uuid::parse_str(id)
        && u.get_version_num() == 7
    {
        let (secs, nanos) = u.get_timestamp()?.to_unix();
        return DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos);
    }
    const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if id.len() == 26 {
        let mut ms: u64 = 0;
        for c in id[..10].chars() {
            let v = CROCKFORD.find(c.to_ascii_uppercase())?;
            ms = ms.checked_mul(32)?.checked_add(u64::try_from(v).ok()?)?;
        }
        return DateTime::from_timestamp_millis(i64::try_from(ms).ok()?);
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn ids_carry_their_time() {
        let t = id_time("01JD5Z8Q4R0000000000000000").unwrap();
        assert_eq!(t.date_naive().to_string(), "2024-11-20");
        let u = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_763_719_200,
            0,
        ));
        assert_eq!(
            id_time(&u.to_string()).unwrap().date_naive().to_string(),
            "2025-11-21"
        );
        assert_eq!(id_time("evt-1"), None);
        assert_eq!(id_time(&uuid::Uuid::new_v4().to_string()), None);
    }
}
