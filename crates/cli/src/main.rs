//! `auditlog`: the audit pipeline on one laptop, no AWS (the same subscriber and
//! compactor code as the Lambda functions, over SQLite, a local directory and an
//! in-process bus), and with `--stack NAME` the same operator commands against a
//! deployed stack.

mod athena;
mod bench;
mod bench_compaction;
mod bench_history;
mod bench_verify;
mod health;
mod idp;
mod ops;
mod pipeline;
mod query_cmd;
mod serve;
mod soak;
mod stack;
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
    about = "Audit-log pipeline on the embedded default (no AWS), and its operator commands against a deployed stack (--stack)"
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
    /// Operate a deployed stack instead of the embedded default: everything is found
    /// from this CloudFormation stack's outputs (credentials and region from the
    /// environment, profile or SSO, as for the AWS CLI).
    #[arg(long, global = true, env = "AUDITLOG_STACK")]
    stack: Option<String>,
    /// Like --stack, from a file of the stack's outputs (a JSON object of output names
    /// to values, or `aws cloudformation describe-stacks` output), for a deployment
    /// without CloudFormation.
    #[arg(long, global = true, env = "AUDITLOG_STACK_OUTPUTS")]
    stack_outputs: Option<PathBuf>,
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
    /// checkpoints that are due (`compact` and `demo` do this first, too); on a stack,
    /// a run of the integrator function now.
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
    /// Fold the ingest tier into tenant-partitioned files; on a stack, run the deployed
    /// compaction (or join the running one) and report what it did.
    Compact(health::CompactArgs),
    /// The pipeline's health: queue depths and oldest message, dead letters, quarantine
    /// by reason, the ingest backlog, the last compaction; what needs attention.
    Status(health::StatusArgs),
    /// A stack's dead-letter queues: depths, and redrive onto the audit queue.
    #[command(subcommand)]
    Dlq(ops::DlqCommand),
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
    let stack = stack::Stack::open(cli.stack.as_deref(), cli.stack_outputs.as_deref()).await?;
    let target = match &stack {
        Some(stack) => stack::Target::Stack { stack, schemas },
        None => stack::Target::Embedded {
            data: &cli.data,
            schemas,
        },
    };
    // the operator commands work on either target
    match cli.command {
        Command::Tokens(cmd) => return tenants::tokens(&target, cmd).await,
        Command::Policy(cmd) => return tenants::policy(&target, cmd).await,
        Command::Quarantine(cmd) => return ops::quarantine(&target, cmd).await,
        Command::Dlq(cmd) => return ops::dlq(&target, cmd).await,
        Command::Status(args) => return health::status(&target, args).await,
        Command::Retention(cmd) => return trust::retention(&target, cmd).await,
        Command::Query(args) => return query_cmd::run(&target, args).await,
        Command::Compact(args) => {
            return match &stack {
                Some(stack) => health::compact(stack, args).await,
                None if args.no_wait => Err(stack::only_stack(
                    "compact --no-wait",
                    "compaction runs in this process",
                )),
                None => pipeline::compact(&cli.data, args.before).await,
            };
        }
        Command::Integrate => {
            let report = match &stack {
                // the integrator is the logs' one writer: a run now, between its minutes
                Some(stack) => {
                    stack
                        .invoke(
                            stack::outputs::INTEGRATOR_FUNCTION,
                            "integrator",
                            &serde_json::json!({"task": "integrate"}),
                        )
                        .await?
                }
                None => trust::integrate(&cli.data).await?,
            };
            trust::print_integration(&report);
            return Ok(());
        }
        Command::Verify(args) => {
            let args = match &stack {
                Some(stack) => trust::from_stack(stack, args)?,
                None => args,
            };
            return match trust::verify_tenant(&cli.data, args).await {
                Ok(true) => Ok(()),
                Ok(false) => std::process::exit(1),
                Err(e) => Err(e),
            };
        }
        command if stack.is_some() => return Err(embedded_only(&command)),
        command => embedded(&cli.data, schemas, command).await,
    }
}

/// What a command that reads or writes the data directory says under --stack.
fn embedded_only(command: &Command) -> anyhow::Error {
    let (name, instead) = match command {
        Command::Demo(_) | Command::Soak(_) => (
            "demo",
            "producers put events on the stack's bus (EventBusName)",
        ),
        Command::Ingest { .. } => (
            "ingest",
            "put the events on the stack's bus (EventBusName), e.g. `aws events put-events`",
        ),
        Command::Show { .. } => (
            "show",
            "a tenant's history is the audit API's (AuditApiEndpoint) or a query: `auditlog --stack S query who_did_what`",
        ),
        Command::Serve(_) => (
            "serve",
            "the SCIM and audit APIs are the stack's Lambdas (ScimEndpoint, AuditApiEndpoint)",
        ),
        Command::Export(_) => (
            "export",
            "a customer exports through the audit API (POST /v1/exports, format bundle)",
        ),
        Command::Expire(_) => (
            "expire",
            "the integrator applies each tenant's retention daily (`auditlog --stack S retention set|apply`)",
        ),
        Command::Schemas(_) => (
            "schemas",
            "check a schema locally (`auditlog schemas check FILE`), then copy it to s3://<AuditBucketName>/schemas/",
        ),
        Command::Outbox(_) => (
            "outbox",
            "the outbox relay's dead letters are in its logs and the OutboxDeadLetterAlarm",
        ),
        Command::Bench(_) | Command::CompactStep { .. } => {
            ("bench", "docs/perf.md has the deployed figures")
        }
        _ => ("this command", "see `auditlog --help`"),
    };
    stack::only_embedded(name, instead)
}

async fn embedded(
    data: &std::path::Path,
    schemas: Option<&std::path::Path>,
    command: Command,
) -> Result<()> {
    match command {
        Command::Demo(args) => pipeline::demo(data, schemas, args).await,
        Command::Ingest { file } => pipeline::ingest(data, schemas, &file).await,
        Command::Show {
            tenant,
            from,
            to,
            limit,
            json,
        } => {
            let from = from.as_deref().map(parse_time).transpose()?;
            let to = to.as_deref().map(parse_time).transpose()?;
            pipeline::show(data, &tenant, from, to, limit, json).await
        }
        Command::Expire(args) => trust::expire(data, args).await,
        Command::Export(args) => trust::export(data, args).await,
        Command::Soak(args) => soak::run(data, args).await,
        Command::CompactStep { unit_rows, step } => {
            bench_compaction::step(data, &step, unit_rows).await
        }
        Command::Serve(args) => serve::serve(data, schemas, args).await,
        Command::Schemas(cmd) => ops::schemas(data, schemas, cmd).await,
        Command::Outbox(cmd) => ops::outbox(data, cmd).await,
        Command::Bench(cmd) => bench::run(data, cmd).await,
        Command::Tokens(_)
        | Command::Policy(_)
        | Command::Quarantine(_)
        | Command::Dlq(_)
        | Command::Status(_)
        | Command::Query(_)
        | Command::Compact(_)
        | Command::Retention(_)
        | Command::Integrate
        | Command::Verify(_) => anyhow::bail!("an operator command is dispatched before this"),
    }
}
