//! `auditlog status` and `auditlog --stack S compact`: what an operator checks first
//! when something is wrong (queue depths and the oldest message's age, dead letters,
//! quarantine by reason, the ingest tier's backlog, the last compaction), and running
//! the deployed compaction with its result.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use auditlog::quarantine::{self, Selection};
use auditlog::{BlobStore, INGEST_PREFIX, ObjectKey};
use chrono::{DateTime, NaiveDate, Utc};

use crate::stack::{Stack, Target, outputs};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Quarantine counts over this many days.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Exit 1 when anything needs attention (for a cron job or a probe).
    #[arg(long)]
    check: bool,
}

/// The ingest tier: files not yet compacted, and the oldest day they hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub files: usize,
    pub bytes: u64,
    pub by_day: BTreeMap<NaiveDate, usize>,
}

pub async fn backlog<B: BlobStore>(blobs: &B) -> Result<Backlog> {
    let mut b = Backlog::default();
    for o in blobs.list(INGEST_PREFIX).await? {
        if let Ok(ObjectKey::Ingest { dt }) = ObjectKey::parse(&o.key) {
            b.files += 1;
            b.bytes += o.size;
            *b.by_day.entry(dt).or_insert(0) += 1;
        }
    }
    Ok(b)
}

/// Quarantined messages of the last `days` days, by reason.
pub async fn quarantined<B: BlobStore>(
    blobs: &B,
    days: u32,
    today: NaiveDate,
) -> Result<BTreeMap<String, usize>> {
    let selection = Selection {
        from: Some(today - chrono::Duration::days(i64::from(days.saturating_sub(1)))),
        to: Some(today),
        ..Selection::default()
    };
    let mut by_reason = BTreeMap::new();
    for e in quarantine::list(blobs, &selection).await? {
        *by_reason.entry(e.reason_code).or_insert(0) += 1;
    }
    Ok(by_reason)
}

/// One queue's approximate counts (SQS) and oldest message's age (CloudWatch).
#[derive(Debug, Default)]
struct QueueState {
    visible: u64,
    in_flight: u64,
    delayed: u64,
    oldest_secs: Option<f64>,
    /// Why the age is unknown when CloudWatch could not say (no permission, a service
    /// that does not speak its protocol): the depths are still worth showing.
    oldest_unknown: Option<String>,
}

async fn queue_state(stack: &Stack, url: &str) -> Result<QueueState> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(&stack.aws);
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "queue {url}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )
        })?;
    let attrs = out.attributes();
    let n = |a: A| {
        attrs
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let name = url.rsplit('/').next().unwrap_or(url);
    let (oldest_secs, oldest_unknown) = match oldest_age(stack, name).await {
        Ok(age) => (age, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    Ok(QueueState {
        visible: n(A::ApproximateNumberOfMessages),
        in_flight: n(A::ApproximateNumberOfMessagesNotVisible),
        delayed: n(A::ApproximateNumberOfMessagesDelayed),
        oldest_secs,
        oldest_unknown,
    })
}

/// SQS publishes no oldest-message age of its own: CloudWatch's
/// `ApproximateAgeOfOldestMessage`, the newest datapoint of the last 15 minutes.
async fn oldest_age(stack: &Stack, queue: &str) -> Result<Option<f64>> {
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let now = std::time::SystemTime::now();
    let out = aws_sdk_cloudwatch::Client::new(&stack.aws)
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(Dimension::builder().name("QueueName").value(queue).build())
        .start_time((now - Duration::from_secs(900)).into())
        .end_time(now.into())
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "CloudWatch, queue {queue}: {}",
                aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(newest(out.datapoints().iter().filter_map(|d| {
        Some((d.timestamp()?.secs(), d.maximum()?))
    })))
}

/// The newest datapoint's value: CloudWatch returns them in no particular order.
fn newest(points: impl Iterator<Item = (i64, f64)>) -> Option<f64> {
    points.max_by_key(|(t, _)| *t).map(|(_, v)| v)
}

/// The newest compaction execution: its state, times, and result.
#[derive(Debug)]
struct LastCompaction {
    name: String,
    status: String,
    started: Option<DateTime<Utc>>,
    stopped: Option<DateTime<Utc>>,
    result: String,
}

fn time(t: Option<&aws_sdk_sfn::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn sfn_error<E: std::error::Error + 'static>(what: &str, e: E) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", aws_sdk_sfn::error::DisplayErrorContext(e))
}

async fn last_compaction(stack: &Stack) -> Result<Option<LastCompaction>> {
    let sfn = aws_sdk_sfn::Client::new(&stack.aws);
    let list = sfn
        .list_executions()
        .state_machine_arn(stack.output(outputs::COMPACTION)?)
        .max_results(5)
        .send()
        .await
        .map_err(|e| sfn_error("listing the compaction's executions", e))?;
    let Some(newest) = list
        .executions()
        .iter()
        .max_by_key(|e| e.start_date().secs())
    else {
        return Ok(None);
    };
    Ok(Some(
        describe_execution(&sfn, newest.execution_arn()).await?,
    ))
}

async fn describe_execution(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<LastCompaction> {
    let d = sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| sfn_error("describing a compaction", e))?;
    let status = d.status().as_str().to_owned();
    let result = match status.as_str() {
        "SUCCEEDED" => d.output().map_or_else(|| "no output".to_owned(), result_of),
        "RUNNING" => "running".to_owned(),
        _ => format!(
            "{}: {}",
            d.error().unwrap_or("no error named"),
            d.cause().unwrap_or("no cause given")
        ),
    };
    Ok(LastCompaction {
        name: d.name().unwrap_or("?").to_owned(),
        status,
        started: time(Some(d.start_date())),
        stopped: time(d.stop_date()),
        result,
    })
}

/// The compaction's output (the summary step's Lambda answer, its totals added up over
/// the days) in words.
pub fn result_of(output: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(output) else {
        return format!("output is not JSON: {output}");
    };
    let t = v
        .pointer("/Payload/totals")
        .unwrap_or(&serde_json::Value::Null);
    let n = |k: &str| t.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    if t.is_null() {
        return format!("no totals in the output: {output}");
    }
    format!(
        "{} days compacted: {} rows written in {} parts from {} ingest files, {} duplicates removed, {} conflicts quarantined, {} damaged files set aside",
        n("days"),
        n("rows_written"),
        n("tenant_files_written"),
        n("ingest_files_folded"),
        n("duplicates_removed"),
        n("conflicts_quarantined"),
        n("damaged")
    )
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

pub async fn status(target: &Target<'_>, args: StatusArgs) -> Result<()> {
    let now = Utc::now();
    let today = now.date_naive();
    let mut out = String::new();
    let mut attention: Vec<String> = Vec::new();
    let (backlog, quarantine) = match target {
        Target::Embedded { data, .. } => {
            writeln!(out, "embedded default in {}", data.display())?;
            let blobs = crate::ops::blobs(data)?;
            (
                backlog(&blobs).await?,
                quarantined(&blobs, args.days, today).await?,
            )
        }
        Target::Stack { stack, .. } => {
            writeln!(
                out,
                "stack {} ({})",
                stack.name,
                stack.aws.region().map_or("no region", |r| r.as_ref())
            )?;
            writeln!(out, "queues")?;
            for (name, key) in crate::ops::queue_outputs() {
                let q = queue_state(stack, stack.output(key)?).await?;
                let oldest = match (&q.oldest_secs, &q.oldest_unknown) {
                    (Some(s), _) => format!("oldest {}", age(*s as i64)),
                    (None, Some(why)) => format!("oldest: unknown ({why})"),
                    (None, None) => "oldest: no CloudWatch datapoint in 15 min".to_owned(),
                };
                writeln!(
                    out,
                    "  {name:<18} {:>9} messages, {} in flight, {} delayed; {oldest}",
                    q.visible, q.in_flight, q.delayed
                )?;
                if key == outputs::AUDIT_QUEUE {
                    if q.oldest_secs.is_some_and(|s| s > 300.0) {
                        attention.push(format!(
                            "the audit queue's oldest message is {} old: the subscriber is behind or failing (its errors and throttles alarms)",
                            age(q.oldest_secs.unwrap_or(0.0) as i64)
                        ));
                    }
                } else if q.visible + q.in_flight > 0 {
                    let which = if key == outputs::AUDIT_DLQ {
                        "audit"
                    } else {
                        "rule"
                    };
                    attention.push(format!(
                        "the {which} dead-letter queue holds {} messages: `auditlog --stack {} dlq redrive --queue {which}` once the cause is fixed",
                        q.visible + q.in_flight,
                        stack.name
                    ));
                }
            }
            let blobs = stack.blobs()?;
            (
                backlog(&blobs).await?,
                quarantined(&blobs, args.days, today).await?,
            )
        }
    };
    let total: usize = quarantine.values().sum();
    let reasons: Vec<String> = quarantine.iter().map(|(r, n)| format!("{r} {n}")).collect();
    writeln!(
        out,
        "quarantine, last {} days: {total}{}",
        args.days,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    )?;
    if total > 0 {
        attention.push(format!(
            "{total} messages quarantined in the last {} days: `auditlog quarantine list`, then `quarantine redrive` once fixed",
            args.days
        ));
    }
    match backlog.by_day.keys().next() {
        None => writeln!(out, "ingest tier: empty (everything is compacted)")?,
        Some(oldest) => {
            writeln!(
                out,
                "ingest tier: {} files ({:.1} MB) over {} days, oldest day {oldest}",
                backlog.files,
                backlog.bytes as f64 / 1e6,
                backlog.by_day.len()
            )?;
            // today's and yesterday's files wait for the day to close and be integrated
            if *oldest < today - chrono::Duration::days(1) {
                attention.push(format!(
                    "the ingest tier still holds {oldest}, a closed day: compaction is behind or failing"
                ));
            }
        }
    }
    if let Target::Stack { stack, .. } = target {
        match last_compaction(stack).await? {
            None => {
                writeln!(out, "last compaction: none yet")?;
                attention.push("the compaction has never run (it runs hourly)".to_owned());
            }
            Some(c) => {
                let when = c.started.map_or_else(
                    || "?".to_owned(),
                    |s| format!("{} ago", age((now - s).num_seconds())),
                );
                let took = c
                    .started
                    .zip(c.stopped)
                    .map(|(a, b)| format!(", took {}", age((b - a).num_seconds())))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "last compaction: {} {} (started {when}{took}): {}",
                    c.status, c.name, c.result
                )?;
                if c.status != "SUCCEEDED" && c.status != "RUNNING" {
                    attention.push(format!("the last compaction {}: {}", c.status, c.result));
                }
                if c.started
                    .is_some_and(|s| now - s > chrono::Duration::hours(3))
                {
                    attention.push("no compaction started in 3 hours (it runs hourly)".to_owned());
                }
            }
        }
    }
    if attention.is_empty() {
        writeln!(out, "nothing needs attention")?;
    } else {
        writeln!(out, "needs attention:")?;
        for a in &attention {
            writeln!(out, "  - {a}")?;
        }
    }
    print!("{out}");
    if args.check && !attention.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct CompactArgs {
    /// Only fold days before this date (YYYY-MM-DD; embedded default only: the deployed
    /// compaction folds every closed day).
    #[arg(long)]
    pub before: Option<NaiveDate>,
    /// Start the deployed compaction and return (the execution ARN on stdout).
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this many seconds (the compaction goes on).
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
    /// Seconds between progress checks.
    #[arg(long, default_value_t = 5, hide = true)]
    pub poll_secs: u64,
}

/// Starts the stack's compaction, or joins the one running (two at once would race for
/// the same days), and waits for its result.
pub async fn compact(stack: &Stack, args: CompactArgs) -> Result<()> {
    if args.before.is_some() {
        bail!("--before: the deployed compaction folds every closed day; drop --before");
    }
    let sfn = aws_sdk_sfn::Client::new(&stack.aws);
    let machine = stack.output(outputs::COMPACTION)?;
    let running = sfn
        .list_executions()
        .state_machine_arn(machine)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
        .max_results(1)
        .send()
        .await
        .map_err(|e| sfn_error("listing the compaction's executions", e))?;
    let arn = match running.executions().first() {
        Some(r) => {
            eprintln!(
                "a compaction is already running ({}): waiting for it instead of starting another",
                r.name()
            );
            r.execution_arn().to_owned()
        }
        None => {
            let name = format!("cli-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ")).replace('.', "-");
            sfn.start_execution()
                .state_machine_arn(machine)
                .name(&name)
                .input("{}")
                .send()
                .await
                .map_err(|e| sfn_error("starting the compaction", e))?
                .execution_arn()
                .to_owned()
        }
    };
    if args.no_wait {
        println!("{arn}");
        return Ok(());
    }
    let started = std::time::Instant::now();
    loop {
        let c = describe_execution(&sfn, &arn).await?;
        match c.status.as_str() {
            "RUNNING" => {
                if started.elapsed() > Duration::from_secs(args.timeout_secs) {
                    bail!(
                        "the compaction {} is still running after {} s; it goes on (`auditlog --stack {} status` shows its result)",
                        c.name,
                        args.timeout_secs,
                        stack.name
                    );
                }
                eprintln!(
                    "compaction {} running for {}...",
                    c.name,
                    age(started.elapsed().as_secs() as i64)
                );
                tokio::time::sleep(Duration::from_secs(args.poll_secs.max(1))).await;
            }
            "SUCCEEDED" => {
                println!("compaction {} succeeded: {}", c.name, c.result);
                return Ok(());
            }
            other => {
                return Err(anyhow::anyhow!("compaction {} {other}: {}", c.name, c.result))
                    .context("the days that failed stay in the ingest tier, readable; the next run tries them again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_messages_age_is_the_newest_datapoints() {
        assert_eq!(
            newest([(100, 5.0), (160, 42.0), (130, 900.0)].into_iter()),
            Some(42.0)
        );
        assert_eq!(newest(std::iter::empty()), None);
    }

    #[test]
    fn a_compactions_output_reads_as_its_totals() {
        let out = r#"{"ExecutedVersion": "$LATEST", "Payload": {"totals": {"days": 2, "rows_written": 120, "tenant_files_written": 4, "ingest_files_folded": 3, "damaged": 1}}, "StatusCode": 200}"#;
        let r = result_of(out);
        assert!(
            r.starts_with("2 days compacted: 120 rows written in 4 parts from 3 ingest files"),
            "{r}"
        );
        assert!(r.contains("1 damaged"), "{r}");
        assert!(result_of("{}").starts_with("no totals"));
        assert!(result_of("nope").starts_with("output is not JSON"));
    }
}
