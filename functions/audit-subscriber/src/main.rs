//! Wiring only: configuration from the environment, SDK clients built once, then the
//! runtime loop. See README.md beside this file.

use std::sync::Arc;
use std::time::Duration;

use adapters_aws::{DynamoDbDedupeStore, S3BlobStore};
use anyhow::Context;
use auditlog::{Subscriber, SubscriberConfig, SystemClock};
use envelope::SchemaRegistry;
use lambda_runtime::{Error, run, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let bucket = env("AUDIT_BUCKET")?;
    let table = env("DEDUPE_TABLE")?;
    let defaults = SubscriberConfig::default();
    let config = SubscriberConfig {
        lease: Duration::from_secs(env_or("DEDUPE_LEASE_SECONDS", defaults.lease.as_secs())?),
        retention: Duration::from_secs(86_400 * env_or("DEDUPE_RETENTION_DAYS", 90u64)?),
        max_event_bytes: env_or("MAX_EVENT_BYTES", defaults.max_event_bytes)?,
        zstd_level: env_or("ZSTD_LEVEL", defaults.zstd_level)?,
    };
    let aws = aws_config::load_from_env().await;
    let subscriber = Subscriber::new(
        DynamoDbDedupeStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        S3BlobStore::new(aws_sdk_s3::Client::new(&aws), bucket),
        SystemClock,
        Arc::new(SchemaRegistry::builtin()?),
        config,
    );
    run(service_fn(|event| {
        audit_subscriber::handle(event, &subscriber)
    }))
    .await
}
