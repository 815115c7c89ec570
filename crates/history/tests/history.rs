//! The history over both tiers, on the in-memory blob store: page order and paging,
//! deduplication, cursors, one event, polling in ingestion order, exports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auditlog::memory::MemoryBlobStore;
use auditlog::{
    AuditRecord, BlobError, BlobStore, PartitionKey, Tier, encode_parquet, ingest_object_key,
};
use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};
use envelope::{EventId, TenantId};
use history::{
    EventQuery, ExportFormat, ExportUpload, History, HistoryConfig, HistoryError, SealKey,
};
use proptest::prelude::*;
use sha2::Digest;

fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn at(day: u32, secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A UUID for a readable name; the name rides in `correlation_id`.
fn eid(name: &str) -> String {
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

fn record(tenant: &str, id: &str, occurred: DateTime<Utc>, ingested: DateTime<Utc>) -> AuditRecord {
    let payload = format!(r#"{{"n":"{id}"}}"#);
    AuditRecord {
        tenant_id: t(tenant),
        event_id: EventId::parse(&eid(id)).unwrap(),
        event_type: "app.document.shared".into(),
        schema_version: 1,
        occurred_at: occurred,
        ingested_at: ingested,
        producer: "docs".into(),
        source: "app.docs".into(),
        actor_type: "user".into(),
        actor_id: format!("u-{}", id.len() % 3),
        actor_name: Some("Ada Lovelace".into()),
        action: "share".into(),
        target_type: Some("document".into()),
        target_id: Some(format!("doc-{id}")),
        target_name: Some("=cmd|' /C calc'!A0".into()),
        outcome: "success".into(),
        correlation_id: Some(id.to_owned()),
        request_id: None,
        source_ip: None,
        user_agent: None,
        payload_sha256: auditlog::payload_sha256(&payload),
        payload,
        bus_event_id: format!("bus-{id}"),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        leaf_index: None,
    }
}

async fn put_ingest(blobs: &MemoryBlobStore, rows: &[AuditRecord]) {
    let day = rows[0].occurred_at.date_naive();
    let key = ingest_object_key(day, rows);
    blobs
        .put(&key, encode_parquet(rows, Tier::Ingest, 1).unwrap().into())
        .await
        .unwrap();
}

async fn put_part(blobs: &MemoryBlobStore, rows: &[AuditRecord]) {
    let pk = PartitionKey::new(rows[0].tenant_id.clone(), rows[0].occurred_at.date_naive());
    blobs
        .put(
            &pk.object_key(rows),
            encode_parquet(rows, Tier::Tenant, 1).unwrap().into(),
        )
        .await
        .unwrap();
}

fn key() -> SealKey {
    SealKey::new(&[7u8; 32]).unwrap()
}

fn history(blobs: Arc<MemoryBlobStore>) -> History<Arc<MemoryBlobStore>> {
    History::new(blobs, key(), HistoryConfig::default())
}

fn ids(rows: &[AuditRecord]) -> Vec<String> {
    rows.iter()
        .map(|r| r.correlation_id.clone().unwrap_or_default())
        .collect()
}

fn query(pairs: &[(&str, &str)]) -> EventQuery {
    EventQuery::from_pairs(pairs.iter().copied(), &[]).unwrap()
}

#[tokio::test]
async fn pages_are_newest_first_across_both_tiers_once_each() {
    let blobs = Arc::new(MemoryBlobStore::default());
    // day 20 compacted, day 21 in the ingest tier with another tenant, one event in both
    let old = record("acme", "e-old", at(20, 10), at(20, 11));
    put_part(
        &blobs,
        &[old.clone(), record("acme", "e-old2", at(20, 5), at(20, 6))],
    )
    .await;
    put_ingest(
        &blobs,
        &[
            old.clone(),
            record("acme", "e-b", at(21, 50), at(21, 51)),
            record("acme", "e-a", at(21, 50), at(21, 51)), // a tie: id decides
            record("other", "e-x", at(21, 60), at(21, 61)),
        ],
    )
    .await;
    let h = history(blobs);
    let now = at(22, 0);
    let page = h
        .page(&t("acme"), &query(&[]), 10, None, now)
        .await
        .unwrap();
    // of the two at the same time, the greater id comes first (newest first)
    let tie = if eid("e-b") > eid("e-a") {
        ["e-b", "e-a"]
    } else {
        ["e-a", "e-b"]
    };
    let want = [tie[0], tie[1], "e-old", "e-old2"];
    assert_eq!(ids(&page.events), want);
    assert!(page.next.is_none());

    // two at a time: the same rows, in the same order, each once
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = h
            .page(&t("acme"), &query(&[]), 2, cursor.as_deref(), now)
            .await
            .unwrap();
        seen.extend(ids(&p.events));
        match p.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, want);

    // the other tenant sees only its own
    let p = h
        .page(&t("other"), &query(&[]), 10, None, now)
        .await
        .unwrap();
    assert_eq!(ids(&p.events), ["e-x"]);
    assert!(
        h.page(&t("nobody"), &query(&[]), 10, None, now)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

#[tokio::test]
async fn cursors_are_bound_to_tenant_query_and_time() {
    let blobs = Arc::new(MemoryBlobStore::default());
    let rows: Vec<AuditRecord> = (0..5)
        .map(|i| record("acme", &format!("e-{i}"), at(21, i), at(21, i)))
        .collect();
    put_ingest(&blobs, &rows).await;
    let other: Vec<AuditRecord> = (0..5)
        .map(|i| record("other", &format!("o-{i}"), at(21, i), at(21, i)))
        .collect();
    put_ingest(&blobs, &other).await;
    let h = history(blobs);
    let now = at(22, 0);
    let first = h.page(&t("acme"), &query(&[]), 2, None, now).await.unwrap();
    let cursor = first.next.unwrap();
    let refused = |r: Result<history::Page, HistoryError>| match r {
        Err(HistoryError::Cursor(why)) => why,
        other => panic!("expected a cursor error, got {other:?}"),
    };
    // another tenant's cursor
    let why = refused(
        h.page(&t("other"), &query(&[]), 2, Some(&cursor), now)
            .await,
    );
    assert!(why.contains("another tenant"), "{why}");
    // another query
    let why = refused(
        h.page(
            &t("acme"),
            &query(&[("outcome", "success")]),
            2,
            Some(&cursor),
            now,
        )
        .await,
    );
    assert!(why.contains("another query"), "{why}");
    // expired
    let why = refused(
        h.page(
            &t("acme"),
            &query(&[]),
            2,
            Some(&cursor),
            now + Duration::hours(2),
        )
        .await,
    );
    assert!(why.contains("expired"), "{why}");
    // edited by hand: swap a character of the claims
    let mut parts: Vec<String> = cursor.split('.').map(str::to_owned).collect();
    let mut claims = parts[1].clone().into_bytes();
    claims[3] = if claims[3] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(claims).unwrap();
    let why = refused(
        h.page(&t("acme"), &query(&[]), 2, Some(&parts.join(".")), now)
            .await,
    );
    assert!(
        why.contains("altered") || why.contains("not a token"),
        "{why}"
    );
    // a checkpoint is not a cursor
    let cp = h.start(&t("acme"));
    refused(h.page(&t("acme"), &query(&[]), 2, Some(&cp), now).await);
}

#[tokio::test]
async fn one_event_by_id_only_in_its_tenant() {
    let blobs = Arc::new(MemoryBlobStore::default());
    put_part(&blobs, &[record("acme", "e-1", at(3, 0), at(3, 0))]).await;
    put_ingest(
        &blobs,
        &[
            record("acme", "e-2", at(21, 0), at(21, 0)),
            record("other", "o-1", at(21, 0), at(21, 0)),
        ],
    )
    .await;
    let h = history(blobs);
    assert_eq!(
        h.get(&t("acme"), &eid("e-1"))
            .await
            .unwrap()
            .unwrap()
            .event_id
            .as_str(),
        eid("e-1")
    );
    assert!(h.get(&t("acme"), &eid("e-2")).await.unwrap().is_some());
    assert!(h.get(&t("acme"), &eid("o-1")).await.unwrap().is_none());
    assert!(h.get(&t("other"), &eid("e-1")).await.unwrap().is_none());
    assert!(h.get(&t("acme"), "not-an-id").await.unwrap().is_none());
}

#[tokio::test]
async fn a_poll_delivers_a_late_event_and_always_moves_on() {
    let blobs = Arc::new(MemoryBlobStore::default());
    let h = history(blobs.clone());
    let acme = t("acme");
    let lag = Duration::from_std(HistoryConfig::default().poll_lag).unwrap();
    let now = at(21, 3600);
    put_ingest(
        &blobs,
        &[
            record("acme", "e-1", at(21, 0), at(21, 10)),
            record("acme", "e-2", at(21, 5), at(21, 20)),
            record("other", "o-1", at(21, 0), at(21, 10)),
        ],
    )
    .await;
    let p = h.poll(&acme, None, 1, now).await.unwrap();
    assert_eq!(ids(&p.events), ["e-1"]);
    let p = h.poll(&acme, Some(&p.next), 10, now).await.unwrap();
    assert_eq!(ids(&p.events), ["e-2"]);
    // nothing new: an empty page, and a checkpoint to poll with again
    let empty = h.poll(&acme, Some(&p.next), 10, now).await.unwrap();
    assert!(empty.events.is_empty());
    // a late event: occurred two days ago, accepted now, is still delivered, once
    put_ingest(
        &blobs,
        &[record(
            "acme",
            "e-late",
            at(19, 0),
            now - Duration::seconds(1),
        )],
    )
    .await;
    let p = h.poll(&acme, Some(&empty.next), 10, now).await.unwrap();
    assert!(
        p.events.is_empty(),
        "inside the lag it waits: {:?}",
        ids(&p.events)
    );
    let later = now + lag + Duration::seconds(1);
    let p = h.poll(&acme, Some(&p.next), 10, later).await.unwrap();
    assert_eq!(ids(&p.events), ["e-late"]);
    let p = h.poll(&acme, Some(&p.next), 10, later).await.unwrap();
    assert!(p.events.is_empty());
    // another tenant's checkpoint, or an edited one, is refused
    let theirs = h.poll(&t("other"), None, 10, later).await.unwrap().next;
    assert!(matches!(
        h.poll(&acme, Some(&theirs), 10, later).await,
        Err(HistoryError::Checkpoint(_))
    ));
    assert!(matches!(
        h.poll(&acme, Some("k1.e30.AAAA"), 10, later).await,
        Err(HistoryError::Checkpoint(_))
    ));
}

#[derive(Default, Clone)]
struct Collected(Arc<Mutex<Vec<u8>>>);

#[async_trait]
impl ExportUpload for Collected {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.0.lock().unwrap().extend_from_slice(&chunk);
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<(), BlobError> {
        Ok(())
    }
    async fn abort(self: Box<Self>) {}
}

#[tokio::test]
async fn exports_write_every_matching_row_oldest_first() {
    let blobs = Arc::new(MemoryBlobStore::default());
    for day in 1..=4u32 {
        let rows: Vec<AuditRecord> = (0..3)
            .map(|i| record("acme", &format!("e-{day}-{i}"), at(day, i), at(day, i)))
            .collect();
        put_part(&blobs, &rows).await;
    }
    put_ingest(&blobs, &[record("other", "o-1", at(2, 0), at(2, 0))]).await;
    let h = history(blobs);
    let q = query(&[("from", "2026-11-02"), ("to", "2026-11-04")]);
    let mut csv = Collected::default();
    let n = h
        .export(&t("acme"), &q, ExportFormat::Csv, &mut csv)
        .await
        .unwrap();
    assert_eq!(n, 6);
    let text = String::from_utf8(csv.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0].starts_with("event_id,occurred_at,"));
    assert!(lines[1].starts_with(&format!("{},", eid("e-2-0"))));
    assert!(lines[6].starts_with(&format!("{},", eid("e-3-2"))));
    // the formula in target_name is neutralised
    assert!(lines[1].contains("\"'=cmd|' /C calc'!A0\""), "{}", lines[1]);
    assert!(!text.contains(&eid("o-1")));

    let mut nd = Collected::default();
    let n = h
        .export(&t("acme"), &query(&[]), ExportFormat::Ndjson, &mut nd)
        .await
        .unwrap();
    assert_eq!(n, 12);
    let text = String::from_utf8(nd.0.lock().unwrap().clone()).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["event_id"], eid("e-1-0"));
    assert_eq!(first["payload"]["n"], "e-1-0");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any mix of tiers, duplicates, ties and filters: paging in steps of `limit` gives
    /// exactly the matching rows of the tenant, newest first, each once.
    #[test]
    fn paging_gives_every_matching_row_once(
        events in proptest::collection::vec((0usize..3, 0u32..4, 0i64..4, 0u8..3, any::<bool>()), 1..40),
        limit in 1usize..6,
        by_actor in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let blobs = Arc::new(MemoryBlobStore::default());
            let tenants = ["acme", "beta", "gamma"];
            let mut expected = std::collections::BTreeMap::new();
            let mut ingest: Vec<AuditRecord> = Vec::new();
            for (n, (ti, day, sec, copies, compacted)) in events.iter().enumerate() {
                let id = format!("e-{n:03}");
                let r = record(tenants[*ti], &id, at(10 + day, *sec), at(10 + day, 100));
                if *ti == 0 && (!by_actor || r.actor_id == "u-1") {
                    expected.insert((r.occurred_at, eid(&id)), id.clone());
                }
                if *compacted {
                    put_part(&blobs, std::slice::from_ref(&r)).await;
                }
                for _ in 0..=*copies {
                    ingest.push(r.clone());
                }
            }
            // the ingest copies in files of up to 7 rows, each of one day
            ingest.sort_by_key(|r| r.occurred_at.date_naive());
            for chunk in ingest.chunk_by(|a, b| a.occurred_at.date_naive() == b.occurred_at.date_naive()) {
                for part in chunk.chunks(7) {
                    // one file holds one copy of an event; more copies, more files
                    let mut seen = std::collections::HashSet::new();
                    let (first, rest): (Vec<_>, Vec<_>) = part.iter().cloned().partition(|r| seen.insert(r.event_id.clone()));
                    put_ingest(&blobs, &first).await;
                    if !rest.is_empty() { put_ingest(&blobs, &rest).await; }
                }
            }
            let h = history(blobs);
            let q = if by_actor { query(&[("actor", "u-1")]) } else { query(&[]) };
            let mut seen = Vec::new();
            let mut cursor = None;
            for _ in 0..100 {
                let p = h.page(&t("acme"), &q, limit, cursor.as_deref(), at(30, 0)).await.unwrap();
                prop_assert!(p.events.len() <= limit);
                seen.extend(ids(&p.events));
                match p.next { Some(c) => cursor = Some(c), None => break }
            }
            let want: Vec<String> = expected.into_values().rev().collect();
            prop_assert_eq!(seen, want);
            Ok(())
        })?;
    }
}

/// An open day of ingest files written through the day, each holding events up to its
/// write time: the first page reads the newest few files, not all of them, and pages
/// through the whole day still give every row once, in order.
#[tokio::test]
async fn the_first_page_of_a_busy_day_reads_only_its_newest_files() {
    let blobs = Arc::new(MemoryBlobStore::default());
    let mut all = Vec::new();
    for f in 0..40i64 {
        let written = at(21, 600 * (f + 1));
        let rows: Vec<AuditRecord> = (0..20)
            .map(|i| {
                let name = format!("f{f:02}-{i:02}");
                record("acme", &name, written - Duration::seconds(30 * i), written)
            })
            .collect();
        all.extend(rows.iter().map(|r| (r.occurred_at, r.event_id.clone())));
        let key = ingest_object_key(rows[0].occurred_at.date_naive(), &rows);
        blobs.put_at(
            &key,
            encode_parquet(&rows, Tier::Ingest, 1).unwrap().into(),
            written,
        );
    }
    let h = history(blobs.clone());
    let before = blobs.get_count();
    let page = h
        .page(&t("acme"), &query(&[]), 50, None, at(22, 0))
        .await
        .unwrap();
    let read = blobs.get_count() - before;
    assert_eq!(page.events.len(), 50);
    // 50 rows are in the newest 3 files, and the names say the 4th holds nothing newer
    // than the 50th row: 3 files read of 40
    assert_eq!(read, 3, "the first page read {read} of 40 files");
    // and every row comes, once, newest first
    all.sort();
    let want: Vec<String> = all
        .into_iter()
        .rev()
        .map(|(_, id)| id.as_str().to_owned())
        .collect();
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let p = h
            .page(&t("acme"), &query(&[]), 50, cursor.as_deref(), at(22, 0))
            .await
            .unwrap();
        got.extend(p.events.iter().map(|r| r.event_id.as_str().to_owned()));
        match p.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Files written at random times through a day, each holding events that occurred up
    /// to the accepted future skew after its write (and any time before), copies across
    /// files: pages skip files only where they may, and give every row once, in order.
    #[test]
    fn skipping_files_never_skips_rows(
        files in proptest::collection::vec((0i64..86_000, proptest::collection::vec((0i64..86_000, 0u8..4), 1..12)), 1..12),
        limit in 1usize..9,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let blobs = Arc::new(MemoryBlobStore::default());
            let skew = HistoryConfig::default().future_skew.as_secs() as i64;
            let mut expected = std::collections::BTreeMap::new();
            for (f, (written, events)) in files.iter().enumerate() {
                let written_at = at(21, *written);
                let rows: Vec<AuditRecord> = events
                    .iter()
                    .enumerate()
                    .map(|(i, (occ, dup))| {
                        // a quarter are copies of a shared event: same id in many files
                        let name = if *dup == 0 { format!("shared-{}", occ % 5) } else { format!("f{f}-{i}") };
                        // at most the future skew after the write, clamped to the day
                        let occurred = at(21, (*occ).min(written + skew).min(86_399));
                        record("acme", &name, if *dup == 0 { at(21, occ % 5) } else { occurred }, written_at)
                    })
                    .collect();
                let mut seen = std::collections::HashSet::new();
                let rows: Vec<AuditRecord> = rows.into_iter().filter(|r| seen.insert(r.event_id.clone())).collect();
                for r in &rows {
                    expected.insert(r.event_id.as_str().to_owned(), r.occurred_at);
                }
                let key = ingest_object_key(rows[0].occurred_at.date_naive(), &rows);
                blobs.put_at(&key, encode_parquet(&rows, Tier::Ingest, 1).unwrap().into(), written_at);
            }
            let h = history(blobs);
            let mut want: Vec<(DateTime<Utc>, String)> = expected.into_iter().map(|(id, at)| (at, id)).collect();
            want.sort();
            want.reverse();
            let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
            let mut got = Vec::new();
            let mut cursor = None;
            for _ in 0..200 {
                let p = h.page(&t("acme"), &query(&[]), limit, cursor.as_deref(), at(23, 0)).await.unwrap();
                got.extend(p.events.iter().map(|r| r.event_id.as_str().to_owned()));
                match p.next { Some(c) => cursor = Some(c), None => break }
            }
            prop_assert_eq!(got, want);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// An export is the reader's rows, encoded: over any mix of tiers, copies ingested
    /// at different times (the first ingested must be the one written), other tenants
    /// and filters, its bytes equal those of the deduplicated, filtered, sorted records
    /// `TenantReader` returns, each written through `RowWriter`.
    #[test]
    fn exports_are_the_readers_rows_encoded(
        events in proptest::collection::vec((0usize..3, 0u32..3, 0i64..3, proptest::collection::vec(0i64..50, 1..4), any::<bool>()), 1..40),
        filter in 0u8..3,
        ndjson in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let blobs = Arc::new(MemoryBlobStore::default());
            let tenants = ["acme", "beta", "gamma"];
            let mut ingest: Vec<AuditRecord> = Vec::new();
            for (n, (ti, day, sec, arrivals, compacted)) in events.iter().enumerate() {
                let id = format!("e-{n:03}");
                let copies: Vec<AuditRecord> = arrivals.iter().enumerate().map(|(c, late)| {
                    let mut r = record(tenants[*ti], &id, at(10 + day, *sec), at(10 + day, 100 + late));
                    r.bus_event_id = format!("bus-{id}-{c}");
                    r
                }).collect();
                if *compacted {
                    put_part(&blobs, std::slice::from_ref(&copies[0])).await;
                }
                ingest.extend(copies);
            }
            ingest.sort_by_key(|r| r.occurred_at.date_naive());
            for chunk in ingest.chunk_by(|a, b| a.occurred_at.date_naive() == b.occurred_at.date_naive()) {
                // one file holds one copy of an event
                let mut files: Vec<Vec<AuditRecord>> = Vec::new();
                for r in chunk {
                    match files.iter_mut().find(|f| f.iter().all(|o| o.event_id != r.event_id)) {
                        Some(f) => f.push(r.clone()),
                        None => files.push(vec![r.clone()]),
                    }
                }
                for f in files { put_ingest(&blobs, &f).await; }
            }
            let q = match filter {
                0 => query(&[]),
                1 => query(&[("actor", "u-1")]),
                _ => query(&[("from", "2026-11-11T00:00:01Z"), ("q", "doc-e-00")]),
            };
            let format = if ndjson { ExportFormat::Ndjson } else { ExportFormat::Csv };
            let want_rows: Vec<AuditRecord> = auditlog::TenantReader::new(blobs.clone())
                .read(&t("acme"), None, None)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| q.matches(r))
                .collect();
            let mut want = history::RowWriter::new(format);
            for r in &want_rows {
                want.write(r);
            }
            let mut got = Collected::default();
            let n = history(blobs).export(&t("acme"), &q, format, &mut got).await.unwrap();
            prop_assert_eq!(n, want_rows.len() as u64);
            let got = String::from_utf8(got.0.lock().unwrap().clone()).unwrap();
            let want = String::from_utf8(want.buf).unwrap();
            prop_assert_eq!(got, want);
            Ok(())
        })?;
    }
}

/// Compaction winning the race between a listing and a read: an ingest file is gone the
/// first time it is read, its rows already in tenant parts. With `vanish_all`, every
/// read finds its file gone, as if compaction never stopped.
struct CompactedUnderfoot {
    inner: Arc<MemoryBlobStore>,
    moved: Mutex<std::collections::HashSet<String>>,
    vanish_all: bool,
}

#[async_trait]
impl BlobStore for CompactedUnderfoot {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        if self.vanish_all {
            return Err(BlobError::NotFound(key.into()));
        }
        let first = key.starts_with("ingest/") && self.moved.lock().unwrap().insert(key.into());
        if !first {
            return self.inner.get(key).await;
        }
        let rows = auditlog::decode_parquet(self.inner.get(key).await?, None).unwrap();
        let mut by_tenant: std::collections::BTreeMap<String, Vec<AuditRecord>> =
            Default::default();
        for r in rows {
            by_tenant
                .entry(r.tenant_id.to_string())
                .or_default()
                .push(r);
        }
        for rows in by_tenant.values() {
            put_part(&self.inner, rows).await;
        }
        self.inner.delete(key).await?;
        Err(BlobError::NotFound(key.into()))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<auditlog::ObjectInfo>, BlobError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn reads_that_race_compaction_start_over_and_miss_nothing() {
    async fn fill(blobs: &MemoryBlobStore) {
        put_part(
            blobs,
            &[1, 2, 3].map(|i| record("acme", &format!("p-{i}"), at(10, i), at(10, i))),
        )
        .await;
        for day in 11..=12u32 {
            for f in 0..3i64 {
                let rows: Vec<AuditRecord> = (0..4)
                    .map(|i| {
                        let tenant = if i == 3 { "beta" } else { "acme" };
                        let name = format!("i-{day}-{f}-{i}");
                        record(tenant, &name, at(day, f * 10 + i), at(day, 50 + f))
                    })
                    .collect();
                put_ingest(blobs, &rows).await;
            }
        }
    }
    async fn everything<B: BlobStore>(h: &History<B>) -> (Vec<String>, String, Vec<String>, bool) {
        let (acme, q, now) = (t("acme"), query(&[]), at(20, 0));
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let p = h.page(&acme, &q, 4, cursor.as_deref(), now).await.unwrap();
            paged.extend(ids(&p.events));
            match p.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut csv = Collected::default();
        h.export(&acme, &q, ExportFormat::Csv, &mut csv)
            .await
            .unwrap();
        let csv = String::from_utf8(csv.0.lock().unwrap().clone()).unwrap();
        let polled = ids(&h.poll(&acme, None, 1000, now).await.unwrap().events);
        let found = h.get(&acme, &eid("i-12-2-0")).await.unwrap().is_some();
        (paged, csv, polled, found)
    }
    let plain = Arc::new(MemoryBlobStore::default());
    fill(&plain).await;
    let want = everything(&history(plain)).await;
    assert_eq!(want.0.len(), 3 + 2 * 3 * 3);
    assert!(want.3);

    // every read below meets a file compacted away since its listing
    for read in 0..4 {
        let inner = Arc::new(MemoryBlobStore::default());
        fill(&inner).await;
        let racing = CompactedUnderfoot {
            inner,
            moved: Mutex::default(),
            vanish_all: false,
        };
        let h = History::new(racing, key(), HistoryConfig::default());
        let got = everything(&h).await;
        let (want_part, got_part) = match read {
            0 => (format!("{:?}", want.0), format!("{:?}", got.0)),
            1 => (want.1.clone(), got.1.clone()),
            2 => (format!("{:?}", want.2), format!("{:?}", got.2)),
            _ => (want.3.to_string(), got.3.to_string()),
        };
        assert_eq!(got_part, want_part, "read {read}");
    }

    // a store that never holds still: an error to retry, never a partial answer
    let inner = Arc::new(MemoryBlobStore::default());
    fill(&inner).await;
    let h = History::new(
        CompactedUnderfoot {
            inner,
            moved: Mutex::default(),
            vanish_all: true,
        },
        key(),
        HistoryConfig::default(),
    );
    let unstable = |e: HistoryError| matches!(e, HistoryError::Storage(auditlog::StorageError::Unstable { ref keys }) if keys.len() == auditlog::READ_ATTEMPTS);
    let (acme, q) = (t("acme"), query(&[]));
    assert!(unstable(
        h.page(&acme, &q, 4, None, at(20, 0)).await.unwrap_err()
    ));
    let mut sink = Collected::default();
    let e = h
        .export(&acme, &q, ExportFormat::Csv, &mut sink)
        .await
        .unwrap_err();
    assert!(unstable(e));
    assert!(sink.0.lock().unwrap().is_empty(), "no partial export");
    assert!(unstable(
        h.poll(&acme, None, 10, at(20, 0)).await.unwrap_err()
    ));
}
