//! Wiring only: the bucket, the leaf index table, the KMS key, the checkpoint policy and
//! the tenants' retention settings from the environment, then the runtime loop around `integrator::Handler`. See
//! README.md beside this file.

use adapters_aws::{DynamoDbLeafIndex, DynamoDbTenantDirectory, KmsCheckpointSigner, S3BlobStore};
use integrator::{Handler, Task};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use transparency::integrate::CheckpointPolicy;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let bucket = lambda_env::var("AUDIT_BUCKET")?;
    let table = lambda_env::var("LEAF_INDEX_TABLE")?;
    let key_id = lambda_env::var("LOG_SIGNING_KEY_ID")?;
    let log_name = lambda_env::var("LOG_NAME")?;
    let defaults = CheckpointPolicy::default();
    let policy = CheckpointPolicy {
        every_events: lambda_env::var_or("CHECKPOINT_EVERY_EVENTS", defaults.every_events)?,
        every: chrono::Duration::seconds(lambda_env::var_or(
            "CHECKPOINT_EVERY_SECONDS",
            defaults.every.num_seconds(),
        )?),
    };
    let default_retention =
        tenants::Retention::days(lambda_env::var_or("DEFAULT_RETENTION_DAYS", 2557u32)?)?;
    let aws = aws_config::load_from_env().await;
    let settings = DynamoDbTenantDirectory::new(
        aws_sdk_dynamodb::Client::new(&aws),
        lambda_env::var("DIRECTORY_TABLE")?,
    );
    // refuses at init a key that cannot sign Ed25519, rather than at the first checkpoint
    let signer =
        KmsCheckpointSigner::new(aws_sdk_kms::Client::new(&aws), key_id, &log_name).await?;
    let handler = Handler {
        blobs: S3BlobStore::new(aws_sdk_s3::Client::new(&aws), &bucket),
        index: DynamoDbLeafIndex::new(aws_sdk_dynamodb::Client::new(&aws), table),
        signer,
        log_name,
        policy,
    };
    let (handler, settings) = (&handler, &settings);
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let now = chrono::Utc::now();
            let report = match Task::of(&event.payload)? {
                Task::Integrate => serde_json::to_value(handler.handle(now).await?)?,
                Task::Retention => serde_json::to_value(
                    handler.retention(settings, default_retention, now).await?,
                )?,
            };
            Ok::<_, Error>(report)
        },
    ))
    .await
}
