//! Wiring only: runs `auditlog::Compactor` over the audit bucket on a schedule.
//! Folds closed days (before today, UTC) unless `COMPACT_OPEN_DAYS=true`.

use adapters_aws::{GluePartitionCatalog, S3BlobStore};
use auditlog::{Compactor, CompactorConfig};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let bucket = lambda_env::var("AUDIT_BUCKET")?;
    let open_days = std::env::var("COMPACT_OPEN_DAYS").is_ok_and(|v| v == "true");
    let aws = aws_config::load_from_env().await;
    let blobs = S3BlobStore::new(aws_sdk_s3::Client::new(&aws), &bucket);
    // the cross-tenant table's partitions, when the stack has one
    let catalog = match (std::env::var("GLUE_DATABASE"), std::env::var("GLUE_TABLE")) {
        (Ok(database), Ok(table)) => Some(std::sync::Arc::new(GluePartitionCatalog::new(
            aws_sdk_glue::Client::new(&aws),
            database,
            table,
            &bucket,
        ))),
        _ => None,
    };
    run(service_fn(|_event: LambdaEvent<Value>| {
        let blobs = blobs.clone();
        let catalog = catalog.clone();
        async move {
            let config = CompactorConfig {
                before: (!open_days).then(|| chrono::Utc::now().date_naive()),
                ..CompactorConfig::default()
            };
            let mut compactor = Compactor::new(blobs, config);
            if let Some(c) = catalog {
                compactor = compactor.with_catalog(c);
            }
            let r = compactor.run().await?;
            tracing::info!(?r, "compaction finished");
            Ok::<Value, Error>(json!({
                "days": r.days,
                "ingest_files_folded": r.ingest_files_folded,
                "tenant_files_written": r.tenant_files_written,
                "tenant_files_removed": r.tenant_files_removed,
                "rows_written": r.rows_written,
                "duplicates_removed": r.duplicates_removed,
            }))
        }
    }))
    .await
}
