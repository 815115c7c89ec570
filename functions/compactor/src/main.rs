//! Wiring only: the bucket, the catalog and the worker bounds from the environment,
//! then the runtime loop around `compactor::Handler`. See README.md beside this file.

use std::sync::Arc;

use adapters_aws::{GluePartitionCatalog, S3BlobStore};
use auditlog::{CompactorConfig, PartitionCatalog};
use compactor::{Handler, Step};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let bucket = lambda_env::var("AUDIT_BUCKET")?;
    let open_days = std::env::var("COMPACT_OPEN_DAYS").is_ok_and(|v| v == "true");
    let defaults = CompactorConfig::default();
    let config = CompactorConfig {
        before: (!open_days).then(|| chrono::Utc::now().date_naive()),
        task_rows: lambda_env::var_or("COMPACT_TASK_ROWS", defaults.task_rows)?,
        unit_rows: lambda_env::var_or("COMPACT_UNIT_ROWS", defaults.unit_rows)?,
        max_part_rows: lambda_env::var_or("COMPACT_MAX_PART_ROWS", defaults.max_part_rows)?,
        integrated_only: lambda_env::var_or("COMPACT_INTEGRATED_ONLY", false)?,
        // with Object Lock: each part locked for its tenant's retention
        lock_parts_default_days: std::env::var("COMPACT_LOCK_DEFAULT_DAYS")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<u32>())
            .transpose()
            .map_err(|e| format!("COMPACT_LOCK_DEFAULT_DAYS: {e}"))?,
        ..defaults
    };
    let aws = aws_config::load_from_env().await;
    let blobs = S3BlobStore::new(aws_sdk_s3::Client::new(&aws), &bucket)
        .with_object_lock(&std::env::var("OBJECT_LOCK_MODE").unwrap_or_default())?;
    // the cross-tenant table's partitions, when the stack has one
    let catalog: Option<Arc<dyn PartitionCatalog>> =
        match (std::env::var("GLUE_DATABASE"), std::env::var("GLUE_TABLE")) {
            (Ok(database), Ok(table)) => Some(Arc::new(GluePartitionCatalog::new(
                aws_sdk_glue::Client::new(&aws),
                database,
                table,
                &bucket,
            ))),
            _ => None,
        };
    let handler = Handler {
        blobs,
        config,
        catalog,
    };
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Step>| async move {
        Ok::<_, Error>(handler.handle(event.payload).await?)
    }))
    .await
}
