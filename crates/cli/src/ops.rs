//! Operator commands: `schemas list|check` (embedded), `quarantine list|show|redrive`
//! (either target: on a stack the redrive is the deployed redrive function's), and
//! `dlq list|redrive` (a stack's dead-letter queues, back onto the audit queue).

use std::io::Write;
use std::path::{Path, PathBuf};

use adapters_local::LocalDirBlobStore;
use anyhow::{Context, Result, bail};
use auditlog::quarantine::{self, Selection};
use auditlog::{BlobStore, ObjectKey, QUARANTINE_PREFIX, decode_parquet};
use chrono::NaiveDate;
use envelope::parse_schema_file_name;

use crate::pipeline::{open, registry};
use crate::stack::{Target, outputs};

#[derive(clap::Subcommand, Debug)]
pub enum SchemasCommand {
    /// Every event type and version the subscriber accepts, and where its schema is from.
    List,
    /// Compiles a schema file; for a new version of a type, says whether it still accepts
    /// the stored events of the previous version, and which quarantined events it would
    /// now accept.
    Check { file: PathBuf },
}

#[derive(clap::Args, Debug, Clone)]
pub struct SelectionArgs {
    /// Only this reason (as in the key: unknown_schema, schema_violation, conflict...).
    #[arg(long)]
    reason: Option<String>,
    /// First quarantine day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last quarantine day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: Option<NaiveDate>,
}

impl SelectionArgs {
    fn selection(&self) -> Selection {
        Selection {
            reason: self.reason.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum QuarantineCommand {
    /// The quarantined messages, with counts by reason.
    List {
        #[command(flatten)]
        select: SelectionArgs,
        /// One JSON object per record instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One quarantined message: its reason and raw body.
    Show { key: String },
    /// Submits the selected messages through the subscriber again: what is accepted (or
    /// already stored) leaves quarantine, what still fails stays with its current reason.
    Redrive {
        #[command(flatten)]
        select: SelectionArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum OutboxCommand {
    /// SCIM changes whose audit event can never be published (it fails its own schema:
    /// a producer bug), set aside with the reason so the rest of the outbox flows on.
    DeadLetters,
}

pub async fn outbox(data: &Path, cmd: OutboxCommand) -> Result<()> {
    let OutboxCommand::DeadLetters = cmd;
    let path = data.join("scim.sqlite");
    if !path.exists() {
        bail!(
            "no SCIM store in {} (run `auditlog serve` first)",
            data.display()
        );
    }
    let store = adapters_local::SqliteScimStore::open(&path)?;
    let dead = scim::ScimStore::outbox_dead_letters(&store, usize::MAX).await?;
    let mut out = std::io::stdout().lock();
    for d in &dead {
        writeln!(
            out,
            "{}  {:<14} {:<28} {}  {}",
            d.dead_lettered_at.format("%Y-%m-%dT%H:%M:%SZ"),
            d.entry.tenant_id,
            d.entry.event_type,
            d.entry.event_id,
            d.reason
        )?;
    }
    writeln!(out, "{} dead-lettered outbox events", dead.len())?;
    Ok(())
}

pub(crate) fn blobs(data: &Path) -> Result<LocalDirBlobStore> {
    if !data.join("blobs").exists() {
        bail!(
            "no audit data in {} (run `auditlog demo` or `auditlog ingest` first)",
            data.display()
        );
    }
    Ok(LocalDirBlobStore::open(data.join("blobs"))?)
}

pub async fn schemas(data: &Path, dir: Option<&Path>, cmd: SchemasCommand) -> Result<()> {
    match cmd {
        SchemasCommand::List => {
            let r = registry(dir)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<36} {:>7}  from", "event type", "version")?;
            for (t, v) in r.entries() {
                writeln!(out, "{t:<36} {v:>7}  {}", r.origin(t, v).unwrap_or("?"))?;
            }
            writeln!(
                out,
                "(app.<domain>.<verb> types without a schema of their own use app.generic)"
            )?;
            Ok(())
        }
        SchemasCommand::Check { file } => check(data, dir, &file).await,
    }
}

async fn check(data: &Path, dir: Option<&Path>, file: &Path) -> Result<()> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .context("a schema file name")?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (event_type, version) = parse_schema_file_name(name)
        .with_context(|| format!("{name}: a schema file is named <event_type>.v<version>.json"))?;
    let before = registry(dir)?;
    let mut after = before.clone();
    after.add_file(name, &text)?;
    println!("{name}: compiles; {event_type} v{version}");
    let Ok(blobs) = blobs(data) else {
        println!(
            "no audit data in {}: nothing stored to check against",
            data.display()
        );
        return Ok(());
    };
    // the previous version's stored events, against the new schema
    let mut incompatible = 0;
    if version > 1 && before.knows(&event_type, version - 1) {
        let (mut checked, mut examples) = (0usize, Vec::new());
        for o in blobs.list("").await? {
            let tenant = match ObjectKey::parse(&o.key) {
                Ok(ObjectKey::Tenant { partition }) => Some(partition.tenant),
                Ok(ObjectKey::Ingest { .. }) => None,
                Err(_) => continue,
            };
            for r in decode_parquet(blobs.get(&o.key).await?, tenant.as_ref())? {
                if r.event_type != event_type || r.schema_version != (version - 1) as i32 {
                    continue;
                }
                checked += 1;
                let payload: serde_json::Value = serde_json::from_str(&r.payload)?;
                if let Err(e) = after.validate(&event_type, version, &payload) {
                    incompatible += 1;
                    if examples.len() < 3 {
                        examples.push(format!("{} ({}): {e}", r.event_id, r.tenant_id));
                    }
                }
            }
        }
        if checked == 0 {
            println!(
                "no stored {event_type} v{} events to check against",
                version - 1
            );
        } else if incompatible == 0 {
            println!(
                "accepts all {checked} stored {event_type} v{} events: backward compatible",
                version - 1
            );
        } else {
            println!(
                "rejects {incompatible} of {checked} stored {event_type} v{} events, e.g.:",
                version - 1
            );
            for e in examples {
                println!("  {e}");
            }
        }
    }
    // quarantined events of this type and version that it would now accept
    let mut would_accept = 0;
    for e in quarantine::list(&blobs, &Selection::default()).await? {
        if e.reason_code != "unknown_schema" && e.reason_code != "schema_violation" {
            continue;
        }
        let record = quarantine::show(&blobs, &e.key).await?;
        if let Ok(v) = envelope::decode_bus_event(&record.body, &after, usize::MAX)
            && v.metadata.event_type == event_type
            && v.metadata.schema_version == version
        {
            would_accept += 1;
        }
    }
    if would_accept > 0 {
        println!(
            "{would_accept} quarantined events would now be accepted: add the file to the schema directory, then `auditlog quarantine redrive --reason unknown_schema`"
        );
    }
    if incompatible > 0 {
        bail!("{name} is not backward compatible with v{}", version - 1);
    }
    Ok(())
}

pub async fn quarantine(target: &Target<'_>, cmd: QuarantineCommand) -> Result<()> {
    match (cmd, target) {
        (QuarantineCommand::Redrive { select }, Target::Embedded { data, schemas }) => {
            let e = open(data, *schemas)?;
            let r = quarantine::redrive(&e.subscriber, e.blobs.as_ref(), &select.selection(), 2000)
                .await?;
            print_redrive(&r)
        }
        (QuarantineCommand::Redrive { select }, Target::Stack { stack, .. }) => {
            // the deployed subscriber, with the schemas and settings it runs with
            let request = serde_json::json!({
                "source": "quarantine",
                "reason": select.reason,
                "from": select.from,
                "to": select.to,
            });
            eprintln!("invoking the stack's redrive function (up to 15 minutes)...");
            let r: quarantine::RedriveReport = stack
                .invoke(outputs::REDRIVE_FUNCTION, "redrive function", &request)
                .await?;
            print_redrive(&r)
        }
        (cmd, Target::Embedded { data, .. }) => list_or_show(&blobs(data)?, cmd).await,
        (cmd, Target::Stack { stack, .. }) => list_or_show(&stack.blobs()?, cmd).await,
    }
}

async fn list_or_show<B: BlobStore>(blobs: &B, cmd: QuarantineCommand) -> Result<()> {
    match cmd {
        QuarantineCommand::List { select, json } => {
            let entries = quarantine::list(blobs, &select.selection()).await?;
            let mut out = std::io::stdout().lock();
            let mut by_reason = std::collections::BTreeMap::<String, usize>::new();
            for e in &entries {
                *by_reason.entry(e.reason_code.clone()).or_insert(0) += 1;
                let r = quarantine::show(blobs, &e.key).await?;
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&serde_json::json!({
                            "key": e.key, "day": e.day, "reason_code": r.reason_code,
                            "reason": r.reason, "tenant_id": r.tenant_id, "event_id": r.event_id,
                        }))?
                    )?;
                } else {
                    let reason: String = r.reason.chars().take(70).collect();
                    writeln!(
                        out,
                        "{}  {:<18} {:<14} {}  {reason}",
                        e.day,
                        e.reason_code,
                        r.tenant_id.as_deref().unwrap_or("-"),
                        e.key
                    )?;
                }
            }
            if !json {
                let counts: Vec<String> =
                    by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
                writeln!(
                    out,
                    "{} quarantined ({})",
                    entries.len(),
                    if counts.is_empty() {
                        "none".to_owned()
                    } else {
                        counts.join(", ")
                    }
                )?;
            }
            Ok(())
        }
        QuarantineCommand::Show { key } => {
            let key = key.trim_start_matches("blobs/");
            let key = if key.starts_with(QUARANTINE_PREFIX) {
                key.to_owned()
            } else {
                format!("{QUARANTINE_PREFIX}{key}")
            };
            let r = quarantine::show(blobs, &key).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        QuarantineCommand::Redrive { .. } => bail!("a redrive is not a listing"),
    }
}

fn print_redrive(r: &quarantine::RedriveReport) -> Result<()> {
    let still: Vec<String> = r
        .still_quarantined
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "redrove {} quarantined messages: {} accepted, {} already stored, {} still quarantined{}, {} left for a later redrive; {} records removed",
        r.selected,
        r.accepted,
        r.duplicates,
        r.still_quarantined.values().sum::<usize>(),
        if still.is_empty() {
            String::new()
        } else {
            format!(" ({})", still.join(", "))
        },
        r.retry_later,
        r.removed
    );
    if r.retry_later > 0 {
        bail!(
            "{} messages failed for a transient reason and stay quarantined; run the redrive again",
            r.retry_later
        );
    }
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// The audit queue's and the dead-letter queues' depths.
    List,
    /// Moves a dead-letter queue's messages back onto the audit queue (the subscriber
    /// drops what it already stored), with the depths before and after.
    Redrive {
        /// `audit` (messages the subscriber failed on maxReceiveCount times) or `rule`
        /// (events EventBridge could not deliver to the queue).
        #[arg(long, value_enum)]
        queue: DeadLetterQueue,
        /// Move at most this many.
        #[arg(long, default_value_t = 100_000)]
        max: usize,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterQueue {
    Audit,
    Rule,
}

impl DeadLetterQueue {
    fn output(self) -> &'static str {
        match self {
            DeadLetterQueue::Audit => outputs::AUDIT_DLQ,
            DeadLetterQueue::Rule => outputs::RULE_DLQ,
        }
    }
}

pub async fn dlq(target: &Target<'_>, cmd: DlqCommand) -> Result<()> {
    let Target::Stack { stack, .. } = target else {
        return Err(crate::stack::only_stack(
            "dlq",
            "no message leaves the local queue for a dead-letter queue: what the subscriber cannot take is in quarantine (`auditlog quarantine list`)",
        ));
    };
    let mover = adapters_aws::SqsMover::new(aws_sdk_sqs::Client::new(&stack.aws));
    match cmd {
        DlqCommand::List => {
            for (name, key) in queue_outputs() {
                let depth = mover.depth(stack.output(key)?).await?;
                println!("{name:<18} {depth:>9} messages");
            }
            Ok(())
        }
        DlqCommand::Redrive { queue, max } => {
            let from = stack.output(queue.output())?;
            let to = stack.output(outputs::AUDIT_QUEUE)?;
            let r = mover.move_messages(from, to, max).await?;
            println!(
                "moved {} messages from the {} dead-letter queue to the audit queue ({} left to move again); dead-letter queue {} -> {}, audit queue {} -> {}",
                r.moved,
                if queue == DeadLetterQueue::Audit {
                    "audit"
                } else {
                    "rule"
                },
                r.left,
                r.from_before,
                r.from_after,
                r.to_before,
                r.to_after
            );
            if r.left > 0 {
                bail!(
                    "{} messages were sent but not deleted from the dead-letter queue: run the redrive again (the subscriber drops duplicates)",
                    r.left
                );
            }
            Ok(())
        }
    }
}

/// The stack's queues, as `status` and `dlq list` name them.
pub fn queue_outputs() -> [(&'static str, &'static str); 3] {
    [
        ("audit queue", outputs::AUDIT_QUEUE),
        ("audit dead letters", outputs::AUDIT_DLQ),
        ("rule dead letters", outputs::RULE_DLQ),
    ]
}
