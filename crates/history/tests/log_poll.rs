//! Polling in log order over the in-memory blob store, with a tenant log the
//! integrator wrote: order, contiguity, the signed size as the limit, checkpoints that
//! cannot cross tenants, expiries passed over, a lost row never passed over, and a
//! checkpoint of the time-ordered poll carried on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use auditlog::integration::{BlobLog, integrate};
use auditlog::memory::MemoryBlobStore;
use auditlog::{AuditRecord, BlobStore, Tier, encode_parquet, ingest_object_key};
use chrono::{DateTime, Duration, TimeZone, Utc};
use envelope::{EventId, TenantId};
use history::{History, HistoryConfig, HistoryError, SealKey};
use transparency::checkpoint::LocalKey;
use transparency::integrate::{CheckpointPolicy, InMemoryLog, Integrator};

fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

fn record(tenant: &str, n: u32, accepted: DateTime<Utc>) -> AuditRecord {
    let payload = format!(r#"{{"n":{n}}}"#);
    AuditRecord {
        tenant_id: t(tenant),
        event_id: EventId::parse(&format!("0192f4a0-7b3c-7d4e-8f00-{n:012}")).unwrap(),
        event_type: "app.document.shared".into(),
        schema_version: 1,
        occurred_at: at(0),
        ingested_at: accepted,
        producer: "docs".into(),
        source: "app.docs".into(),
        actor_type: "user".into(),
        actor_id: "u".into(),
        actor_name: None,
        action: "share".into(),
        target_type: None,
        target_id: None,
        target_name: None,
        outcome: "success".into(),
        correlation_id: Some(format!("{tenant}-{n}")),
        request_id: None,
        source_ip: None,
        user_agent: None,
        payload_sha256: auditlog::payload_sha256(&payload),
        payload,
        bus_event_id: format!("bus-{n}"),
        account: "1".into(),
        region: "r".into(),
        leaf_index: None,
    }
}

/// An ingest file; returns its key.
async fn put_ingest(blobs: &MemoryBlobStore, rows: &[AuditRecord]) -> String {
    let key = ingest_object_key(rows[0].occurred_at.date_naive(), rows);
    blobs
        .put(&key, encode_parquet(rows, Tier::Ingest, 1).unwrap().into())
        .await
        .unwrap();
    key
}

struct Rig {
    blobs: Arc<MemoryBlobStore>,
    index: InMemoryLog,
    key: LocalKey,
    history: History<Arc<MemoryBlobStore>>,
}

impl Rig {
    fn new() -> Self {
        let blobs = Arc::new(MemoryBlobStore::default());
        Rig {
            history: History::new(
                blobs.clone(),
                SealKey::new(&[7u8; 32]).unwrap(),
                HistoryConfig::default(),
            ),
            blobs,
            index: InMemoryLog::default(),
            key: LocalKey::generate("audit.example").unwrap(),
        }
    }

    /// One integration run; with `sign`, everything integrated is signed.
    async fn integrate(&self, sign: bool) {
        let store = BlobLog(self.blobs.as_ref());
        let integrator = Integrator {
            store: &store,
            index: &self.index,
            signer: &self.key,
            log_name: "audit.example",
            policy: CheckpointPolicy {
                every_events: 1_000_000,
                every: Duration::days(1),
            },
        };
        integrate(self.blobs.as_ref(), &integrator, at(0), sign)
            .await
            .unwrap();
    }

    /// Polls from `from` in pages of `limit` until a page is empty.
    async fn drain(
        &self,
        tenant: &str,
        from: Option<String>,
        limit: usize,
    ) -> (Vec<AuditRecord>, String) {
        let mut next = from;
        let mut all = Vec::new();
        loop {
            let p = self
                .history
                .poll_log(&t(tenant), next.as_deref(), limit)
                .await
                .unwrap();
            next = Some(p.next);
            if p.events.is_empty() {
                return (all, next.unwrap());
            }
            assert!(p.events.len() <= limit);
            all.extend(p.events);
        }
    }
}

fn indices(rows: &[AuditRecord]) -> Vec<u64> {
    rows.iter().map(|r| r.leaf_index.unwrap()).collect()
}

#[tokio::test]
async fn the_stream_gives_each_signed_event_once_in_log_order_with_its_index() {
    let r = Rig::new();
    for file in 0..3u32 {
        let rows: Vec<AuditRecord> = (0..10)
            .map(|k| {
                let n = file * 10 + k;
                record(
                    if n % 3 == 0 { "other" } else { "acme" },
                    n,
                    at(i64::from(n)),
                )
            })
            .collect();
        put_ingest(&r.blobs, &rows).await;
    }
    // nothing signed yet: an empty page, and a checkpoint to go on from
    let empty = r.history.poll_log(&t("acme"), None, 10).await.unwrap();
    assert!(empty.events.is_empty());
    assert_eq!(empty.tree_size, Some(0));
    r.integrate(true).await;
    let (events, next) = r.drain("acme", Some(empty.next), 3).await;
    assert_eq!(
        indices(&events),
        (0..20).collect::<Vec<_>>(),
        "contiguous, once each"
    );
    assert!(events.iter().all(|e| e.tenant_id == t("acme")));
    let page = r.history.poll_log(&t("acme"), None, 100).await.unwrap();
    assert_eq!(page.tree_size, Some(20));

    // integrated but not signed: not given yet (nothing unprovable is streamed)
    put_ingest(
        &r.blobs,
        &[record("acme", 40, at(40)), record("acme", 41, at(41))],
    )
    .await;
    r.integrate(false).await;
    let p = r
        .history
        .poll_log(&t("acme"), Some(&next), 10)
        .await
        .unwrap();
    assert!(p.events.is_empty(), "{:?}", indices(&p.events));
    r.integrate(true).await;
    let p = r
        .history
        .poll_log(&t("acme"), Some(&next), 10)
        .await
        .unwrap();
    assert_eq!(indices(&p.events), [20, 21]);
    assert_eq!(p.tree_size, Some(22));
    // the same event delivered again adds nothing to the stream
    put_ingest(&r.blobs, &[record("acme", 41, at(99))]).await;
    r.integrate(true).await;
    let p = r
        .history
        .poll_log(&t("acme"), Some(&p.next), 10)
        .await
        .unwrap();
    assert!(p.events.is_empty());

    // another tenant's checkpoint, an edited one, one of another purpose: refused
    let theirs = r.history.poll_log(&t("other"), None, 1).await.unwrap().next;
    assert!(matches!(
        r.history.poll_log(&t("acme"), Some(&theirs), 10).await,
        Err(HistoryError::Checkpoint(_))
    ));
    let mut edited = next.clone();
    edited.pop();
    edited.push(if next.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        r.history.poll_log(&t("acme"), Some(&edited), 10).await,
        Err(HistoryError::Checkpoint(_))
    ));
}

#[tokio::test]
async fn expired_events_are_passed_over_and_a_lost_row_stops_the_stream_before_it() {
    let r = Rig::new();
    let first: Vec<AuditRecord> = (0..6)
        .map(|n| record("acme", n, at(i64::from(n))))
        .collect();
    put_ingest(&r.blobs, &first).await;
    r.integrate(true).await;
    let lost = put_ingest(
        &r.blobs,
        &[record("acme", 6, at(6)), record("acme", 7, at(7))],
    )
    .await;
    r.integrate(true).await;
    put_ingest(&r.blobs, &[record("acme", 8, at(8))]).await;
    r.integrate(true).await;

    // retention removed indices 0..2 (recorded in the log, which grows by the expiry leaf)
    let store = BlobLog(r.blobs.as_ref());
    let integrator = Integrator {
        store: &store,
        index: &r.index,
        signer: &r.key,
        log_name: "audit.example",
        policy: CheckpointPolicy::default(),
    };
    integrator
        .record_expiry(
            &t("acme"),
            std::slice::from_ref(&(0..2)),
            "retention:P90D",
            at(50),
        )
        .await
        .unwrap();
    integrator.sign_pending(&t("acme"), at(50)).await.unwrap();

    // a file of logged events vanishes without any expiry: never skipped
    r.blobs.delete(&lost).await.unwrap();
    let p = r.history.poll_log(&t("acme"), None, 100).await.unwrap();
    assert_eq!(
        indices(&p.events),
        [2, 3, 4, 5],
        "up to the lost row, not past it"
    );
    let err = r
        .history
        .poll_log(&t("acme"), Some(&p.next), 100)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HistoryError::Log(_)), "{text}");
    assert!(text.contains("index 6"), "{text}");
    // and again: the checkpoint did not move past it
    assert!(
        r.history
            .poll_log(&t("acme"), Some(&p.next), 100)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_time_checkpoint_or_a_start_time_carries_on_in_log_order_without_a_gap() {
    let r = Rig::new();
    // four files, a minute apart
    for file in 0..4u32 {
        let rows: Vec<AuditRecord> = (0..100)
            .map(|k| {
                let n = file * 100 + k;
                record("acme", n, at(i64::from(file) * 600 + i64::from(k)))
            })
            .collect();
        put_ingest(&r.blobs, &rows).await;
        // one run per file: the log in the files' order, as minutes apart it would be
        r.integrate(true).await;
    }
    // a SIEM that polled in acceptance order up to the third file's start
    let old = r.history.checkpoint_at(&t("acme"), at(1200));
    let (events, _) = r.drain("acme", Some(old), 64).await;
    let got = indices(&events);
    let lag = HistoryConfig::default().poll_lag.as_secs() as i64;
    // everything accepted from then on, and at most the lag before it (at least once)
    assert_eq!(got.last(), Some(&399));
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "no gap");
    let first = events.first().unwrap().ingested_at;
    assert!(first <= at(1200) && first >= at(1200 - lag), "{first}");
    // a start time gives the same
    let since = r
        .history
        .log_checkpoint_at(&t("acme"), at(1200))
        .await
        .unwrap();
    let (again, _) = r.drain("acme", Some(since), 500).await;
    assert_eq!(indices(&again), got);
    // before the log began: all; after its end: nothing
    let all = r
        .history
        .log_checkpoint_at(&t("acme"), at(-9999))
        .await
        .unwrap();
    assert_eq!(r.drain("acme", Some(all), 500).await.0.len(), 400);
    let none = r
        .history
        .log_checkpoint_at(&t("acme"), at(99_999))
        .await
        .unwrap();
    assert!(r.drain("acme", Some(none), 500).await.0.is_empty());
}
