//! Export jobs. `POST /v1/exports` answers at once when the files to read are small
//! (the export runs inside the request); otherwise it records a queued job and hands
//! it to the job runner (a task beside `serve`, an SQS queue and a worker on AWS). A
//! job's status lives next to its file, under the tenant's own export prefix, so an
//! export id of another tenant names nothing the caller can reach.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::{Actor, TenantId};
use serde::{Deserialize, Serialize};

use history::{EventQuery, ExportFormat};

pub const EXPORTS_PREFIX: &str = "exports/";

/// What to export, for whom; what a queued job carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: String,
    pub tenant: TenantId,
    pub query: EventQuery,
    pub format: ExportFormat,
    pub requested_by: Actor,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// What `GET /v1/exports/{id}` shows (plus `download_url` once it succeeded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportStatus {
    pub id: String,
    pub status: JobState,
    pub format: ExportFormat,
    pub query: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExportStatus {
    pub fn of(job: &ExportJob, status: JobState) -> Self {
        Self {
            id: job.id.clone(),
            status,
            format: job.format,
            query: job
                .query
                .to_pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            rows: None,
            created_at: job.created_at,
            finished_at: None,
            error: None,
        }
    }
}

/// `exports/tenant_id=<t>/<id>.json`: a job's status.
pub fn status_key(tenant: &TenantId, id: &str) -> String {
    format!("{EXPORTS_PREFIX}tenant_id={tenant}/{id}.json")
}

/// `exports/tenant_id=<t>/<id>.<csv|ndjson>`: a job's file.
pub fn file_key(tenant: &TenantId, id: &str, format: ExportFormat) -> String {
    format!(
        "{EXPORTS_PREFIX}tenant_id={tenant}/{id}.{}",
        format.extension()
    )
}

/// An export id as a client sends it back: only our own UUIDs, so it can never be a
/// path.
pub fn parse_export_id(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id)
        .ok()
        .filter(|_| id.len() == 36)
        .map(|u| u.hyphenated().to_string())
}

/// Where queued jobs go on AWS (an SQS queue that the export worker drains).
#[async_trait]
pub trait ExportQueue: Send + Sync {
    async fn submit(&self, job: &ExportJob) -> Result<(), String>;
}
