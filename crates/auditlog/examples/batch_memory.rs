//! Peak memory of one full Lambda batch (6 MB of ~1 KB events) through the subscriber,
//! as Lambda would report it: the process's peak resident set (VmHWM).
//!
//! cargo run --release -p auditlog-core --example batch_memory

use std::sync::Arc;

use auditlog::fixtures::sqs_event_json;
use auditlog::memory::{MemoryBlobStore, MemoryDedupeStore};
use auditlog::{SqsBatch, Subscriber, SubscriberConfig, SystemClock};
use envelope::SchemaRegistry;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l.trim_start_matches(field).trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    println!("before: VmHWM {}", status("VmHWM:"));
    let registry = Arc::new(SchemaRegistry::builtin()?);
    let blobs = Arc::new(MemoryBlobStore::default());
    let sub = Subscriber::new(
        Arc::new(MemoryDedupeStore::default()),
        blobs.clone(),
        SystemClock,
        registry,
        SubscriberConfig::default(),
    );
    for round in 0..3 {
        // the event as Lambda hands it over: one 6 MB JSON document
        let (json, n) = sqs_event_json(2000, 1000, 6 * 1024 * 1024);
        let batch: SqsBatch = serde_json::from_str(&json)?;
        drop(json);
        let (messages, _) = batch.into_messages();
        let out = sub.handle(&messages).await;
        println!(
            "round {round}: {n} records, {} written, {} duplicates, {} files, {} bytes; VmHWM {}",
            out.stats.written,
            out.stats.duplicates,
            out.stats.files,
            out.stats.bytes,
            status("VmHWM:")
        );
    }
    // the in-memory blob store holds the written files; they are part of the figure
    println!("objects held: {}", blobs.keys().len());
    println!("peak resident set (VmHWM): {}", status("VmHWM:"));
    Ok(())
}
