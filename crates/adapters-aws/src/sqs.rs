//! Dead-letter redrive on SQS: moves the messages of a dead-letter queue (the audit
//! queue's, after five failed receives; the audit rule's, when EventBridge could not
//! deliver) back onto the audit queue, where the subscriber takes them as any other.
//! A message is deleted from the dead-letter queue only after the audit queue accepted
//! its copy, so a failure in between leaves at worst a duplicate, which dedupe drops.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};
use serde::Serialize;

use crate::classify::describe;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sqs: {0}")]
pub struct QueueError(pub String);

/// What a move did, with the queues' depths before and after (SQS's approximate counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MoveReport {
    pub moved: usize,
    /// Sent but not deleted from the dead-letter queue: they come back there and are
    /// moved again by the next run (and deduplicated downstream).
    pub left: usize,
    pub from_before: u64,
    pub from_after: u64,
    pub to_before: u64,
    pub to_after: u64,
}

#[derive(Debug, Clone)]
pub struct SqsMover {
    client: Client,
}

impl SqsMover {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Messages waiting in the queue (visible and in flight), as SQS approximates them.
    pub async fn depth(&self, url: &str) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| QueueError(describe(&e)))?;
        let attrs = out.attributes();
        let n = |a: QueueAttributeName| {
            attrs
                .and_then(|m| m.get(&a))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Moves up to `max` messages from `from` to `to`, ten at a time.
    pub async fn move_messages(
        &self,
        from: &str,
        to: &str,
        max: usize,
    ) -> Result<MoveReport, QueueError> {
        let mut report = MoveReport {
            from_before: self.depth(from).await?,
            to_before: self.depth(to).await?,
            ..MoveReport::default()
        };
        while report.moved + report.left < max {
            let got = self
                .client
                .receive_message()
                .queue_url(from)
                .max_number_of_messages(10.min(i32::try_from(max).unwrap_or(10)))
                .visibility_timeout(120)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| QueueError(describe(&e)))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            let mut entries = Vec::with_capacity(messages.len());
            for (i, m) in messages.iter().enumerate() {
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(m.body().unwrap_or_default())
                    .build()
                    .map_err(|e| QueueError(e.to_string()))?;
                entries.push(entry);
            }
            let sent = self
                .client
                .send_message_batch()
                .queue_url(to)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError(describe(&e)))?;
            let mut deletes = Vec::new();
            for ok in sent.successful() {
                let Some(i) = ok
                    .id()
                    .strip_prefix('m')
                    .and_then(|i| i.parse::<usize>().ok())
                else {
                    continue;
                };
                if let Some(handle) = messages.get(i).and_then(|m| m.receipt_handle()) {
                    deletes.push(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(format!("d{i}"))
                            .receipt_handle(handle)
                            .build()
                            .map_err(|e| QueueError(e.to_string()))?,
                    );
                }
            }
            report.left += messages.len() - deletes.len();
            if deletes.is_empty() {
                continue;
            }
            let deleted = self
                .client
                .delete_message_batch()
                .queue_url(from)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(|e| QueueError(describe(&e)))?;
            report.moved += deleted.successful().len();
            report.left += deleted.failed().len();
        }
        report.from_after = self.depth(from).await?;
        report.to_after = self.depth(to).await?;
        Ok(report)
    }
}
