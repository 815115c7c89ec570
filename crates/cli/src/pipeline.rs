//! The commands, over the embedded adapters.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use adapters_local::{
    Delivery, DeliveryConfig, InProcessBus, LocalDirBlobStore, LocalQueue, SqliteDedupeStore,
};
use anyhow::{Context, Result, bail};
use auditlog::{
    AuditRecord, BatchStats, CompactionReport, Compactor, CompactorConfig, InboundMessage,
    Subscriber, SubscriberConfig, SystemClock, TenantReader,
};
use chrono::{DateTime, NaiveDate, Utc};
use envelope::pattern::EventPattern;
use envelope::{OutgoingEvent, Publisher, PublisherConfig, SchemaRegistry, TenantId};
use indicatif::{ProgressBar, ProgressStyle};

use crate::traffic::Traffic;

type EmbeddedSubscriber = Subscriber<Arc<SqliteDedupeStore>, Arc<LocalDirBlobStore>, SystemClock>;

pub(crate) struct Embedded {
    pub(crate) blobs: Arc<LocalDirBlobStore>,
    pub(crate) subscriber: Arc<EmbeddedSubscriber>,
    pub(crate) registry: Arc<SchemaRegistry>,
}

/// The built-in schemas, plus every `<event_type>.v<version>.json` in `dir`.
pub(crate) fn registry(dir: Option<&Path>) -> Result<SchemaRegistry> {
    let mut registry = SchemaRegistry::builtin()?;
    let Some(dir) = dir else {
        return Ok(registry);
    };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the schema directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        registry
            .add_file(&name, &text)
            .with_context(|| format!("in {}", dir.display()))?;
    }
    Ok(registry)
}

/// The embedded stores under `data` and the subscriber over them.
pub(crate) fn open(data: &Path, schemas: Option<&Path>) -> Result<Embedded> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let blobs = Arc::new(LocalDirBlobStore::open(data.join("blobs"))?);
    let dedupe = Arc::new(SqliteDedupeStore::open(&data.join("dedupe.sqlite"))?);
    let registry = Arc::new(registry(schemas)?);
    let subscriber = Arc::new(Subscriber::new(
        dedupe,
        blobs.clone(),
        SystemClock,
        registry.clone(),
        SubscriberConfig::default(),
    ));
    Ok(Embedded {
        blobs,
        subscriber,
        registry,
    })
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Unique events to generate.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    #[arg(long, default_value_t = 50)]
    tenants: usize,
    /// Zipf exponent of the tenant mix (0 = uniform).
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Share of events the producer sends twice (a retry: same event_id, new bus id).
    #[arg(long, default_value_t = 0.02)]
    duplicate_rate: f64,
    /// Share of messages that can never be accepted (other producers' bad events).
    #[arg(long, default_value_t = 0.005)]
    invalid_rate: f64,
    /// Approximate size of one event on the wire, in bytes.
    #[arg(long, default_value_t = 1000)]
    event_bytes: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start from an empty data directory.
    #[arg(long)]
    fresh: bool,
    /// Concurrent subscriber invocations (Lambda concurrency); default: one per core.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(2, |n| n.get()))]
    consumers: usize,
    /// Skip compaction at the end.
    #[arg(long)]
    no_compact: bool,
}

pub async fn demo(data: &Path, schemas: Option<&Path>, args: DemoArgs) -> Result<()> {
    if args.fresh && data.exists() {
        std::fs::remove_dir_all(data).with_context(|| format!("removing {}", data.display()))?;
    }
    let e = open(data, schemas)?;
    let queue = Arc::new(LocalQueue::default());
    let mut bus = InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
    // The audit rule: every event on the bus.
    bus.add_rule(
        EventPattern::parse(r#"{"account": [{"exists": true}]}"#)?,
        queue.clone(),
    );
    let publisher = Publisher::new(bus, (*e.registry).clone(), PublisherConfig::default());

    println!(
        "auditlog demo: {} events, {} tenants (zipf {}), {:.1}% producer retries, {:.1}% invalid, data in {}",
        args.events,
        args.tenants,
        args.zipf,
        args.duplicate_rate * 100.0,
        args.invalid_rate * 100.0,
        data.display()
    );
    let progress = ProgressBar::new(args.events as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if args.events < 50_000 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let queue = queue.clone();
        let done = done.clone();
        let events = args.events;
        let (dup, bad) = (args.duplicate_rate, args.invalid_rate);
        let mut traffic = Traffic::new(
            args.seed,
            args.tenants,
            args.zipf,
            Utc::now(),
            args.event_bytes,
        );
        traffic.expect(events);
        tokio::spawn(async move {
            let mut counts = ProducerCounts::default();
            let mut chunk: Vec<OutgoingEvent> = Vec::with_capacity(1000);
            let mut produced = 0;
            while produced < events {
                // keep the queue bounded, as a real queue's consumers would
                while queue.len() > 40_000 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                chunk.clear();
                while chunk.len() < 1000 && produced < events {
                    let ev = traffic.next_event();
                    produced += 1;
                    if traffic.unit() < bad {
                        queue.push(InboundMessage {
                            message_id: format!("bad-{produced}"),
                            body: traffic.invalid_body(&ev),
                        });
                        counts.invalid += 1;
                    }
                    if traffic.unit() < dup {
                        chunk.push(ev.clone());
                        counts.retries += 1;
                    }
                    chunk.push(ev);
                }
                let report = publisher.publish(&chunk).await?;
                counts.published += report.accepted.len();
                counts.requests += report.requests;
                if !report.all_accepted() {
                    bail!("{} events were refused by the bus", report.failed.len());
                }
            }
            done.store(true, Ordering::SeqCst);
            Ok(counts)
        })
    };
    let delivery = Delivery::new(queue.clone(), DeliveryConfig::default());
    let bar = progress.clone();
    let report = delivery
        .run(
            e.subscriber.clone(),
            args.consumers,
            done.clone(),
            Arc::new(move |out: &auditlog::BatchOutcome, n: usize| {
                bar.inc((n - out.failed_message_ids.len()) as u64)
            }),
        )
        .await;
    if report.dead_lettered > 0 {
        bail!(
            "{} messages could not be processed after repeated retries ({:?})",
            report.dead_lettered,
            report.dead_letter_reasons
        );
    }
    let (stats, batches) = (report.stats, report.batches);
    let counts = producer.await.context("producer task")??;
    let ingest_elapsed = started.elapsed();
    progress.finish_and_clear();

    let compaction = if args.no_compact {
        None
    } else {
        let t = Instant::now();
        crate::trust::print_integration(&crate::trust::integrate(data).await?);
        let r = Compactor::new(e.blobs.clone(), compactor_config(None))
            .run()
            .await?;
        if let Some(f) = r.failed_days.first() {
            bail!("compacting {} failed: {}", f.day, f.error);
        }
        Some((r, t.elapsed()))
    };

    print_summary(
        &counts,
        &stats,
        batches,
        ingest_elapsed,
        compaction.as_ref(),
    );
    // a taste of the result: the busiest tenant's latest records
    if let Ok(t) = TenantId::parse("tenant-0000") {
        println!("\nlatest records of {t} (auditlog show --tenant {t}):");
        // the last hour only: the busiest tenant can hold a quarter of a large run
        let from = Utc::now() - chrono::Duration::hours(1);
        let records = TenantReader::new(e.blobs.clone())
            .read(&t, Some(from), None)
            .await?;
        print_table(&records[records.len().saturating_sub(5)..])?;
        println!("({} records for {t} in the last hour)", records.len());
        demo_queries(data, &t).await?;
    }
    Ok(())
}

/// Two of the compliance queries of queries/ on what the demo wrote (the same SQL that
/// Athena runs once deployed).
async fn demo_queries(data: &Path, t: &TenantId) -> Result<()> {
    let engine = query::Engine::open(&data.join("blobs")).await?;
    let today = Utc::now().date_naive();
    let params = [
        ("tenant_id", t.to_string()),
        ("from", (today - chrono::Duration::days(7)).to_string()),
        ("to", (today + chrono::Duration::days(1)).to_string()),
    ];
    let values = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let args: Vec<String> = params.iter().map(|(k, v)| format!("-p {k}={v}")).collect();
    for name in ["privileged_actions", "failed_actions"] {
        let q = query::find(name).map_err(anyhow::Error::msg)?;
        let (_, rows) = query::to_rows(&engine.run(&q, &values).await?)?;
        println!(
            "\nquery {name}: {} rows for {t} in the last week (auditlog query {name} {})",
            rows.len(),
            args.join(" ")
        );
        for row in rows.iter().rev().take(3).rev() {
            println!("  {}", row[..row.len().min(8)].join("  "));
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct ProducerCounts {
    published: usize,
    requests: usize,
    retries: usize,
    invalid: usize,
}

fn print_summary(
    p: &ProducerCounts,
    s: &BatchStats,
    batches: usize,
    elapsed: Duration,
    compaction: Option<&(CompactionReport, Duration)>,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let per_k = |x: usize| x as f64 * 1000.0 / s.received.max(1) as f64;
    let puts = s.files + s.quarantined;
    let wcu = s.claims + s.completions;
    println!("\n== ingest");
    println!(
        "events published      {:>12}  in {} PutEvents requests ({} producer retries)",
        p.published, p.requests, p.retries
    );
    println!("invalid messages      {:>12}", p.invalid);
    println!(
        "messages received     {:>12}  in {batches} Lambda-sized batches",
        s.received
    );
    println!("unique written        {:>12}", s.written);
    println!("duplicates dropped    {:>12}", s.duplicates);
    println!("conflicts             {:>12}", s.conflicts);
    println!(
        "quarantined           {:>12}  (conflicts included)",
        s.quarantined
    );
    println!("retried               {:>12}", s.retried);
    println!(
        "ingest files          {:>12}  {:.1} MB",
        s.files,
        s.bytes as f64 / 1e6
    );
    println!(
        "elapsed               {:>12.2} s  {:.0} events/s",
        secs,
        s.received as f64 / secs
    );
    println!("\n== cost model (us-east-1 on-demand)");
    println!(
        "S3 PUTs / 1k events   {:>12.3}  ${:.4} per million events",
        per_k(puts),
        per_k(puts) * 1000.0 * 0.005 / 1000.0
    );
    println!(
        "dedupe WCU / 1k events{:>12.1}  {:.3} per unique event, ${:.3} per million events",
        per_k(wcu),
        wcu as f64 / s.written.max(1) as f64,
        per_k(wcu) * 1000.0 * 0.625 / 1e6
    );
    if let Some((r, t)) = compaction {
        println!("\n== compaction");
        println!(
            "tenant-day files      {:>12}  avg {:.2} MB, in {} fold units",
            r.totals.tenant_files_written,
            r.totals.bytes_written as f64 / r.totals.tenant_files_written.max(1) as f64 / 1e6,
            r.totals.units
        );
        println!("ingest files folded   {:>12}", r.totals.ingest_files_folded);
        println!(
            "rows                  {:>12}  ({} duplicates removed)",
            r.totals.rows_written, r.totals.duplicates_removed
        );
        println!("elapsed               {:>12.2} s", t.as_secs_f64());
    }
}

fn print_table(records: &[AuditRecord]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24}  {:<26}  {:<22}  {:<16}  {:<28}  {:<8}",
        "occurred_at", "event_type", "actor", "action", "target", "outcome"
    )?;
    for r in records {
        let target = format!(
            "{}:{}",
            r.target_type.as_deref().unwrap_or("-"),
            r.target_id.as_deref().unwrap_or("-")
        );
        writeln!(
            out,
            "{:<24}  {:<26}  {:<22}  {:<16}  {:<28}  {:<8}",
            r.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            r.event_type,
            format!("{}:{}", r.actor_type, r.actor_id),
            r.action,
            target,
            r.outcome
        )?;
    }
    Ok(())
}

fn record_json(r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "tenant_id": r.tenant_id, "event_id": r.event_id, "event_type": r.event_type,
        "schema_version": r.schema_version, "occurred_at": r.occurred_at, "ingested_at": r.ingested_at,
        "producer": r.producer, "source": r.source, "actor_type": r.actor_type, "actor_id": r.actor_id,
        "actor_name": r.actor_name, "action": r.action, "target_type": r.target_type,
        "target_id": r.target_id, "target_name": r.target_name, "outcome": r.outcome,
        "correlation_id": r.correlation_id, "request_id": r.request_id, "source_ip": r.source_ip,
        "user_agent": r.user_agent, "payload": serde_json::from_str::<serde_json::Value>(&r.payload).unwrap_or_default(),
        "payload_sha256": r.payload_sha256, "bus_event_id": r.bus_event_id, "account": r.account, "region": r.region,
    })
}

pub async fn ingest(data: &Path, schemas: Option<&Path>, file: &str) -> Result<()> {
    let e = open(data, schemas)?;
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {file}"))?,
        ))
    };
    let queue = Arc::new(LocalQueue::default());
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        queue.push(InboundMessage {
            message_id: format!("line-{}", n + 1),
            body: line,
        });
    }
    let started = Instant::now();
    // Retries with a short pause, a few times: what is still failing after that is
    // reported, not waited for (a claim held by a crashed run lapses with its lease).
    let delivery = Delivery::new(
        queue,
        DeliveryConfig {
            batching_window: Duration::ZERO,
            redelivery_delay: Duration::from_millis(200),
            max_receives: 5,
            ..DeliveryConfig::default()
        },
    );
    let report = delivery
        .run(
            e.subscriber.clone(),
            1,
            Arc::new(AtomicBool::new(true)),
            Arc::new(|_: &auditlog::BatchOutcome, _: usize| {}),
        )
        .await;
    let stats = report.stats;
    println!(
        "ingested {} messages in {} batches: {} written, {} duplicates, {} quarantined ({} conflicts), {} not processed, {} files, {:.2} s",
        stats.received,
        report.batches,
        stats.written,
        stats.duplicates,
        stats.quarantined,
        stats.conflicts,
        report.dead_lettered,
        stats.files,
        started.elapsed().as_secs_f64()
    );
    if stats.quarantined > 0 {
        println!(
            "quarantined messages and their reasons: {}",
            e.blobs.root().join("quarantine").display()
        );
    }
    if report.dead_lettered > 0 {
        let left = delivery.dead_letters().receive(usize::MAX, usize::MAX, 0);
        let path = data.join(format!(
            "ingest-left-{}.jsonl",
            Utc::now().format("%Y%m%dT%H%M%S")
        ));
        let mut text = String::new();
        let mut lines = Vec::with_capacity(left.len());
        for m in &left {
            text.push_str(&m.body);
            text.push('\n');
            lines.push(m.message_id.trim_start_matches("line-").to_owned());
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let reasons: Vec<String> = report
            .dead_letter_reasons
            .iter()
            .map(|(why, n)| format!("{n}: {why}"))
            .collect();
        bail!(
            "{} messages were not processed after {} attempts each ({}); input lines {}.\n\
             They are saved in {}. Once the cause is fixed (a claim held by an interrupted run \
             lapses after {} minutes), finish with:\n  auditlog --data {} ingest {}\n\
             (events already stored are recognised as duplicates)",
            left.len(),
            5,
            reasons.join(", "),
            lines.join(","),
            path.display(),
            e.subscriber.config().lease.as_secs() / 60,
            data.display(),
            path.display()
        );
    }
    Ok(())
}

pub async fn show(
    data: &Path,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<usize>,
    json: bool,
) -> Result<()> {
    let tenant = TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    if !data.join("blobs").exists() {
        bail!(
            "no audit data in {} (run `auditlog demo` or `auditlog ingest` first)",
            data.display()
        );
    }
    let blobs = LocalDirBlobStore::open(data.join("blobs"))?;
    let records = TenantReader::new(blobs).read(&tenant, from, to).await?;
    let shown = &records[records.len().saturating_sub(limit.unwrap_or(usize::MAX))..];
    if json {
        let mut out = std::io::stdout().lock();
        for r in shown {
            writeln!(out, "{}", record_json(r))?;
        }
    } else {
        print_table(shown)?;
        println!(
            "{} of {} records of tenant {tenant}",
            shown.len(),
            records.len()
        );
    }
    Ok(())
}

/// The one-process compaction's settings: the workers' bounds of the Lambda, as many
/// at once as there are cores; only what the tenant logs hold (integrated just before).
pub(crate) fn compactor_config(before: Option<NaiveDate>) -> CompactorConfig {
    CompactorConfig {
        before,
        integrated_only: true,
        concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
        ..CompactorConfig::default()
    }
}

pub async fn compact(data: &Path, before: Option<NaiveDate>) -> Result<()> {
    let blobs = LocalDirBlobStore::open(data.join("blobs"))?;
    crate::trust::print_integration(&crate::trust::integrate(data).await?);
    let started = Instant::now();
    let r = Compactor::new(blobs, compactor_config(before))
        .run()
        .await?;
    println!(
        "compacted {} days: {} ingest files ({} rows) folded by {} units into {} part files ({} replaced), {} rows, {} duplicates removed, {} conflicts quarantined, {:.1} MB written, {:.2} s",
        r.days,
        r.totals.ingest_files_folded,
        r.ingest_rows,
        r.totals.units,
        r.totals.tenant_files_written,
        r.totals.tenant_files_removed,
        r.totals.rows_written,
        r.totals.duplicates_removed,
        r.totals.conflicts_quarantined,
        r.totals.bytes_written as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    for d in &r.totals.damaged {
        println!(
            "damaged file moved aside: {} -> {} ({})",
            d.key, d.moved_to, d.reason
        );
    }
    if !r.failed_days.is_empty() {
        let days: Vec<String> = r
            .failed_days
            .iter()
            .map(|f| format!("{}: {}", f.day, f.error))
            .collect();
        bail!(
            "{} days could not be compacted (their events stay readable in the ingest tier; run `auditlog compact` again):\n  {}",
            r.failed_days.len(),
            days.join("\n  ")
        );
    }
    Ok(())
}
