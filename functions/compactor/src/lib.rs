//! The compactor Lambda: each invocation is one worker step of a day's compaction, as
//! the compaction state machine of template.yaml asks (`Step`, answered by `Handler`,
//! both in `auditlog::compaction::worker`). `main.rs` is wiring only.

pub use auditlog::compaction::worker::{Answer, Handler, Step, StepError};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use auditlog::memory::MemoryBlobStore;
    use auditlog::{AuditRecord, TenantReader, encode_parquet, ingest_object_key};
    use auditlog::{BlobStore, CompactorConfig};
    use envelope::{SchemaRegistry, TenantId};
    use serde_json::json;
    use std::sync::Arc;

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
        // the summary adds the days' totals up, as the state machine passes them on
        let ok = h
            .handle(Step::Summary {
                days: vec![
                    json!({"day": "2026-11-20", "totals": done["totals"]}),
                    json!({"day": "2026-11-19", "totals": {"rows_written": 5, "damaged": [{}]}}),
                ],
            })
            .await
            .unwrap();
        let sum = ok.totals.unwrap();
        assert_eq!(sum["days"], 2);
        assert_eq!(sum["rows_written"], 125);
        assert_eq!(sum["ingest_files_folded"], 3);
        assert_eq!(sum["damaged"], 1);
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
