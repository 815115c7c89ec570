//! The redrive Lambda's handler: an operator's request to bring back what could not be
//! accepted, once its cause is fixed.
//!
//! - `{"source": "quarantine", "reason": "unknown_schema", "from": "2026-11-01", "to": ...}`
//!   submits the selected quarantine records through the subscriber as deployed
//!   (`auditlog::quarantine::redrive`): accepted or already stored leaves quarantine,
//!   what still fails stays with its current reason.
//! - `{"source": "audit_dlq"}` and `{"source": "rule_dlq"}` move the audit queue's
//!   dead-letter queue, or the audit rule's, back onto the audit queue (at most `max`
//!   messages), with the queues' depths before and after.
//!
//! `main.rs` is wiring only.

use adapters_aws::{MoveReport, QueueError, SqsMover};
use auditlog::quarantine::{self, QuarantineError, RedriveReport, Selection};
use auditlog::{BlobStore, Clock, DedupeStore, Subscriber};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Request {
    Quarantine {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        from: Option<NaiveDate>,
        #[serde(default)]
        to: Option<NaiveDate>,
    },
    AuditDlq {
        #[serde(default = "default_max")]
        max: usize,
    },
    RuleDlq {
        #[serde(default = "default_max")]
        max: usize,
    },
}

fn default_max() -> usize {
    100_000
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Quarantine(RedriveReport),
    Queue(MoveReport),
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Where dead letters go back to.
pub struct Queues {
    pub mover: SqsMover,
    pub audit_queue_url: String,
    pub audit_dlq_url: String,
    pub rule_dlq_url: String,
}

pub async fn handle<D: DedupeStore, B: BlobStore + Clone, C: Clock>(
    request: Request,
    subscriber: &Subscriber<D, B, C>,
    queues: &Queues,
) -> Result<Response, RedriveError> {
    let response = match request {
        Request::Quarantine { reason, from, to } => {
            let selection = Selection { reason, from, to };
            let blobs = subscriber.blobs().clone();
            Response::Quarantine(quarantine::redrive(subscriber, &blobs, &selection, 2000).await?)
        }
        Request::AuditDlq { max } => Response::Queue(
            queues
                .mover
                .move_messages(&queues.audit_dlq_url, &queues.audit_queue_url, max)
                .await?,
        ),
        Request::RuleDlq { max } => Response::Queue(
            queues
                .mover
                .move_messages(&queues.rule_dlq_url, &queues.audit_queue_url, max)
                .await?,
        ),
    };
    tracing::info!(?response, "redrive done");
    Ok(response)
}
