//! The compactor Lambda's handler. One invocation runs one step of a day's compaction
//! (`auditlog::compaction::steps`), so that the Step Functions state machine of
//! template.yaml can fan the counts, routes and folds out over bounded workers:
//!
//! ```text
//! days → Map(day: plan → Map(count) → plan_fold → Map(route) → Map(fold) → finish) → summary
//! ```
//!
//! Every answer is small (indexes and totals, never file lists), because a state's
//! output is capped at 256 KB. `run` does a whole compaction in one invocation, for
//! small stacks and manual runs. `main.rs` is wiring only.

use std::sync::Arc;

use auditlog::compaction::steps::{self, Attempt};
use auditlog::{BlobStore, CompactionReport, Compactor, CompactorConfig, PartitionCatalog};
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
    Storage(#[from] auditlog::StorageError),
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

fn totals<T: Serialize>(t: &T) -> Option<serde_json::Value> {
    serde_json::to_value(t).ok()
}

impl<B: BlobStore + Clone> Handler<B> {
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
                Answer::default()
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
                    rows = r.rows_written,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use auditlog::memory::MemoryBlobStore;
    use auditlog::{AuditRecord, TenantReader, encode_parquet, ingest_object_key};
    use envelope::{SchemaRegistry, TenantId};
    use serde_json::json;

    fn record(tenant: &str, n: usize) -> AuditRecord {
        let v = json!({
            "version": "0", "id": format!("bus-{n}"), "detail-type": "app.doc.viewed",
            "source": "app", "account": "1", "time": "2026-11-20T10:00:00Z", "region": "r",
            "resources": [],
            "detail": {"metadata": {
                "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{n:012}"), "tenant_id": tenant,
                "event_type": "app.doc.viewed", "schema_version": 1,
                "occurred_at": "2026-11-20T10:00:00Z", "producer": "app",
                "actor": {"type": "user", "id": "u"}},
                "payload": {"action": "view"}}
        })
        .to_string();
        let e = envelope::decode_bus_event(&v, &SchemaRegistry::builtin().unwrap(), 1 << 20)
            .unwrap()
            .into_owned();
        AuditRecord::from_event(e, chrono::Utc::now())
    }

    /// Drives the steps as the state machine does, through the JSON the states pass.
    #[tokio::test]
    async fn the_steps_fold_a_day_as_the_state_machine_runs_them() {
        let blobs = Arc::new(MemoryBlobStore::default());
        for batch in 0..3 {
            let rows: Vec<AuditRecord> = (0..40)
                .map(|n| record(&format!("t{}", n % 4), batch * 100 + n))
                .collect();
            let key = ingest_object_key(rows[0].dt(), &rows);
            blobs
                .put(
                    &key,
                    encode_parquet(&rows, auditlog::Tier::Ingest, 1)
                        .unwrap()
                        .into(),
                )
                .await
                .unwrap();
        }
        let h = Handler {
            blobs: blobs.clone(),
            config: CompactorConfig {
                unit_rows: 25,
                task_rows: 50,
                ..CompactorConfig::default()
            },
            catalog: None,
        };
        let call = |step: serde_json::Value| {
            let h = &h;
            async move {
                let step: Step = serde_json::from_value(step).unwrap();
                serde_json::to_value(h.handle(step).await.unwrap()).unwrap()
            }
        };
        let days = call(json!({"step": "days"})).await;
        assert_eq!(days["days"], json!(["2026-11-20"]));
        let plan = call(json!({"step": "plan", "day": "2026-11-20"})).await;
        let attempt = plan["attempt"].clone();
        for task in plan["count_tasks"].as_array().unwrap() {
            call(json!({"step": "count", "attempt": attempt, "task": task})).await;
        }
        let fold = call(json!({"step": "plan_fold", "attempt": attempt})).await;
        assert!(fold["units"].as_array().unwrap().len() >= 4, "{fold}");
        for task in fold["route_tasks"].as_array().unwrap() {
            call(json!({"step": "route", "attempt": attempt, "task": task})).await;
        }
        for unit in fold["units"].as_array().unwrap() {
            let f = call(json!({"step": "fold", "attempt": attempt, "unit": unit})).await;
            assert!(f["totals"]["input_rows"].as_u64().unwrap() <= 60, "{f}");
        }
        let done = call(json!({"step": "finish", "attempt": attempt})).await;
        assert_eq!(done["totals"]["rows_written"], 120);
        assert_eq!(done["totals"]["ingest_files_folded"], 3);
        let rows = TenantReader::new(blobs.clone())
            .read(&TenantId::parse("t1").unwrap(), None, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 30);
        // a day that failed makes the summary, and so the execution, fail
        let ok = h
            .handle(Step::Summary {
                days: vec![json!({"day": "2026-11-20"})],
            })
            .await;
        assert!(ok.is_ok());
        let err = h
            .handle(Step::Summary {
                days: vec![
                    json!({"day": "2026-11-20"}),
                    json!({"day": "2026-11-21", "error": {"Error": "X"}}),
                ],
            })
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("1 of 2 days failed"), "{err}");
    }
}
