//! `auditlog soak`: proof under random faults. N events (with producer retries,
//! redeliveries, archive replays, conflicting copies and invalid messages) go through
//! the embedded pipeline while a `FaultInjector` fails a share of every blob and dedupe
//! operation (puts, gets, lists, deletes, claims, releases, completions; failing before
//! or after applying) and crashes the subscriber and the compactor at random points,
//! which then restart. At the end every unique event must be stored exactly once, every
//! conflict quarantined, and nothing else quarantined; the last line says
//! `lost N, doubled M`, and the exit status is non-zero unless both are 0.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use adapters_local::{LocalDirBlobStore, LocalQueue, SqliteDedupeStore};
use anyhow::{Context, Result, bail};
use auditlog::faults::{FaultInjector, FaultyBlobStore, FaultyDedupeStore};
use auditlog::{
    AuditRecord, BlobStore, CONFLICT, Compactor, CompactorConfig, FixedClock, InboundMessage,
    ObjectKey, QUARANTINE_PREFIX, Subscriber, SubscriberConfig, TenantReader, decode_parquet,
    payload_sha256,
};
use chrono::{Duration, Utc};
use envelope::{BusEvent, OutgoingEvent, SchemaRegistry, TenantId};
use serde_json::{Value, json};

use crate::traffic::{Rng, Traffic};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Unique events to drive through.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Share of store operations that fail (each before or after being applied).
    #[arg(long, default_value_t = 0.05)]
    fault_rate: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 50)]
    tenants: usize,
    /// Messages per subscriber invocation (smaller: more store calls, more faults).
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

/// What a correct log must hold, kept while generating.
#[derive(Default)]
struct Expected {
    /// Every unique event, with the payload hashes of the copies delivered under its id.
    events: HashMap<(String, String), BTreeSet<String>>,
    /// Distinct bodies of the invalid messages.
    invalid: HashSet<String>,
    duplicates: usize,
    replays: usize,
    conflicts: usize,
}

/// Messages in the order a bus would deliver them, some copies held back for later.
struct Producer {
    traffic: Traffic,
    rng: Rng,
    registry: Arc<SchemaRegistry>,
    left: usize,
    later: Vec<(usize, String)>,
    /// The stream's clock: a held-back copy is due when it passes the copy's time.
    sent: usize,
    messages: usize,
}

impl Producer {
    fn text(e: &OutgoingEvent, bus_id: String) -> Result<String> {
        let wrapped = BusEvent::wrap(
            bus_id,
            &e.source,
            "111122223333",
            "us-east-1",
            vec![],
            e.detail.clone(),
        );
        Ok(serde_json::to_string(&wrapped)?)
    }

    fn hash_of(&self, text: &str) -> Result<String> {
        let v = envelope::decode_bus_event(text, &self.registry, 1 << 21)?;
        Ok(payload_sha256(&v.payload_json))
    }

    /// Up to `n` messages.
    fn next(&mut self, n: usize, expected: &mut Expected) -> Result<Vec<InboundMessage>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n && (self.left > 0 || !self.later.is_empty()) {
            // a held-back copy whose time has come
            if let Some(pos) = self.later.iter().position(|(at, _)| *at <= self.sent) {
                let (_, body) = self.later.swap_remove(pos);
                out.push(self.message(body));
                continue;
            }
            if self.left == 0 {
                // only held-back copies remain: let them through
                self.sent += 1000;
                continue;
            }
            self.left -= 1;
            let e = self.traffic.next_event();
            let id = e.detail.metadata.event_id.to_string();
            let tenant = e.detail.metadata.tenant_id.to_string();
            let text = Self::text(&e, format!("bus-{id}"))?;
            let hash = self.hash_of(&text)?;
            expected
                .events
                .entry((tenant, id.clone()))
                .or_default()
                .insert(hash);
            let later = self.sent + 1 + self.rng.below(20_000);
            let u = self.rng.unit();
            if u < 0.02 {
                // a redelivery of the very same message
                self.later.push((later, text.clone()));
                expected.duplicates += 1;
            } else if u < 0.03 {
                // an archive replay: same event, new bus id, days later in the stream
                self.later
                    .push((later, Self::text(&e, format!("replay-{id}"))?));
                expected.replays += 1;
            } else if u < 0.035 {
                // the same id with another payload: a producer bug
                let mut other = e.clone();
                other.detail.payload["conflicting_edit"] = json!(self.rng.below(1000));
                let text2 = Self::text(&other, format!("conflict-{id}"))?;
                let h2 = self.hash_of(&text2)?;
                let key = (
                    e.detail.metadata.tenant_id.to_string(),
                    e.detail.metadata.event_id.to_string(),
                );
                expected.events.entry(key).or_default().insert(h2);
                self.later.push((later, text2));
                expected.conflicts += 1;
            }
            if self.rng.unit() < 0.005 {
                let bad = self.traffic.invalid_body(&e);
                expected.invalid.insert(bad.clone());
                out.push(self.message(bad));
            }
            out.push(self.message(text));
        }
        Ok(out)
    }

    fn message(&mut self, body: String) -> InboundMessage {
        self.sent += 1;
        self.messages += 1;
        InboundMessage {
            message_id: format!("m{}", self.messages),
            body,
        }
    }
}

type Stores = (
    Arc<FaultyBlobStore<Arc<LocalDirBlobStore>>>,
    Arc<FaultyDedupeStore<Arc<SqliteDedupeStore>>>,
);

pub async fn run(data: &Path, args: SoakArgs) -> Result<()> {
    let root = data.join(format!("soak-{}", args.seed));
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    std::fs::create_dir_all(&root)?;
    let blobs = Arc::new(LocalDirBlobStore::open(root.join("blobs"))?);
    let dedupe = Arc::new(SqliteDedupeStore::open(&root.join("dedupe.sqlite"))?);
    // one injector for the whole simulated process: a crash stops every store at once
    let faults = FaultInjector::random(args.fault_rate, args.fault_rate / 20.0, args.seed);
    let (fblobs, fdedupe): Stores = (
        Arc::new(FaultyBlobStore::new(blobs.clone(), faults.clone())),
        Arc::new(FaultyDedupeStore::new(dedupe.clone(), faults.clone())),
    );
    let start = Utc::now();
    let clock = FixedClock::new(start);
    let registry = Arc::new(SchemaRegistry::builtin()?);
    let sub = Subscriber::new(
        fdedupe.clone(),
        fblobs.clone(),
        clock.clone(),
        registry.clone(),
        SubscriberConfig::default(),
    );
    let compaction = CompactorConfig {
        unit_rows: 5_000,
        task_rows: 20_000,
        max_part_rows: 6_000,
        ..CompactorConfig::default()
    };
    let mut traffic =
        Traffic::new(args.seed, args.tenants, 1.1, start, 800).with_window(Duration::hours(30));
    traffic.expect(args.events);
    let mut producer = Producer {
        traffic,
        rng: Rng::new(args.seed ^ 0x5eed),
        registry: registry.clone(),
        left: args.events,
        later: Vec::new(),
        sent: 0,
        messages: 0,
    };
    let mut expected = Expected::default();
    println!(
        "soak: {} events over {} tenants through the embedded pipeline, {:.1}% of every store operation failing, seed {}",
        args.events,
        args.tenants,
        args.fault_rate * 100.0,
        args.seed
    );
    let started = Instant::now();
    let queue = LocalQueue::default();
    let mut receives: HashMap<String, u32> = HashMap::new();
    let (mut batches, mut sub_crashes, mut comp_runs, mut comp_crashes) = (0usize, 0, 0, 0);
    let compact_every = (args.events / args.batch / 6).max(3);
    loop {
        while queue.len() < args.batch * 2 {
            let more = producer.next(args.batch, &mut expected)?;
            if more.is_empty() {
                break;
            }
            more.into_iter().for_each(|m| queue.push(m));
        }
        let batch = queue.receive(args.batch, usize::MAX, 0);
        if batch.is_empty() {
            break;
        }
        let out = sub.handle(&batch).await;
        batches += 1;
        let again: Vec<&InboundMessage> = if faults.crashed() {
            // the invocation died: nothing of it was acknowledged
            faults.restart();
            sub_crashes += 1;
            batch.iter().collect()
        } else {
            let failed: HashSet<&String> = out.failed_message_ids.iter().collect();
            batch
                .iter()
                .filter(|m| failed.contains(&m.message_id))
                .collect()
        };
        let mut stuck = false;
        for m in again {
            let n = receives.entry(m.message_id.clone()).or_insert(0);
            *n += 1;
            stuck |= (*n).is_multiple_of(4);
            queue.push(m.clone());
        }
        // a second per batch; claims left by failures lapse once the lease is past
        clock.advance(if stuck {
            Duration::minutes(16)
        } else {
            Duration::seconds(1)
        });
        if batches.is_multiple_of(compact_every) {
            comp_runs += 1;
            let r = Compactor::new(fblobs.clone(), compaction.clone())
                .run()
                .await;
            if faults.crashed() || r.is_err() || r.is_ok_and(|r| !r.failed_days.is_empty()) {
                comp_crashes += 1;
                faults.restart();
            }
        }
    }
    let injected = faults.injected();
    faults.set_rates(0.0, 0.0);
    // settle: a last compaction with the faults gone, as the next scheduled run would
    let mut settle = 0;
    loop {
        settle += 1;
        let r = Compactor::new(blobs.clone(), compaction.clone())
            .run()
            .await?;
        if r.failed_days.is_empty() {
            break;
        }
        if settle > 3 {
            bail!(
                "compaction keeps failing after the faults stopped: {:?}",
                r.failed_days
            );
        }
    }
    let elapsed = started.elapsed();

    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for ((op, fault), n) in &injected {
        *by_kind
            .entry(format!("{} {}", op.as_str(), fault.as_str()))
            .or_insert(0) += n;
    }
    let total: usize = by_kind.values().sum();
    println!(
        "faults injected: {total} ({})",
        by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{} messages ({} producer redeliveries, {} archive replays, {} conflicting copies, {} invalid) in {batches} batches; {} redeliveries after failures; subscriber crashes {sub_crashes}; compactions {comp_runs} during the run, {comp_crashes} interrupted, then {settle} to settle; {:.1} s",
        producer.messages,
        expected.duplicates,
        expected.replays,
        expected.conflicts,
        expected.invalid.len(),
        receives.values().map(|n| *n as usize).sum::<usize>(),
        elapsed.as_secs_f64()
    );
    let verdict = verify(blobs.as_ref(), &expected).await?;
    println!(
        "stored {} of {} events; conflicts quarantined {} of {}; invalid quarantined {} of {}; wrongly quarantined {}",
        verdict.stored,
        expected.events.len(),
        verdict.conflicts_found,
        verdict.conflicts_expected,
        verdict.invalid_found,
        expected.invalid.len(),
        verdict.wrongly_quarantined
    );
    println!("lost {}, doubled {}", verdict.lost, verdict.doubled);
    if verdict.lost > 0
        || verdict.doubled > 0
        || verdict.wrongly_quarantined > 0
        || verdict.conflicts_found < verdict.conflicts_expected
        || verdict.invalid_found < expected.invalid.len()
        || verdict.foreign_payloads > 0
    {
        bail!(
            "the log is not exact (data kept in {}): {verdict:?}",
            root.display()
        );
    }
    std::fs::remove_dir_all(&root).ok();
    Ok(())
}

#[derive(Debug, Default)]
struct Verdict {
    stored: usize,
    lost: usize,
    doubled: usize,
    /// Stored rows whose payload is none of the copies delivered under their id.
    foreign_payloads: usize,
    conflicts_expected: usize,
    conflicts_found: usize,
    invalid_found: usize,
    wrongly_quarantined: usize,
}

async fn verify(blobs: &LocalDirBlobStore, expected: &Expected) -> Result<Verdict> {
    let mut v = Verdict::default();
    // every stored copy, file by file: after the last compaction a row is in one file
    let mut copies: HashMap<(String, String), usize> = HashMap::new();
    for o in blobs.list("").await? {
        let tenant = match ObjectKey::parse(&o.key) {
            Ok(ObjectKey::Tenant { partition }) => Some(partition.tenant),
            Ok(ObjectKey::Ingest { .. }) => None,
            Err(_) => continue,
        };
        let rows: Vec<AuditRecord> = decode_parquet(blobs.get(&o.key).await?, tenant.as_ref())?;
        for r in rows {
            *copies
                .entry((r.tenant_id.to_string(), r.event_id.to_string()))
                .or_insert(0) += 1;
        }
    }
    v.doubled = copies.values().filter(|n| **n > 1).count();
    // and through the reader, as a customer sees them
    let tenants: BTreeSet<&String> = expected.events.keys().map(|(t, _)| t).collect();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for t in tenants {
        let id = TenantId::parse(t)?;
        for r in TenantReader::new(blobs.clone())
            .read(&id, None, None)
            .await?
        {
            let key = (r.tenant_id.to_string(), r.event_id.to_string());
            match expected.events.get(&key) {
                Some(hashes) if hashes.contains(&r.payload_sha256) => {}
                _ => v.foreign_payloads += 1,
            }
            seen.insert(key);
        }
    }
    v.stored = seen.len();
    v.lost = expected
        .events
        .keys()
        .filter(|k| !seen.contains(*k))
        .count();
    let conflicted: HashSet<&(String, String)> = expected
        .events
        .iter()
        .filter(|(_, h)| h.len() > 1)
        .map(|(k, _)| k)
        .collect();
    v.conflicts_expected = conflicted.len();
    let mut conflicts_found: HashSet<(String, String)> = HashSet::new();
    let mut invalid_found: HashSet<String> = HashSet::new();
    for o in blobs.list(QUARANTINE_PREFIX).await? {
        let q: Value = serde_json::from_slice(&blobs.get(&o.key).await?)?;
        let body = q["body"].as_str().unwrap_or_default().to_owned();
        if q["reason_code"] == CONFLICT {
            let key = (
                q["tenant_id"].as_str().unwrap_or_default().to_owned(),
                q["event_id"].as_str().unwrap_or_default().to_owned(),
            );
            if conflicted.contains(&key) {
                conflicts_found.insert(key);
            } else {
                v.wrongly_quarantined += 1;
            }
        } else if expected.invalid.contains(&body) {
            invalid_found.insert(body);
        } else {
            v.wrongly_quarantined += 1;
        }
    }
    v.conflicts_found = conflicts_found.len();
    v.invalid_found = invalid_found.len();
    Ok(v)
}
