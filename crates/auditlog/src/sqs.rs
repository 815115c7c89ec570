//! The SQS event Lambda hands the subscriber, reduced to what it reads: each record's
//! `messageId` and `body`. Deserialising into this skips the rest of every record
//! (attributes, message attributes, md5, ARNs) instead of building it, which is a
//! measurable part of a 6 MB batch (see docs/perf.md).

use serde::Deserialize;

use crate::subscriber::InboundMessage;

/// `{"Records": [...]}` as delivered by an SQS event source mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SqsRecord {
    #[serde(rename = "messageId", default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

impl SqsBatch {
    /// The batch as subscriber messages. A record without a `messageId` gets a
    /// placeholder (and `true` is returned): its failure cannot be reported on its own.
    pub fn into_messages(self) -> (Vec<InboundMessage>, bool) {
        let mut anonymous = false;
        let messages = self
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let message_id = r.message_id.unwrap_or_else(|| {
                    anonymous = true;
                    format!("missing-message-id-{i}")
                });
                InboundMessage {
                    message_id,
                    body: r.body.unwrap_or_default(),
                }
            })
            .collect();
        (messages, anonymous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record shape from the Lambda developer guide's SQS example, with every field.
    const LAMBDA_SQS_EVENT: &str = r#"{
      "Records": [
        {
          "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
          "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
          "body": "{\"id\":\"x\"}",
          "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185"
          },
          "messageAttributes": {"k": {"stringValue": "v", "dataType": "String"}},
          "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
          "eventSource": "aws:sqs",
          "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
          "awsRegion": "us-east-2"
        },
        {"body": "second"}
      ]
    }"#;

    #[test]
    fn reads_id_and_body_of_the_lambda_shape() {
        let batch: SqsBatch = serde_json::from_str(LAMBDA_SQS_EVENT).unwrap();
        let (messages, anonymous) = batch.into_messages();
        assert_eq!(
            messages[0].message_id,
            "059f36b4-87a3-44ab-83d2-661975830a7d"
        );
        assert_eq!(messages[0].body, r#"{"id":"x"}"#);
        assert_eq!(messages[1].message_id, "missing-message-id-1");
        assert_eq!(messages[1].body, "second");
        assert!(anonymous);
    }

    #[test]
    fn agrees_with_aws_lambda_events() {
        let full: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(LAMBDA_SQS_EVENT).unwrap();
        let lean: SqsBatch = serde_json::from_str(LAMBDA_SQS_EVENT).unwrap();
        assert_eq!(full.records.len(), lean.records.len());
        for (f, l) in full.records.iter().zip(&lean.records) {
            assert_eq!(f.message_id, l.message_id);
            assert_eq!(f.body, l.body);
        }
    }
}
