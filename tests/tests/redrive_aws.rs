//! The redrive function over the real SDKs against moto_server: quarantined messages
//! come back through the subscriber once their schema is added under the bucket's
//! schema prefix, and both dead-letter queues go back onto the audit queue, with the
//! depths before and after.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use adapters_aws::{DynamoDbDedupeStore, S3BlobStore, SqsMover};
use auditlog::{
    BlobStore, FixedClock, InboundMessage, QUARANTINE_PREFIX, Subscriber, SubscriberConfig,
    TenantReader, load_schemas,
};
use auditlog_tests::{new_bucket, new_dedupe_table, s3_client, sdk_config, unique};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use envelope::{SchemaRegistry, TenantId};
use redrive::{Queues, Request, Response};
use serde_json::json;

fn event(n: usize, event_type: &str, payload: serde_json::Value) -> String {
    json!({
        "version": "0", "id": format!("bus-{n}"), "detail-type": event_type, "source": "billing",
        "account": "111122223333", "time": "2026-11-20T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"metadata": {
            "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{n:012}"), "tenant_id": "acme",
            "event_type": event_type, "schema_version": 1,
            "occurred_at": "2026-11-20T10:00:00Z", "producer": "billing",
            "actor": {"type": "service", "id": "billing"}},
            "payload": payload}
    })
    .to_string()
}

async fn queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(unique("q"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

struct Rig {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    ddb: aws_sdk_dynamodb::Client,
    bucket: String,
    table: String,
    queues: Queues,
}

impl Rig {
    async fn new() -> Self {
        let c = sdk_config().await;
        let s3 = s3_client(&c);
        let sqs = aws_sdk_sqs::Client::new(&c);
        let ddb = aws_sdk_dynamodb::Client::new(&c);
        let bucket = new_bucket(&s3).await;
        let table = new_dedupe_table(&ddb).await;
        let queues = Queues {
            mover: SqsMover::new(sqs.clone()),
            audit_queue_url: queue(&sqs).await,
            audit_dlq_url: queue(&sqs).await,
            rule_dlq_url: queue(&sqs).await,
        };
        Rig {
            s3,
            sqs,
            ddb,
            bucket,
            table,
            queues,
        }
    }

    fn blobs(&self) -> S3BlobStore {
        S3BlobStore::new(self.s3.clone(), &self.bucket)
    }

    /// The subscriber as deployed: built-in schemas plus those under `schemas/`.
    async fn subscriber(&self) -> Subscriber<DynamoDbDedupeStore, S3BlobStore, FixedClock> {
        let mut registry = SchemaRegistry::builtin().unwrap();
        load_schemas(&self.blobs(), "schemas/", &mut registry)
            .await
            .unwrap();
        Subscriber::new(
            DynamoDbDedupeStore::new(self.ddb.clone(), &self.table),
            self.blobs(),
            FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()),
            Arc::new(registry),
            SubscriberConfig::default(),
        )
    }

    async fn rows(&self) -> usize {
        TenantReader::new(self.blobs())
            .read(&TenantId::parse("acme").unwrap(), None, None)
            .await
            .unwrap()
            .len()
    }
}

#[tokio::test]
async fn quarantined_messages_come_back_once_their_schema_is_in_the_bucket() {
    let rig = Rig::new().await;
    let sub = rig.subscriber().await;
    let messages: Vec<InboundMessage> = (0..3)
        .map(|n| InboundMessage {
            message_id: format!("m{n}"),
            body: event(n, "billing.invoice.paid", json!({"amount": n})),
        })
        .collect();
    let out = sub.handle(&messages).await;
    assert_eq!(out.stats.quarantined, 3);
    assert_eq!(rig.rows().await, 0);
    // the team adds its schema under the deployment's prefix; a fresh start loads it
    rig.blobs()
        .put(
            "schemas/billing.invoice.paid.v1.json",
            Bytes::from_static(br#"{"type": "object", "required": ["amount"]}"#),
        )
        .await
        .unwrap();
    let sub = rig.subscriber().await;
    let request: Request =
        serde_json::from_value(json!({"source": "quarantine", "reason": "unknown_schema"}))
            .unwrap();
    let Response::Quarantine(r) = redrive::handle(request.clone(), &sub, &rig.queues)
        .await
        .unwrap()
    else {
        panic!("a quarantine report")
    };
    assert_eq!((r.selected, r.accepted, r.removed), (3, 3, 3), "{r:?}");
    assert_eq!(rig.rows().await, 3);
    assert!(
        rig.blobs()
            .list(QUARANTINE_PREFIX)
            .await
            .unwrap()
            .is_empty()
    );
    // twice changes nothing
    let Response::Quarantine(r) = redrive::handle(request, &sub, &rig.queues).await.unwrap() else {
        panic!("a quarantine report")
    };
    assert_eq!((r.selected, r.accepted), (0, 0));
    assert_eq!(rig.rows().await, 3);
}

#[tokio::test]
async fn both_dead_letter_queues_go_back_onto_the_audit_queue() {
    let rig = Rig::new().await;
    let send = |url: String, body: String| {
        let sqs = rig.sqs.clone();
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    };
    for n in 0..13 {
        let body = event(100 + n, "app.invoice.viewed", json!({"action": "view"}));
        send(rig.queues.audit_dlq_url.clone(), body).await;
    }
    for n in 0..2 {
        let body = event(200 + n, "app.invoice.viewed", json!({"action": "view"}));
        send(rig.queues.rule_dlq_url.clone(), body).await;
    }
    let sub = rig.subscriber().await;
    let Response::Queue(a) = redrive::handle(Request::AuditDlq { max: 1000 }, &sub, &rig.queues)
        .await
        .unwrap()
    else {
        panic!("a queue report")
    };
    assert_eq!(
        (
            a.moved,
            a.left,
            a.from_before,
            a.from_after,
            a.to_before,
            a.to_after
        ),
        (13, 0, 13, 0, 0, 13)
    );
    let Response::Queue(b) = redrive::handle(Request::RuleDlq { max: 1000 }, &sub, &rig.queues)
        .await
        .unwrap()
    else {
        panic!("a queue report")
    };
    assert_eq!(
        (b.moved, b.from_before, b.from_after, b.to_after),
        (2, 2, 0, 15)
    );
    // and the subscriber takes them from the audit queue like any other message
    let mut received = Vec::new();
    loop {
        let got = rig
            .sqs
            .receive_message()
            .queue_url(&rig.queues.audit_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        received.extend(got.into_iter().map(|m| InboundMessage {
            message_id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        }));
    }
    assert_eq!(received.len(), 15);
    let out = sub.handle(&received).await;
    assert_eq!(out.stats.written, 15);
    assert_eq!(rig.rows().await, 15);
    // a bounded move takes only that many
    for n in 0..5 {
        let body = event(300 + n, "app.invoice.viewed", json!({"action": "view"}));
        send(rig.queues.audit_dlq_url.clone(), body).await;
    }
    let Response::Queue(c) = redrive::handle(Request::AuditDlq { max: 2 }, &sub, &rig.queues)
        .await
        .unwrap()
    else {
        panic!("a queue report")
    };
    assert_eq!((c.moved, c.from_after), (2, 3));
}
