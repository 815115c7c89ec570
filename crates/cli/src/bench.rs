//! `auditlog bench scim`: the SCIM handler's latency on the embedded store, around one
//! group of a chosen size, and the process's peak memory. Requests go through the same
//! router as `serve` and the Lambda (in process, no sockets), so the figures are the
//! handler's own: parsing, the store, rendering.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_local::SqliteScimStore;
use anyhow::{Context, Result, bail, ensure};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use envelope::{Actor, ActorType, EventId, TenantId};
use scim::{
    Credential, OutboxEntry, RateLimit, Resource, ResourceKind, ScimStore, TenantDirectory,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "bench-token-0123456789";
const GROUP: &str = "group-everyone";
const BATCH: usize = 100;
const CONCURRENT: usize = 8;

#[derive(clap::Args, Debug)]
pub struct ScimBenchArgs {
    /// Members the group holds before the measured requests.
    #[arg(long, default_value_t = 100_000)]
    group_size: usize,
    /// Measured requests of each kind.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// SCIM handler latency (GET user, filter by userName, create user, PATCH group
    /// adding/removing 100 members), 8 concurrent PATCHes, peak memory.
    Scim(ScimBenchArgs),
    /// Compaction at scale: one generated day through bounded workers, one process each;
    /// per-worker rows, time and peak memory, and the day's S3 requests and cost.
    Compaction(crate::bench_compaction::CompactionBenchArgs),
    /// The customer history at scale: a 10 M-event tenant over 365 compacted days plus
    /// an open day of 2,000 tenants; first page, filtered page, 100th page, a 1 M-row
    /// export and a 1 M-event poll catch-up, with their object requests.
    History(crate::bench_history::HistoryBenchArgs),
    /// The tenant transparency log: append and verify throughput (one core), and the
    /// bytes it adds per event.
    Verify(crate::bench_verify::VerifyBenchArgs),
}

pub(crate) fn vm_hwm_mb() -> Option<f64> {
    proc_status_mb("VmHWM:")
}

fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn user_id(i: usize) -> String {
    format!("user-{i:09}")
}

fn member_event(tenant: &TenantId) -> impl Fn(&str) -> OutboxEntry + Send + Sync + '_ {
    move |m: &str| OutboxEntry {
        event_id: EventId::new_v7(),
        tenant_id: tenant.clone(),
        event_type: "scim.group.member_added".into(),
        occurred_at: Utc::now(),
        actor: Actor {
            kind: ActorType::Idp,
            id: "bench".into(),
            name: None,
        },
        payload: json!({"group": {"id": GROUP}, "member": {"id": m, "type": "User"}}),
    }
}

struct Client {
    app: axum::Router,
}

impl Client {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Duration)> {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/scim+json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
        let start = Instant::now();
        let res = self.app.clone().oneshot(req).await?;
        let status = res.status();
        axum::body::to_bytes(res.into_body(), usize::MAX).await?;
        Ok((status, start.elapsed()))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<38} p50 {:>8.2} ms   p99 {:>8.2} ms   ({} requests)",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        samples.len()
    );
}

fn patch_members(op: &str, ids: &[String]) -> Value {
    let value: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": op, "path": "members", "value": value}]})
}

pub async fn run(data: &Path, cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Scim(args) => scim(data, args).await,
        BenchCommand::Compaction(args) => crate::bench_compaction::run(data, args).await,
        BenchCommand::Verify(args) => crate::bench_verify::run(args).await,
        BenchCommand::History(args) => {
            let data = data.to_owned();
            tokio::task::spawn_blocking(move || crate::bench_history::run(&data, args)).await?
        }
    }
}

async fn scim(data: &Path, args: ScimBenchArgs) -> Result<()> {
    let n = args.group_size;
    let rounds = args.rounds.max(1);
    let dir = data.join(format!("bench-scim-{n}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteScimStore::open(&dir.join("scim.sqlite"))?);
    let tenant = TenantId::parse("bench")?;
    store
        .put_credential(&Credential::new(TOKEN, tenant.clone(), "bench", Utc::now()))
        .await?;

    // seed: the group's members, plus users that the measured PATCHes add
    let extra = rounds * BATCH + CONCURRENT * BATCH;
    let seed_start = Instant::now();
    let now = Utc::now();
    for i in 0..n + extra {
        let r = Resource {
            id: user_id(i),
            kind: ResourceKind::User,
            version: 1,
            created: now,
            last_modified: now,
            body: json!({"userName": format!("{}@bench.test", user_id(i)), "active": true}),
        };
        store.create(&tenant, &r, &[]).await?;
    }
    store
        .create(
            &tenant,
            &Resource {
                id: GROUP.into(),
                kind: ResourceKind::Group,
                version: 1,
                created: now,
                last_modified: now,
                body: json!({"displayName": "Everyone"}),
            },
            &[],
        )
        .await?;
    let event = member_event(&tenant);
    for start in (0..n).step_by(5_000) {
        let chunk: Vec<String> = (start..(start + 5_000).min(n)).map(user_id).collect();
        store.add_members(&tenant, GROUP, &chunk, &event).await?;
    }
    println!(
        "seeded {} users and a group of {n} members in {:.1} s; peak RSS while seeding {:.0} MB",
        n + extra,
        seed_start.elapsed().as_secs_f64(),
        vm_hwm_mb().unwrap_or(0.0)
    );
    // measure the requests' own peak: "5" resets VmHWM to the current RSS (Linux >= 4.0)
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = proc_status_mb("VmRSS:").unwrap_or(0.0);

    let client = Client {
        app: scim::router_with_limits(
            store.clone(),
            store.clone(),
            "http://bench/scim/v2",
            RateLimit::new(1e9, u32::MAX),
        ),
    };
    let expect = |what: &str, got: StatusCode, want: StatusCode| -> Result<()> {
        ensure!(got == want, "{what}: expected {want}, got {got}");
        Ok(())
    };

    let mut get_user = Vec::new();
    let mut by_name = Vec::new();
    let mut create = Vec::new();
    for r in 0..rounds {
        let id = user_id((r * 7919) % n.max(1));
        let (s, d) = client.call("GET", &format!("/Users/{id}"), None).await?;
        expect("GET user", s, StatusCode::OK)?;
        get_user.push(d);
        let (s, d) = client
            .call(
                "GET",
                &format!("/Users?filter=userName%20eq%20%22{id}%40bench.test%22"),
                None,
            )
            .await?;
        expect("filter by userName", s, StatusCode::OK)?;
        by_name.push(d);
        let (s, d) = client
            .call(
                "POST",
                "/Users",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("new-{r}@bench.test"), "active": true})),
            )
            .await?;
        expect("create user", s, StatusCode::CREATED)?;
        create.push(d);
    }

    let mut add = Vec::new();
    let mut remove = Vec::new();
    let patch_uri = format!("/Groups/{GROUP}?excludedAttributes=members");
    for r in 0..rounds {
        let batch: Vec<String> = (0..BATCH).map(|k| user_id(n + r * BATCH + k)).collect();
        let (s, d) = client
            .call("PATCH", &patch_uri, Some(patch_members("add", &batch)))
            .await?;
        expect("PATCH add", s, StatusCode::OK)?;
        add.push(d);
        let (s, d) = client
            .call("PATCH", &patch_uri, Some(patch_members("remove", &batch)))
            .await?;
        expect("PATCH remove", s, StatusCode::OK)?;
        remove.push(d);
    }

    // eight concurrent PATCHes with disjoint members: all succeed, the union lands
    let base = n + rounds * BATCH;
    let sets: Vec<Vec<String>> = (0..CONCURRENT)
        .map(|c| (0..BATCH).map(|k| user_id(base + c * BATCH + k)).collect())
        .collect();
    let started = Instant::now();
    let results = concurrent_patches(&client, &patch_uri, &sets).await;
    let concurrent_wall = started.elapsed();
    for (status, _) in &results {
        expect("concurrent PATCH", *status, StatusCode::OK)?;
    }
    for id in sets.iter().flatten() {
        let groups = store.groups_of(&tenant, id).await?;
        if !groups.iter().any(|g| g == GROUP) {
            bail!("member {id} of a concurrent PATCH is missing: an update was lost");
        }
    }

    println!(
        "group of {n} members, {rounds} rounds each (embedded SQLite store, in-process router)"
    );
    report("GET /Users/{id}", get_user);
    report("GET /Users?filter=userName eq", by_name);
    report("POST /Users", create);
    report(&format!("PATCH group: add {BATCH} members"), add);
    report(&format!("PATCH group: remove {BATCH} members"), remove);
    println!(
        "{CONCURRENT} concurrent PATCHes x {BATCH} disjoint members: all 200, union complete ({} members checked), {:.1} ms wall",
        CONCURRENT * BATCH,
        concurrent_wall.as_secs_f64() * 1000.0
    );
    let peak = vm_hwm_mb().unwrap_or(0.0);
    if reset {
        println!(
            "peak RSS while serving the requests: {peak:.0} MB ({rss_before:.0} MB resident before them, +{:.1} MB)",
            peak - rss_before
        );
    } else {
        println!("peak RSS (VmHWM), whole run: {peak:.0} MB");
    }
    Ok(())
}

/// Sends one PATCH per set, each on its own task (the runtime has several threads).
async fn concurrent_patches(
    client: &Client,
    uri: &str,
    sets: &[Vec<String>],
) -> Vec<(StatusCode, Duration)> {
    let tasks: Vec<_> = sets
        .iter()
        .map(|set| {
            let client = Client {
                app: client.app.clone(),
            };
            let (uri, body) = (uri.to_owned(), patch_members("add", set));
            tokio::spawn(async move { client.call("PATCH", &uri, Some(body)).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(x)) => out.push(x),
            _ => out.push((StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)),
        }
    }
    out
}
