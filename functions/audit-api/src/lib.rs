//! The audit API Lambdas' logic, runnable without the Lambda runtime: the router of
//! crates/audit-api over S3 (history and exports), DynamoDB (the tenant directory in the
//! SCIM table) and EventBridge (its own audit events), with big exports queued on SQS
//! for the export worker (`handle_export_jobs`).

use std::sync::Arc;

use async_trait::async_trait;
use audit_api::{AuditApi, AuditApiParts, ExportJob, ExportQueue, JobState};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use axum::body::Body;
use axum::http::{Request, Response};
use tower::ServiceExt;

/// Queued exports as SQS messages (the job as JSON).
pub struct SqsExportQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsExportQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl ExportQueue for SqsExportQueue {
    async fn submit(&self, job: &ExportJob) -> Result<(), String> {
        let body = serde_json::to_string(job).map_err(|e| e.to_string())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| format!("queueing the export: {e}"))?;
        Ok(())
    }
}

/// What the functions read from their environment.
pub struct Settings {
    pub bucket: String,
    pub directory_table: String,
    pub bus: String,
    pub export_queue_url: Option<String>,
    /// The tenant logs' leaf index (None: the log endpoints answer 404).
    pub leaf_index_table: Option<String>,
    /// The first part of each tenant log's origin (as the integrator signs it).
    pub log_name: String,
    pub seal_key: Vec<u8>,
    pub viewer_secret: Option<Vec<u8>>,
    pub frame_ancestors: String,
    pub poll_lag_secs: u64,
    pub inline_export_bytes: u64,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            bucket: lambda_env::var("AUDIT_BUCKET")?,
            directory_table: lambda_env::var("DIRECTORY_TABLE")?,
            bus: lambda_env::var("EVENT_BUS_NAME")?,
            export_queue_url: std::env::var("EXPORT_QUEUE_URL").ok(),
            leaf_index_table: std::env::var("LEAF_INDEX_TABLE")
                .ok()
                .filter(|t| !t.is_empty()),
            log_name: lambda_env::var_or("LOG_NAME", "auditlog".to_owned())?,
            seal_key: lambda_env::var("AUDIT_SEAL_KEY")?.into_bytes(),
            viewer_secret: std::env::var("VIEWER_TOKEN_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(String::into_bytes),
            frame_ancestors: lambda_env::var_or("VIEWER_FRAME_ANCESTORS", "'self'".to_owned())?,
            poll_lag_secs: lambda_env::var_or("POLL_LAG_SECONDS", 180)?,
            inline_export_bytes: lambda_env::var_or(
                "INLINE_EXPORT_BYTES",
                audit_api::INLINE_EXPORT_BYTES,
            )?,
        })
    }
}

/// The API over the deployed stores.
pub fn deployed(aws: &aws_config::SdkConfig, s: Settings) -> anyhow::Result<Arc<AuditApi>> {
    let blobs = Arc::new(adapters_aws::S3BlobStore::new(
        aws_sdk_s3::Client::new(aws),
        &s.bucket,
    ));
    let directory = Arc::new(adapters_aws::DynamoDbTenantDirectory::new(
        aws_sdk_dynamodb::Client::new(aws),
        &s.directory_table,
    ));
    let publisher = envelope::Publisher::new(
        adapters_aws::EventBridgeBus::new(aws_sdk_eventbridge::Client::new(aws), s.bus),
        envelope::SchemaRegistry::builtin()?,
        envelope::PublisherConfig::default(),
    );
    let queue: Option<Arc<dyn ExportQueue>> = s.export_queue_url.map(|url| {
        Arc::new(SqsExportQueue::new(aws_sdk_sqs::Client::new(aws), url)) as Arc<dyn ExportQueue>
    });
    Ok(AuditApi::new(AuditApiParts {
        blobs: blobs.clone(),
        directory: directory.clone(),
        redeemed: directory,
        exports: blobs,
        queue,
        trail: Arc::new(publisher),
        clock: Arc::new(auditlog::SystemClock),
        seal: history::SealKey::new(&s.seal_key)
            .map_err(|e| anyhow::anyhow!("AUDIT_SEAL_KEY: {e}"))?,
        viewer_secret: s.viewer_secret,
        history: history::HistoryConfig {
            poll_lag: std::time::Duration::from_secs(s.poll_lag_secs),
            ..history::HistoryConfig::default()
        },
        inline_export_bytes: s.inline_export_bytes,
        frame_ancestors: s.frame_ancestors,
        // the stack's integrator keeps the tenant logs; without the table, the log
        // endpoints answer 404
        logs: s
            .leaf_index_table
            .map(|table| audit_api::proofs::TenantLogs {
                leaves: Arc::new(adapters_aws::DynamoDbLeafIndex::new(
                    aws_sdk_dynamodb::Client::new(aws),
                    table,
                )),
                log_name: s.log_name.clone(),
            }),
    }))
}

/// Serves one HTTP request through the router. Never fails: errors are JSON responses.
pub async fn handle<B>(router: &axum::Router, req: Request<B>) -> Response<Body>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    match router.clone().oneshot(req.map(Body::new)).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Runs queued export jobs; a job that failed (its status says why) or could not be
/// read is returned to the queue, which retries it and then dead-letters it.
pub async fn handle_export_jobs(api: &AuditApi, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let job: Result<ExportJob, _> =
            serde_json::from_str(record.body.as_deref().unwrap_or_default());
        let ok = match job {
            Ok(job) => api.run_export(&job).await.status == JobState::Succeeded,
            Err(e) => {
                tracing::error!(message = %id, error = %e, "not an export job");
                false
            }
        };
        if !ok {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
