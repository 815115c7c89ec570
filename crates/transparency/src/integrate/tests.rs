use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::checkpoint::{LocalKey, trusted};

use crate::verify::{Evidence, StoredRow, verify};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn event(i: u64, payload: u8) -> EventLeaf {
    EventLeaf {
        tenant: acme(),
        event_id: EventId::parse(&format!("01890a5d-ac96-774b-bcce-{i:012x}")).unwrap(),
        accepted_at: at(i as i64),
        payload_sha256: [payload; 32],
    }
}

fn integrator<'a>(log: &'a InMemoryLog, key: &'a LocalKey, every: u64) -> Integrator<'a> {
    Integrator {
        store: log,
        index: log,
        signer: key,
        log_name: "audit.example",
        policy: CheckpointPolicy {
            every_events: every,
            every: chrono::Duration::minutes(1),
        },
    }
}

/// Verifies the tenant's log against rows made from `events` at the indices given.
async fn verified(
    log: &InMemoryLog,
    key: &LocalKey,
    rows: &[(EventLeaf, u64)],
) -> crate::verify::Report {
    let checkpoint = log
        .get("trust/acme/checkpoint")
        .await
        .unwrap()
        .expect("a signed checkpoint");
    let keys = trusted(&[key.verifier_key().to_owned()]).unwrap();
    let tiles = tiles_of(log, &acme());
    let origin = checkpoint::origin("audit.example", &acme());
    let evidence = Evidence {
        origin: &origin,
        checkpoint: &checkpoint,
        pinned: None,
        trusted: &keys,
        tiles: &tiles,
    };
    let rows = rows
        .iter()
        .map(|(e, i)| StoredRow {
            index: *i,
            leaf: Leaf::Event(e.clone()),
            location: format!("row {i}"),
        })
        .collect();
    verify(&evidence, rows).await
}

#[tokio::test]
async fn batches_get_contiguous_indices_in_order_and_the_rows_verify() {
    let log = InMemoryLog::default();
    let key = LocalKey::generate("audit.example").unwrap();
    let w = integrator(&log, &key, 1);
    let mut rows = Vec::new();
    let mut next = 0;
    for n in [3u64, 300, 1, 700] {
        let batch: Vec<EventLeaf> = (next..next + n).map(|i| event(i, 1)).collect();
        let out = w.append(&acme(), batch.clone(), at(0)).await.unwrap();
        let want: Vec<u64> = (next..next + n).collect();
        assert_eq!(
            out.indexes.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            want
        );
        assert_eq!((out.added, out.size, out.signed), (n, next + n, true));
        rows.extend(batch.into_iter().zip(want));
        next += n;
    }
    let r = verified(&log, &key, &rows).await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.rows_verified, 1004);
}

#[tokio::test]
async fn a_duplicate_delivery_adds_no_leaf_even_years_later_and_a_conflict_is_named() {
    let log = InMemoryLog::default();
    let key = LocalKey::generate("audit.example").unwrap();
    let w = integrator(&log, &key, 1);
    let first: Vec<EventLeaf> = (0..10).map(|i| event(i, 1)).collect();
    w.append(&acme(), first.clone(), at(0)).await.unwrap();
    // the same events again, one twice in the batch, one with another payload
    let mut again = vec![
        event(3, 1),
        event(3, 1),
        event(4, 2),
        event(10, 1),
        event(10, 1),
    ];
    again.push(event(11, 1));
    let out = w.append(&acme(), again, at(86_400 * 800)).await.unwrap();
    assert_eq!(out.added, 2, "only 10 and 11 are new");
    assert_eq!(out.duplicates, 4);
    assert_eq!(out.conflicts, vec![event(4, 2).event_id]);
    let idx: Vec<u64> = out.indexes.iter().map(|(_, i)| *i).collect();
    assert_eq!(idx, vec![3, 3, 4, 10, 10, 11]);
    assert_eq!(out.size, 12);
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_events_or_every_interval() {
    let log = InMemoryLog::default();
    let key = LocalKey::generate("audit.example").unwrap();
    let w = integrator(&log, &key, 100);
    assert!(
        w.append(&acme(), (0..10).map(|i| event(i, 1)).collect(), at(0))
            .await
            .unwrap()
            .signed,
        "the first is signed at once"
    );
    assert!(
        !w.append(&acme(), (10..20).map(|i| event(i, 1)).collect(), at(10))
            .await
            .unwrap()
            .signed
    );
    assert!(
        w.append(&acme(), (20..120).map(|i| event(i, 1)).collect(), at(20))
            .await
            .unwrap()
            .signed,
        "100 events since the last one"
    );
    assert!(
        !w.append(&acme(), (120..121).map(|i| event(i, 1)).collect(), at(30))
            .await
            .unwrap()
            .signed
    );
    assert!(
        !w.sign_due(&acme(), at(60)).await.unwrap(),
        "not a minute yet"
    );
    assert!(w.sign_due(&acme(), at(81)).await.unwrap(), "a minute since");
    assert!(
        !w.sign_due(&acme(), at(200)).await.unwrap(),
        "nothing new to sign"
    );
    let cp = log.get("trust/acme/checkpoint").await.unwrap().unwrap();
    assert!(
        String::from_utf8(cp)
            .unwrap()
            .starts_with("audit.example/acme\n121\n")
    );
}

#[tokio::test]
async fn another_tenants_event_or_a_damaged_state_is_refused() {
    let log = InMemoryLog::default();
    let key = LocalKey::generate("audit.example").unwrap();
    let w = integrator(&log, &key, 1);
    let mut theirs = event(1, 1);
    theirs.tenant = TenantId::parse("globex").unwrap();
    assert!(matches!(
        w.append(&acme(), vec![event(0, 1), theirs], at(0)).await,
        Err(IntegrateError::WrongTenant { .. })
    ));
    w.append(&acme(), (0..5).map(|i| event(i, 1)).collect(), at(0))
        .await
        .unwrap();
    log.put("trust/acme/tile/0/000.p/5", vec![0u8; 160])
        .await
        .unwrap();
    assert!(matches!(
        w.append(&acme(), vec![event(9, 1)], at(0)).await,
        Err(IntegrateError::Damaged { .. })
    ));
}

/// Fails the `fail_at`-th call of the store or index (counting both), as a crash would.
struct Crashing<'a> {
    inner: &'a InMemoryLog,
    calls: AtomicUsize,
    fail_at: usize,
}

impl Crashing<'_> {
    fn step(&self) -> Result<(), StoreError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.fail_at {
            Err(StoreError::Unavailable("crash".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl LogStore for Crashing<'_> {
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.step()?;
        self.inner.get(path).await
    }
    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.step()?;
        self.inner.put(path, bytes).await
    }
}

#[async_trait]
impl LeafIndex for Crashing<'_> {
    async fn lookup(
        &self,
        tenant: &TenantId,
        events: &[EventId],
    ) -> Result<HashMap<EventId, Placed>, StoreError> {
        self.step()?;
        self.inner.lookup(tenant, events).await
    }
    async fn record(
        &self,
        tenant: &TenantId,
        entries: &[(EventId, Placed)],
    ) -> Result<(), StoreError> {
        self.step()?;
        self.inner.record(tenant, entries).await
    }
}

#[tokio::test]
async fn a_crash_at_any_call_then_a_rerun_leaves_the_log_a_clean_run_would() {
    let key = LocalKey::generate("audit.example").unwrap();
    let first: Vec<EventLeaf> = (0..300).map(|i| event(i, 1)).collect();
    let second: Vec<EventLeaf> = (300..600).map(|i| event(i, 1)).collect();
    let clean = InMemoryLog::default();
    let w = integrator(&clean, &key, 1);
    w.append(&acme(), first.clone(), at(0)).await.unwrap();
    let want = w.append(&acme(), second.clone(), at(1)).await.unwrap();
    let calls = {
        let log = InMemoryLog::default();
        integrator(&log, &key, 1)
            .append(&acme(), first.clone(), at(0))
            .await
            .unwrap();
        let counting = Crashing {
            inner: &log,
            calls: AtomicUsize::new(0),
            fail_at: usize::MAX,
        };
        let w = Integrator {
            store: &counting,
            index: &counting,
            ..integrator(&log, &key, 1)
        };
        w.append(&acme(), second.clone(), at(1)).await.unwrap();
        counting.calls.load(Ordering::SeqCst)
    };
    assert!(calls > 8, "{calls} calls");
    for fail_at in 0..calls {
        let log = InMemoryLog::default();
        integrator(&log, &key, 1)
            .append(&acme(), first.clone(), at(0))
            .await
            .unwrap();
        let crashing = Crashing {
            inner: &log,
            calls: AtomicUsize::new(0),
            fail_at,
        };
        let w = Integrator {
            store: &crashing,
            index: &crashing,
            ..integrator(&log, &key, 1)
        };
        assert!(
            w.append(&acme(), second.clone(), at(1)).await.is_err(),
            "call {fail_at}"
        );
        // the rerun, as the next scheduled run would
        let got = integrator(&log, &key, 1)
            .append(&acme(), second.clone(), at(2))
            .await
            .unwrap();
        assert_eq!(got.indexes, want.indexes, "crash at call {fail_at}");
        assert_eq!(got.size, 600);
        let rows: Vec<(EventLeaf, u64)> = first.iter().chain(&second).cloned().zip(0..).collect();
        let r = verified(&log, &key, &rows).await;
        assert!(r.ok(), "crash at call {fail_at}: {:?}", r.findings);
    }
}

#[tokio::test]
async fn a_reservation_a_crash_left_never_swallows_its_event_later() {
    let key = LocalKey::generate("audit.example").unwrap();
    let log = InMemoryLog::default();
    integrator(&log, &key, 1)
        .append(&acme(), vec![event(0, 1)], at(0))
        .await
        .unwrap();
    // a run records event 7 at index 1, then dies before committing
    log.record(
        &acme(),
        &[(
            event(7, 1).event_id,
            Placed {
                index: 1,
                payload_sha256: [1u8; 32],
            },
        )],
    )
    .await
    .unwrap();
    // the next run commits other events at 1..3; event 7 comes later
    let w = integrator(&log, &key, 1);
    w.append(&acme(), vec![event(1, 1), event(2, 1)], at(1))
        .await
        .unwrap();
    let out = w.append(&acme(), vec![event(7, 1)], at(2)).await.unwrap();
    assert_eq!((out.added, out.indexes[0].1), (1, 3));
}

/// Another writer commits between this run's read of the state and its commit.
struct Racing<'a> {
    inner: &'a InMemoryLog,
    state_reads: AtomicUsize,
}

#[async_trait]
impl LogStore for Racing<'_> {
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if path.ends_with("/state") && self.state_reads.fetch_add(1, Ordering::SeqCst) == 1 {
            let mut other = State::parse(&self.inner.get(path).await?.unwrap_or_default())
                .unwrap_or_else(State::empty);
            other.size += 1;
            self.inner.put(path, other.encode()).await?;
        }
        self.inner.get(path).await
    }
    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.inner.put(path, bytes).await
    }
}

#[tokio::test]
async fn a_second_writer_that_committed_meanwhile_is_noticed_not_overwritten() {
    let key = LocalKey::generate("audit.example").unwrap();
    let log = InMemoryLog::default();
    integrator(&log, &key, 1)
        .append(&acme(), vec![event(0, 1)], at(0))
        .await
        .unwrap();
    let racing = Racing {
        inner: &log,
        state_reads: AtomicUsize::new(0),
    };
    let w = Integrator {
        store: &racing,
        ..integrator(&log, &key, 1)
    };
    assert!(matches!(
        w.append(&acme(), vec![event(1, 1)], at(1)).await,
        Err(IntegrateError::Moved { .. })
    ));
}

#[tokio::test]
async fn an_expiry_recorded_in_the_log_tells_removed_rows_from_missing_ones() {
    let log = InMemoryLog::default();
    let key = LocalKey::generate("audit.example").unwrap();
    let w = integrator(&log, &key, 1);
    let events: Vec<EventLeaf> = (0..300).map(|i| event(i, 1)).collect();
    w.append(&acme(), events.clone(), at(0)).await.unwrap();
    assert!(
        w.record_expiry(
            &acme(),
            std::slice::from_ref(&(250..301)),
            "retention:P90D",
            at(1)
        )
        .await
        .is_err(),
        "past the end"
    );
    let size = w
        .record_expiry(&acme(), &[0..100, 150..160], "retention:P90D", at(1))
        .await
        .unwrap();
    assert_eq!(size, 302, "one expiry leaf per range");
    // and the ranges are listed for readers that walk the log in order
    let listed = log
        .get(&format!("{}{EXPIRED}", log_prefix(&acme())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parse_expired(&listed).unwrap(), vec![0..100, 150..160]);
    let leaves: Vec<u64> = parse_expired_leaves(&listed)
        .unwrap()
        .iter()
        .map(|e| e.leaf)
        .collect();
    assert_eq!(
        leaves,
        [300, 301],
        "the expiry leaves follow the 300 events"
    );
    for bad in [
        &b"1\n"[..],
        b"5 3 9\n",
        b"a b c\n",
        b"1 2\n",
        b"1 5 3\n",
        b"\xff",
    ] {
        assert!(parse_expired(bad).is_err(), "{bad:?}");
    }
    let kept: Vec<(EventLeaf, u64)> = events
        .into_iter()
        .zip(0..)
        .filter(|(_, i)| !(0..100).contains(i) && !(150..160).contains(i))
        .collect();
    let r = verified(&log, &key, &kept).await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.removed_by_policy, r.rows_verified), (110, 190));
}
