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
use transparency::integrate::{CheckpointPolicy, Integrator};
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
}

/// One integration run over the data directory.
pub async fn integrate(data: &Path) -> Result<IntegrationReport> {
    let l = Local::open(data)?;
    let store = BlobLog(&l.blobs);
    let integrator = Integrator {
        store: &store,
        index: &l.index,
        signer: &l.key,
        log_name: LOG_NAME,
        policy: CheckpointPolicy::default(),
    };
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
    let integrator = Integrator {
        store: &store,
        index: &l.index,
        signer: &l.key,
        log_name: LOG_NAME,
        policy: CheckpointPolicy::default(),
    };
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

pub fn print_integration(r: &IntegrationReport) {
    println!(
        "integrated {} ingest files: {} new leaves, {} duplicates, {} conflicts, {} tenants, {} checkpoints signed",
        r.files, r.added, r.duplicates, r.conflicts, r.tenants, r.checkpoints
    );
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The tenant whose stored rows to verify against its log.
    #[arg(long)]
    tenant: String,
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

/// `auditlog verify --tenant T`: every stored row of T against T's signed log.
pub async fn verify_tenant(data: &Path, args: VerifyArgs) -> Result<bool> {
    let tenant = TenantId::parse(&args.tenant)?;
    let blobs = LocalDirBlobStore::open(data.join("blobs"))?;
    let key_path = args.key.unwrap_or_else(|| verifier_key_path(data));
    let keys: Vec<String> = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading the verifier key {}", key_path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let trusted = checkpoint::trusted(&keys)?;
    let pinned = match &args.pinned {
        None => None,
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
    };
    let anchor = TrustAnchor {
        trusted: &trusted,
        log_name: LOG_NAME,
        pinned: pinned.as_deref(),
    };
    let (report, pending) =
        auditlog::integration::verify_tenant(&blobs, &leaf_index(data)?, &anchor, &tenant).await?;
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
