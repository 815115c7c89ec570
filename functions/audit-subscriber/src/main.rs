//! Wiring only: configuration from the environment, SDK clients built once, then the
//! runtime loop. See README.md beside this file.

use std::sync::Arc;
use std::time::Duration;

use adapters_aws::{DynamoDbDedupeStore, S3BlobStore};
use auditlog::{AcceptedWindow, Subscriber, SubscriberConfig, SystemClock};
use envelope::SchemaRegistry;
use lambda_runtime::{Error, run, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let bucket = lambda_env::var("AUDIT_BUCKET")?;
    let table = lambda_env::var("DEDUPE_TABLE")?;
    let defaults = SubscriberConfig::default();
    let config = SubscriberConfig {
        lease: Duration::from_secs(lambda_env::var_or(
            "DEDUPE_LEASE_SECONDS",
            defaults.lease.as_secs(),
        )?),
        retention: Duration::from_secs(
            86_400 * lambda_env::var_or("DEDUPE_RETENTION_DAYS", 90u64)?,
        ),
        max_event_bytes: lambda_env::var_or("MAX_EVENT_BYTES", defaults.max_event_bytes)?,
        zstd_level: lambda_env::var_or("ZSTD_LEVEL", defaults.zstd_level)?,
        window: AcceptedWindow::new(
            match std::env::var("ACCEPT_EARLIEST_DAY") {
                Ok(day) => AcceptedWindow::parse_earliest(&day)?,
                Err(_) => defaults.window.earliest,
            },
            Duration::from_secs(lambda_env::var_or(
                "ACCEPT_FUTURE_SKEW_SECONDS",
                defaults.window.future_skew.as_secs(),
            )?),
        )?,
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
