//! One worker invocation: a step of a day's compaction (`steps`) named by a small JSON
//! request, answered with a small JSON. The compactor Lambda runs one per invocation,
//! so that the Step Functions state machine of template.yaml can fan the counts,
//! routes and folds out over bounded workers; `auditlog bench compaction` runs one per
//! process, to measure each worker alone:
//!
//! ```text
//! days → Map(day: plan → Map(count) → plan_fold → Map(route) → Map(fold) → finish) → summary
//! ```
//!
//! Every answer is small (indexes and totals, never file lists), because a state's
//! output is capped at 256 KB. `run` does a whole compaction in one invocation, for
//! small stacks and manual runs.

use std::sync::Arc;

use super::steps::{self, Attempt};
use super::{CompactionReport, Compactor, CompactorConfig};
use crate::ports::{BlobStore, PartitionCatalog};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What the state machine asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The days with ingest files to fold (closed days unless configured otherwise).
    Days,
    Plan {
        day: NaiveDate,
    },
    Count {
        attempt: Attempt,
        task: usize,
    },
    PlanFold {
        attempt: Attempt,
    },
    Route {
        attempt: Attempt,
        task: usize,
    },
    Fold {
        attempt: Attempt,
        unit: usize,
    },
    Finish {
        attempt: Attempt,
    },
    /// The per-day results of the Map over days; fails if any day failed, so that the
    /// execution (and its alarm) says so.
    Summary {
        days: Vec<serde_json::Value>,
    },
    /// Everything in one invocation.
    Run,
}

/// A step's answer: only what the next state needs, and totals for the logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<NaiveDate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
    /// Indexes for the next Map state to iterate over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_tasks: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_tasks: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<usize>>,
    /// Totals of the step (rows, files, damaged...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Storage(#[from] crate::reader::StorageError),
    #[error("{failed} of {days} days failed to compact: {details}")]
    DaysFailed {
        failed: usize,
        days: usize,
        details: String,
    },
}

pub struct Handler<B> {
    pub blobs: B,
    pub config: CompactorConfig,
    pub catalog: Option<Arc<dyn PartitionCatalog>>,
}

/// The run's totals: each day's `finish` totals added up (lists, such as the damaged
/// files, by their length), and the number of days: what `auditlog compact` reports.
pub fn summed(days: &[serde_json::Value]) -> serde_json::Value {
    let mut sum = serde_json::Map::new();
    sum.insert("days".into(), days.len().into());
    for totals in days.iter().filter_map(|d| d.get("totals")?.as_object()) {
        for (k, v) in totals {
            let n = match v {
                serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
                serde_json::Value::Array(a) => a.len() as u64,
                _ => continue,
            };
            let at = sum.entry(k.clone()).or_insert(0.into());
            *at = (at.as_u64().unwrap_or(0) + n).into();
        }
    }
    serde_json::Value::Object(sum)
}

fn totals<T: Serialize>(t: &T) -> Option<serde_json::Value> {
    serde_json::to_value(t).ok()
}

impl<B: BlobStore + Clone + 'static> Handler<B> {
    pub async fn handle(&self, step: Step) -> Result<Answer, StepError> {
        let b = &self.blobs;
        Ok(match step {
            Step::Days => {
                steps::sweep_scratch(b).await?;
                Answer {
                    days: Some(steps::days(b, self.config.before).await?),
                    ..Answer::default()
                }
            }
            Step::Plan { day } => match steps::plan_day(b, day, &self.config).await? {
                Some((attempt, plan)) => Answer {
                    attempt: Some(attempt),
                    count_tasks: Some((0..plan.count_tasks.len()).collect()),
                    totals: totals(&serde_json::json!({"files": plan.files.len()})),
                    ..Answer::default()
                },
                None => Answer::default(),
            },
            Step::Count { attempt, task } => {
                let c = steps::count(b, &attempt, task).await?;
                let rows: usize = c.rows.iter().map(|(_, n)| n).sum();
                Answer {
                    totals: totals(&serde_json::json!({
                        "files": c.rows.len(), "rows": rows, "tenants": c.tenants.len(),
                        "damaged": c.damaged.len()
                    })),
                    ..Answer::default()
                }
            }
            Step::PlanFold { attempt } => {
                let u = steps::plan_fold(b, &attempt, &self.config).await?;
                Answer {
                    route_tasks: Some((0..u.route_tasks.len()).collect()),
                    units: Some((0..u.units.len()).collect()),
                    totals: totals(&serde_json::json!({
                        "superseded": u.superseded.len(), "damaged": u.damaged.len(),
                        "max_unit_estimate": u.units.iter().map(|x| x.est_rows).max().unwrap_or(0)
                    })),
                    attempt: Some(attempt),
                    ..Answer::default()
                }
            }
            Step::Route { attempt, task } => Answer {
                totals: totals(&steps::route(b, &attempt, task).await?),
                ..Answer::default()
            },
            Step::Fold { attempt, unit } => {
                let mut f = steps::fold(b, &attempt, unit, &self.config).await?;
                f.outputs.clear(); // recorded in the unit's completion object
                Answer {
                    totals: totals(&f),
                    ..Answer::default()
                }
            }
            Step::Finish { attempt } => Answer {
                totals: totals(&steps::finish(b, &attempt, self.catalog.as_deref()).await?),
                ..Answer::default()
            },
            Step::Summary { days } => {
                let failed: Vec<&serde_json::Value> =
                    days.iter().filter(|d| d.get("error").is_some()).collect();
                tracing::info!(
                    days = days.len(),
                    compaction_failed_days = failed.len(),
                    "compaction finished"
                );
                if !failed.is_empty() {
                    return Err(StepError::DaysFailed {
                        failed: failed.len(),
                        days: days.len(),
                        details: serde_json::to_string(&failed).unwrap_or_default(),
                    });
                }
                Answer {
                    totals: Some(summed(&days)),
                    ..Answer::default()
                }
            }
            Step::Run => {
                let mut c = Compactor::new(self.blobs.clone(), self.config.clone());
                if let Some(cat) = &self.catalog {
                    c = c.with_catalog(cat.clone());
                }
                let r: CompactionReport = c.run().await?;
                tracing::info!(
                    days = r.days,
                    compaction_failed_days = r.failed_days.len(),
                    rows = r.totals.rows_written,
                    "compaction finished"
                );
                if !r.failed_days.is_empty() {
                    return Err(StepError::DaysFailed {
                        failed: r.failed_days.len(),
                        days: r.days + r.failed_days.len(),
                        details: serde_json::to_string(&r.failed_days).unwrap_or_default(),
                    });
                }
                Answer {
                    totals: totals(&r),
                    ..Answer::default()
                }
            }
        })
    }
}
