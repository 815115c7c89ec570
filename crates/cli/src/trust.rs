//! The tenant transparency logs on the embedded default: `auditlog integrate` and
//! `auditlog verify --tenant T`, and the signing key made on first run.
//!
//! Under the data directory: `log-signing.key` (the Ed25519 key, signed-note format,
//! mode 0600: never published), `log-verifier.key` (its public half, what customers pin),
//! `leaves.sqlite` (where each event is in its tenant's log), and `blobs/trust/<t>/`
//! (tiles, entry bundles, checkpoints: what anyone may fetch).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use adapters_local::{LocalDirBlobStore, SqliteLeafIndex};
use anyhow::{Context, Result};
use auditlog::SystemClock;
use auditlog::integration::{BlobLog, IntegrationReport, TrustAnchor};
use envelope::TenantId;
use envelope::clock::Clock as _;
use transparency::checkpoint::{self, CheckpointSigner as _, LocalKey};
use transparency::integrate::{CheckpointPolicy, Integrator, LogStore as _};
use transparency::verify::Report;

/// The first part of each tenant log's origin line (`<LOG_NAME>/<tenant>`) and the key's
/// name in signatures.
pub const LOG_NAME: &str = "auditlog.local";

fn signing_key_path(data: &Path) -> PathBuf {
    data.join("log-signing.key")
}

pub fn verifier_key_path(data: &Path) -> PathBuf {
    data.join("log-verifier.key")
}

/// The embedded default's signing key, made on first use.
pub fn signing_key(data: &Path) -> Result<LocalKey> {
    let path = signing_key_path(data);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return LocalKey::from_private(&text).with_context(|| format!("in {}", path.display()));
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let key = LocalKey::generate(LOG_NAME)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{}", key.private_key())?;
    std::fs::write(verifier_key_path(data), format!("{}\n", key.verifier_key()))?;
    Ok(key)
}

pub fn leaf_index(data: &Path) -> Result<SqliteLeafIndex> {
    Ok(SqliteLeafIndex::open(&data.join("leaves.sqlite"))?)
}

/// The data directory's stores, for one integrator.
struct Local {
    blobs: LocalDirBlobStore,
    index: SqliteLeafIndex,
    key: LocalKey,
}

impl Local {
    fn open(data: &Path) -> Result<Self> {
        Ok(Local {
            blobs: LocalDirBlobStore::open(data.join("blobs"))?,
            index: leaf_index(data)?,
            key: signing_key(data)?,
        })
    }

    /// The one writer of this data directory's tenant logs, over `store` (its blobs).
    fn integrator<'a>(&'a self, store: &'a BlobLog<'a>) -> Integrator<'a> {
        Integrator {
            store,
            index: &self.index,
            signer: &self.key,
            log_name: LOG_NAME,
            policy: CheckpointPolicy::default(),
        }
    }
}

/// One integration run over the data directory.
pub async fn integrate(data: &Path) -> Result<IntegrationReport> {
    let l = Local::open(data)?;
    let store = BlobLog(&l.blobs);
    let integrator = l.integrator(&store);
    Ok(auditlog::integration::integrate(&l.blobs, &integrator, SystemClock.now(), true).await?)
}

#[derive(clap::Args, Debug)]
pub struct ExpireArgs {
    /// The tenant whose old days to remove.
    #[arg(long)]
    tenant: String,
    /// Remove compacted days strictly before this date (YYYY-MM-DD).
    #[arg(long)]
    before: chrono::NaiveDate,
    /// The policy named in the log's expiry record (no spaces).
    #[arg(long, default_value = "retention")]
    policy: String,
}

/// `auditlog expire`: a tenant's retention, recorded in its log before the rows go.
pub async fn expire(data: &Path, args: ExpireArgs) -> Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let l = Local::open(data)?;
    let store = BlobLog(&l.blobs);
    let integrator = l.integrator(&store);
    let now = SystemClock.now();
    let r = auditlog::integration::expire_tenant(
        &l.blobs,
        &integrator,
        &tenant,
        args.before,
        &args.policy,
        now,
    )
    .await?;
    integrator.sign_pending(&tenant, now).await?;
    println!(
        "expired {} files ({} rows) of {tenant} before {} under {:?}: {} index ranges recorded in its log",
        r.files,
        r.rows,
        args.before,
        args.policy,
        r.ranges.len()
    );
    Ok(())
}

/// The default retention of a tenant without its own: the template's default (7 years).
pub const DEFAULT_RETENTION_DAYS: u32 = 2557;

#[derive(clap::Subcommand, Debug)]
pub enum RetentionCommand {
    /// A tenant's retention (its own setting, or the default).
    Show {
        #[arg(long)]
        tenant: String,
    },
    /// Set a tenant's retention: 90 days to 10 years (3653 days).
    Set {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        days: u32,
    },
    /// Apply every tenant's retention now: compacted days past it go, after the tenant's
    /// log records their removal (`auditlog verify` then counts them "removed by
    /// policy"). On AWS the integrator does this daily.
    Apply {
        /// For tenants without their own setting.
        #[arg(long, default_value_t = DEFAULT_RETENTION_DAYS)]
        default_days: u32,
    },
}

/// `auditlog retention show|set|apply`.
pub async fn retention(data: &Path, cmd: RetentionCommand) -> Result<()> {
    use tenants::{Retention, RetentionSettings as _};
    let settings = adapters_local::SqliteScimStore::open(&data.join("scim.sqlite"))?;
    match cmd {
        RetentionCommand::Show { tenant } => {
            let tenant = TenantId::parse(&tenant)?;
            match settings.retention(&tenant).await? {
                Some(r) => println!("{tenant}: {} days (its own setting)", r.get()),
                None => println!("{tenant}: {DEFAULT_RETENTION_DAYS} days (the default)"),
            }
        }
        RetentionCommand::Set { tenant, days } => {
            let tenant = TenantId::parse(&tenant)?;
            settings
                .put_retention(&tenant, Retention::days(days)?)
                .await?;
            println!("{tenant}: {days} days");
        }
        RetentionCommand::Apply { default_days } => {
            let default = Retention::days(default_days)?;
            let l = Local::open(data)?;
            let store = BlobLog(&l.blobs);
            let r = auditlog::integration::apply_retention(
                &l.blobs,
                &l.integrator(&store),
                &settings,
                default,
                SystemClock.now(),
            )
            .await?;
            println!(
                "retention over {} tenants: {} files ({} rows) of {} tenants removed, {} index ranges recorded in their logs",
                r.tenants, r.files, r.rows, r.expired_tenants, r.ranges
            );
        }
    }
    Ok(())
}

pub fn print_integration(r: &IntegrationReport) {
    println!(
        "integrated {} ingest files: {} new leaves, {} duplicates, {} conflicts, {} tenants, {} checkpoints signed",
        r.files, r.added, r.duplicates, r.conflicts, r.tenants, r.checkpoints
    );
    if r.backfilled > 0 {
        println!(
            "  and {} leaves for rows compacted before the logs existed",
            r.backfilled
        );
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["dir", "tenant"])))]
pub struct VerifyArgs {
    /// An export bundle (`auditlog export --out DIR`) to verify, offline.
    dir: Option<PathBuf>,
    /// Or: the tenant whose stored rows (in the data directory) to verify.
    #[arg(long)]
    tenant: Option<String>,
    /// An older checkpoint you kept: the log must extend it.
    #[arg(long)]
    pinned: Option<PathBuf>,
    /// The verifier key(s) to trust, one per line (default: this data directory's).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `auditlog verify DIR` (an export bundle) or `auditlog verify --tenant T` (every
/// stored row of T in the data directory), against the signed log.
pub async fn verify_tenant(data: &Path, args: VerifyArgs) -> Result<bool> {
    let (report, pending, tenant) = match (&args.dir, &args.tenant) {
        (Some(dir), _) => verify_bundle(dir, &args).await?,
        (None, Some(t)) => {
            let tenant = TenantId::parse(t)?;
            let blobs = LocalDirBlobStore::open(data.join("blobs"))?;
            let key_path = args.key.clone().unwrap_or_else(|| verifier_key_path(data));
            let trusted = checkpoint::trusted(&read_keys(&key_path)?)?;
            let pinned = read_pinned(&args)?;
            let anchor = TrustAnchor {
                trusted: &trusted,
                log_name: LOG_NAME,
                pinned: pinned.as_deref(),
            };
            let (report, pending) =
                auditlog::integration::verify_tenant(&blobs, &leaf_index(data)?, &anchor, &tenant)
                    .await?;
            (report, pending, tenant)
        }
        (None, None) => anyhow::bail!("give an export bundle DIR or --tenant T"),
    };
    if args.json {
        println!("{}", report_json(&report, pending));
    } else {
        print_report(&tenant, &report, pending);
    }
    Ok(report.ok())
}

fn report_json(r: &Report, pending: usize) -> serde_json::Value {
    serde_json::json!({
        "ok": r.ok(),
        "origin": r.origin,
        "checkpoint": r.checkpoint.as_ref().map(|c| serde_json::json!({
            "size": c.size, "root": c.root.to_string(), "signed_by": c.signed_by,
        })),
        "pinned_size": r.pinned_size,
        "rows_verified": r.rows_verified,
        "removed_by_policy": r.removed_by_policy,
        "outside_window": r.outside_window,
        "not_yet_integrated": pending,
        "findings": r.findings.iter().map(|f| serde_json::json!({
            "problem": f.problem.name(),
            "first_index": f.indexes.start,
            "end_index": f.indexes.end,
            "event_id": f.event_id,
            "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

fn print_report(tenant: &TenantId, r: &Report, pending: usize) {
    match &r.checkpoint {
        Some(c) => println!(
            "tenant {tenant}: checkpoint of {} leaves, root {}, signed by {}",
            c.size,
            c.root,
            c.signed_by.join(", ")
        ),
        None => println!("tenant {tenant}: no checkpoint verified"),
    }
    if let Some(p) = r.pinned_size {
        println!("pinned checkpoint of {p} leaves checked");
    }
    println!("rows verified        {}", r.rows_verified);
    println!("removed by policy    {}", r.removed_by_policy);
    if r.outside_window > 0 {
        println!("outside the export   {}", r.outside_window);
    }
    println!("not yet integrated   {pending}");
    for f in &r.findings {
        let at = if f.indexes.end > f.indexes.start + 1 {
            format!("indices {}..{}", f.indexes.start, f.indexes.end)
        } else {
            format!("index {}", f.indexes.start)
        };
        println!("{}: {at}: {}", f.problem.name().to_uppercase(), f.detail);
    }
    println!("{}", if r.ok() { "verified" } else { "NOT verified" });
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[arg(long)]
    tenant: String,
    /// Events accepted from this time (RFC 3339 or YYYY-MM-DD), inclusive.
    #[arg(long, value_parser = crate::parse_time)]
    from: chrono::DateTime<chrono::Utc>,
    /// Events accepted before this time, exclusive.
    #[arg(long, value_parser = crate::parse_time)]
    to: chrono::DateTime<chrono::Utc>,
    /// The directory to write: rows, the signed checkpoint, and the proof of the
    /// window's entries (not the whole log's).
    #[arg(long)]
    out: PathBuf,
    /// Also prove that the log extends the one of this size (a checkpoint the customer
    /// pinned), so `auditlog verify DIR --pinned FILE` checks it offline.
    #[arg(long)]
    consistency_from: Option<u64>,
}

/// What an export bundle says about itself (`manifest.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    tenant: String,
    origin: String,
    /// Events accepted in `[from, to)`, as microseconds since the epoch.
    from_micros: i64,
    to_micros: i64,
    rows: usize,
    /// The log's entries `first_index..end_index` are in `entries.txt`, proved into
    /// the checkpoint by `proof.json` (absent: a bundle of the whole log's tiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_index: Option<u64>,
}

/// `proof.json` of a range bundle: hashes in base64, as in the audit API.
#[derive(serde::Serialize, serde::Deserialize)]
struct RangeProofFile {
    range_proof: Vec<String>,
    /// The log's expiry entries for indices in the range, each with its inclusion proof.
    expiries: Vec<ProvedEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consistency: Option<ConsistencyFile>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ProvedEntry {
    index: u64,
    entry: String,
    inclusion_proof: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ConsistencyFile {
    from: u64,
    proof: Vec<String>,
}

fn b64(hashes: &[transparency::Hash]) -> Vec<String> {
    hashes.iter().map(ToString::to_string).collect()
}

fn unb64(texts: &[String]) -> Result<Vec<transparency::Hash>> {
    texts
        .iter()
        .map(|t| transparency::Hash::parse_hash(t).map_err(|e| anyhow::anyhow!("hash {t:?}: {e}")))
        .collect()
}

/// One exported row: what its leaf is made of, and what a reader wants to see.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExportedRow {
    leaf_index: u64,
    event_id: String,
    /// Microseconds since the epoch, exactly as the leaf holds it.
    accepted_at: i64,
    occurred_at: String,
    event_type: String,
    /// The canonical JSON payload, as stored: its SHA-256 is recomputed on verify.
    payload: String,
}

/// `auditlog export --tenant T --from --to --out DIR`: an offline verifiable bundle.
pub async fn export(data: &Path, args: ExportArgs) -> Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let l = Local::open(data)?;
    let store = BlobLog(&l.blobs);
    let prefix = transparency::integrate::log_prefix(&tenant);
    let Some(note) = store.get(&format!("{prefix}checkpoint")).await? else {
        anyhow::bail!("{tenant} has no signed checkpoint yet: run `auditlog integrate` first");
    };
    let rows = auditlog::TenantReader::new(l.blobs.clone())
        .read(&tenant, None, None)
        .await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.ingested_at >= args.from && r.ingested_at < args.to)
        .collect();
    let placed = auditlog::integration::leaf_indexes(&l.index, &tenant, &rows).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(args.out.join("rows.jsonl"))?);
    let (_, signed_size, _) = checkpoint::parse_unverified(&note)?;
    let mut written = 0;
    let mut range: Option<(u64, u64)> = None;
    for (r, at) in rows.iter().zip(placed) {
        // rows not integrated or not under the checkpoint yet: left for a later export
        let Some(leaf_index) = at.filter(|i| *i < signed_size) else {
            continue;
        };
        range = Some(match range {
            None => (leaf_index, leaf_index + 1),
            Some((a, b)) => (a.min(leaf_index), b.max(leaf_index + 1)),
        });
        let row = ExportedRow {
            leaf_index,
            event_id: r.event_id.to_string(),
            accepted_at: r.ingested_at.timestamp_micros(),
            occurred_at: r.occurred_at.to_rfc3339(),
            event_type: r.event_type.clone(),
            payload: r.payload.clone(),
        };
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    std::fs::write(args.out.join("checkpoint"), &note)?;
    std::fs::copy(verifier_key_path(data), args.out.join("log-verifier.key"))?;
    // the window's entries and their proof into the checkpoint: what was exported
    // spans `first..end` of the log (acceptance order is the log's to within a
    // subscriber invocation, so the range may hold a few events outside the window)
    let (_, size, root) = checkpoint::parse_unverified(&note)?;
    let Some((first, end)) = range else {
        anyhow::bail!("no event of {tenant} accepted in that window is under its checkpoint yet");
    };
    let tiles = transparency::integrate::tiles_of(&store, &tenant);
    let entries = transparency::proof::entries(&tiles, first, end, size).await?;
    let mut text = String::new();
    for (_, e) in &entries {
        text.push_str(std::str::from_utf8(e).context("a log entry is not text")?);
        text.push('\n');
    }
    std::fs::write(args.out.join("entries.txt"), text)?;
    let range_proof = transparency::range::range_proof(&tiles, size, root, first, end).await?;
    let mut expiries = Vec::new();
    if let Some(listed) = store
        .get(&format!("{prefix}{}", transparency::integrate::EXPIRED))
        .await?
    {
        for x in transparency::integrate::parse_expired_leaves(&listed)? {
            if x.removed.start < end && first < x.removed.end && x.leaf < size {
                let entry = transparency::proof::entry_at(&tiles, x.leaf, size).await?;
                let path = transparency::proof::inclusion(&tiles, size, root, x.leaf).await?;
                expiries.push(ProvedEntry {
                    index: x.leaf,
                    entry: String::from_utf8(entry).context("an expiry entry is not text")?,
                    inclusion_proof: b64(&path),
                });
            }
        }
    }
    let consistency = match args.consistency_from {
        Some(from) if from > 0 && from < size => Some(ConsistencyFile {
            from,
            proof: b64(&transparency::proof::consistency(&tiles, from, size, root).await?),
        }),
        Some(from) if from != size => {
            anyhow::bail!("--consistency-from {from}: a log size from 1 to {size}")
        }
        _ => None,
    };
    std::fs::write(
        args.out.join("proof.json"),
        serde_json::to_vec_pretty(&RangeProofFile {
            range_proof: b64(&range_proof),
            expiries,
            consistency,
        })?,
    )?;
    let manifest = Manifest {
        tenant: tenant.to_string(),
        origin: checkpoint::origin(LOG_NAME, &tenant),
        from_micros: args.from.timestamp_micros(),
        to_micros: args.to.timestamp_micros(),
        rows: written,
        first_index: Some(first),
        end_index: Some(end),
    };
    std::fs::write(
        args.out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    println!(
        "exported {written} rows of {tenant} accepted in [{}, {}), entries {first}..{end} of its log of {size} with their proof, and the checkpoint, to {}",
        args.from,
        args.to,
        args.out.display()
    );
    Ok(())
}

/// Every file under `dir/tile/`, by its path under the log (`tile/...`).
fn tiles_in(dir: &Path) -> Result<transparency::TilesInMemory> {
    let mut out = transparency::TilesInMemory::default();
    let mut stack = vec![dir.join("tile")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                let key = rel.to_string_lossy().replace('\\', "/");
                out.0.insert(key, std::fs::read(&p)?);
            }
        }
    }
    Ok(out)
}

/// `auditlog verify DIR`: an export bundle, offline.
async fn verify_bundle(dir: &Path, args: &VerifyArgs) -> Result<(Report, usize, TenantId)> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .with_context(|| format!("{} is not an export bundle", dir.display()))?,
    )?;
    let tenant = TenantId::parse(&manifest.tenant)?;
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| dir.join("log-verifier.key"));
    let trusted = checkpoint::trusted(&read_keys(&key_path)?)?;
    let note = std::fs::read(dir.join("checkpoint"))?;
    let pinned = read_pinned(args)?;
    let mut rows = Vec::new();
    let text = std::fs::read_to_string(dir.join("rows.jsonl"))?;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: ExportedRow =
            serde_json::from_str(line).with_context(|| format!("rows.jsonl line {}", n + 1))?;
        let event_id = envelope::EventId::parse(&r.event_id)?;
        let accepted = chrono::DateTime::from_timestamp_micros(r.accepted_at)
            .context("accepted_at out of range")?;
        let sha = auditlog::payload_sha256(&r.payload);
        rows.push(transparency::verify::StoredRow {
            index: r.leaf_index,
            leaf: transparency::Leaf::Event(transparency::EventLeaf::of_row(
                &tenant, &event_id, accepted, &sha,
            )?),
            location: format!("rows.jsonl line {} (event {})", n + 1, r.event_id),
        });
    }
    let window = (
        chrono::DateTime::from_timestamp_micros(manifest.from_micros).context("from")?,
        chrono::DateTime::from_timestamp_micros(manifest.to_micros).context("to")?,
    );
    if let (Some(first), Some(end)) = (manifest.first_index, manifest.end_index) {
        let report = verify_range_bundle(
            dir,
            &manifest,
            (first, end),
            &note,
            &trusted,
            pinned.as_deref(),
            rows,
            window,
        )?;
        return Ok((report, 0, tenant));
    }
    // a bundle of the whole log's tiles (as exported before range proofs)
    let tiles = tiles_in(dir)?;
    let evidence = transparency::verify::Evidence {
        origin: &manifest.origin,
        checkpoint: &note,
        pinned: pinned.as_deref(),
        trusted: &trusted,
        tiles: &tiles,
    };
    let report = transparency::verify::verify_window(&evidence, rows, Some(window)).await;
    Ok((report, 0, tenant))
}

/// A range bundle: `entries.txt` (the log's entries `first..end`) and `proof.json`.
#[allow(clippy::too_many_arguments)]
fn verify_range_bundle(
    dir: &Path,
    manifest: &Manifest,
    (first, end): (u64, u64),
    note: &[u8],
    trusted: &transparency::checkpoint::VerifierList,
    pinned: Option<&[u8]>,
    rows: Vec<transparency::verify::StoredRow>,
    window: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
) -> Result<Report> {
    let entries: Vec<Vec<u8>> = std::fs::read_to_string(dir.join("entries.txt"))
        .context("a range bundle holds entries.txt")?
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if entries.len() as u64 != end.saturating_sub(first) {
        anyhow::bail!(
            "entries.txt holds {} entries; the manifest says {first}..{end}",
            entries.len()
        );
    }
    let proof: RangeProofFile = serde_json::from_slice(
        &std::fs::read(dir.join("proof.json")).context("a range bundle holds proof.json")?,
    )?;
    let expiries = proof
        .expiries
        .iter()
        .map(|x| {
            Ok((
                x.index,
                x.entry.as_bytes().to_vec(),
                unb64(&x.inclusion_proof)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let consistency = match (&proof.consistency, pinned) {
        (_, None) => None,
        (Some(c), Some(note)) => {
            let (_, pinned_size, _) = checkpoint::parse_unverified(note)?;
            if c.from != pinned_size {
                anyhow::bail!(
                    "the bundle proves consistency from {}, the pinned checkpoint is of {pinned_size}: export with --consistency-from {pinned_size}",
                    c.from
                );
            }
            Some(unb64(&c.proof)?)
        }
        (None, Some(pinned_note)) => {
            let (_, pinned_size, _) = checkpoint::parse_unverified(pinned_note)?;
            let (_, size, _) = checkpoint::parse_unverified(note)?;
            // a pinned checkpoint of the same size (or a bigger one: truncation) needs
            // no proof to be judged
            if pinned_size < size {
                anyhow::bail!(
                    "the bundle has no consistency proof: export with --consistency-from {pinned_size}"
                );
            }
            Some(Vec::new())
        }
    };
    let range_proof = unb64(&proof.range_proof)?;
    let evidence = transparency::verify::RangeEvidence {
        origin: &manifest.origin,
        checkpoint: note,
        trusted,
        first,
        entries: &entries,
        proof: &range_proof,
        expiries: &expiries,
        pinned: pinned.zip(consistency.as_deref()),
    };
    Ok(transparency::verify::verify_range_export(
        &evidence, rows, window,
    ))
}

fn read_keys(path: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading the verifier key {}", path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn read_pinned(args: &VerifyArgs) -> Result<Option<Vec<u8>>> {
    match &args.pinned {
        None => Ok(None),
        Some(p) => Ok(Some(
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )),
    }
}
