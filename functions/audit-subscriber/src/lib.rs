//! The audit subscriber's Lambda handler: SQS batch in, `batchItemFailures` out. All the
//! logic is `auditlog::Subscriber`; this maps the SQS event shape onto it and back, and
//! builds the subscriber as deployed (`deployed`), which the redrive function reuses.

use std::sync::Arc;
use std::time::Duration;

use adapters_aws::{DynamoDbDedupeStore, S3BlobStore};
use auditlog::{
    AcceptedWindow, BlobStore, Clock, DedupeStore, SqsBatch, Subscriber, SubscriberConfig,
    SystemClock,
};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use envelope::SchemaRegistry;
use lambda_runtime::{Error, LambdaEvent};

/// The subscriber as the stack runs it.
pub type Deployed = Subscriber<DynamoDbDedupeStore, S3BlobStore, SystemClock>;

/// The subscriber from the environment (README.md beside this file): the bucket, the
/// dedupe table, the accepted window, and the deployment's schemas under
/// `SCHEMAS_PREFIX` in the bucket, read once at start-up.
pub async fn deployed(aws: &aws_config::SdkConfig) -> anyhow::Result<Deployed> {
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
    let blobs = S3BlobStore::new(aws_sdk_s3::Client::new(aws), bucket);
    let mut registry = SchemaRegistry::builtin()?;
    if let Ok(prefix) = std::env::var("SCHEMAS_PREFIX")
        && !prefix.is_empty()
    {
        let added = auditlog::load_schemas(&blobs, &prefix, &mut registry).await?;
        tracing::info!(schemas = added.len(), prefix, "deployment schemas loaded");
    }
    Ok(Subscriber::new(
        DynamoDbDedupeStore::new(aws_sdk_dynamodb::Client::new(aws), table),
        blobs,
        SystemClock,
        Arc::new(registry),
        config,
    ))
}

/// Handles one SQS batch. Messages to retry are returned as batch item failures
/// (the event source mapping must enable ReportBatchItemFailures). The event is read as
/// `SqsBatch` (message ids and bodies only), not the full `aws_lambda_events` shape.
pub async fn handle<D: DedupeStore, B: BlobStore, C: Clock>(
    event: LambdaEvent<SqsBatch>,
    subscriber: &Subscriber<D, B, C>,
) -> Result<SqsBatchResponse, Error> {
    let (messages, anonymous) = event.payload.into_messages();
    let outcome = subscriber.handle(&messages).await;
    let s = outcome.stats;
    tracing::info!(
        received = s.received,
        written = s.written,
        duplicates = s.duplicates,
        conflicts = s.conflicts,
        quarantined = s.quarantined,
        retried = s.retried,
        files = s.files,
        bytes = s.bytes,
        "audit batch processed"
    );
    if anonymous && !outcome.failed_message_ids.is_empty() {
        // A failure we cannot name can only be retried by failing the whole batch;
        // dedupe makes the redelivery of the rest harmless.
        return Err("a message without a messageId needs a retry; failing the whole batch".into());
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed_message_ids
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use auditlog::faults::FaultyBlobStore;
    use auditlog::memory::{MemoryBlobStore, MemoryDedupeStore};
    use auditlog::{SqsRecord, SubscriberConfig, SystemClock};
    use lambda_runtime::Context;

    type Blobs = Arc<FaultyBlobStore<MemoryBlobStore>>;

    fn subscriber(blobs: Blobs) -> Subscriber<Arc<MemoryDedupeStore>, Blobs, SystemClock> {
        Subscriber::new(
            Arc::new(MemoryDedupeStore::default()),
            blobs,
            SystemClock,
            Arc::new(envelope::SchemaRegistry::builtin().unwrap()),
            SubscriberConfig::default(),
        )
    }

    fn record(id: Option<&str>, body: &str) -> SqsRecord {
        SqsRecord {
            message_id: id.map(str::to_owned),
            body: Some(body.to_owned()),
        }
    }

    #[tokio::test]
    async fn failures_are_reported_by_message_id() {
        let blobs = Arc::new(FaultyBlobStore::healthy(MemoryBlobStore::default()));
        let sub = subscriber(blobs.clone());
        let event = SqsBatch {
            records: vec![record(Some("m-1"), "not json"), record(Some("m-2"), "{}")],
        };
        // the quarantine write of the first fails: only it is retried
        blobs.fail_next_puts(1);
        let r = handle(LambdaEvent::new(event, Context::default()), &sub)
            .await
            .unwrap();
        let ids: Vec<&str> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["m-1"]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["batchItemFailures"][0]["itemIdentifier"], "m-1",
            "the shape Lambda expects"
        );
    }

    #[tokio::test]
    async fn an_unnamed_failure_fails_the_whole_batch() {
        let blobs = Arc::new(FaultyBlobStore::healthy(MemoryBlobStore::default()));
        let sub = subscriber(blobs.clone());
        let event = SqsBatch {
            records: vec![record(None, "not json")],
        };
        blobs.fail_next_puts(1);
        assert!(
            handle(LambdaEvent::new(event, Context::default()), &sub)
                .await
                .is_err()
        );
    }
}
