//! `auditlog`: the audit pipeline on one laptop, no AWS. The same subscriber and
//! compactor code as the Lambda functions, over SQLite, a local directory and an
//! in-process bus.

mod bench;
mod bench_compaction;
mod bench_history;
mod bench_verify;
mod ops;
mod pipeline;
mod query_cmd;
mod serve;
mod soak;
mod tenants;
mod traffic;
mod trail;
mod trust;

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "auditlog",
    version,
    about = "Audit-log pipeline on the embedded default (no AWS)"
)]
struct Cli {
    /// Data directory: Parquet files under blobs/, the dedupe store in dedupe.sqlite.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_DATA",
        default_value = "auditlog-data"
    )]
    data: PathBuf,
    /// A directory of deployment schemas (`<event_type>.v<version>.json`), added to the
    /// built-in ones.
    #[arg(long, global = true, env = "AUDITLOG_SCHEMAS")]
    schemas: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate realistic traffic, run it through the pipeline, compact, and summarise.
    Demo(pipeline::DemoArgs),
    /// Feed EventBridge events (one JSON object per line) from FILE, or - for stdin.
    Ingest { file: String },
    /// Print one tenant's audit records, oldest first.
    Show {
        #[arg(long)]
        tenant: String,
        /// Inclusive lower bound on occurred_at (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Exclusive upper bound on occurred_at (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// Print at most this many records (the newest).
        #[arg(long)]
        limit: Option<usize>,
        /// Output JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a compliance query of queries/ on the local data (DataFusion); no name lists them.
    Query(query_cmd::QueryArgs),
    /// Serve the SCIM API on localhost; its changes flow into the audit log.
    Serve(serve::ServeArgs),
    /// Benchmarks with figures for docs/perf.md.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage the SCIM API's bearer tokens (stored hashed, per tenant).
    #[command(subcommand)]
    Tokens(tenants::TokensCommand),
    /// Show or set a tenant's SCIM compatibility policy.
    #[command(subcommand)]
    Policy(tenants::PolicyCommand),
    /// Put newly accepted events into their tenants' transparency logs and sign the
    /// checkpoints that are due (`compact` and `demo` do this first, too).
    Integrate,
    /// Verify an export bundle (DIR) or a tenant's stored rows (--tenant) against its
    /// signed log, offline: exit 1 on any finding (modified, missing, inserted,
    /// reordered, truncated, history rewritten).
    Verify(trust::VerifyArgs),
    /// Write a tenant's events accepted in a time range, with its signed checkpoint and
    /// the log's tiles, to a directory that `auditlog verify DIR` checks offline.
    Export(trust::ExportArgs),
    /// Remove a tenant's compacted days before a date, after recording in its log which
    /// events went and under which policy (so `verify` tells them from missing ones).
    Expire(trust::ExpireArgs),
    /// Each tenant's retention (90 days to 10 years): show, set, apply.
    #[command(subcommand)]
    Retention(trust::RetentionCommand),
    /// Fold the ingest tier into tenant-partitioned files.
    Compact {
        /// Only fold days before this date (YYYY-MM-DD); default: every day.
        #[arg(long)]
        before: Option<NaiveDate>,
    },
    /// The event schemas: built-in and from --schemas DIR.
    #[command(subcommand)]
    Schemas(ops::SchemasCommand),
    /// What could not be accepted: list, show, and redrive once the cause is fixed.
    #[command(subcommand)]
    Quarantine(ops::QuarantineCommand),
    /// The SCIM outbox: its dead letters.
    #[command(subcommand)]
    Outbox(ops::OutboxCommand),
    /// Drive events through the embedded pipeline under random faults and crashes, then
    /// check every event is stored exactly once (ends with `lost N, doubled M`).
    Soak(soak::SoakArgs),
    /// One compaction worker step (JSON, as the Lambda gets it): the process
    /// `bench compaction` starts for each worker.
    #[command(hide = true)]
    CompactStep {
        #[arg(long, default_value_t = auditlog::CompactorConfig::default().unit_rows)]
        unit_rows: usize,
        step: String,
    },
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .context("invalid date");
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{s:?} is neither YYYY-MM-DD nor an RFC 3339 time"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // the soak injects failures on purpose: their error lines would drown its report
    let quiet = if matches!(cli.command, Command::Soak(_)) {
        "off"
    } else {
        "error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| quiet.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let schemas = cli.schemas.as_deref();
    match cli.command {
        Command::Demo(args) => pipeline::demo(&cli.data, schemas, args).await,
        Command::Ingest { file } => pipeline::ingest(&cli.data, schemas, &file).await,
        Command::Show {
            tenant,
            from,
            to,
            limit,
            json,
        } => {
            let from = from.as_deref().map(parse_time).transpose()?;
            let to = to.as_deref().map(parse_time).transpose()?;
            pipeline::show(&cli.data, &tenant, from, to, limit, json).await
        }
        Command::Compact { before } => pipeline::compact(&cli.data, before).await,
        Command::Expire(args) => trust::expire(&cli.data, args).await,
        Command::Retention(cmd) => trust::retention(&cli.data, cmd).await,
        Command::Export(args) => trust::export(&cli.data, args).await,
        Command::Integrate => trust::integrate(&cli.data)
            .await
            .map(|r| trust::print_integration(&r)),
        Command::Verify(args) => match trust::verify_tenant(&cli.data, args).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Soak(args) => soak::run(&cli.data, args).await,
        Command::CompactStep { unit_rows, step } => {
            bench_compaction::step(&cli.data, &step, unit_rows).await
        }
        Command::Serve(args) => serve::serve(&cli.data, schemas, args).await,
        Command::Schemas(cmd) => ops::schemas(&cli.data, schemas, cmd).await,
        Command::Quarantine(cmd) => ops::quarantine(&cli.data, schemas, cmd).await,
        Command::Outbox(cmd) => ops::outbox(&cli.data, cmd).await,
        Command::Query(args) => query_cmd::run(&cli.data, args).await,
        Command::Bench(cmd) => bench::run(&cli.data, cmd).await,
        Command::Tokens(cmd) => tenants::tokens(&cli.data, schemas, cmd).await,
        Command::Policy(cmd) => tenants::policy(&cli.data, cmd).await,
    }
}
