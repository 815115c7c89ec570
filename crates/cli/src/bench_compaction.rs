//! `auditlog bench compaction`: the scale simulation of compaction. It generates one
//! day of N events over T tenants (Zipf mix, producer retries) as the ingest files a
//! busy subscriber writes (300 to 3,700 rows each), then compacts the day with the
//! bounded workers the Lambda runs, each worker in a process of its own, as each step is
//! an invocation of its own on AWS. Per kind of worker it prints how many ran and their
//! median and largest rows, time and peak memory (the process's VmHWM), and for the day
//! the object-store requests, scaled to a 60-million-event day with its cost.
//!
//! `compact-step` (hidden) is the worker process: one step, JSON in and out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use adapters_local::LocalDirBlobStore;
use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use auditlog::compaction::worker::{Handler, Step};
use auditlog::{
    AuditRecord, BlobError, BlobStore, CompactorConfig, ObjectInfo, Tier, encode_parquet,
    ingest_object_key,
};
use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use envelope::{BusEvent, SchemaRegistry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::traffic::{Rng, Traffic};

#[derive(clap::Args, Debug)]
pub struct CompactionBenchArgs {
    /// Unique events in the day.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    #[arg(long, default_value_t = 2000)]
    tenants: usize,
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Approximate size of one event on the wire, in bytes.
    #[arg(long, default_value_t = 1000)]
    event_bytes: usize,
    /// Share of events delivered twice (in a later file: a lapsed claim).
    #[arg(long, default_value_t = 0.02)]
    duplicate_rate: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows one route task or fold unit holds (the workers' bound).
    #[arg(long, default_value_t = CompactorConfig::default().unit_rows)]
    unit_rows: usize,
    /// Keep the generated day and its compaction under DATA/bench-compaction.
    #[arg(long)]
    keep: bool,
}

/// Counts a store's requests, as S3 would bill them.
#[derive(Default)]
pub(crate) struct Requests {
    pub(crate) put: AtomicU64,
    pub(crate) get: AtomicU64,
    pub(crate) list: AtomicU64,
    pub(crate) delete: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

pub(crate) struct Metered<B> {
    pub(crate) inner: B,
    pub(crate) n: Arc<Requests>,
}

#[async_trait]
impl<B: BlobStore> BlobStore for Metered<B> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.n.put.fetch_add(1, Ordering::Relaxed);
        self.n
            .bytes_out
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        self.n.get.fetch_add(1, Ordering::Relaxed);
        let b = self.inner.get(key).await?;
        self.n.bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        // S3 lists 1,000 keys per request
        let out = self.inner.list(prefix).await?;
        self.n
            .list
            .fetch_add((out.len() as u64).div_ceil(1000).max(1), Ordering::Relaxed);
        Ok(out)
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.n.delete.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(key).await
    }
    async fn list_first(&self, prefix: &str, max: usize) -> Result<Vec<ObjectInfo>, BlobError> {
        let out = self.inner.list_first(prefix, max).await?;
        self.n
            .list
            .fetch_add((out.len() as u64).div_ceil(1000).max(1), Ordering::Relaxed);
        Ok(out)
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let out = self.inner.list_prefixes(prefix).await?;
        self.n
            .list
            .fetch_add((out.len() as u64).div_ceil(1000).max(1), Ordering::Relaxed);
        Ok(out)
    }
}

/// What a worker process reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkerReport {
    answer: Value,
    elapsed_s: f64,
    peak_rss_mb: f64,
    requests: BTreeMap<String, u64>,
}

fn config(unit_rows: usize) -> CompactorConfig {
    CompactorConfig {
        task_rows: unit_rows,
        unit_rows,
        max_part_rows: unit_rows + unit_rows / 4,
        ..CompactorConfig::default()
    }
}

/// `auditlog compact-step STEP`: one worker step over the data directory's blobs.
pub async fn step(data: &Path, step: &str, unit_rows: usize) -> Result<()> {
    let step: Step = serde_json::from_str(step).context("the step is not valid JSON")?;
    let n = Arc::new(Requests::default());
    let blobs = Arc::new(Metered {
        inner: LocalDirBlobStore::open(data.join("blobs"))?,
        n: n.clone(),
    });
    let handler = Handler {
        blobs,
        config: config(unit_rows),
        catalog: None,
    };
    let started = Instant::now();
    let answer = handler.handle(step).await?;
    let report = WorkerReport {
        answer: serde_json::to_value(&answer)?,
        elapsed_s: started.elapsed().as_secs_f64(),
        peak_rss_mb: crate::bench::vm_hwm_mb().unwrap_or(0.0),
        requests: BTreeMap::from([
            ("put".into(), n.put.load(Ordering::Relaxed)),
            ("get".into(), n.get.load(Ordering::Relaxed)),
            ("list".into(), n.list.load(Ordering::Relaxed)),
            ("delete".into(), n.delete.load(Ordering::Relaxed)),
            ("bytes_in".into(), n.bytes_in.load(Ordering::Relaxed)),
            ("bytes_out".into(), n.bytes_out.load(Ordering::Relaxed)),
        ]),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs one worker in its own process.
fn worker(root: &Path, unit_rows: usize, step: &Value) -> Result<WorkerReport> {
    let exe = std::env::current_exe().context("finding the auditlog binary")?;
    let out = Command::new(exe)
        .arg("--data")
        .arg(root)
        .arg("compact-step")
        .arg("--unit-rows")
        .arg(unit_rows.to_string())
        .arg(step.to_string())
        .output()
        .context("starting a worker")?;
    if !out.status.success() {
        bail!(
            "worker {step} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("worker {step} answered {line:?}"))
}

/// Writes the day's ingest files; returns (files, rows).
async fn generate(
    blobs: &LocalDirBlobStore,
    args: &CompactionBenchArgs,
    day: NaiveDate,
) -> Result<(usize, usize)> {
    let registry = SchemaRegistry::builtin()?;
    let end = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .context("day")?;
    let mut traffic = Traffic::new(args.seed, args.tenants, args.zipf, end, args.event_bytes)
        .with_window(Duration::hours(24) - Duration::seconds(5));
    traffic.expect(args.events);
    let mut rng = Rng::new(args.seed ^ 0xc0ff_ee00);
    let mut retries: Vec<AuditRecord> = Vec::new();
    let (mut produced, mut files, mut rows) = (0usize, 0usize, 0usize);
    let mut ingested = end - Duration::hours(24);
    while produced < args.events || !retries.is_empty() {
        let size = 300 + rng.below(3400);
        let mut batch: Vec<AuditRecord> = std::mem::take(&mut retries);
        while batch.len() < size && produced < args.events {
            let e = traffic.next_event();
            let wrapped = BusEvent::wrap(
                format!("bus-{produced}"),
                &e.source,
                "111122223333",
                "us-east-1",
                vec![],
                e.detail,
            );
            let text = serde_json::to_string(&wrapped)?;
            let v = envelope::decode_bus_event(&text, &registry, 1 << 21)?;
            let record = AuditRecord::from_event(v, ingested);
            produced += 1;
            if rng.unit() < args.duplicate_rate {
                let mut copy = record.clone();
                copy.ingested_at += Duration::seconds(30);
                copy.bus_event_id.push_str("-again");
                retries.push(copy);
            }
            batch.push(record);
        }
        // a file holds one day: events of the window's last seconds could spill over
        batch.retain(|r| r.dt() == day);
        if batch.is_empty() {
            continue;
        }
        let key = ingest_object_key(day, &batch);
        let bytes = encode_parquet(&batch, Tier::Ingest, 1)?;
        blobs.put(&key, Bytes::from(bytes)).await?;
        files += 1;
        rows += batch.len();
        ingested += Duration::seconds(2);
        if files.is_multiple_of(500) {
            eprintln!("generated {files} files, {rows} rows");
        }
    }
    Ok((files, rows))
}

#[derive(Default)]
struct Kind {
    rows: Vec<f64>,
    secs: Vec<f64>,
    rss: Vec<f64>,
    requests: BTreeMap<String, u64>,
}

impl Kind {
    fn req(&self, r: &str) -> f64 {
        self.requests.get(r).copied().unwrap_or(0) as f64
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

pub async fn run(data: &Path, args: CompactionBenchArgs) -> Result<()> {
    let root: PathBuf = data.join("bench-compaction");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let blobs = LocalDirBlobStore::open(root.join("blobs"))?;
    let day = NaiveDate::from_ymd_opt(2026, 11, 20).context("day")?;
    let started = Instant::now();
    let (files, rows) = generate(&blobs, &args, day).await?;
    let ingest_bytes: u64 = blobs.list("ingest/").await?.iter().map(|o| o.size).sum();
    println!(
        "generated {rows} rows ({} unique events, {} tenants, zipf {}) in {files} ingest files, {:.0} MB, {:.0} s",
        args.events,
        args.tenants,
        args.zipf,
        ingest_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    let mut record = |kind: &'static str, w: &WorkerReport, rows: f64| {
        let k = kinds.entry(kind).or_default();
        k.rows.push(rows);
        k.secs.push(w.elapsed_s);
        k.rss.push(w.peak_rss_mb);
        for (r, n) in &w.requests {
            *k.requests.entry(r.clone()).or_insert(0) += n;
        }
    };
    let compaction_started = Instant::now();
    let run_step = |step: Value| worker(&root, args.unit_rows, &step);
    let plan = run_step(json!({"step": "plan", "day": day}))?;
    record("plan", &plan, 0.0);
    let attempt = plan.answer["attempt"].clone();
    for task in plan.answer["count_tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let w = run_step(json!({"step": "count", "attempt": attempt, "task": task}))?;
        let n = w.answer["totals"]["rows"].as_f64().unwrap_or(0.0);
        record("count", &w, n);
    }
    let fold = run_step(json!({"step": "plan_fold", "attempt": attempt}))?;
    record("plan_fold", &fold, 0.0);
    for task in fold.answer["route_tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let w = run_step(json!({"step": "route", "attempt": attempt, "task": task}))?;
        let n = w.answer["totals"]["rows"].as_f64().unwrap_or(0.0);
        record("route", &w, n);
    }
    let mut written = 0.0;
    for unit in fold.answer["units"].as_array().cloned().unwrap_or_default() {
        let w = run_step(json!({"step": "fold", "attempt": attempt, "unit": unit}))?;
        let n = w.answer["totals"]["input_rows"].as_f64().unwrap_or(0.0);
        written += w.answer["totals"]["rows"].as_f64().unwrap_or(0.0);
        record("fold", &w, n);
    }
    let fin = run_step(json!({"step": "finish", "attempt": attempt}))?;
    record("finish", &fin, 0.0);
    let wall = compaction_started.elapsed().as_secs_f64();

    let workers: usize = kinds.values().map(|k| k.secs.len()).sum();
    println!(
        "\ncompacted {rows} rows into {written} (duplicates removed) with {workers} workers, one process each, {wall:.0} s in sequence\n"
    );
    println!(
        "{:<10} {:>7} {:>12} {:>12} {:>9} {:>9} {:>10} {:>10}",
        "worker", "count", "rows med", "rows max", "s med", "s max", "MB med", "MB max"
    );
    for (name, k) in &kinds {
        println!(
            "{:<10} {:>7} {:>12.0} {:>12.0} {:>9.2} {:>9.2} {:>10.0} {:>10.0}",
            name,
            k.secs.len(),
            median(&k.rows),
            max(&k.rows),
            median(&k.secs),
            max(&k.secs),
            median(&k.rss),
            max(&k.rss)
        );
    }
    print_cost(&kinds, args.events);
    if !args.keep {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(())
}

/// The day's requests and cost as measured, and a model of a 60-million-event day built
/// from them. Scaling by the ratio of events `x`: the work per row (count, route, fold
/// time; ingest files read) grows with x; the route objects with route tasks times
/// units, both growing with x, so with x squared; the part files are one per tenant-day
/// (fixed) plus one per added unit at most; the listings of the planner are one per
/// tenant (fixed).
fn print_cost(kinds: &BTreeMap<&str, Kind>, events: usize) {
    let req = |name: &str, r: &str| kinds.get(name).map_or(0.0, |k| k.req(r));
    let total = |r: &str| kinds.values().map(|k| k.req(r)).sum::<f64>();
    let n = |name: &str| kinds.get(name).map_or(0.0, |k| k.secs.len() as f64);
    let secs: f64 = kinds.values().flat_map(|k| &k.secs).sum();
    println!("\nrequests by worker kind (this day):");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9}",
        "worker", "PUT", "GET", "LIST", "DELETE"
    );
    for (name, k) in kinds {
        println!(
            "{:<10} {:>9} {:>9} {:>9} {:>9}",
            name,
            k.req("put"),
            k.req("get"),
            k.req("list"),
            k.req("delete")
        );
    }
    // us-east-1: PUT/LIST $0.005 per 1,000, GET $0.0004 per 1,000, DELETE free;
    // Lambda arm64 $0.0000133334 per GB-s at the template's 2 GB; Standard Step
    // Functions $0.025 per 1,000 transitions, about four per worker
    let cost = |put: f64, get: f64, list: f64, secs: f64, workers: f64| {
        let s3 = (put + list) * 0.005 / 1000.0 + get * 0.0004 / 1000.0;
        let lambda = secs * 2.0 * 0.000_013_333_4;
        let sfn = workers * 4.0 * 0.025 / 1000.0;
        (s3, lambda, sfn)
    };
    let workers: f64 = kinds.values().map(|k| k.secs.len() as f64).sum();
    let (s3, lambda, sfn) = cost(total("put"), total("get"), total("list"), secs, workers);
    println!(
        "\nthis day: {} PUT, {} GET, {} LIST, {} DELETE ({:.0} MB read, {:.0} MB written); S3 ${s3:.3}, Lambda ${lambda:.3}, Step Functions ${sfn:.3}",
        total("put"),
        total("get"),
        total("list"),
        total("delete"),
        total("bytes_in") / 1e6,
        total("bytes_out") / 1e6
    );
    let x = 60_000_000.0 / events as f64;
    let routed = req("route", "put");
    let units = n("fold");
    let put = routed * x * x
        + req("fold", "put")
        + 2.0 * units * (x - 1.0)
        + (req("count", "put") + req("plan", "put") + req("plan_fold", "put")) * x;
    let get = routed * x * x + (total("get") - routed) * x;
    let list = req("plan_fold", "list") + (total("list") - req("plan_fold", "list")) * x;
    let workers60 = (n("count") + n("route") + n("fold")) * x + 3.0;
    let (s3, lambda, sfn) = cost(put, get, list, secs * x, workers60);
    println!(
        "modelled 60,000,000-event day (x{x:.1}): {put:.0} PUT, {get:.0} GET, {list:.0} LIST, {workers60:.0} workers, {:.0} GB-s; S3 ${s3:.2}, Lambda ${lambda:.2}, Step Functions ${sfn:.2}: ${:.2} per day",
        secs * x * 2.0,
        s3 + lambda + sfn
    );
}
