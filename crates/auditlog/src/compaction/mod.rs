//! Folds the ingest tier into tenant-partitioned files: per tenant-day one or more part
//! files (hash ranges of event ids, `parts`), one row per event id, sorted by time.
//!
//! The work is cut into steps (`steps`) whose every worker is bounded in rows and
//! memory whatever the size of the day (`plan`): on AWS they run as the Map states of
//! a Step Functions execution, here `Compactor` runs them in one process. Failures are
//! isolated per day: a day that fails is reported and retried by the next run, the
//! other days go on; a file that cannot be decoded is moved aside with its reason.
//!
//! Crash safety comes from the order of steps: the new parts are written under names
//! derived from their rows, conflicting copies are quarantined, and only when every unit
//! of the day has written does `finish` register the partitions and remove what was
//! folded. A crash anywhere leaves at worst copies, which readers deduplicate and the
//! next run folds again.

pub mod parts;
pub mod plan;
pub mod steps;
pub mod worker;

use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use serde::Serialize;

use crate::layout::quarantine_object_key;
use crate::ports::{BlobStore, PartitionCatalog};
use crate::reader::{Conflict, StorageError};
use crate::subscriber::{CONFLICT, QuarantineRecord};
use steps::Finished;

#[derive(Debug, Clone)]
pub struct CompactorConfig {
    pub zstd_level: i32,
    /// Only fold days strictly before this one (None: every day). Folding a closed day
    /// once avoids rewriting a tenant-day many times while the day is still filling.
    pub before: Option<NaiveDate>,
    /// Compressed ingest bytes one count task reads (it decodes only `tenant_id`).
    pub count_task_bytes: u64,
    /// Rows one route task holds: the bound on its memory.
    pub task_rows: usize,
    /// Rows (fresh and existing) one fold unit holds: the bound on its memory.
    pub unit_rows: usize,
    /// Rows above which a range's rows are written as several parts.
    pub max_part_rows: usize,
    /// Tasks or units run at once by the one-process path.
    pub concurrency: usize,
    /// Fold only ingest files the integrator has put in the tenant logs (their marker
    /// under `trust/_integrated/`), so no row reaches the tenant tier without its leaf.
    pub integrated_only: bool,
    /// Lock each part written until its day's end of retention (`put_retained`): the
    /// tenant's days from the published `RetentionSnapshot`, else these. None: no lock
    /// per part (a bucket's default retention still applies).
    pub lock_parts_default_days: Option<u32>,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            zstd_level: 3,
            before: None,
            count_task_bytes: 256 * 1024 * 1024,
            task_rows: 200_000,
            unit_rows: 200_000,
            max_part_rows: 250_000,
            concurrency: 1,
            integrated_only: false,
            lock_parts_default_days: None,
        }
    }
}

/// A day that could not be compacted this run; its ingest files stay (still visible to
/// every reader) and the next run tries again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFailure {
    pub day: NaiveDate,
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    pub days: usize,
    pub failed_days: Vec<DayFailure>,
    pub ingest_rows: usize,
    pub route_tasks: usize,
    /// The most rows one route task or fold unit held (the worker bound at work).
    pub max_task_rows: usize,
    pub max_unit_rows: usize,
    /// What the days' units and finishes did, added up.
    #[serde(flatten)]
    pub totals: Finished,
}

impl CompactionReport {
    fn add_day(&mut self, d: &DayOutcome) {
        self.days += 1;
        self.ingest_rows += d.ingest_rows;
        self.route_tasks += d.route_tasks;
        self.max_task_rows = self.max_task_rows.max(d.max_task_rows);
        self.max_unit_rows = self.max_unit_rows.max(d.max_unit_rows);
        self.totals += &d.finished;
    }
}

/// One day's compaction, run through in this process.
#[derive(Debug, Clone, Default)]
struct DayOutcome {
    ingest_rows: usize,
    route_tasks: usize,
    max_task_rows: usize,
    max_unit_rows: usize,
    finished: Finished,
}

pub struct Compactor<B> {
    blobs: B,
    config: CompactorConfig,
    catalog: Option<Arc<dyn PartitionCatalog>>,
}

impl<B: BlobStore + Clone + 'static> Compactor<B> {
    pub fn new(blobs: B, config: CompactorConfig) -> Self {
        Self {
            blobs,
            config,
            catalog: None,
        }
    }

    /// Registers every tenant-day partition written in a catalog before the folded
    /// ingest files are removed.
    pub fn with_catalog(mut self, catalog: Arc<dyn PartitionCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Folds every day with ingest files (before `before`). Fails only when the days
    /// cannot even be listed; a failing day is in `failed_days` and the rest go on.
    pub async fn run(&self) -> Result<CompactionReport, StorageError> {
        let mut report = CompactionReport::default();
        steps::sweep_scratch(&self.blobs).await?;
        for day in steps::days(&self.blobs, self.config.before).await? {
            match self.run_day(day).await {
                Ok(Some(d)) => report.add_day(&d),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(%day, error = %e, "compacting the day failed; the next run retries it");
                    report.failed_days.push(DayFailure {
                        day,
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok(report)
    }

    async fn run_day(&self, day: NaiveDate) -> Result<Option<DayOutcome>, StorageError> {
        let Some((attempt, plan)) = steps::plan_day(&self.blobs, day, &self.config).await? else {
            return Ok(None);
        };
        let (b, a, c) = (&self.blobs, &attempt, &self.config);
        let counts = self
            .each(plan.count_tasks.len(), |i| {
                let (b, a) = (b.clone(), a.clone());
                async move { steps::count(&b, &a, i).await }
            })
            .await?;
        let units = steps::plan_fold(b, a, c).await?;
        let routed = self
            .each(units.route_tasks.len(), |i| {
                let (b, a) = (b.clone(), a.clone());
                async move { steps::route(&b, &a, i).await }
            })
            .await?;
        let folded = self
            .each(units.units.len(), |i| {
                let (b, a, c) = (b.clone(), a.clone(), c.clone());
                async move { steps::fold(&b, &a, i, &c).await }
            })
            .await?;
        let finished = steps::finish(b, a, self.catalog.as_deref()).await?;
        Ok(Some(DayOutcome {
            ingest_rows: counts.iter().flat_map(|c| &c.rows).map(|(_, n)| n).sum(),
            route_tasks: routed.len(),
            max_task_rows: routed.iter().map(|r| r.rows).max().unwrap_or(0),
            max_unit_rows: folded.iter().map(|f| f.input_rows).max().unwrap_or(0),
            finished,
        }))
    }

    /// Runs `n` tasks, `concurrency` at a time on the runtime's threads (decoding and
    /// encoding are CPU work), and returns their results in order.
    async fn each<T, F, Fut>(&self, n: usize, task: F) -> Result<Vec<T>, StorageError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, StorageError>> + Send + 'static,
        T: Send + 'static,
    {
        futures::stream::iter((0..n).map(|i| tokio::spawn(task(i))))
            .buffered(self.config.concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|joined| {
                joined.map_err(|e| StorageError::Plan {
                    key: "compaction worker".into(),
                    reason: e.to_string(),
                })?
            })
            .collect()
    }
}

/// Writes a conflicting copy found in storage to quarantine, named by its content so
/// that finding it again overwrites the same record.
pub(crate) async fn quarantine_conflict<B: BlobStore>(
    blobs: &B,
    c: &Conflict,
) -> Result<(), StorageError> {
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
