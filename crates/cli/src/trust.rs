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
use anyhow::{Context, Result, bail};
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

/// `auditlog retention show|set|apply`, on the embedded store or a stack's SCIM table
/// (where the integrator reads it; `apply` then invokes the integrator).
pub async fn retention(target: &Target<'_>, cmd: RetentionCommand) -> Result<()> {
    use tenants::{Retention, RetentionSettings};
    let settings: Box<dyn RetentionSettings> = match target {
        Target::Embedded { data, .. } => Box::new(adapters_local::SqliteScimStore::open(
            &data.join("scim.sqlite"),
        )?),
        Target::Stack { stack, .. } => Box::new(stack.directory()?),
    };
    let default_is = match target {
        Target::Embedded { .. } => format!("{DEFAULT_RETENTION_DAYS} days (the default)"),
        Target::Stack { .. } => "the stack's default (its AuditRetentionDays parameter)".to_owned(),
    };
    match cmd {
        RetentionCommand::Show { tenant } => {
            let tenant = TenantId::parse(&tenant)?;
            match settings.retention(&tenant).await? {
                Some(r) => println!("{tenant}: {} days (its own setting)", r.get()),
                None => println!("{tenant}: {default_is}"),
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
            let r = match target {
                Target::Embedded { data, .. } => {
                    let default = Retention::days(default_days)?;
                    let l = Local::open(data)?;
                    let store = BlobLog(&l.blobs);
                    auditlog::integration::apply_retention(
                        &l.blobs,
                        &l.integrator(&store),
                        settings.as_ref(),
                        default,
                        SystemClock.now(),
                    )
                    .await?
                }
                Target::Stack { stack, .. } => {
                    // the integrator is the logs' one writer: it applies retention
                    eprintln!("invoking the stack's integrator with the retention task...");
                    stack
                        .invoke(
                            crate::stack::outputs::INTEGRATOR_FUNCTION,
                            "integrator",
                            &serde_json::json!({"task": "retention"}),
                        )
                        .await?
                }
            };
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
    /// An export bundle to verify, offline: the directory `auditlog export --out DIR`
    /// wrote, or a bundle file the audit API's exports gave (`format: "bundle"`).
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
    /// With --tenant: the tenant's rows and log in this S3 bucket (a deployed stack's
    /// audit bucket; credentials, region and endpoint the usual AWS way), not in the
    /// data directory. Needs --key and --log-name.
    #[arg(long, requires_all = ["tenant", "key", "log_name"])]
    bucket: Option<String>,
    /// With --bucket: the stack's leaf index table, for rows not compacted yet (without
    /// it they count as not yet integrated).
    #[arg(long, requires = "bucket")]
    leaf_table: Option<String>,
    /// With --bucket: the first part of the tenant log's origin (the stack's
    /// TransparencyLogName, or auditlog-<account>-<stack>).
    #[arg(long)]
    log_name: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The S3 client of `verify --bucket`: path-style addressing when an endpoint is set
/// (an S3-compatible store or a test server, which take no bucket subdomains).
async fn s3_from_env() -> (aws_config::SdkConfig, aws_sdk_s3::Client) {
    let aws = aws_config::load_from_env().await;
    let mut b = aws_sdk_s3::config::Builder::from(&aws);
    if std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
    {
        b = b.force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(b.build());
    (aws, client)
}

use crate::stack::Target;

/// `auditlog --stack S verify --tenant T --key K`: the stack's bucket, leaf index and
/// log name from its outputs, unless given.
pub fn from_stack(stack: &crate::stack::Stack, mut args: VerifyArgs) -> Result<VerifyArgs> {
    use crate::stack::outputs;
    if args.dir.is_some() || args.tenant.is_none() {
        return Ok(args);
    }
    if args.key.is_none() {
        bail!(
            "--key: the log's verifying key as you were given it (`aws kms get-public-key --key-id <LogSigningKeyArn>`, or GET /v1/log/keys to compare with)"
        );
    }
    if args.bucket.is_none() {
        args.bucket = Some(stack.output(outputs::BUCKET)?.to_owned());
    }
    if args.leaf_table.is_none() {
        args.leaf_table = Some(stack.output(outputs::LEAF_INDEX_TABLE)?.to_owned());
    }
    if args.log_name.is_none() {
        args.log_name = Some(stack.output(outputs::LOG_NAME)?.to_owned());
    }
    Ok(args)
}

/// `auditlog verify DIR` (an export bundle) or `auditlog verify --tenant T` (every
/// stored row of T in the data directory), against the signed log.
pub async fn verify_tenant(data: &Path, args: VerifyArgs) -> Result<bool> {
    let (report, pending, tenant) = match (&args.dir, &args.tenant) {
        (Some(dir), _) => verify_bundle(dir, &args).await?,
        (None, Some(t)) if args.bucket.is_some() => {
            let tenant = TenantId::parse(t)?;
            let (aws, s3) = s3_from_env().await;
            let bucket = args.bucket.clone().unwrap_or_default();
            let blobs = adapters_aws::S3BlobStore::new(s3, bucket);
            let key_path = args.key.clone().context("--bucket needs --key")?;
            let trusted = checkpoint::trusted(&read_keys(&key_path)?)?;
            let pinned = read_pinned(&args)?;
            let log_name = args.log_name.clone().context("--bucket needs --log-name")?;
            let anchor = TrustAnchor {
                trusted: &trusted,
                log_name: &log_name,
                pinned: pinned.as_deref(),
            };
            // without the table, only rows compacted since integration carry an index
            let index: Box<dyn transparency::integrate::LeafIndex> = match &args.leaf_table {
                Some(table) => Box::new(adapters_aws::DynamoDbLeafIndex::new(
                    aws_sdk_dynamodb::Client::new(&aws),
                    table,
                )),
                None => Box::new(transparency::integrate::InMemoryLog::default()),
            };
            let (report, pending) =
                auditlog::integration::verify_tenant(&blobs, index.as_ref(), &anchor, &tenant)
                    .await?;
            (report, pending, tenant)
        }
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

/// Most events one bundle holds (its rows are built in memory).
const MAX_BUNDLE_ROWS: usize = 2_000_000;

/// `auditlog export --tenant T --from --to --out DIR`: an offline verifiable bundle
/// (`DIR/bundle.json`) and the verifier key beside it.
pub async fn export(data: &Path, args: ExportArgs) -> Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let l = Local::open(data)?;
    let bundle = auditlog::bundle::build(
        &l.blobs,
        &l.index,
        &tenant,
        LOG_NAME,
        args.from,
        args.to,
        args.consistency_from,
        MAX_BUNDLE_ROWS,
    )
    .await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(
        args.out.join("bundle.json"),
        serde_json::to_vec_pretty(&bundle)?,
    )?;
    std::fs::copy(verifier_key_path(data), args.out.join("log-verifier.key"))?;
    let (_, size, _) = checkpoint::parse_unverified(bundle.checkpoint.as_bytes())?;
    println!(
        "exported {} rows of {tenant} accepted in [{}, {}), entries {}..{} of its log of {size} with their proof, and the checkpoint, to {}",
        bundle.rows.len(),
        args.from,
        args.to,
        bundle.first_index,
        bundle.end_index,
        args.out.join("bundle.json").display()
    );
    Ok(())
}

/// `auditlog verify PATH`: an export bundle, offline: a directory `auditlog export`
/// wrote, or a bundle file the audit API's exports gave.
async fn verify_bundle(path: &Path, args: &VerifyArgs) -> Result<(Report, usize, TenantId)> {
    let (file, beside) = if path.is_dir() {
        (path.join("bundle.json"), path.join("log-verifier.key"))
    } else {
        let dir = path.parent().unwrap_or(Path::new("."));
        (path.to_path_buf(), dir.join("log-verifier.key"))
    };
    let bundle: auditlog::bundle::Bundle = serde_json::from_slice(
        &std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?,
    )
    .with_context(|| format!("{} is not an export bundle", file.display()))?;
    let key_path = args.key.clone().unwrap_or(beside);
    let trusted = checkpoint::trusted(&read_keys(&key_path)?)?;
    let pinned = read_pinned(args)?;
    let tenant = TenantId::parse(&bundle.tenant)?;
    let report = auditlog::bundle::verify(&bundle, &trusted, pinned.as_deref()).await?;
    Ok((report, 0, tenant))
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
