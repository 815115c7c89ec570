//! An audit API client for tests: requests through the same router `auditlog serve` and
//! the audit-api Lambda run (`tower::ServiceExt::oneshot`), over any blob store,
//! directory and export store: the embedded ones, or S3 and DynamoDB on moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::sync::Arc;

use audit_api::{AuditApi, AuditApiParts, RecordedTrail, ViewerClaims, mint_viewer_token};
use auditlog::{
    AuditRecord, BlobStore, FixedClock, PartitionKey, Tier, encode_parquet, ingest_object_key,
};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, TimeZone, Utc};
use envelope::{EventId, TenantId};
use history::{ExportStore, HistoryConfig, SealKey};
use http_body_util::BodyExt;
use serde_json::Value;
use tenants::{Credential, OneTimeTokens, Scope, TenantDirectory};
use tower::ServiceExt;

pub const ACME_READ: &str = "audit_acme_read_token_000000000000";
pub const ACME_EXPORT: &str = "audit_acme_export_token_0000000000";
pub const GLOBEX_ALL: &str = "audit_globex_token_000000000000000";
pub const ACME_SCIM: &str = "scim_acme_token_00000000000000000";
pub const VIEWER_SECRET: &[u8] = b"viewer-secret-for-tests-0123456789abcdef";

/// The tenant logs' name in origin lines (`<LOG_NAME>/<tenant>`).
pub const LOG_NAME: &str = "audit.example";

pub struct AuditHarness {
    pub app: axum::Router,
    pub api: Arc<AuditApi>,
    pub trail: Arc<RecordedTrail>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: FixedClock,
    /// Where each integrated event is in its tenant's log.
    pub leaves: Arc<transparency::integrate::InMemoryLog>,
    /// The key the tenant logs' checkpoints are signed with (`integrate`).
    pub log_key: transparency::LocalKey,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// 2026-11-`day` at `secs` past midnight.
pub fn at(day: u32, secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A UUID per readable name (tests compare names; the name rides in `request_id`).
pub fn eid(name: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

pub fn record(tenant: &str, name: &str, occurred: DateTime<Utc>, actor: &str) -> AuditRecord {
    let payload = format!(r#"{{"name":"{name}","secret_note":"for {tenant} only"}}"#);
    AuditRecord {
        tenant_id: TenantId::parse(tenant).unwrap(),
        event_id: EventId::parse(&eid(name)).unwrap(),
        event_type: "app.document.shared".into(),
        schema_version: 1,
        occurred_at: occurred,
        ingested_at: occurred + Duration::seconds(2),
        producer: "docs".into(),
        source: "app.docs".into(),
        actor_type: "user".into(),
        actor_id: actor.into(),
        actor_name: Some(format!("{actor} Lovelace")),
        action: "share".into(),
        target_type: Some("document".into()),
        target_id: Some(format!("doc-{name}")),
        target_name: Some("=HYPERLINK(\"http://evil\")".into()),
        outcome: "success".into(),
        correlation_id: None,
        request_id: Some(name.to_owned()),
        source_ip: None,
        user_agent: None,
        payload_sha256: auditlog::payload_sha256(&payload),
        payload,
        bus_event_id: format!("bus-{name}"),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        leaf_index: None,
    }
}

pub fn names(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

impl AuditHarness {
    /// Tenants `acme` (a read token, an export token, a SCIM token) and `globex` (one
    /// token with both audit scopes), over these stores.
    pub async fn over(
        blobs: Arc<dyn BlobStore>,
        directory: Arc<dyn TenantDirectory>,
        redeemed: Arc<dyn OneTimeTokens>,
        exports: Arc<dyn ExportStore>,
        inline_export_bytes: u64,
    ) -> Self {
        let now = at(25, 0);
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        for (token, tenant, holder, scopes) in [
            (ACME_READ, &acme, "splunk", vec![Scope::AuditRead]),
            (
                ACME_EXPORT,
                &acme,
                "scripts",
                vec![Scope::AuditRead, Scope::AuditExport],
            ),
            (
                GLOBEX_ALL,
                &globex,
                "sentinel",
                vec![Scope::AuditRead, Scope::AuditExport],
            ),
            (ACME_SCIM, &acme, "entra", vec![Scope::Scim]),
        ] {
            directory
                .put_credential(&Credential::with_scopes(
                    token,
                    tenant.clone(),
                    holder,
                    scopes,
                    now,
                ))
                .await
                .unwrap();
        }
        let trail = Arc::new(RecordedTrail::default());
        let clock = FixedClock::new(now);
        let leaves = Arc::new(transparency::integrate::InMemoryLog::default());
        let api = AuditApi::new(AuditApiParts {
            blobs: blobs.clone(),
            directory,
            redeemed,
            exports,
            queue: None,
            trail: trail.clone(),
            clock: Arc::new(clock.clone()),
            seal: SealKey::new(&[9u8; 32]).unwrap(),
            viewer_secret: Some(VIEWER_SECRET.to_vec()),
            history: HistoryConfig::default(),
            inline_export_bytes,
            frame_ancestors: "'self'".into(),
            logs: Some(audit_api::proofs::TenantLogs {
                leaves: leaves.clone(),
                log_name: LOG_NAME.to_owned(),
            }),
        });
        AuditHarness {
            app: audit_api::router(api.clone()),
            api,
            trail,
            blobs,
            clock,
            leaves,
            log_key: transparency::LocalKey::generate(LOG_NAME).unwrap(),
        }
    }

    /// Puts every ingest file not yet integrated into the tenant logs, and signs.
    pub async fn integrate(&self) -> auditlog::integration::IntegrationReport {
        let store = auditlog::integration::BlobLog(self.blobs.as_ref());
        let integrator = transparency::integrate::Integrator {
            store: &store,
            index: self.leaves.as_ref(),
            signer: &self.log_key,
            log_name: LOG_NAME,
            policy: transparency::integrate::CheckpointPolicy::default(),
        };
        auditlog::integration::integrate(self.blobs.as_ref(), &integrator, self.clock_now(), true)
            .await
            .unwrap()
    }

    /// Writes rows as one ingest-tier file (one day's rows per call).
    pub async fn ingest(&self, rows: &[AuditRecord]) {
        let key = ingest_object_key(rows[0].occurred_at.date_naive(), rows);
        self.blobs
            .put(&key, encode_parquet(rows, Tier::Ingest, 1).unwrap().into())
            .await
            .unwrap();
    }

    /// Writes one tenant-day's rows as a compacted part.
    pub async fn compacted(&self, rows: &[AuditRecord]) {
        let pk = PartitionKey::new(rows[0].tenant_id.clone(), rows[0].occurred_at.date_naive());
        self.blobs
            .put(
                &pk.object_key(rows),
                encode_parquet(rows, Tier::Tenant, 1).unwrap().into(),
            )
            .await
            .unwrap();
    }

    /// Events of both tenants on three days, in both tiers.
    /// Five events of acme and two of globex: the 20th's accepted, integrated and
    /// compacted (in the tenant tier with their leaf indices), the others still in the
    /// ingest tier, not integrated yet.
    pub async fn seed(&self) {
        self.ingest(&[
            record("acme", "a-1", at(20, 10), "u-ada"),
            record("acme", "a-2", at(20, 20), "u-bob"),
        ])
        .await;
        self.integrate().await;
        auditlog::Compactor::new(
            self.blobs.clone(),
            auditlog::CompactorConfig {
                integrated_only: true,
                ..auditlog::CompactorConfig::default()
            },
        )
        .run()
        .await
        .unwrap();
        self.ingest(&[
            record("acme", "a-3", at(21, 10), "u-ada"),
            record("acme", "a-4", at(21, 20), "u-bob"),
            record("globex", "g-1", at(21, 15), "u-ada"),
        ])
        .await;
        self.ingest(&[
            record("acme", "a-5", at(22, 10), "u-ada"),
            record("globex", "g-2", at(22, 30), "u-eve"),
        ])
        .await;
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.call("GET", uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", uri, token, Some(body)).await
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// A viewer token as the SaaS backend mints it.
    pub fn viewer_token(&self, tenant: &str, user: &str, scope: &str, lifetime: i64) -> String {
        let now = self.clock_now();
        mint_viewer_token(
            VIEWER_SECRET,
            &ViewerClaims {
                tid: tenant.into(),
                sub: user.into(),
                name: Some(format!("{user} (viewer)")),
                scope: scope.into(),
                aud: audit_api::auth::VIEWER_AUDIENCE.into(),
                iat: now.timestamp(),
                exp: now.timestamp() + lifetime,
                jti: uuid::Uuid::new_v4().to_string(),
            },
        )
        .unwrap()
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use auditlog::Clock;
        self.clock.now()
    }

    /// The audit events the API recorded, as (event_type, payload).
    pub fn recorded(&self) -> Vec<(String, Value)> {
        self.trail
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e.detail.metadata.event_type.clone(),
                    e.detail.payload.clone(),
                )
            })
            .collect()
    }
}
