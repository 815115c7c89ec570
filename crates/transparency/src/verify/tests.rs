use chrono::DateTime;
use envelope::{EventId, TenantId};
use proptest::prelude::*;

use super::*;
use crate::checkpoint::{CheckpointSigner as _, LocalKey, origin, sign, trusted};
use crate::leaf::{EventLeaf, ExpiryLeaf};
use crate::proof::TilesInMemory;
use crate::tree::TreeEdge;

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn event(i: u64, payload: &str) -> Leaf {
    use sha2_v011::Digest;
    let sha = hex::encode(sha2_v011::Sha256::digest(payload.as_bytes()));
    Leaf::Event(
        EventLeaf::of_row(
            &acme(),
            &EventId::parse(&format!("01890a5d-ac96-774b-bcce-{i:012x}")).unwrap(),
            DateTime::from_timestamp_micros(1_700_000_000_000_000 + i as i64).unwrap(),
            &sha,
        )
        .unwrap(),
    )
}

fn row(index: u64, leaf: Leaf) -> StoredRow {
    StoredRow {
        index,
        leaf,
        location: format!("row {index}"),
    }
}

/// A tenant log grown in batches, as the integrator grows it, and the rows stored.
struct Log {
    key: LocalKey,
    origin: String,
    edge: TreeEdge,
    tiles: TilesInMemory,
    checkpoints: Vec<Vec<u8>>,
    rows: Vec<StoredRow>,
}

impl Log {
    fn new() -> Self {
        Log {
            key: LocalKey::generate("audit.example").unwrap(),
            origin: origin("audit.example", &acme()),
            edge: TreeEdge::empty(),
            tiles: TilesInMemory::default(),
            checkpoints: Vec::new(),
            rows: Vec::new(),
        }
    }

    async fn append(&mut self, leaves: Vec<Leaf>) {
        let first = self.edge.size();
        for (i, leaf) in (first..).zip(&leaves) {
            if matches!(leaf, Leaf::Event(_)) {
                self.rows.push(row(i, leaf.clone()));
            }
        }
        let published = self.edge.append(leaves.iter().map(Leaf::encode)).unwrap();
        for p in published.into_iter().chain(self.edge.partials().unwrap()) {
            self.tiles.0.insert(p.path, p.bytes);
        }
        let cp = sign(&self.key, &self.origin, self.edge.size(), self.edge.root())
            .await
            .unwrap();
        self.checkpoints.push(cp);
    }

    async fn events(n: u64) -> Self {
        let mut log = Log::new();
        log.append((0..n).map(|i| event(i, "{}")).collect()).await;
        log
    }

    async fn verify_with(&self, checkpoint: &[u8], pinned: Option<&[u8]>) -> Report {
        let keys = trusted(&[self.key.verifier_key().to_owned()]).unwrap();
        let evidence = Evidence {
            origin: &self.origin,
            checkpoint,
            pinned,
            trusted: &keys,
            tiles: &self.tiles,
        };
        verify(&evidence, self.rows.clone()).await
    }

    async fn verify(&self) -> Report {
        self.verify_with(self.checkpoints.last().unwrap(), None)
            .await
    }
}

fn problems(r: &Report) -> Vec<(Problem, Range<u64>)> {
    r.findings
        .iter()
        .map(|f| (f.problem, f.indexes.clone()))
        .collect()
}

#[tokio::test]
async fn an_untouched_log_verifies_every_row() {
    let log = Log::events(700).await;
    let r = log.verify().await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.rows_verified, r.checkpoint.unwrap().size), (700, 700));
}

#[tokio::test]
async fn a_changed_payload_is_modified_at_its_index() {
    let mut log = Log::events(300).await;
    log.rows[42].leaf = event(42, "{\"amount\":1000000}");
    let r = log.verify().await;
    assert_eq!(problems(&r), vec![(Problem::Modified, 42..43)]);
    assert!(
        r.findings[0].detail.contains("payload"),
        "{}",
        r.findings[0].detail
    );
    assert_eq!(
        r.findings[0].event_id.as_deref(),
        Some("01890a5d-ac96-774b-bcce-00000000002a")
    );
}

#[tokio::test]
async fn a_deleted_row_is_missing_and_a_deleted_file_is_one_missing_range() {
    let mut log = Log::events(300).await;
    log.rows.remove(7);
    log.rows.retain(|r| !(100..200).contains(&r.index));
    let r = log.verify().await;
    assert_eq!(
        problems(&r),
        vec![(Problem::Missing, 7..8), (Problem::Missing, 100..200)]
    );
    assert_eq!(r.rows_verified, 199);
}

#[tokio::test]
async fn swapped_rows_are_reordered_at_both_indices() {
    let mut log = Log::events(300).await;
    log.rows[10].index = 20;
    log.rows[20].index = 10;
    let r = log.verify().await;
    assert_eq!(
        problems(&r),
        vec![(Problem::Reordered, 10..11), (Problem::Reordered, 20..21)]
    );
    assert!(
        r.findings[0]
            .detail
            .contains("the log has this event at 20")
    );
}

#[tokio::test]
async fn a_forged_event_is_inserted_wherever_it_claims_to_be() {
    let mut log = Log::events(300).await;
    log.rows.push(row(5, event(9_999, "{}")));
    log.rows.push(row(300, event(10_000, "{}")));
    log.rows.push(row(6, event(6, "{}"))); // a duplicate copy of a real row
    let r = log.verify().await;
    assert_eq!(
        problems(&r),
        vec![
            (Problem::Inserted, 5..7), // the forgery at 5 and the second copy at 6, merged
            (Problem::Unverifiable, 300..301),
        ]
    );
    assert!(
        r.findings[1]
            .detail
            .contains("past the log of 300: not covered")
    );
    assert_eq!(r.rows_verified, 300);
}

#[tokio::test]
async fn a_truncated_log_is_caught_by_the_checkpoint_the_customer_pinned() {
    let mut log = Log::events(300).await;
    log.append((300..400).map(|i| event(i, "{}")).collect())
        .await;
    let (old, latest) = (log.checkpoints[0].clone(), log.checkpoints[1].clone());
    // the operator serves the older checkpoint and drops the newer rows
    log.rows.retain(|r| r.index < 300);
    assert!(
        log.verify_with(&old, None).await.ok(),
        "undetectable without a pin"
    );
    let r = log.verify_with(&old, Some(&latest)).await;
    assert_eq!(problems(&r), vec![(Problem::Truncated, 300..400)]);
}

#[tokio::test]
async fn history_rebuilt_and_resigned_with_our_own_key_is_caught_by_the_pin() {
    let honest = Log::events(300).await;
    let pinned = honest.checkpoints[0].clone();
    // an insider rebuilds the log with event 42 changed, then grows it and re-signs
    let mut rebuilt = Log {
        key: honest.key.clone(),
        ..Log::new()
    };
    let mut leaves: Vec<Leaf> = (0..400).map(|i| event(i, "{}")).collect();
    leaves[42] = event(42, "{\"rewritten\":true}");
    rebuilt.append(leaves).await;
    assert!(
        rebuilt.verify().await.ok(),
        "self-consistent: only a pin can tell"
    );
    let r = rebuilt
        .verify_with(rebuilt.checkpoints.last().unwrap(), Some(&pinned))
        .await;
    assert_eq!(problems(&r), vec![(Problem::HistoryRewritten, 0..300)]);
    assert!(
        r.findings[0]
            .detail
            .contains("does not extend the pinned log of 300")
    );
}

#[tokio::test]
async fn two_customers_shown_two_trees_of_one_size_is_caught_by_the_pin() {
    let a = Log::events(300).await;
    let mut b = Log {
        key: a.key.clone(),
        ..Log::new()
    };
    let mut leaves: Vec<Leaf> = (0..300).map(|i| event(i, "{}")).collect();
    leaves.swap(1, 2);
    b.append(leaves).await;
    let r = b
        .verify_with(&b.checkpoints[0], Some(&a.checkpoints[0]))
        .await;
    assert_eq!(problems(&r), vec![(Problem::HistoryRewritten, 0..300)]);
}

#[tokio::test]
async fn a_changed_checkpoint_or_published_entry_is_refused_as_such() {
    let mut log = Log::events(300).await;
    let cp = String::from_utf8(log.checkpoints[0].clone()).unwrap();
    let altered = cp.replacen("\n300\n", "\n299\n", 1);
    let r = log.verify_with(altered.as_bytes(), None).await;
    assert_eq!(problems(&r), vec![(Problem::Signature, 0..0)]);
    assert!(r.checkpoint.is_none() && !r.ok());
    // another tenant's checkpoint does not pass for this one's
    let globex = sign(&log.key, "audit.example/globex", 300, log.edge.root())
        .await
        .unwrap();
    assert_eq!(
        problems(&log.verify_with(&globex, None).await)[0].0,
        Problem::Signature
    );
    // the rows are intact but the log's own entries were edited in storage
    let path = crate::layout::entries_path(0, 256);
    let bundle = log.tiles.0.get_mut(&path).unwrap();
    let at = bundle.len() - 1;
    bundle[at] ^= 1;
    let r = log.verify().await;
    assert_eq!(problems(&r), vec![(Problem::HistoryRewritten, 0..300)]);
    log.tiles.0.remove(&path);
    assert_eq!(
        problems(&log.verify().await),
        vec![(Problem::Unverifiable, 0..300)]
    );
}

#[tokio::test]
async fn rows_removed_by_retention_are_told_apart_from_missing_ones() {
    let mut log = Log::events(300).await;
    let at = DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap();
    let expiry = ExpiryLeaf::new(&acme(), 0, 100, "retention:P90D", at).unwrap();
    log.append(vec![Leaf::Expiry(expiry)]).await;
    log.rows.retain(|r| r.index >= 100);
    let r = log.verify().await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.removed_by_policy, r.rows_verified), (100, 200));
    // a row deleted outside the expired range is still missing
    log.rows.retain(|r| r.index != 150);
    assert_eq!(
        problems(&log.verify().await),
        vec![(Problem::Missing, 150..151)]
    );
}

#[derive(Debug, Clone)]
enum Tampering {
    Modify(usize),
    Delete(usize),
    DeleteRun(usize, usize),
    Swap(usize, usize),
    Forge(usize),
}

fn tampering() -> impl Strategy<Value = Tampering> {
    prop_oneof![
        any::<usize>().prop_map(Tampering::Modify),
        any::<usize>().prop_map(Tampering::Delete),
        (any::<usize>(), 1usize..300).prop_map(|(a, n)| Tampering::DeleteRun(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tampering::Swap(a, b)),
        any::<usize>().prop_map(Tampering::Forge),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn every_random_tampering_of_a_random_log_is_found_where_it_was_made(
        batches in proptest::collection::vec(1u64..400, 1..4),
        how in tampering(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut log = Log::new();
            let mut next = 0;
            for n in &batches {
                log.append((next..next + n).map(|i| event(i, "{}")).collect()).await;
                next += n;
            }
            prop_assert!(log.verify().await.ok());
            let len = log.rows.len();
            let expect = match how {
                Tampering::Modify(a) => {
                    let i = a % len;
                    log.rows[i].leaf = event(i as u64, "{\"changed\":1}");
                    (Problem::Modified, i as u64)
                }
                Tampering::Delete(a) => {
                    let i = a % len;
                    log.rows.remove(i);
                    (Problem::Missing, i as u64)
                }
                Tampering::DeleteRun(a, n) => {
                    let i = a % len;
                    log.rows.drain(i..(i + n).min(len));
                    (Problem::Missing, i as u64)
                }
                Tampering::Swap(a, b) => {
                    let (i, j) = (a % len, b % len);
                    prop_assume!(i != j);
                    log.rows[i].index = j as u64;
                    log.rows[j].index = i as u64;
                    (Problem::Reordered, i.min(j) as u64)
                }
                Tampering::Forge(a) => {
                    let i = (a % (len + 1)) as u64;
                    log.rows.push(row(i, event(1_000_000 + i, "{}")));
                    // past the end, only a newer checkpoint tells forged from pending
                    let kind = if i < len as u64 { Problem::Inserted } else { Problem::Unverifiable };
                    (kind, i)
                }
            };
            let r = log.verify().await;
            prop_assert!(
                r.findings.iter().any(|f| f.problem == expect.0 && f.indexes.contains(&expect.1)),
                "{how:?}: expected {:?} at {}, found {:?}", expect.0, expect.1, r.findings
            );
            prop_assert!(!r.ok());
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn an_exports_window_expects_only_the_events_accepted_in_it() {
    let mut log = Log::events(300).await;
    // event i was accepted at 1_700_000_000 s + i µs: keep 100..200
    let t = |i: i64| DateTime::from_timestamp_micros(1_700_000_000_000_000 + i).unwrap();
    log.rows.retain(|r| (100..200).contains(&r.index));
    let keys = trusted(&[log.key.verifier_key().to_owned()]).unwrap();
    let evidence = Evidence {
        origin: &log.origin,
        checkpoint: log.checkpoints.last().unwrap(),
        pinned: None,
        trusted: &keys,
        tiles: &log.tiles,
    };
    let r = verify_window(&evidence, log.rows.clone(), Some((t(100), t(200)))).await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.rows_verified, r.outside_window), (100, 200));
    // a row of the window left out of the export is missing
    let mut fewer = log.rows.clone();
    fewer.retain(|r| r.index != 150);
    let r = verify_window(&evidence, fewer, Some((t(100), t(200)))).await;
    assert_eq!(problems(&r), vec![(Problem::Missing, 150..151)]);
}

impl Log {
    /// A range export of `a..b`: its entries, range proof and every expiry with its
    /// inclusion proof, verified for the window of those events' acceptance.
    async fn verify_range(&self, a: u64, b: u64, rows: Vec<StoredRow>) -> Report {
        let size = self.edge.size();
        let root = self.edge.root();
        let entries: Vec<Vec<u8>> = crate::proof::entries(&self.tiles, a, b, size)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        let proof = crate::range::range_proof(&self.tiles, size, root, a, b)
            .await
            .unwrap();
        let mut expiries = Vec::new();
        for (i, e) in crate::proof::entries(&self.tiles, 0, size, size)
            .await
            .unwrap()
        {
            if e.starts_with(b"v1 expiry ") {
                let path = crate::proof::inclusion(&self.tiles, size, root, i)
                    .await
                    .unwrap();
                expiries.push((i, e, path));
            }
        }
        let keys = trusted(&[self.key.verifier_key().to_owned()]).unwrap();
        let evidence = RangeEvidence {
            origin: &self.origin,
            checkpoint: self.checkpoints.last().unwrap(),
            trusted: &keys,
            first: a,
            entries: &entries,
            proof: &proof,
            expiries: &expiries,
            pinned: None,
        };
        let t = |i: u64| DateTime::from_timestamp_micros(1_700_000_000_000_000 + i as i64).unwrap();
        verify_range_export(&evidence, rows, (t(a), t(b))).await
    }
}

#[tokio::test]
async fn a_range_export_proves_its_window_alone_and_names_what_was_changed() {
    let mut log = Log::events(1000).await;
    let at = DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap();
    let expiry = ExpiryLeaf::new(&acme(), 300, 310, "retention:P90D", at).unwrap();
    log.append(vec![Leaf::Expiry(expiry)]).await;
    let window: Vec<StoredRow> = log
        .rows
        .iter()
        .filter(|r| (290..500).contains(&r.index) && !(300..310).contains(&r.index))
        .cloned()
        .collect();
    let r = log.verify_range(290, 500, window.clone()).await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.rows_verified, r.removed_by_policy), (200, 10));

    // a row changed, a row left out, a row from outside the range
    let mut rows = window.clone();
    rows[5].leaf = event(rows[5].index, "{\"forged\":true}");
    let gone = rows.remove(50).index;
    rows.push(log.rows[900].clone());
    let r = log.verify_range(290, 500, rows).await;
    assert_eq!(
        problems(&r),
        vec![
            (Problem::Unverifiable, 900..901),
            (Problem::Modified, 295..296),
            (Problem::Missing, gone..gone + 1),
        ]
    );

    // entries that are not the log's: the range does not prove into the root
    let size = log.edge.size();
    let root = log.edge.root();
    let mut entries: Vec<Vec<u8>> = crate::proof::entries(&log.tiles, 290, 500, size)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let proof = crate::range::range_proof(&log.tiles, size, root, 290, 500)
        .await
        .unwrap();
    entries[3] = event(293, "{\"rewritten\":1}").encode();
    let keys = trusted(&[log.key.verifier_key().to_owned()]).unwrap();
    let evidence = RangeEvidence {
        origin: &log.origin,
        checkpoint: log.checkpoints.last().unwrap(),
        trusted: &keys,
        first: 290,
        entries: &entries,
        proof: &proof,
        expiries: &[],
        pinned: None,
    };
    let t = DateTime::from_timestamp_micros(0).unwrap();
    let r = verify_range_export(&evidence, window, (t, at)).await;
    assert_eq!(problems(&r), vec![(Problem::HistoryRewritten, 290..500)]);
}
