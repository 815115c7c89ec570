//! Unit tests of the subscriber, compactor and reader over the in-memory adapters.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use envelope::{SchemaRegistry, TenantId};
use serde_json::{Value, json};

use crate::compaction::parts::{HashRange, PartName};
use crate::compaction::steps;
use crate::faults::{Fault, FaultInjector, FaultyBlobStore, FaultyDedupeStore, Op};
use crate::memory::{MemoryBlobStore, MemoryDedupeStore};
use crate::ports::{BlobStore, ClaimContext, ClaimRequest, DedupeStore, FixedClock};
use crate::record::tests::bus_event;
use crate::*;

type Faulty = Arc<FaultyBlobStore<Arc<MemoryBlobStore>>>;
type FaultyDedupe = Arc<FaultyDedupeStore<Arc<MemoryDedupeStore>>>;
type Sub = Subscriber<FaultyDedupe, Faulty, FixedClock>;

struct Rig {
    /// What was stored, read back directly.
    blobs: Arc<MemoryBlobStore>,
    /// The subscriber's view of `blobs`, where calls can be made to fail.
    faults: Faulty,
    /// The dedupe store itself, and the subscriber's faulty view of it.
    dedupe: Arc<MemoryDedupeStore>,
    dedupe_faults: Arc<FaultInjector>,
    clock: FixedClock,
    sub: Sub,
}

fn rig() -> Rig {
    rig_with(FaultInjector::healthy(), FaultInjector::healthy())
}

fn rig_with(blob_faults: Arc<FaultInjector>, dedupe_faults: Arc<FaultInjector>) -> Rig {
    let blobs = Arc::new(MemoryBlobStore::default());
    let faults = Arc::new(FaultyBlobStore::new(blobs.clone(), blob_faults));
    let dedupe = Arc::new(MemoryDedupeStore::default());
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap());
    let sub = Subscriber::new(
        Arc::new(FaultyDedupeStore::new(
            dedupe.clone(),
            dedupe_faults.clone(),
        )),
        faults.clone(),
        clock.clone(),
        Arc::new(SchemaRegistry::builtin().unwrap()),
        SubscriberConfig::default(),
    );
    Rig {
        blobs,
        faults,
        dedupe,
        dedupe_faults,
        clock,
        sub,
    }
}

/// The event of `n` on day `day` before the rig's clock (0: the clock's own day).
fn ev_on(tenant: &str, n: u32, days_back: i64) -> Value {
    let mut e = ev(tenant, n);
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() - Duration::days(days_back);
    e["detail"]["metadata"]["occurred_at"] = json!(at.to_rfc3339());
    e
}

/// Handles `messages` until none is left for retry, advancing the clock past the
/// lease between rounds (a claim left behind by a failure blocks until it lapses).
async fn deliver_until_done(r: &Rig, mut messages: Vec<InboundMessage>) -> usize {
    let mut rounds = 0;
    while !messages.is_empty() && rounds < 50 {
        rounds += 1;
        let out = r.sub.handle(&messages).await;
        let failed: std::collections::BTreeSet<String> =
            out.failed_message_ids.into_iter().collect();
        messages.retain(|m| failed.contains(&m.message_id));
        r.clock.advance(Duration::minutes(16));
    }
    assert!(
        messages.is_empty(),
        "{} messages never accepted",
        messages.len()
    );
    rounds
}

fn id(n: u32) -> String {
    format!("0192f4a0-7b3c-7d4e-8f00-{n:012}")
}

fn ev(tenant: &str, n: u32) -> Value {
    bus_event(
        tenant,
        &id(n),
        "app.doc.viewed",
        json!({"action": "view", "target": {"type": "doc", "id": format!("d{n}")}}),
    )
}

fn msg(i: usize, v: &Value) -> InboundMessage {
    InboundMessage {
        message_id: format!("m{i}"),
        body: v.to_string(),
    }
}

fn msgs(events: &[Value]) -> Vec<InboundMessage> {
    events.iter().enumerate().map(|(i, v)| msg(i, v)).collect()
}

async fn read(blobs: &Arc<MemoryBlobStore>, tenant: &str) -> Vec<AuditRecord> {
    TenantReader::new(blobs.clone())
        .read(&TenantId::parse(tenant).unwrap(), None, None)
        .await
        .unwrap()
}

async fn quarantined(blobs: &Arc<MemoryBlobStore>) -> Vec<Value> {
    let mut out = vec![];
    for o in blobs.list(QUARANTINE_PREFIX).await.unwrap() {
        out.push(serde_json::from_slice(&blobs.get(&o.key).await.unwrap()).unwrap());
    }
    out
}

#[tokio::test]
async fn writes_one_ingest_file_for_many_tenants() {
    let r = rig();
    let events: Vec<Value> = (0..300).map(|n| ev(&format!("t{}", n % 100), n)).collect();
    let out = r.sub.handle(&msgs(&events)).await;
    assert!(out.failed_message_ids.is_empty());
    assert_eq!(out.stats.written, 300);
    assert_eq!(out.stats.files, 1, "one PUT per batch, not one per tenant");
    assert_eq!(r.blobs.put_count(), 1);
    assert_eq!(out.stats.completions, 1);
    let t7 = read(&r.blobs, "t7").await;
    assert_eq!(t7.len(), 3);
    assert!(t7.iter().all(|x| x.tenant_id.as_str() == "t7"));
}

#[tokio::test]
async fn same_event_twice_in_one_batch_and_across_batches() {
    let r = rig();
    let e = ev("acme", 1);
    let out = r.sub.handle(&msgs(&[e.clone(), e.clone()])).await;
    assert_eq!((out.stats.written, out.stats.duplicates), (1, 1));
    let out = r.sub.handle(&msgs(std::slice::from_ref(&e))).await;
    assert_eq!(
        (out.stats.written, out.stats.duplicates, out.stats.files),
        (0, 1, 0)
    );
    assert!(out.failed_message_ids.is_empty());
    assert_eq!(read(&r.blobs, "acme").await.len(), 1);
    assert_eq!(r.blobs.list(INGEST_PREFIX).await.unwrap().len(), 1);
}

#[tokio::test]
async fn replay_a_week_later_with_a_new_bus_id_is_a_duplicate() {
    let r = rig();
    let e = ev("acme", 1);
    r.sub.handle(&msgs(std::slice::from_ref(&e))).await;
    r.clock.advance(Duration::days(7));
    let mut replay = e.clone();
    replay["id"] = json!("replayed-bus-id");
    replay["detail"]["payload"] = json!({"target": {"id": "d1", "type": "doc"}, "action": "view"}); // other key order
    let out = r.sub.handle(&msgs(&[replay])).await;
    assert_eq!((out.stats.written, out.stats.duplicates), (0, 1));
    let rows = read(&r.blobs, "acme").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].bus_event_id,
        "bus-0192f4a0-7b3c-7d4e-8f00-000000000001"
    );
}

#[tokio::test]
async fn same_id_with_another_payload_is_quarantined_as_conflict() {
    let r = rig();
    let e = ev("acme", 1);
    let mut other = e.clone();
    other["detail"]["payload"]["action"] = json!("delete");
    // in one batch
    let out = r.sub.handle(&msgs(&[e.clone(), other.clone()])).await;
    assert_eq!(
        (
            out.stats.written,
            out.stats.conflicts,
            out.stats.quarantined
        ),
        (1, 1, 1)
    );
    // and against the store, later
    let mut other2 = e.clone();
    other2["detail"]["payload"]["action"] = json!("edit");
    let out = r.sub.handle(&msgs(&[other2])).await;
    assert_eq!((out.stats.written, out.stats.conflicts), (0, 1));
    assert!(out.failed_message_ids.is_empty());
    let q = quarantined(&r.blobs).await;
    assert_eq!(q.len(), 2);
    assert!(
        q.iter()
            .all(|q| q["reason_code"] == "conflict" && q["accepted_payload_sha256"].is_string())
    );
    let rows = read(&r.blobs, "acme").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].action, "view",
        "the first accepted payload is never overwritten"
    );
}

#[tokio::test]
async fn bad_messages_are_quarantined_with_reason_and_raw_body() {
    let r = rig();
    let mut bad_tenant = ev("x", 2);
    bad_tenant["detail"]["metadata"]["tenant_id"] = json!("../acme");
    let mut eq_tenant = ev("x", 3);
    eq_tenant["detail"]["metadata"]["tenant_id"] = json!("tenant_id=acme");
    let mut no_tenant = ev("x", 4);
    no_tenant["detail"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("tenant_id");
    let mut violation = ev("acme", 5);
    violation["detail"]["payload"] = json!({"outcome": 3});
    let mut unknown = ev("acme", 6);
    unknown["detail"]["metadata"]["event_type"] = json!("billing.thing.done");
    let mut big = ev("acme", 7);
    big["detail"]["payload"]["details"] = json!({"pad": "x".repeat(1_100_000)});
    let mut messages = msgs(&[
        ev("acme", 1),
        bad_tenant,
        eq_tenant,
        no_tenant,
        violation,
        unknown,
        big,
    ]);
    messages.push(InboundMessage {
        message_id: "junk".into(),
        body: "{\"not json".into(),
    });
    let out = r.sub.handle(&messages).await;
    assert!(
        out.failed_message_ids.is_empty(),
        "permanent failures are never retried"
    );
    assert_eq!((out.stats.written, out.stats.quarantined), (1, 7));
    let q = quarantined(&r.blobs).await;
    let mut codes: Vec<&str> = q
        .iter()
        .map(|q| q["reason_code"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "invalid_tenant",
            "invalid_tenant",
            "invalid_tenant",
            "malformed_json",
            "oversize",
            "schema_violation",
            "unknown_schema"
        ]
    );
    assert!(q.iter().any(|q| q["body"] == "{\"not json"));
    // nothing escaped into a partition outside audit/tenant_id=<valid>/
    for k in r.blobs.keys() {
        assert!(!k.contains(".."), "{k}");
        assert!(
            k.starts_with("ingest/dt=") || k.starts_with("quarantine/dt="),
            "{k}"
        );
    }
}

#[tokio::test]
async fn failed_write_is_retried_and_lands_exactly_once() {
    let r = rig();
    let events: Vec<Value> = (0..20).map(|n| ev("acme", n)).collect();
    r.faults.fail_next_puts(1);
    let out = r.sub.handle(&msgs(&events)).await;
    assert_eq!(out.failed_message_ids.len(), 20);
    assert_eq!(out.stats.written, 0);
    assert!(read(&r.blobs, "acme").await.is_empty());
    // the redelivery is not blocked by our own abandoned claims
    let out = r.sub.handle(&msgs(&events)).await;
    assert!(out.failed_message_ids.is_empty());
    assert_eq!(out.stats.written, 20);
    let out = r.sub.handle(&msgs(&events)).await;
    assert_eq!(out.stats.duplicates, 20);
    assert_eq!(read(&r.blobs, "acme").await.len(), 20);
}

/// Loss path: a batch over two days whose second file write fails and whose release
/// then fails too. Completion used to cover the whole batch, so the retried messages
/// found their claims completed, were acknowledged as duplicates and never stored.
#[tokio::test]
async fn a_failed_day_is_never_completed_even_when_its_release_fails() {
    let r = rig();
    let mut events: Vec<Value> = (0..5).map(|n| ev_on("acme", n, 1)).collect();
    events.extend((5..10).map(|n| ev_on("acme", n, 0)));
    // the first day's file is written, the second's fails, and so does the release
    r.faults.faults().fail_where(Op::Put, |n| n == 2);
    r.dedupe_faults.fail_next(Op::Release, Fault::Fail, 1);
    let out = r.sub.handle(&msgs(&events)).await;
    assert_eq!(out.failed_message_ids.len(), 5);
    assert_eq!((out.stats.written, out.stats.completions), (5, 1));
    // right away, the lapsed-but-unreleased claims make the retry wait, not vanish
    let retry: Vec<InboundMessage> = msgs(&events)
        .into_iter()
        .filter(|m| out.failed_message_ids.contains(&m.message_id))
        .collect();
    let again = r.sub.handle(&retry).await;
    assert_eq!(again.stats.duplicates, 0, "never acknowledged as written");
    assert_eq!(again.failed_message_ids.len(), 5);
    deliver_until_done(&r, retry).await;
    assert_eq!(read(&r.blobs, "acme").await.len(), 10);
}

/// Loss path: a claim the store applied but answered with an error, while the rest of
/// its day was written. Completing the day would mark it written; it must not be.
#[tokio::test]
async fn a_claim_applied_then_reported_unknown_is_never_completed() {
    for fault in [Fault::AppliedThenKeyUnavailable, Fault::AppliedThenFail] {
        let r = rig();
        let events: Vec<Value> = (0..8).map(|n| ev("acme", n)).collect();
        r.dedupe_faults.fail_next(Op::Claim, fault, 1);
        // and the release of the unknown claim fails too, so it stays behind
        r.dedupe_faults.fail_next(Op::Release, Fault::Fail, 1);
        let out = r.sub.handle(&msgs(&events)).await;
        let expected_retries = if fault == Fault::AppliedThenFail {
            8
        } else {
            1
        };
        assert_eq!(out.failed_message_ids.len(), expected_retries, "{fault:?}");
        assert_eq!(out.stats.written, 8 - expected_retries);
        assert_eq!(
            out.stats.completions, 0,
            "{fault:?}: a unit in doubt is not completed"
        );
        let retry: Vec<InboundMessage> = msgs(&events)
            .into_iter()
            .filter(|m| out.failed_message_ids.contains(&m.message_id))
            .collect();
        deliver_until_done(&r, retry).await;
        assert_eq!(read(&r.blobs, "acme").await.len(), 8, "{fault:?}");
        // the day's events that were written but not completed are still deduplicated
        // once their copies come back: by the store after the lease, by compaction
        deliver_until_done(&r, msgs(&events)).await;
        Compactor::new(r.blobs.clone(), CompactorConfig::default())
            .run()
            .await
            .unwrap();
        assert_eq!(read(&r.blobs, "acme").await.len(), 8, "{fault:?}");
    }
}

#[tokio::test]
async fn a_completion_lost_or_applied_then_failed_loses_nothing() {
    for fault in [Fault::Fail, Fault::AppliedThenFail] {
        let r = rig();
        let events: Vec<Value> = (0..6).map(|n| ev("acme", n)).collect();
        r.dedupe_faults.fail_next(Op::Complete, fault, 1);
        let out = r.sub.handle(&msgs(&events)).await;
        assert!(
            out.failed_message_ids.is_empty(),
            "the file is durable: acknowledged"
        );
        assert_eq!(out.stats.completions, 0);
        // redelivered after the lease: written again at worst, folded to one copy
        r.clock.advance(Duration::minutes(16));
        deliver_until_done(&r, msgs(&events)).await;
        Compactor::new(r.blobs.clone(), CompactorConfig::default())
            .run()
            .await
            .unwrap();
        assert_eq!(read(&r.blobs, "acme").await.len(), 6, "{fault:?}");
    }
}

#[tokio::test]
async fn events_outside_the_accepted_window_are_quarantined_with_their_own_reason() {
    let r = rig();
    let mut old = ev("acme", 1);
    old["detail"]["metadata"]["occurred_at"] = json!("1970-01-01T00:00:00Z");
    let mut future = ev("acme", 2);
    future["detail"]["metadata"]["occurred_at"] = json!("2099-01-01T00:00:00Z");
    let mut skewed = ev("acme", 3);
    // ten minutes ahead of the clock: inside the skew allowance
    skewed["detail"]["metadata"]["occurred_at"] = json!("2026-11-21T12:10:00Z");
    let mut backfill = ev("acme", 4);
    backfill["detail"]["metadata"]["occurred_at"] = json!("2003-05-06T07:08:09Z");
    let out = r.sub.handle(&msgs(&[old, future, skewed, backfill])).await;
    assert!(out.failed_message_ids.is_empty());
    assert_eq!((out.stats.written, out.stats.quarantined), (2, 2));
    let q = quarantined(&r.blobs).await;
    assert!(q.iter().all(|q| q["reason_code"] == OUT_OF_WINDOW), "{q:?}");
    let mut ids: Vec<&str> = q.iter().map(|q| q["event_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [id(1), id(2)]);
    assert!(
        q.iter()
            .any(|q| q["reason"].as_str().unwrap().contains("2099"))
    );
    let rows = read(&r.blobs, "acme").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].dt().to_string(),
        "2003-05-06",
        "a backfill is accepted"
    );
}

#[tokio::test]
async fn failed_quarantine_write_retries_only_that_message() {
    let r = rig();
    let messages = vec![InboundMessage {
        message_id: "bad".into(),
        body: "nope".into(),
    }];
    r.faults.fail_next_puts(1);
    let out = r.sub.handle(&messages).await;
    assert_eq!(out.failed_message_ids, vec!["bad".to_string()]);
    let out = r.sub.handle(&messages).await;
    assert!(out.failed_message_ids.is_empty());
    assert_eq!(quarantined(&r.blobs).await.len(), 1);
}

#[tokio::test]
async fn throttled_dedupe_store_means_retry_not_loss() {
    let r = rig();
    let events: Vec<Value> = (0..5).map(|n| ev("acme", n)).collect();
    r.dedupe.throttle_next_claims(1);
    let out = r.sub.handle(&msgs(&events)).await;
    assert_eq!(out.failed_message_ids.len(), 5);
    assert_eq!(r.blobs.put_count(), 0);
    let out = r.sub.handle(&msgs(&events)).await;
    assert_eq!(out.stats.written, 5);
}

#[tokio::test]
async fn claim_held_by_a_racing_consumer_retries_then_takes_over_after_lease() {
    let r = rig();
    let e = ev("acme", 1);
    // another consumer claimed the event and is still working on it (or died)
    let other = ClaimContext {
        unit_id: "other-consumer".into(),
        now: r.clock.now_for_test(),
        lease: std::time::Duration::from_secs(900),
        retention: std::time::Duration::from_secs(86400),
    };
    let rec = read_request(&e);
    r.dedupe.claim(&other, &[rec]).await.unwrap();
    let out = r.sub.handle(&msgs(std::slice::from_ref(&e))).await;
    assert_eq!(out.failed_message_ids, vec!["m0".to_string()]);
    assert_eq!(out.stats.written, 0);
    // the other consumer died: once its lease runs out, the claim is taken over
    r.clock.advance(Duration::minutes(16));
    let out = r.sub.handle(&msgs(&[e])).await;
    assert_eq!(out.stats.written, 1);
    assert_eq!(read(&r.blobs, "acme").await.len(), 1);
}

#[tokio::test]
async fn racing_consumers_write_one_copy() {
    let r = rig();
    let sub2 = Subscriber::new(
        r.dedupe.clone(),
        r.blobs.clone(),
        r.clock.clone(),
        Arc::new(SchemaRegistry::builtin().unwrap()),
        SubscriberConfig::default(),
    );
    let events: Vec<Value> = (0..50).map(|n| ev("acme", n)).collect();
    let m = msgs(&events);
    let (a, b) = tokio::join!(r.sub.handle(&m), sub2.handle(&m));
    assert_eq!(a.stats.written + b.stats.written, 50);
    assert_eq!(read(&r.blobs, "acme").await.len(), 50);
}

fn read_request(e: &Value) -> ClaimRequest {
    let text = e.to_string();
    let v =
        envelope::decode_bus_event(&text, &SchemaRegistry::builtin().unwrap(), 1 << 21).unwrap();
    let rec = AuditRecord::from_event(v, Utc::now());
    ClaimRequest {
        tenant_id: rec.tenant_id,
        event_id: rec.event_id,
        payload_sha256: rec.payload_sha256,
    }
}

trait NowForTest {
    fn now_for_test(&self) -> chrono::DateTime<Utc>;
}
impl NowForTest for FixedClock {
    fn now_for_test(&self) -> chrono::DateTime<Utc> {
        crate::ports::Clock::now(self)
    }
}

#[tokio::test]
async fn compaction_folds_dedupes_and_is_idempotent() {
    let r = rig();
    // three batches, overlapping: an event twice across ingest files (a lapsed claim)
    let a: Vec<Value> = (0..30).map(|n| ev(&format!("t{}", n % 3), n)).collect();
    let b: Vec<Value> = (30..60).map(|n| ev(&format!("t{}", n % 3), n)).collect();
    r.sub.handle(&msgs(&a)).await;
    r.sub.handle(&msgs(&b)).await;
    // a duplicate copy that slipped past dedupe (e.g. completion lost): force it in
    let mut dup = crate::codec::decode_parquet(
        r.blobs
            .get(&r.blobs.list(INGEST_PREFIX).await.unwrap()[0].key)
            .await
            .unwrap(),
        None,
    )
    .unwrap();
    dup.truncate(5);
    for d in &mut dup {
        d.ingested_at += Duration::hours(1);
    }
    let key = ingest_object_key(dup[0].dt(), &dup);
    r.blobs
        .put(&key, encode_parquet(&dup, Tier::Ingest, 1).unwrap().into())
        .await
        .unwrap();

    let before: Vec<Vec<AuditRecord>> =
        futures::future::join_all((0..3).map(|t| read_owned(&r.blobs, t))).await;
    assert_eq!(before.iter().map(Vec::len).sum::<usize>(), 60);

    let c = Compactor::new(r.blobs.clone(), CompactorConfig::default());
    let rep = c.run().await.unwrap();
    assert_eq!(rep.totals.ingest_files_folded, 3);
    assert_eq!(rep.totals.duplicates_removed, 5);
    assert_eq!(rep.totals.tenant_files_written, 3);
    assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
    let after: Vec<Vec<AuditRecord>> =
        futures::future::join_all((0..3).map(|t| read_owned(&r.blobs, t))).await;
    assert_eq!(before, after, "readers see the same rows before and after");

    // idempotent: nothing to do the second time
    let rep = c.run().await.unwrap();
    assert_eq!(
        (
            rep.totals.tenant_files_written,
            rep.totals.ingest_files_folded
        ),
        (0, 0)
    );

    // more events for one tenant fold into a replacement file, the old one removed
    r.sub.handle(&msgs(&[ev("t0", 100)])).await;
    let rep = c.run().await.unwrap();
    assert_eq!(
        (
            rep.totals.tenant_files_written,
            rep.totals.tenant_files_removed
        ),
        (1, 1)
    );
    assert_eq!(r.blobs.list("audit/tenant_id=t0/").await.unwrap().len(), 1);
    assert_eq!(read(&r.blobs, "t0").await.len(), 21);
}

/// Loss path: once the dedupe store has forgotten an id (retention, or a lease
/// takeover), a copy with another payload is written as new; compaction kept the first
/// and dropped the other without a word. It must quarantine it with both hashes.
#[tokio::test]
async fn compaction_quarantines_a_conflict_the_dedupe_store_forgot() {
    let r = rig();
    r.sub.handle(&msgs(&[ev("acme", 1), ev("acme", 2)])).await;
    // past the claim retention, the same id comes back with another payload
    r.clock.advance(Duration::days(91));
    let mut other = ev("acme", 1);
    other["detail"]["payload"]["action"] = json!("delete");
    let out = r.sub.handle(&msgs(&[other.clone()])).await;
    assert_eq!(out.stats.written, 1, "the store no longer knows the id");
    let rep = Compactor::new(r.blobs.clone(), CompactorConfig::default())
        .run()
        .await
        .unwrap();
    assert_eq!(
        (rep.totals.rows_written, rep.totals.conflicts_quarantined),
        (2, 1)
    );
    let rows = read(&r.blobs, "acme").await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|x| x.action == "view"),
        "the original is kept"
    );
    let q = quarantined(&r.blobs).await;
    assert_eq!(q.len(), 1);
    let original = rows.iter().find(|x| x.event_id.as_str() == id(1)).unwrap();
    assert_eq!(q[0]["reason_code"], CONFLICT);
    assert_eq!(
        q[0]["accepted_payload_sha256"],
        original.payload_sha256.as_str()
    );
    assert_ne!(q[0]["payload_sha256"], q[0]["accepted_payload_sha256"]);
    // the body is the copy as a bus event again: it decodes to the conflicting payload
    let body = q[0]["body"].as_str().unwrap();
    let back =
        envelope::decode_bus_event(body, &SchemaRegistry::builtin().unwrap(), 1 << 20).unwrap();
    assert_eq!(
        back.payload_json,
        r#"{"action":"delete","target":{"id":"d1","type":"doc"}}"#
    );
    // compacting again finds nothing new and writes the same quarantine record
    let rep = Compactor::new(r.blobs.clone(), CompactorConfig::default())
        .run()
        .await
        .unwrap();
    assert_eq!(rep.totals.conflicts_quarantined, 0);
    assert_eq!(quarantined(&r.blobs).await.len(), 1);
}

/// Loss path found by the fault property test: ingest files were named by their
/// (tenant, event_id) set only, so a conflicting copy written alone (after the store
/// forgot the id) got the original's key and overwrote the original's file.
#[tokio::test]
async fn a_conflicting_copy_never_overwrites_the_originals_file() {
    let r = rig();
    r.sub.handle(&msgs(&[ev("acme", 1)])).await;
    r.clock.advance(Duration::days(91));
    let mut other = ev("acme", 1);
    other["detail"]["payload"]["action"] = json!("delete");
    r.sub.handle(&msgs(&[other])).await;
    assert_eq!(r.blobs.list(INGEST_PREFIX).await.unwrap().len(), 2);
    let rows = read(&r.blobs, "acme").await;
    assert_eq!(rows[0].action, "view", "the original is still there");
}

/// The choice on canonical numbers: a retry whose JSON library wrote `1` as `1.0` is
/// the same event (a duplicate), not a conflict.
#[tokio::test]
async fn a_retry_that_writes_integers_as_floats_is_a_duplicate() {
    let r = rig();
    let mut e = ev("acme", 1);
    e["detail"]["payload"]["count"] = json!(3);
    r.sub.handle(&msgs(&[e.clone()])).await;
    let text = e.to_string().replace(r#""count":3"#, r#""count":3.0"#);
    assert!(text.contains("3.0"));
    let out = r
        .sub
        .handle(&[InboundMessage {
            message_id: "retry".into(),
            body: text,
        }])
        .await;
    assert_eq!((out.stats.duplicates, out.stats.conflicts), (1, 0));
    let mut changed = e.clone();
    changed["detail"]["payload"]["count"] = json!(3.5);
    let out = r.sub.handle(&msgs(&[changed])).await;
    assert_eq!(out.stats.conflicts, 1, "another number is another payload");
}

async fn read_owned(blobs: &Arc<MemoryBlobStore>, t: usize) -> Vec<AuditRecord> {
    read(blobs, &format!("t{t}")).await
}

/// All rows of tenants t0..t{n}, read through the public reader; None if a read fails.
async fn all_rows(blobs: &Arc<MemoryBlobStore>, tenants: usize) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    for t in 0..tenants {
        out.extend(read_owned(blobs, t).await);
    }
    out.sort_by(|a, b| (&a.tenant_id, &a.event_id).cmp(&(&b.tenant_id, &b.event_id)));
    out
}

/// A crash at every call of every store operation (puts, gets, lists, deletes), one
/// after the other: nothing is ever lost or doubled, and the next run cleans up.
#[tokio::test]
async fn a_compaction_crash_at_any_call_loses_nothing_and_the_rerun_cleans_up() {
    let events: Vec<Value> = (0..40)
        .map(|n| ev_on(&format!("t{}", n % 4), n, i64::from(n % 2)))
        .collect();
    let small = CompactorConfig {
        unit_rows: 6,
        task_rows: 15,
        ..CompactorConfig::default()
    };
    let mut crashes = 0;
    for op in [Op::Put, Op::Get, Op::List, Op::Delete] {
        for n in 1.. {
            let r = rig();
            r.sub.handle(&msgs(&events[..20])).await;
            r.sub.handle(&msgs(&events[20..])).await;
            // an earlier compaction left parts for the new run to supersede
            Compactor::new(r.blobs.clone(), small.clone())
                .run()
                .await
                .unwrap();
            let mut more = ev_on("t1", 99, 0);
            more["detail"]["payload"]["action"] = json!("view");
            r.sub.handle(&msgs(&[more, ev_on("t2", 98, 1)])).await;
            let before = all_rows(&r.blobs, 4).await;
            assert_eq!(before.len(), 42);
            let faulty = Arc::new(FaultyBlobStore::healthy(r.blobs.clone()));
            faulty.faults().crash_at(op, n);
            let report = Compactor::new(faulty, small.clone()).run().await;
            let crashed = match &report {
                Ok(rep) => !rep.failed_days.is_empty(),
                Err(_) => true,
            };
            assert_eq!(
                all_rows(&r.blobs, 4).await,
                before,
                "a crash at {op:?} #{n} loses or doubles nothing"
            );
            if !crashed {
                break; // past the last call of this operation
            }
            crashes += 1;
            // restarted: the next run folds everything and leaves nothing behind
            let rep = Compactor::new(r.blobs.clone(), small.clone())
                .run()
                .await
                .unwrap();
            assert!(rep.failed_days.is_empty(), "{op:?} #{n}: {rep:?}");
            assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
            assert!(
                r.blobs
                    .list(steps::COMPACTION_PREFIX)
                    .await
                    .unwrap()
                    .is_empty(),
                "{op:?} #{n}"
            );
            assert_eq!(all_rows(&r.blobs, 4).await, before);
            // and every tenant-day's parts tile its hash space exactly once
            for t in 0..4 {
                let keys = r
                    .blobs
                    .list(&format!("audit/tenant_id=t{t}/"))
                    .await
                    .unwrap();
                let mut by_day: std::collections::BTreeMap<String, Vec<HashRange>> =
                    Default::default();
                for k in keys {
                    let (dir, file) = k.key.rsplit_once('/').unwrap();
                    by_day
                        .entry(dir.to_owned())
                        .or_default()
                        .push(PartName::parse(file).unwrap().range);
                }
                for (day, mut ranges) in by_day {
                    ranges.sort();
                    for w in ranges.windows(2) {
                        assert!(w[0].hi < w[1].lo, "{op:?} #{n}: overlapping parts in {day}");
                    }
                }
            }
        }
    }
    assert!(crashes > 40, "{crashes} crash points exercised");
}

/// Two compactors at once (a manual run beside the schedule), interleaved step by step
/// in the orders that matter, and also simply raced: nothing lost, nothing doubled.
#[tokio::test]
async fn two_compactors_at_once_lose_nothing() {
    use crate::compaction::steps::*;
    let cfg = CompactorConfig {
        unit_rows: 5,
        task_rows: 7,
        ..CompactorConfig::default()
    };
    let events: Vec<Value> = (0..30).map(|n| ev(&format!("t{}", n % 3), n)).collect();
    let day = Utc
        .with_ymd_and_hms(2026, 11, 21, 0, 0, 0)
        .unwrap()
        .date_naive();
    // interleaving: A stops after stage `a_until`, B runs the whole day, then A goes on
    for a_until in 0..5 {
        let r = rig();
        r.sub.handle(&msgs(&events[..15])).await;
        let blobs = &r.blobs;
        let (a, _) = plan_day(blobs, day, &cfg).await.unwrap().unwrap();
        for s in 0..a_until {
            stage(blobs, &a, &cfg, s).await.unwrap();
        }
        // meanwhile more events arrive and B compacts the day from start to end
        r.sub.handle(&msgs(&events[15..])).await;
        let b = Compactor::new(r.blobs.clone(), cfg.clone())
            .run()
            .await
            .unwrap();
        assert!(b.failed_days.is_empty());
        // A carries on: it may fail (its files are gone), it must not lose anything
        for s in a_until..5 {
            if stage(blobs, &a, &cfg, s).await.is_err() {
                break;
            }
        }
        assert_eq!(
            all_rows(&r.blobs, 3).await.len(),
            30,
            "A stopped after stage {a_until}"
        );
        Compactor::new(r.blobs.clone(), cfg.clone())
            .run()
            .await
            .unwrap();
        assert_eq!(all_rows(&r.blobs, 3).await.len(), 30);
        assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
    }
    // and raced for real, with two workers each
    let r = rig();
    r.sub.handle(&msgs(&events)).await;
    let racing = CompactorConfig {
        concurrency: 2,
        ..cfg.clone()
    };
    let (cx, cy) = (
        Compactor::new(r.blobs.clone(), racing.clone()),
        Compactor::new(r.blobs.clone(), racing),
    );
    let (x, y) = tokio::join!(cx.run(), cy.run());
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(all_rows(&r.blobs, 3).await.len(), 30, "{x:?} {y:?}");
    Compactor::new(r.blobs.clone(), cfg).run().await.unwrap();
    assert_eq!(all_rows(&r.blobs, 3).await.len(), 30);
}

/// Runs stage `s` of attempt `a` by hand: 0 counts, 1 plans the units, 2 routes,
/// 3 folds, 4 finishes.
async fn stage(
    blobs: &Arc<MemoryBlobStore>,
    a: &steps::Attempt,
    cfg: &CompactorConfig,
    s: usize,
) -> Result<(), StorageError> {
    use crate::compaction::plan::{DayPlan, UnitPlan};
    let json = |k: String| async move { blobs.get(&k).await.map(|b| b.to_vec()) };
    match s {
        0 => {
            let p: DayPlan =
                serde_json::from_slice(&json(format!("{}plan.json", a.prefix)).await?).unwrap();
            for i in 0..p.count_tasks.len() {
                steps::count(blobs, a, i).await?;
            }
        }
        1 => {
            steps::plan_fold(blobs, a, cfg).await?;
        }
        2 | 3 => {
            let u: UnitPlan =
                serde_json::from_slice(&json(format!("{}units.json", a.prefix)).await?).unwrap();
            if s == 2 {
                for i in 0..u.route_tasks.len() {
                    steps::route(blobs, a, i).await?;
                }
            } else {
                for i in 0..u.units.len() {
                    steps::fold(blobs, a, i, cfg).await?;
                }
            }
        }
        _ => {
            steps::finish(blobs, a, None).await?;
        }
    }
    Ok(())
}

/// Fails every read of one day's files: that day fails, the others are folded.
struct OneDayDown {
    inner: Arc<MemoryBlobStore>,
    day: String,
}

#[async_trait::async_trait]
impl BlobStore for OneDayDown {
    async fn put(&self, key: &str, body: bytes::Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<bytes::Bytes, BlobError> {
        if key.starts_with("ingest/") && key.contains(&self.day) {
            return Err(BlobError::Unavailable("this day's files time out".into()));
        }
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
}

/// Loss path: any error aborted the run, oldest day first, so one bad day blocked
/// every later day on every run. Now each day stands alone, and an undecodable file
/// is moved aside with its reason while the rest of its day is folded.
#[tokio::test]
async fn one_bad_day_or_file_never_blocks_the_others() {
    let r = rig();
    let events: Vec<Value> = (0..12)
        .map(|n| ev_on("acme", n, i64::from(n % 3)))
        .collect();
    r.sub.handle(&msgs(&events)).await;
    let oldest = (Utc.with_ymd_and_hms(2026, 11, 19, 0, 0, 0).unwrap()).date_naive();
    let down = Arc::new(OneDayDown {
        inner: r.blobs.clone(),
        day: format!("dt={oldest}"),
    });
    let rep = Compactor::new(down, CompactorConfig::default())
        .run()
        .await
        .unwrap();
    assert_eq!(rep.days, 2, "the two other days are folded");
    assert_eq!(rep.failed_days.len(), 1);
    assert_eq!(rep.failed_days[0].day, oldest);
    assert!(rep.failed_days[0].error.contains("time out"), "{rep:?}");
    assert_eq!(read(&r.blobs, "acme").await.len(), 12, "still all visible");

    // a corrupt ingest file on a day: moved aside, the day's other files folded
    let corrupt = format!("ingest/dt={oldest}/0000corrupt.parquet");
    r.blobs
        .put(&corrupt, bytes::Bytes::from_static(b"PAR1 not really"))
        .await
        .unwrap();
    let rep = Compactor::new(r.blobs.clone(), CompactorConfig::default())
        .run()
        .await
        .unwrap();
    assert!(rep.failed_days.is_empty(), "{rep:?}");
    assert_eq!(rep.totals.damaged.len(), 1);
    assert_eq!(rep.totals.damaged[0].key, corrupt);
    assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
    let aside = r.blobs.get(&format!("damaged/{corrupt}")).await.unwrap();
    assert_eq!(&aside[..], b"PAR1 not really", "the bytes are kept");
    let reason: Value = serde_json::from_slice(
        &r.blobs
            .get(&format!("damaged/{corrupt}.reason.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        reason["reason"].as_str().unwrap().contains("parquet"),
        "{reason}"
    );
    assert_eq!(read(&r.blobs, "acme").await.len(), 12);
}

#[tokio::test]
async fn reader_never_returns_another_tenants_rows() {
    let r = rig();
    let events: Vec<Value> = (0..40)
        .map(|n| ev(if n % 2 == 0 { "alpha" } else { "beta" }, n))
        .collect();
    r.sub.handle(&msgs(&events)).await;
    for rows in [read(&r.blobs, "alpha").await, read(&r.blobs, "beta").await] {
        assert_eq!(rows.len(), 20);
    }
    Compactor::new(r.blobs.clone(), CompactorConfig::default())
        .run()
        .await
        .unwrap();
    let alpha = read(&r.blobs, "alpha").await;
    assert!(alpha.iter().all(|x| x.tenant_id.as_str() == "alpha"));
    assert_eq!(alpha.len(), 20);
    assert!(read(&r.blobs, "gamma").await.is_empty());
}

#[tokio::test]
async fn reader_filters_by_time() {
    let r = rig();
    let mut e1 = ev("acme", 1);
    e1["detail"]["metadata"]["occurred_at"] = json!("2026-11-20T23:59:59Z");
    let mut e2 = ev("acme", 2);
    e2["detail"]["metadata"]["occurred_at"] = json!("2026-11-21T00:00:01Z");
    r.sub.handle(&msgs(&[e1, e2])).await;
    assert_eq!(
        r.blobs.list(INGEST_PREFIX).await.unwrap().len(),
        2,
        "one file per day touched"
    );
    let from = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
    let rows = TenantReader::new(r.blobs.clone())
        .read(&TenantId::parse("acme").unwrap(), Some(from), None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_id.as_str(), id(2));
}

#[tokio::test]
async fn bounded_workers_fold_the_same_rows_as_one_big_worker() {
    let events: Vec<Value> = (0..120).map(|n| ev(&format!("t{}", n % 9), n)).collect();
    let mut results = Vec::new();
    for bound in [usize::MAX, 7, 1] {
        let r = rig();
        r.sub.handle(&msgs(&events[..60])).await;
        r.sub.handle(&msgs(&events[60..])).await;
        let c = Compactor::new(
            r.blobs.clone(),
            CompactorConfig {
                unit_rows: bound,
                task_rows: bound,
                max_part_rows: bound,
                ..CompactorConfig::default()
            },
        );
        let rep = c.run().await.unwrap();
        assert_eq!((rep.totals.rows_written, rep.ingest_rows), (120, 120));
        // the cut follows a uniform hash, so small units overshoot by a few rows
        assert!(
            rep.max_unit_rows <= bound.saturating_mul(2).max(bound.saturating_add(8)),
            "{rep:?}"
        );
        if bound == usize::MAX {
            assert_eq!(
                rep.totals.tenant_files_written, 9,
                "one part per small tenant-day"
            );
        } else {
            assert!(rep.totals.units > 9, "{rep:?}");
        }
        let mut rows = Vec::new();
        for t in 0..9 {
            rows.push(read_owned(&r.blobs, t).await);
        }
        results.push(rows);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A delivery: (tenant index, event number, payload variant). Variant 0 is the
    /// original payload; any other variant is a conflicting copy under the same id.
    /// Event `n` happened `n % 3` days before the clock, so batches span days.
    fn deliveries() -> impl Strategy<Value = Vec<Vec<(u8, u8, u8)>>> {
        prop::collection::vec(
            prop::collection::vec(
                (0u8..3, 0u8..12, prop_oneof![8 => Just(0u8), 1 => 1u8..3]),
                1..20,
            ),
            1..6,
        )
    }

    fn event(t: u8, n: u8, v: u8) -> Value {
        let mut e = ev_on(&format!("t{t}"), u32::from(n), i64::from(n % 3));
        if v > 0 {
            e["detail"]["payload"]["action"] = json!(format!("variant-{v}"));
        }
        e
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Under random faults of every dedupe operation (claims, releases, completions,
        /// each also "applied, then an error") and of ingest writes, every delivered
        /// event is stored once, never overwritten, and every conflict is quarantined.
        #[test]
        fn every_event_is_stored_once_and_never_overwritten(
            batches in deliveries(),
            fault_rate in prop_oneof![1 => Just(0.0), 3 => 0.05f64..0.4],
            seed in any::<u64>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let blob_faults = FaultInjector::random(fault_rate / 2.0, 0.0, seed);
                let dedupe_faults = FaultInjector::random(fault_rate, 0.0, seed.wrapping_add(1));
                let r = rig_with(blob_faults.clone(), dedupe_faults.clone());
                let mut pending: Vec<Vec<(u8, u8, u8)>> = batches.clone();
                let mut rounds = 0;
                while !pending.is_empty() && rounds < 60 {
                    rounds += 1;
                    if rounds == 30 {
                        // a calm tail, so that every run ends
                        blob_faults.set_rates(0.0, 0.0);
                        dedupe_faults.set_rates(0.0, 0.0);
                    }
                    let mut retry = Vec::new();
                    for batch in pending {
                        let events: Vec<Value> =
                            batch.iter().map(|&(t, n, v)| event(t, n, v)).collect();
                        let out = r.sub.handle(&msgs(&events)).await;
                        let failed: BTreeSet<&String> = out.failed_message_ids.iter().collect();
                        let again: Vec<(u8, u8, u8)> = batch
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| failed.contains(&format!("m{i}")))
                            .map(|(_, d)| *d)
                            .collect();
                        if !again.is_empty() {
                            retry.push(again);
                        }
                    }
                    pending = retry;
                    // claims left behind by a failure lapse with the lease
                    r.clock.advance(Duration::minutes(16));
                }
                prop_assert!(pending.is_empty(), "everything is eventually accepted");
                let mut variants: BTreeMap<(u8, u8), BTreeSet<u8>> = BTreeMap::new();
                for batch in &batches {
                    for &(t, n, v) in batch {
                        variants.entry((t, n)).or_default().insert(v);
                    }
                }
                let check = |stored: &[Vec<AuditRecord>]| -> Result<(), TestCaseError> {
                    let mut rows = 0;
                    for (t, rows_of_t) in stored.iter().enumerate() {
                        let ids: BTreeSet<&str> = rows_of_t.iter().map(|x| x.event_id.as_str()).collect();
                        prop_assert_eq!(ids.len(), rows_of_t.len(), "one row per event id");
                        for row in rows_of_t {
                            let n: u8 = row.event_id.as_str()[24..].parse().unwrap();
                            let v = if row.action == "view" { 0 } else { row.action[8..].parse().unwrap() };
                            prop_assert!(variants[&(t as u8, n)].contains(&v), "a delivered payload");
                            prop_assert_eq!(row.dt(), (Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap() - Duration::days(i64::from(n % 3))).date_naive());
                        }
                        rows += rows_of_t.len();
                    }
                    prop_assert_eq!(rows, variants.len(), "every delivered event is stored");
                    Ok(())
                };
                let before: Vec<Vec<AuditRecord>> = futures::future::join_all((0..3).map(|t| read_owned(&r.blobs, t))).await;
                check(&before)?;
                Compactor::new(r.blobs.clone(), CompactorConfig::default()).run().await.unwrap();
                let after: Vec<Vec<AuditRecord>> = futures::future::join_all((0..3).map(|t| read_owned(&r.blobs, t))).await;
                check(&after)?;
                prop_assert_eq!(&before, &after, "compaction keeps exactly the rows readers saw");
                // an id delivered with several payloads keeps one and quarantines the
                // others, by the subscriber or, once the store forgot, by compaction
                let conflicts: BTreeSet<(String, String)> = quarantined(&r.blobs)
                    .await
                    .iter()
                    .filter(|q| q["reason_code"] == CONFLICT)
                    .map(|q| (q["tenant_id"].as_str().unwrap_or_default().to_owned(), q["event_id"].as_str().unwrap_or_default().to_owned()))
                    .collect();
                for ((t, n), vs) in &variants {
                    if vs.len() > 1 {
                        prop_assert!(conflicts.contains(&(format!("t{t}"), id(u32::from(*n)))), "conflict for t{}/{} quarantined; quarantine: {:?}; keys {:?}", t, n, quarantined(&r.blobs).await.iter().map(|q| (q["reason_code"].clone(), q["tenant_id"].clone(), q["event_id"].clone())).collect::<Vec<_>>(), r.blobs.keys());
                    }
                }
                Ok(())
            })?;
        }
    }
}

/// Records what it is asked to register; fails while `fail` is set.
#[derive(Default)]
struct RecordingCatalog {
    registered: std::sync::Mutex<Vec<PartitionKey>>,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl PartitionCatalog for RecordingCatalog {
    async fn add_partitions(&self, partitions: &[PartitionKey]) -> Result<(), CatalogError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CatalogError("catalog unavailable".into()));
        }
        self.registered
            .lock()
            .unwrap()
            .extend(partitions.iter().cloned());
        Ok(())
    }
}

#[tokio::test]
async fn compaction_registers_partitions_before_removing_ingest_files() {
    let r = rig();
    let a: Vec<Value> = (0..30).map(|n| ev(&format!("t{}", n % 3), n)).collect();
    r.sub.handle(&msgs(&a)).await;
    let catalog = Arc::new(RecordingCatalog::default());
    catalog
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let c =
        Compactor::new(r.blobs.clone(), CompactorConfig::default()).with_catalog(catalog.clone());
    let rep = c.run().await.unwrap();
    assert_eq!(rep.failed_days.len(), 1);
    assert!(
        rep.failed_days[0].error.contains("catalog unavailable"),
        "{rep:?}"
    );
    assert!(
        !r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty(),
        "a failed registration keeps the ingest files"
    );
    catalog
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    c.run().await.unwrap();
    assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
    let mut got: Vec<String> = catalog
        .registered
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.prefix())
        .collect();
    got.sort();
    let dt = read(&r.blobs, "t0").await[0].dt();
    assert_eq!(
        got,
        (0..3)
            .map(|t| format!("audit/tenant_id=t{t}/dt={dt}/"))
            .collect::<Vec<_>>()
    );
}

/// A store where compaction runs between the reader's listing and its first read of
/// an ingest file: the file it listed is gone by the time it asks for it.
struct CompactsUnderTheReader {
    inner: Arc<MemoryBlobStore>,
    compacted: std::sync::atomic::AtomicBool,
    /// Keep compacting new ingest copies on every read (a store that never settles).
    always: bool,
}

#[async_trait::async_trait]
impl BlobStore for CompactsUnderTheReader {
    async fn put(&self, key: &str, body: bytes::Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<bytes::Bytes, BlobError> {
        if key.starts_with(INGEST_PREFIX)
            && (self.always
                || !self
                    .compacted
                    .swap(true, std::sync::atomic::Ordering::SeqCst))
        {
            let rows = crate::codec::decode_parquet(self.inner.get(key).await?, None).unwrap();
            Compactor::new(self.inner.clone(), CompactorConfig::default())
                .run()
                .await
                .unwrap();
            if self.always {
                // a fresh ingest copy under another name, compacted again next read
                let mut again = rows.clone();
                for r in &mut again {
                    r.ingested_at += Duration::seconds(1);
                }
                let k = format!(
                    "ingest/dt={}/again-{}.parquet",
                    again[0].dt(),
                    uuid::Uuid::new_v4()
                );
                self.inner
                    .put(&k, encode_parquet(&again, Tier::Ingest, 1).unwrap().into())
                    .await?;
            }
        }
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
}

/// Loss path: the reader listed, compaction swapped the files, the read skipped the
/// vanished file as NotFound and answered with the day's rows missing.
#[tokio::test]
async fn a_read_racing_compaction_returns_every_row_or_an_error() {
    let r = rig();
    let events: Vec<Value> = (0..12).map(|n| ev("acme", n)).collect();
    r.sub.handle(&msgs(&events)).await;
    let racing = CompactsUnderTheReader {
        inner: r.blobs.clone(),
        compacted: Default::default(),
        always: false,
    };
    let tenant = TenantId::parse("acme").unwrap();
    let rows = TenantReader::new(racing)
        .read(&tenant, None, None)
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        12,
        "the rows moved to the tenant tier are found"
    );
    assert!(
        r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty(),
        "it did compact"
    );

    // a store that changes under every attempt gives an error, not a short answer
    let r = rig();
    r.sub.handle(&msgs(&events)).await;
    let never_settles = CompactsUnderTheReader {
        inner: r.blobs.clone(),
        compacted: Default::default(),
        always: true,
    };
    let err = TenantReader::new(never_settles)
        .read(&tenant, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Unstable { .. }), "{err}");
}

/// Quarantine comes back: after the schema for a new event type is added, a redrive
/// stores what is now accepted, keeps what still fails under its current reason, counts
/// a copy of a stored event as a duplicate, leaves transient failures as they were, and
/// changes nothing the second time.
#[tokio::test]
async fn redrive_brings_back_what_is_now_accepted_and_only_that() {
    use crate::quarantine::{Selection, list, redrive};
    let r = rig();
    let billing = |n: u32, payload: Value| {
        let mut e = ev("acme", n);
        e["detail"]["metadata"]["event_type"] = json!("billing.invoice.paid");
        e["detail"]["payload"] = payload;
        e
    };
    let stored = ev("acme", 9);
    let mut messages = msgs(&[
        billing(1, json!({"amount": 10})),
        billing(2, json!({"amount": 20})),
        billing(3, json!({"note": "no amount"})),
        stored.clone(),
    ]);
    messages.push(InboundMessage {
        message_id: "junk".into(),
        body: "{not json".into(),
    });
    let out = r.sub.handle(&messages).await;
    assert_eq!((out.stats.written, out.stats.quarantined), (1, 4));
    // a quarantine record holding a copy of an event that is already stored
    let copy_key = quarantine_object_key(
        r.clock.now_for_test().date_naive(),
        "unknown_schema",
        b"copy",
    );
    let copy = QuarantineRecord {
        reason_code: "unknown_schema".into(),
        reason: "test".into(),
        message_id: "x".into(),
        received_at: r.clock.now_for_test(),
        tenant_id: None,
        event_id: None,
        accepted_payload_sha256: None,
        payload_sha256: None,
        body: stored.to_string(),
    };
    r.blobs
        .put(&copy_key, serde_json::to_vec(&copy).unwrap().into())
        .await
        .unwrap();

    // the schema is added; a day later, the operator redrives
    let mut registry = SchemaRegistry::builtin().unwrap();
    registry
        .add_file(
            "billing.invoice.paid.v1.json",
            r#"{"type": "object", "required": ["amount"]}"#,
        )
        .unwrap();
    r.clock.advance(Duration::days(1));
    let sub = Subscriber::new(
        r.dedupe.clone(),
        r.faults.clone(),
        r.clock.clone(),
        Arc::new(registry),
        SubscriberConfig::default(),
    );
    // the first attempt meets a write outage: what needed a write stays as it was;
    // the copy of a stored event needed none and is gone as a duplicate
    // (three writes: the invoices' ingest file, two new quarantine records)
    r.faults.fail_next_puts(3);
    let all = Selection::default();
    let rep = redrive(&sub, r.blobs.as_ref(), &all, 100).await.unwrap();
    assert_eq!(
        (rep.selected, rep.duplicates, rep.removed),
        (5, 1, 1),
        "{rep:?}"
    );
    assert_eq!(rep.retry_later, 4, "{rep:?}");
    assert_eq!(list(r.blobs.as_ref(), &all).await.unwrap().len(), 4);

    let rep = redrive(&sub, r.blobs.as_ref(), &all, 100).await.unwrap();
    assert_eq!(
        (rep.accepted, rep.duplicates, rep.retry_later),
        (2, 0, 0),
        "{rep:?}"
    );
    assert_eq!(rep.still_quarantined.get("schema_violation"), Some(&1));
    assert_eq!(rep.still_quarantined.get("malformed_json"), Some(&1));
    let rows = read(&r.blobs, "acme").await;
    assert_eq!(rows.len(), 3, "the stored event and the two invoices");
    let left = list(r.blobs.as_ref(), &all).await.unwrap();
    let reasons: Vec<&str> = left.iter().map(|e| e.reason_code.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{left:?}");
    assert!(reasons.contains(&"schema_violation") && reasons.contains(&"malformed_json"));

    // twice changes nothing
    let keys_before = r.blobs.keys();
    let rep = redrive(&sub, r.blobs.as_ref(), &all, 100).await.unwrap();
    assert_eq!((rep.accepted, rep.removed), (0, 0), "{rep:?}");
    assert_eq!(r.blobs.keys(), keys_before);
    assert_eq!(read(&r.blobs, "acme").await.len(), 3);
    // and a selection by reason touches only that reason
    let only = Selection {
        reason: Some("conflict".into()),
        ..Selection::default()
    };
    assert_eq!(
        redrive(&sub, r.blobs.as_ref(), &only, 100)
            .await
            .unwrap()
            .selected,
        0
    );
}

mod integration_tests {
    use super::*;
    use crate::integration::{BlobLog, INTEGRATED_PREFIX, integrate};
    use transparency::checkpoint::{self as cp, CheckpointSigner as _, LocalKey};
    use transparency::integrate::{CheckpointPolicy, InMemoryLog, Integrator};

    /// The tests' integrator of the logs in `store`.
    fn integrator<'a>(
        store: &'a BlobLog<'a>,
        index: &'a InMemoryLog,
        key: &'a LocalKey,
    ) -> Integrator<'a> {
        Integrator {
            store,
            index,
            signer: key,
            log_name: "audit.example",
            policy: CheckpointPolicy::default(),
        }
    }

    /// The tenant's rows, as readers see them, verified against its log; and how many
    /// rows are not integrated yet.
    async fn verified(
        blobs: &Arc<MemoryBlobStore>,
        index: &InMemoryLog,
        key: &LocalKey,
        tenant: &str,
    ) -> (transparency::verify::Report, usize) {
        let keys = cp::trusted(&[key.verifier_key().to_owned()]).unwrap();
        let anchor = crate::integration::TrustAnchor {
            trusted: &keys,
            log_name: "audit.example",
            pinned: None,
        };
        let t = TenantId::parse(tenant).unwrap();
        crate::integration::verify_tenant(blobs, index, &anchor, &t)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_accepted_event_gets_one_leaf_and_compaction_waits_for_integration() {
        let r = rig();
        let key = LocalKey::generate("audit.example").unwrap();
        let index = InMemoryLog::default();
        let store = BlobLog(r.blobs.as_ref());
        let integrator = integrator(&store, &index, &key);
        let a: Vec<Value> = (0..30).map(|n| ev(&format!("t{}", n % 3), n)).collect();
        r.sub.handle(&msgs(&a)).await;
        // a second copy of five events in another ingest file (a lost completion)
        let first = r.blobs.list(INGEST_PREFIX).await.unwrap()[0].key.clone();
        let mut dup =
            crate::codec::decode_parquet(r.blobs.get(&first).await.unwrap(), None).unwrap();
        dup.truncate(5);
        let dup_key = ingest_object_key(dup[0].dt(), &dup);
        r.blobs
            .put(
                &dup_key,
                crate::codec::encode_parquet(&dup, Tier::Ingest, 3)
                    .unwrap()
                    .into(),
            )
            .await
            .unwrap();

        let out = integrate(r.blobs.as_ref(), &integrator, r.clock.now(), false)
            .await
            .unwrap();
        assert_eq!(
            (out.files, out.added, out.duplicates, out.tenants),
            (2, 30, 5, 3)
        );
        assert_eq!(out.checkpoints, 3, "each tenant's first checkpoint at once");
        for t in ["t0", "t1", "t2"] {
            let (report, pending) = verified(&r.blobs, &index, &key, t).await;
            assert!(report.ok() && pending == 0, "{t}: {:?}", report.findings);
            assert_eq!(report.rows_verified, 10);
        }
        let again = integrate(r.blobs.as_ref(), &integrator, r.clock.now(), false)
            .await
            .unwrap();
        assert_eq!(
            (again.files, again.added),
            (0, 0),
            "integrated files are skipped"
        );

        // a file written after the run is not folded until it is integrated
        let b: Vec<Value> = (30..36).map(|n| ev("t0", n)).collect();
        r.sub.handle(&msgs(&b)).await;
        let cfg = CompactorConfig {
            integrated_only: true,
            ..CompactorConfig::default()
        };
        Compactor::new(r.blobs.clone(), cfg.clone())
            .run()
            .await
            .unwrap();
        let left = r.blobs.list(INGEST_PREFIX).await.unwrap();
        assert_eq!(left.len(), 1, "only the unintegrated file is left");
        assert_eq!(read(&r.blobs, "t0").await.len(), 16, "and still read");
        let (report, pending) = verified(&r.blobs, &index, &key, "t0").await;
        assert!(report.ok(), "{:?}", report.findings);
        assert_eq!(pending, 6, "accepted, not integrated yet");
        // integrated, but the checkpoint not due yet: rows past the signed log
        integrate(r.blobs.as_ref(), &integrator, r.clock.now(), false)
            .await
            .unwrap();
        let (report, _) = verified(&r.blobs, &index, &key, "t0").await;
        assert_eq!(
            report
                .findings
                .iter()
                .map(|f| (f.problem, f.indexes.clone()))
                .collect::<Vec<_>>(),
            vec![(transparency::verify::Problem::Unverifiable, 10..16)],
        );
        r.clock.advance(Duration::minutes(2));
        let out = integrate(r.blobs.as_ref(), &integrator, r.clock.now(), false)
            .await
            .unwrap();
        assert_eq!(
            (out.files, out.added, out.checkpoints),
            (0, 0, 1),
            "signed when due"
        );
        Compactor::new(r.blobs.clone(), cfg).run().await.unwrap();
        assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
        // the markers of folded files go with the next run
        integrate(r.blobs.as_ref(), &integrator, r.clock.now(), false)
            .await
            .unwrap();
        assert!(r.blobs.list(INTEGRATED_PREFIX).await.unwrap().is_empty());
        let (report, pending) = verified(&r.blobs, &index, &key, "t0").await;
        assert!(report.ok() && pending == 0, "{:?}", report.findings);
        assert_eq!(report.rows_verified, 16);
    }

    #[tokio::test]
    async fn compaction_writes_each_rows_leaf_index_from_the_integrators_marker() {
        let r = rig();
        let key = LocalKey::generate("audit.example").unwrap();
        let index = InMemoryLog::default();
        let store = BlobLog(r.blobs.as_ref());
        let integrator = integrator(&store, &index, &key);
        for batch in 0..3 {
            let a: Vec<Value> = (0..12)
                .map(|n| ev(&format!("t{}", n % 2), batch * 12 + n))
                .collect();
            r.sub.handle(&msgs(&a)).await;
        }
        integrate(r.blobs.as_ref(), &integrator, r.clock.now(), true)
            .await
            .unwrap();
        let cfg = CompactorConfig {
            integrated_only: true,
            ..CompactorConfig::default()
        };
        Compactor::new(r.blobs.clone(), cfg).run().await.unwrap();
        assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
        for t in ["t0", "t1"] {
            let rows = read(&r.blobs, t).await;
            let tenant = TenantId::parse(t).unwrap();
            let ids: Vec<_> = rows.iter().map(|r| r.event_id.clone()).collect();
            let placed = transparency::integrate::LeafIndex::lookup(&index, &tenant, &ids)
                .await
                .unwrap();
            let mut seen: Vec<u64> = rows
                .iter()
                .map(|r| {
                    let at = r.leaf_index.expect("compacted rows carry their index");
                    assert_eq!(at, placed[&r.event_id].index, "{}", r.event_id);
                    at
                })
                .collect();
            seen.sort_unstable();
            assert_eq!(
                seen,
                (0..18).collect::<Vec<_>>(),
                "{t}: contiguous, once each"
            );
            // verified from the rows alone: an index store that knows nothing is not asked
            let (report, pending) = verified(&r.blobs, &InMemoryLog::default(), &key, t).await;
            assert!(report.ok() && pending == 0, "{t}: {:?}", report.findings);
            assert_eq!(report.rows_verified, 18);
        }
    }

    #[tokio::test]
    async fn rows_compacted_before_the_log_existed_are_put_in_it_first_and_once() {
        let r = rig();
        let key = LocalKey::generate("audit.example").unwrap();
        let index = InMemoryLog::default();
        let store = BlobLog(r.blobs.as_ref());
        let integrator = integrator(&store, &index, &key);
        // a deployment from before the logs: compacted without integration
        let old: Vec<Value> = (0..20).map(|n| ev(&format!("t{}", n % 2), n)).collect();
        r.sub.handle(&msgs(&old)).await;
        Compactor::new(r.blobs.clone(), CompactorConfig::default())
            .run()
            .await
            .unwrap();
        assert!(r.blobs.list(INGEST_PREFIX).await.unwrap().is_empty());
        // then the upgrade, and new traffic
        let new: Vec<Value> = (20..24).map(|n| ev("t0", n)).collect();
        r.sub.handle(&msgs(&new)).await;
        let out = integrate(r.blobs.as_ref(), &integrator, r.clock.now(), true)
            .await
            .unwrap();
        assert_eq!((out.backfilled, out.added), (20, 4), "{out:?}");
        let (report, pending) = verified(&r.blobs, &index, &key, "t0").await;
        assert!(report.ok() && pending == 0, "{:?}", report.findings);
        assert_eq!(report.rows_verified, 14);
        // the old rows first, in acceptance order; the new ones after
        let t0 = TenantId::parse("t0").unwrap();
        let rows = read(&r.blobs, "t0").await;
        let ids: Vec<_> = rows.iter().map(|r| r.event_id.clone()).collect();
        let placed = transparency::integrate::LeafIndex::lookup(&index, &t0, &ids)
            .await
            .unwrap();
        let mut by_index: Vec<(u64, bool)> = rows
            .iter()
            .map(|r| (placed[&r.event_id].index, r.leaf_index.is_none()))
            .collect();
        by_index.sort_unstable();
        assert!(by_index[..10].iter().all(|(_, in_parts)| *in_parts));
        // once: a later run backfills nothing, and an interrupted one adds no leaf again
        let again = integrate(r.blobs.as_ref(), &integrator, r.clock.now(), true)
            .await
            .unwrap();
        assert_eq!(again.backfilled, 0);
        r.blobs
            .delete(&format!("{}t0", crate::integration::BACKFILLED_PREFIX))
            .await
            .unwrap();
        let resumed = integrate(r.blobs.as_ref(), &integrator, r.clock.now(), true)
            .await
            .unwrap();
        assert_eq!(resumed.backfilled, 0, "duplicates add no leaf");
        let (report, _) = verified(&r.blobs, &index, &key, "t0").await;
        assert!(report.ok(), "{:?}", report.findings);
    }

    #[tokio::test]
    async fn each_signing_key_is_published_once_and_kept_after_a_rotation() {
        use crate::integration::{VERIFIER_KEYS, publish_verifier_key};
        let blobs = MemoryBlobStore::default();
        let old = LocalKey::generate("audit.example").unwrap();
        let new = LocalKey::generate("audit.example").unwrap();
        for key in [&old, &old, &new, &old] {
            publish_verifier_key(&blobs, key.verifier_key())
                .await
                .unwrap();
        }
        let listed = blobs.get(VERIFIER_KEYS).await.unwrap();
        let listed: Vec<&str> = std::str::from_utf8(&listed).unwrap().lines().collect();
        assert_eq!(listed, [old.verifier_key(), new.verifier_key()]);
    }

    #[tokio::test]
    async fn a_damaged_marker_stops_the_day_and_its_rows_stay_in_the_ingest_tier() {
        let r = rig();
        let key = LocalKey::generate("audit.example").unwrap();
        let index = InMemoryLog::default();
        let store = BlobLog(r.blobs.as_ref());
        let integrator = integrator(&store, &index, &key);
        let a: Vec<Value> = (0..5).map(|n| ev("t0", n)).collect();
        r.sub.handle(&msgs(&a)).await;
        integrate(r.blobs.as_ref(), &integrator, r.clock.now(), true)
            .await
            .unwrap();
        let marker = r.blobs.list(INTEGRATED_PREFIX).await.unwrap()[0]
            .key
            .clone();
        r.blobs
            .put(&marker, bytes::Bytes::from_static(b"garbage\n"))
            .await
            .unwrap();
        let cfg = CompactorConfig {
            integrated_only: true,
            ..CompactorConfig::default()
        };
        let report = Compactor::new(r.blobs.clone(), cfg).run().await.unwrap();
        assert_eq!(report.failed_days.len(), 1, "{report:?}");
        assert!(
            report.failed_days[0].error.contains(&marker),
            "{}",
            report.failed_days[0].error
        );
        assert_eq!(r.blobs.list(INGEST_PREFIX).await.unwrap().len(), 1);
        assert_eq!(
            read(&r.blobs, "t0").await.len(),
            5,
            "nothing made invisible"
        );
    }
}
