//! The integrator Lambda: on a schedule, every ingest file not yet integrated goes into
//! its tenants' transparency logs (`auditlog::integration::integrate`), and every log
//! whose checkpoint is due gets one, signed by the KMS key. `main.rs` is wiring only.
//!
//! One writer per tenant log: the function runs with a reserved concurrency of one
//! (template.yaml), so two runs never overlap; a second writer would still be noticed
//! (`IntegrateError::Moved`) rather than overwrite a committed size.

use auditlog::BlobStore;
use auditlog::integration::{
    BlobLog, IntegrationError, IntegrationReport, RetentionReport, apply_retention, integrate,
};
use chrono::{DateTime, Utc};
use transparency::checkpoint::CheckpointSigner;
use transparency::integrate::{CheckpointPolicy, Integrator, LeafIndex};

pub struct Handler<B, I, S> {
    pub blobs: B,
    pub index: I,
    pub signer: S,
    /// The first part of every tenant log's origin (`<log name>/<tenant>`).
    pub log_name: String,
    pub policy: CheckpointPolicy,
}

/// What the invocation asks: the schedule's input (`{"task": "retention"}`), or
/// integration for anything else (a schedule without input, a test invoke).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Integrate,
    Retention,
}

impl Task {
    pub fn of(event: &serde_json::Value) -> Result<Self, String> {
        match event.get("task").and_then(|t| t.as_str()) {
            None | Some("integrate") => Ok(Task::Integrate),
            Some("retention") => Ok(Task::Retention),
            Some(other) => Err(format!(
                "unknown task {other:?}: \"integrate\" or \"retention\""
            )),
        }
    }
}

impl<B: BlobStore + Clone, I: LeafIndex, S: CheckpointSigner> Handler<B, I, S> {
    fn integrator<'a>(&'a self, store: &'a BlobLog<'a>) -> Integrator<'a> {
        Integrator {
            store,
            index: &self.index,
            signer: &self.signer,
            log_name: &self.log_name,
            policy: self.policy,
        }
    }

    /// Applies each tenant's retention (`auditlog::integration::apply_retention`).
    pub async fn retention(
        &self,
        settings: &dyn tenants::RetentionSettings,
        default: tenants::Retention,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, IntegrationError> {
        let store = BlobLog(&self.blobs);
        let report = apply_retention(
            &self.blobs,
            &self.integrator(&store),
            settings,
            default,
            now,
        )
        .await?;
        tracing::info!(
            tenants = report.tenants,
            expired_tenants = report.expired_tenants,
            files = report.files,
            rows = report.rows,
            "retention applied"
        );
        Ok(report)
    }

    /// One run: integrates what the ingest tier holds, then signs the checkpoints due.
    pub async fn handle(&self, now: DateTime<Utc>) -> Result<IntegrationReport, IntegrationError> {
        let store = BlobLog(&self.blobs);
        let integrator = self.integrator(&store);
        let report = integrate(&self.blobs, &integrator, now, false).await?;
        tracing::info!(
            files = report.files,
            added = report.added,
            duplicates = report.duplicates,
            conflicts = report.conflicts,
            tenants = report.tenants,
            checkpoints = report.checkpoints,
            "integrated"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use auditlog::memory::MemoryBlobStore;
    use auditlog::{AuditRecord, INTEGRATED_PREFIX, encode_parquet, ingest_object_key};
    use envelope::{SchemaRegistry, TenantId};
    use serde_json::json;
    use std::sync::Arc;
    use transparency::checkpoint::{self as cp, LocalKey};
    use transparency::integrate::InMemoryLog;

    #[test]
    fn the_task_is_the_schedules_input() {
        assert_eq!(Task::of(&json!({"task": "retention"})), Ok(Task::Retention));
        assert_eq!(
            Task::of(&json!({"detail-type": "Scheduled Event"})),
            Ok(Task::Integrate)
        );
        assert!(
            Task::of(&json!({"task": "compact"}))
                .unwrap_err()
                .contains("unknown task")
        );
    }

    fn record(tenant: &str, n: usize, at: DateTime<Utc>) -> AuditRecord {
        let v = json!({
            "version": "0", "id": format!("bus-{n}"), "detail-type": "app.doc.viewed",
            "source": "app", "account": "1", "time": "2026-11-20T10:00:00Z", "region": "r",
            "resources": [],
            "detail": {"metadata": {
                "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{n:012}"), "tenant_id": tenant,
                "event_type": "app.doc.viewed", "schema_version": 1,
                "occurred_at": "2026-11-20T10:00:00Z", "producer": "app",
                "actor": {"type": "user", "id": "u"}},
                "payload": {"action": "view", "n": n}}
        })
        .to_string();
        let e = envelope::decode_bus_event(&v, &SchemaRegistry::builtin().unwrap(), 1 << 20)
            .unwrap()
            .into_owned();
        AuditRecord::from_event(e, at)
    }

    /// A handler over `blobs`, an index in memory and `key`.
    fn handler(
        blobs: &Arc<MemoryBlobStore>,
        key: &LocalKey,
        policy: CheckpointPolicy,
    ) -> Handler<Arc<MemoryBlobStore>, InMemoryLog, LocalKey> {
        Handler {
            blobs: blobs.clone(),
            index: InMemoryLog::default(),
            signer: key.clone(),
            log_name: "audit.example".into(),
            policy,
        }
    }

    async fn write_file(blobs: &MemoryBlobStore, rows: &[AuditRecord]) {
        let key = ingest_object_key(rows[0].dt(), rows);
        let bytes = encode_parquet(rows, auditlog::Tier::Ingest, 1).unwrap();
        blobs.put(&key, bytes.into()).await.unwrap();
    }

    #[tokio::test]
    async fn a_scheduled_run_integrates_new_files_and_signs_only_when_due() {
        let blobs = Arc::new(MemoryBlobStore::default());
        let key = LocalKey::generate("audit.example").unwrap();
        let h = handler(
            &blobs,
            &key,
            CheckpointPolicy {
                every_events: 1_000,
                every: chrono::Duration::minutes(1),
            },
        );
        let t0 = Utc::now();
        let rows: Vec<AuditRecord> = (0..20)
            .map(|n| record(&format!("t{}", n % 2), n, t0))
            .collect();
        write_file(&blobs, &rows).await;
        let first = h.handle(t0).await.unwrap();
        assert_eq!((first.files, first.added, first.tenants), (1, 20, 2));
        assert_eq!(first.checkpoints, 2, "a new log is signed at once");
        assert_eq!(blobs.list(INTEGRATED_PREFIX).await.unwrap().len(), 1);

        // more events, 10 s later: integrated, but no checkpoint is due yet
        let more: Vec<AuditRecord> = (20..26).map(|n| record("t0", n, t0)).collect();
        write_file(&blobs, &more).await;
        let second = h.handle(t0 + chrono::Duration::seconds(10)).await.unwrap();
        assert_eq!((second.files, second.added, second.checkpoints), (1, 6, 0));
        // a run with nothing new still signs the log whose interval has passed
        let third = h.handle(t0 + chrono::Duration::seconds(70)).await.unwrap();
        assert_eq!((third.files, third.added, third.checkpoints), (0, 0, 1));

        let keys = cp::trusted(&[key.verifier_key().to_owned()]).unwrap();
        let anchor = auditlog::integration::TrustAnchor {
            trusted: &keys,
            log_name: "audit.example",
            pinned: None,
        };
        let t = TenantId::parse("t0").unwrap();
        let (report, pending) = auditlog::integration::verify_tenant(&blobs, &h.index, &anchor, &t)
            .await
            .unwrap();
        assert!(report.ok() && pending == 0, "{:?}", report.findings);
        assert_eq!(report.rows_verified, 16);
    }

    /// Retention settings in memory (the adapters have their conformance suite).
    #[derive(Default)]
    struct Settings(std::sync::Mutex<std::collections::HashMap<TenantId, tenants::Retention>>);

    #[async_trait::async_trait]
    impl tenants::RetentionSettings for Settings {
        async fn retention(
            &self,
            t: &TenantId,
        ) -> Result<Option<tenants::Retention>, tenants::DirectoryError> {
            Ok(self.0.lock().unwrap().get(t).copied())
        }
        async fn put_retention(
            &self,
            t: &TenantId,
            r: tenants::Retention,
        ) -> Result<(), tenants::DirectoryError> {
            self.0.lock().unwrap().insert(t.clone(), r);
            Ok(())
        }
    }

    #[tokio::test]
    async fn retention_follows_each_tenants_setting_and_is_recorded_in_its_log() {
        use tenants::{Retention, RetentionSettings as _};
        let blobs = Arc::new(MemoryBlobStore::default());
        let key = LocalKey::generate("audit.example").unwrap();
        let h = handler(&blobs, &key, CheckpointPolicy::default());
        // both tenants' events of 2026-11-20, compacted after integration
        let accepted: DateTime<Utc> = "2026-11-20T10:00:01Z".parse().unwrap();
        let rows: Vec<AuditRecord> = (0..10)
            .map(|n| record(if n < 6 { "keeps" } else { "short" }, n, accepted))
            .collect();
        write_file(&blobs, &rows).await;
        h.handle(accepted).await.unwrap();
        auditlog::Compactor::new(
            blobs.clone(),
            auditlog::CompactorConfig {
                integrated_only: true,
                ..auditlog::CompactorConfig::default()
            },
        )
        .run()
        .await
        .unwrap();
        let settings = Settings::default();
        settings
            .put_retention(
                &TenantId::parse("short").unwrap(),
                Retention::days(90).unwrap(),
            )
            .await
            .unwrap();
        let default = Retention::days(365).unwrap();
        // 100 days on: past "short"'s 90, within the default's 365
        let later = accepted + chrono::Duration::days(100);
        let r = h.retention(&settings, default, later).await.unwrap();
        assert_eq!(
            (r.tenants, r.expired_tenants, r.rows, r.ranges),
            (2, 1, 4, 1)
        );
        let keys = cp::trusted(&[key.verifier_key().to_owned()]).unwrap();
        let anchor = auditlog::integration::TrustAnchor {
            trusted: &keys,
            log_name: "audit.example",
            pinned: None,
        };
        for (t, kept, removed) in [("short", 0, 4), ("keeps", 6, 0)] {
            let t = TenantId::parse(t).unwrap();
            let (report, _) = auditlog::integration::verify_tenant(&blobs, &h.index, &anchor, &t)
                .await
                .unwrap();
            assert!(report.ok(), "{t}: {:?}", report.findings);
            assert_eq!(
                (report.rows_verified, report.removed_by_policy),
                (kept, removed),
                "{t}"
            );
        }
        // nothing more to do the next day
        let again = h
            .retention(&settings, default, later + chrono::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(again.files, 0);
    }

    #[tokio::test]
    async fn an_undecodable_ingest_file_fails_the_run_and_names_the_file() {
        let blobs = Arc::new(MemoryBlobStore::default());
        let key = LocalKey::generate("audit.example").unwrap();
        let h = handler(&blobs, &key, CheckpointPolicy::default());
        let rows = vec![record("t0", 1, Utc::now())];
        let file = ingest_object_key(rows[0].dt(), &rows);
        blobs
            .put(&file, b"not parquet".to_vec().into())
            .await
            .unwrap();
        let err = h.handle(Utc::now()).await.unwrap_err();
        assert!(err.to_string().contains(&file), "{err}");
        assert!(blobs.list(INTEGRATED_PREFIX).await.unwrap().is_empty());
    }
}
