//! `auditlog bench verify`: the tenant log's costs. Appending (what the integrator does
//! per event), verifying on one core (what `auditlog verify` does per leaf), and the
//! bytes the log adds per event.

use std::time::Instant;

use anyhow::Result;
use chrono::DateTime;
use envelope::{EventId, TenantId};
use transparency::checkpoint::{self, CheckpointSigner as _, LocalKey};
use transparency::verify::{Evidence, StoredRow, verify};
use transparency::{EventLeaf, Leaf, TilesInMemory, TreeEdge};

#[derive(clap::Args, Debug)]
pub struct VerifyBenchArgs {
    /// Leaves in the log.
    #[arg(long, default_value_t = 1_000_000)]
    leaves: u64,
    /// Events per integration batch (one batch's tiles are published together).
    #[arg(long, default_value_t = 3_700)]
    batch: u64,
    /// Timed repetitions of the verification (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn leaf(tenant: &TenantId, i: u64) -> Leaf {
    let id = format!(
        "01890a5d-{:04x}-7{:03x}-8{:03x}-{:012x}",
        (i >> 40) & 0xffff,
        (i >> 28) & 0xfff,
        (i >> 16) & 0xfff,
        i
    );
    Leaf::Event(EventLeaf {
        tenant: tenant.clone(),
        event_id: EventId::parse(&id).unwrap_or_else(|_| EventId::new_v7()),
        accepted_at: DateTime::from_timestamp_micros(1_760_000_000_000_000 + i as i64 * 1000)
            .unwrap_or_default(),
        payload_sha256: {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_be_bytes());
            h
        },
    })
}

pub async fn run(args: VerifyBenchArgs) -> Result<()> {
    let tenant = TenantId::parse("bench")?;
    let key = LocalKey::generate("bench.example")?;
    let origin = checkpoint::origin("bench.example", &tenant);
    let leaves: Vec<Leaf> = (0..args.leaves).map(|i| leaf(&tenant, i)).collect();

    // appending, in batches as the integrator does (tiles published per batch)
    let mut edge = TreeEdge::empty();
    let mut tiles = TilesInMemory::default();
    let mut puts = 0u64;
    let started = Instant::now();
    for batch in leaves.chunks(args.batch.max(1) as usize) {
        let mut published = edge.append(batch.iter().map(Leaf::encode))?;
        published.extend(edge.partials()?);
        puts += published.len() as u64;
        for p in published {
            tiles.0.insert(p.path, p.bytes);
        }
    }
    let append = started.elapsed();
    let note = checkpoint::sign(&key, &origin, edge.size(), edge.root()).await?;
    // what stays published: full tiles and bundles, and the partials of the last size
    // (partials of earlier sizes are superseded; C2SP lets a log delete them)
    let (partials, bundle) = TreeEdge::partial_paths(edge.size());
    let current: std::collections::HashSet<String> =
        partials.into_iter().flatten().chain(bundle).collect();
    let kept: u64 = tiles
        .0
        .iter()
        .filter(|(p, _)| !p.contains(".p/") || current.contains(*p))
        .map(|(_, b)| b.len() as u64)
        .sum();
    let hash_bytes: u64 = tiles
        .0
        .iter()
        .filter(|(p, _)| {
            !p.starts_with("tile/entries") && (!p.contains(".p/") || current.contains(*p))
        })
        .map(|(_, b)| b.len() as u64)
        .sum();

    let rows: Vec<StoredRow> = leaves
        .iter()
        .enumerate()
        .map(|(i, l)| StoredRow {
            index: i as u64,
            leaf: l.clone(),
            location: String::new(),
        })
        .collect();
    let trusted = checkpoint::trusted(&[key.verifier_key().to_owned()])?;
    let evidence = Evidence {
        origin: &origin,
        checkpoint: &note,
        pinned: None,
        trusted: &trusted,
        tiles: &tiles,
    };
    let mut times = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let rows = rows.clone();
        let t = Instant::now();
        let report = verify(&evidence, rows).await;
        times.push(t.elapsed());
        anyhow::ensure!(
            report.ok(),
            "the bench log does not verify: {:?}",
            report.findings
        );
    }
    times.sort();
    let median = times[times.len() / 2];
    let n = args.leaves as f64;
    println!(
        "tenant log of {} leaves, batches of {}",
        args.leaves, args.batch
    );
    println!(
        "append     {:>8.0} leaves/s  ({:.2} s; {} tile and bundle puts, {:.1} per batch)",
        n / append.as_secs_f64(),
        append.as_secs_f64(),
        puts,
        puts as f64 / (n / args.batch as f64).ceil()
    );
    println!(
        "verify     {:>8.0} leaves/s  (median of {}: {:.2} s; signature, entries, root, every row)",
        n / median.as_secs_f64(),
        times.len(),
        median.as_secs_f64()
    );
    println!(
        "storage    {:>8.1} bytes/event  ({:.1} of them hashes, the rest entry bundles)",
        kept as f64 / n,
        hash_bytes as f64 / n
    );
    Ok(())
}
