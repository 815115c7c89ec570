//! `auditlog bench history`: the customer history at scale, on the embedded default.
//! It generates one big tenant's year as compacted parts (by default 10 million events
//! over 365 days, each part's time stamped as if compacted the next night), plus an open
//! day in the ingest tier: files of 3,700 rows over 2,000 tenants, written through the
//! day. Then it times the reads a customer and a SIEM make, and counts each one's object
//! requests (GET, LIST) with what they cost and take at S3's prices and latencies.
//!
//! Everything runs on a current-thread runtime: one core.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use adapters_local::LocalDirBlobStore;
use anyhow::{Context, Result};
use async_trait::async_trait;
use auditlog::{AuditRecord, BlobStore, PartitionKey, Tier, encode_parquet, ingest_object_key};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use history::{EventQuery, ExportFormat, ExportUpload, History, HistoryConfig, SealKey};

use crate::bench_compaction::{Metered, Requests};
use crate::traffic::Rng;

#[derive(clap::Args, Debug)]
pub struct HistoryBenchArgs {
    /// Events of the big tenant over its compacted days.
    #[arg(long, default_value_t = 10_000_000)]
    events: usize,
    #[arg(long, default_value_t = 365)]
    days: usize,
    /// Ingest files of the open day (3,700 rows each, over `tenants` tenants).
    #[arg(long, default_value_t = 200)]
    open_files: usize,
    #[arg(long, default_value_t = 2000)]
    tenants: usize,
    /// Runs of each timed page read.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Reuse the generated data under DATA/bench-history if it is there.
    #[arg(long)]
    reuse: bool,
    /// Polls of 10,000 timed of the 1 M-event catch-up (each re-reads the parts written
    /// since its checkpoint, so the whole catch-up is quadratic; see docs/perf.md).
    #[arg(long, default_value_t = 5)]
    polls: usize,
}

const ROWS_PER_INGEST_FILE: usize = 3_700;
const ACTORS: usize = 500;
const BIG: &str = "big-tenant";
/// S3 Standard prices per request (us-east-1) and typical first-byte latencies.
const GET_USD: f64 = 0.0004 / 1000.0;
const LIST_USD: f64 = 0.005 / 1000.0;
const GET_MS: f64 = 20.0;
const LIST_MS: f64 = 40.0;

fn record(tenant: &str, n: u64, occurred: DateTime<Utc>, ingested: DateTime<Utc>) -> AuditRecord {
    let actor = n % ACTORS as u64;
    let payload = format!(
        r#"{{"action":"share","details":{{"n":{n}}},"outcome":"success","target":{{"id":"doc-{}","name":"Quarterly plan","type":"document"}}}}"#,
        n % 100_000
    );
    AuditRecord {
        tenant_id: TenantId::parse(tenant).unwrap_or_else(|_| unreachable_tenant()),
        event_id: EventId::new_v7(),
        event_type: [
            "app.document.shared",
            "app.document.viewed",
            "scim.user.updated",
        ][(n % 3) as usize]
            .into(),
        schema_version: 1,
        occurred_at: occurred,
        ingested_at: ingested,
        producer: "documents".into(),
        source: "app.documents".into(),
        actor_type: "user".into(),
        actor_id: format!("u-{actor}"),
        actor_name: Some(format!("user{actor}@example.com")),
        action: "share".into(),
        target_type: Some("document".into()),
        target_id: Some(format!("doc-{}", n % 100_000)),
        target_name: Some("Quarterly plan".into()),
        outcome: "success".into(),
        correlation_id: None,
        request_id: Some(format!("r-{n:016x}")),
        source_ip: Some("203.0.113.7".into()),
        user_agent: None,
        payload_sha256: auditlog::payload_sha256(&payload),
        payload,
        bus_event_id: format!("bus-{n}"),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        leaf_index: None,
    }
}

fn unreachable_tenant() -> TenantId {
    // the bench's tenant names are valid by construction
    TenantId::parse("t").unwrap_or_else(|_| unreachable_tenant())
}

fn set_mtime(path: &Path, at: DateTime<Utc>) -> Result<()> {
    let t = SystemTime::UNIX_EPOCH + Duration::from_micros(at.timestamp_micros().max(0) as u64);
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(t)?;
    Ok(())
}

/// Writes the data set; returns "now" (the end of the open day so far).
async fn generate(root: &Path, a: &HistoryBenchArgs) -> Result<DateTime<Utc>> {
    let blobs = LocalDirBlobStore::open(root)?;
    let today = Utc::now().date_naive();
    let start_of_today = today.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let per_day = a.events / a.days.max(1);
    let mut n: u64 = 0;
    let started = Instant::now();
    for d in (1..=a.days).rev() {
        let day_start = start_of_today - chrono::Duration::days(d as i64);
        let step = 86_400_000_000 / per_day.max(1) as i64;
        let rows: Vec<AuditRecord> = (0..per_day)
            .map(|i| {
                n += 1;
                let at = day_start + chrono::Duration::microseconds(step * i as i64);
                record(BIG, n, at, at + chrono::Duration::seconds(3))
            })
            .collect();
        let pk = PartitionKey::new(TenantId::parse(BIG)?, day_start.date_naive());
        let key = pk.object_key(&rows);
        blobs
            .put(&key, encode_parquet(&rows, Tier::Tenant, 3)?.into())
            .await?;
        // compacted in the night after its day
        set_mtime(&root.join(&key), day_start + chrono::Duration::hours(26))?;
        if d % 30 == 0 {
            eprintln!(
                "  {} compacted days written ({:.0} s)",
                a.days - d + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // the open day: files written through the day so far, the big tenant in each
    let now = Utc::now();
    let span = (now - start_of_today)
        .num_microseconds()
        .unwrap_or(1)
        .max(1);
    let mut rng = Rng::new(7);
    for f in 0..a.open_files {
        let written = start_of_today
            + chrono::Duration::microseconds(span * (f as i64 + 1) / a.open_files as i64);
        let rows: Vec<AuditRecord> = (0..ROWS_PER_INGEST_FILE)
            .map(|i| {
                n += 1;
                // a 1.5% share for the big tenant (~27,000 of 60 M a day), the rest spread
                let tenant = if i % 64 == 0 {
                    BIG.to_owned()
                } else {
                    format!("tenant-{:04}", rng.below(a.tenants))
                };
                let at = written - chrono::Duration::milliseconds(rng.below(120_000) as i64);
                record(&tenant, n, at, written - chrono::Duration::seconds(1))
            })
            .collect();
        let key = ingest_object_key(today, &rows);
        blobs
            .put(&key, encode_parquet(&rows, Tier::Ingest, 3)?.into())
            .await?;
        set_mtime(&root.join(&key), written)?;
    }
    eprintln!(
        "  generated {} events in {:.0} s",
        n,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(root.join("bench-now"), now.to_rfc3339())?;
    Ok(now)
}

/// An upload that only counts bytes (exports are timed without disk writes).
struct Counted(Arc<AtomicU64>);

#[async_trait]
impl ExportUpload for Counted {
    async fn write(&mut self, chunk: Bytes) -> Result<(), auditlog::BlobError> {
        self.0.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<(), auditlog::BlobError> {
        Ok(())
    }
    async fn abort(self: Box<Self>) {}
}

struct Bench {
    history: History<Arc<Metered<LocalDirBlobStore>>>,
    n: Arc<Requests>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    get: u64,
    list: u64,
    bytes: u64,
}

impl Bench {
    fn counts(&self) -> Counts {
        Counts {
            get: self.n.get.load(Ordering::Relaxed),
            list: self.n.list.load(Ordering::Relaxed),
            bytes: self.n.bytes_in.load(Ordering::Relaxed),
        }
    }

    fn since(&self, before: Counts) -> Counts {
        let now = self.counts();
        Counts {
            get: now.get - before.get,
            list: now.list - before.list,
            bytes: now.bytes - before.bytes,
        }
    }
}

fn requests_line(c: Counts) -> String {
    let usd = c.get as f64 * GET_USD + c.list as f64 * LIST_USD;
    // sequential, as the reader issues them
    let ms = c.get as f64 * GET_MS + c.list as f64 * LIST_MS;
    format!(
        "{} GET + {} LIST ({:.1} MB read): ${:.7}, ~{:.0} ms of S3 latency",
        c.get,
        c.list,
        c.bytes as f64 / 1e6,
        usd,
        ms
    )
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn run(data: &Path, a: HistoryBenchArgs) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(data, a))
}

async fn run_async(data: &Path, a: HistoryBenchArgs) -> Result<()> {
    let root = data.join("bench-history");
    let now = match std::fs::read_to_string(root.join("bench-now")) {
        Ok(t) if a.reuse => DateTime::parse_from_rfc3339(t.trim())?.with_timezone(&Utc),
        _ => {
            if root.exists() {
                std::fs::remove_dir_all(&root)?;
            }
            eprintln!(
                "generating {} events of one tenant over {} days, and an open day of {} files over {} tenants ...",
                a.events, a.days, a.open_files, a.tenants
            );
            generate(&root, &a).await?
        }
    };
    let n = Arc::new(Requests::default());
    let blobs = Arc::new(Metered {
        inner: LocalDirBlobStore::open(&root)?,
        n: n.clone(),
    });
    let b = Bench {
        history: History::new(
            blobs,
            SealKey::new(&SealKey::generate())?,
            HistoryConfig::default(),
        ),
        n,
    };
    let big = TenantId::parse(BIG)?;
    let q = |pairs: &[(&str, &str)]| {
        EventQuery::from_pairs(pairs.iter().copied(), &[]).context("bench query")
    };
    println!(
        "history bench: {} events of {BIG} over {} compacted days + an open day of {} ingest files ({} rows) over {} tenants; one core",
        a.events,
        a.days,
        a.open_files,
        a.open_files * ROWS_PER_INGEST_FILE,
        a.tenants
    );

    // first page
    let mut times = Vec::new();
    let mut last = Counts::default();
    for _ in 0..a.runs.max(1) {
        let before = b.counts();
        let t = Instant::now();
        let page = b.history.page(&big, &q(&[])?, 50, None, now).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = b.since(before);
        anyhow::ensure!(
            page.events.len() == 50,
            "first page has {}",
            page.events.len()
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "first page (50 newest)         p50 {:>8.2} ms  p99 {:>8.2} ms   {}",
        pct(&times, 0.5),
        pct(&times, 0.99),
        requests_line(last)
    );

    // one actor across 90 days
    let from = (now - chrono::Duration::days(90)).to_rfc3339();
    let filtered = q(&[("actor", "user:u-123"), ("from", &from)])?;
    let mut times = Vec::new();
    for _ in 0..a.runs.clamp(1, 5) {
        let before = b.counts();
        let t = Instant::now();
        let page = b.history.page(&big, &filtered, 50, None, now).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = b.since(before);
        anyhow::ensure!(!page.events.is_empty(), "the filtered page is empty");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "filtered page (1 actor, 90 d)  p50 {:>8.2} ms  p99 {:>8.2} ms   {}",
        pct(&times, 0.5),
        pct(&times, 0.99),
        requests_line(last)
    );

    // the 100th page
    let mut cursor: Option<String> = None;
    let all = q(&[])?;
    let t0 = Instant::now();
    let mut hundredth = (0.0, Counts::default());
    for i in 1..=100 {
        let before = b.counts();
        let t = Instant::now();
        let page = b
            .history
            .page(&big, &all, 50, cursor.as_deref(), now)
            .await?;
        if i == 100 {
            hundredth = (t.elapsed().as_secs_f64() * 1000.0, b.since(before));
        }
        cursor = page.next;
    }
    println!(
        "100th page (via 99 cursors)    {:>8.2} ms (all 100: {:.2} s)   {}",
        hundredth.0,
        t0.elapsed().as_secs_f64(),
        requests_line(hundredth.1)
    );

    // an export of about a million rows: the newest days up to that many
    let per_day = (a.events / a.days.max(1)).max(1);
    let days = 1_000_000usize.div_ceil(per_day);
    let from = (now.date_naive() - chrono::Duration::days(days as i64))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let to = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let range = q(&[("from", &from.to_rfc3339()), ("to", &to.to_rfc3339())])?;
    let bytes = Arc::new(AtomicU64::new(0));
    let before = b.counts();
    let t = Instant::now();
    let rows = b
        .history
        .export(&big, &range, ExportFormat::Csv, &mut Counted(bytes.clone()))
        .await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "export ({rows} rows, CSV)     {:>8.2} s   {:>9.0} rows/s   {:.0} MB of CSV   {}",
        secs,
        rows as f64 / secs,
        bytes.load(Ordering::Relaxed) as f64 / 1e6,
        requests_line(b.since(before))
    );

    // a SIEM catching up a million events, in polls of 10,000
    let start = from - chrono::Duration::seconds(3);
    let mut checkpoint = Some(b.history.checkpoint_at(&big, start));
    let before = b.counts();
    let t = Instant::now();
    let mut delivered = 0usize;
    let mut polls = 0;
    while delivered < 1_000_000 && polls < a.polls {
        let page = b
            .history
            .poll(&big, checkpoint.as_deref(), history::MAX_POLL_LIMIT, now)
            .await?;
        polls += 1;
        delivered += page.events.len();
        if page.events.is_empty() {
            break;
        }
        checkpoint = Some(page.next);
    }
    let secs = t.elapsed().as_secs_f64();
    let c = b.since(before);
    println!(
        "poll catch-up, first {polls} polls ({delivered} events) {:>8.2} s   {:>9.0} events/s   per poll: {}",
        secs,
        delivered as f64 / secs,
        requests_line(Counts {
            get: c.get / polls.max(1) as u64,
            list: c.list / polls.max(1) as u64,
            bytes: c.bytes / polls.max(1) as u64,
        })
    );
    Ok(())
}
