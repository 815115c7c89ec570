//! The audit pipeline over the real AWS SDK against moto_server: producers publish to an
//! EventBridge bus, a rule matching every event routes to SQS, the test drains the queue
//! into the Lambda handler exactly as the event source mapping would (deleting what
//! succeeded, leaving failures for redelivery), and checks the Parquet objects in S3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use adapters_aws::{DynamoDbDedupeStore, EventBridgeBus, S3BlobStore};
use auditlog::faults::{Fault, FaultyBlobStore, FaultyDedupeStore, Op};
use auditlog::{
    AuditRecord, BlobStore, Clock, Compactor, CompactorConfig, DedupeStore, FixedClock,
    INGEST_PREFIX, QUARANTINE_PREFIX, Subscriber, SubscriberConfig, TenantReader, decode_parquet,
};
use auditlog_tests::{
    ThrottlingHttpClient, bus_with_audit_queue, dynamodb_client_with, new_bucket, new_dedupe_table,
    s3_client, sdk_config, unique,
};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{TimeZone, Utc};
use envelope::{
    Actor, ActorType, Detail, EventId, Metadata, OutgoingEvent, PublishError, Publisher,
    PublisherConfig, SchemaRegistry, TenantId,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

struct Stack {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    eb: aws_sdk_eventbridge::Client,
    bucket: String,
    table: String,
    queue_url: String,
    bus: String,
    clock: FixedClock,
}

impl Stack {
    async fn new() -> Self {
        let c = sdk_config().await;
        let s3 = s3_client(&c);
        let ddb = aws_sdk_dynamodb::Client::new(&c);
        let sqs = aws_sdk_sqs::Client::new(&c);
        let eb = aws_sdk_eventbridge::Client::new(&c);
        let bucket = new_bucket(&s3).await;
        let table = new_dedupe_table(&ddb).await;
        let (bus, queue_url) = bus_with_audit_queue(&c).await;
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap());
        Stack {
            s3,
            ddb,
            sqs,
            eb,
            bucket,
            table,
            queue_url,
            bus,
            clock,
        }
    }

    fn blobs(&self) -> S3BlobStore {
        S3BlobStore::new(self.s3.clone(), &self.bucket)
    }

    fn dedupe(&self) -> DynamoDbDedupeStore {
        DynamoDbDedupeStore::new(self.ddb.clone(), &self.table)
    }

    fn subscriber(&self) -> Subscriber<DynamoDbDedupeStore, S3BlobStore, FixedClock> {
        self.subscriber_with(self.dedupe(), self.blobs(), SubscriberConfig::default())
    }

    fn subscriber_with<D: DedupeStore, B: BlobStore>(
        &self,
        d: D,
        b: B,
        cfg: SubscriberConfig,
    ) -> Subscriber<D, B, FixedClock> {
        Subscriber::new(
            d,
            b,
            self.clock.clone(),
            Arc::new(SchemaRegistry::builtin().unwrap()),
            cfg,
        )
    }

    fn publisher(&self) -> Publisher<EventBridgeBus> {
        Publisher::new(
            EventBridgeBus::new(self.eb.clone(), &self.bus),
            SchemaRegistry::builtin().unwrap(),
            PublisherConfig::default(),
        )
    }

    /// Everything currently in the queue, made invisible to other receivers.
    async fn receive_all(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(1)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            out.extend(msgs);
        }
        out
    }

    /// One Lambda invocation: the received messages as an SqsEvent, through the handler;
    /// successes are deleted, failures stay for redelivery. Returns the failed ids.
    async fn invoke<D: DedupeStore, B: BlobStore, C: Clock>(
        &self,
        sub: &Subscriber<D, B, C>,
        messages: &[aws_sdk_sqs::types::Message],
    ) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = m.message_id.clone();
                r.body = m.body.clone();
                r.receipt_handle = m.receipt_handle.clone();
                r
            })
            .collect();
        let response = audit_subscriber::handle(as_delivered(&event), sub)
            .await
            .unwrap();
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for m in messages {
            if !failed.contains(m.message_id.as_ref().unwrap()) {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.clone().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        failed
    }

    async fn drain<D: DedupeStore, B: BlobStore, C: Clock>(
        &self,
        sub: &Subscriber<D, B, C>,
    ) -> Vec<String> {
        let msgs = self.receive_all().await;
        self.invoke(sub, &msgs).await
    }

    async fn ingest_rows(&self) -> Vec<AuditRecord> {
        let blobs = self.blobs();
        let mut rows = Vec::new();
        for o in blobs.list(INGEST_PREFIX).await.unwrap() {
            rows.extend(decode_parquet(blobs.get(&o.key).await.unwrap(), None).unwrap());
        }
        rows
    }

    async fn quarantined(&self) -> Vec<serde_json::Value> {
        let blobs = self.blobs();
        let mut out = Vec::new();
        for o in blobs.list(QUARANTINE_PREFIX).await.unwrap() {
            out.push(serde_json::from_slice(&blobs.get(&o.key).await.unwrap()).unwrap());
        }
        out
    }

    async fn read(&self, tenant: &str) -> Vec<AuditRecord> {
        TenantReader::new(self.blobs())
            .read(&TenantId::parse(tenant).unwrap(), None, None)
            .await
            .unwrap()
    }
}

fn event(tenant: &str, n: usize) -> OutgoingEvent {
    OutgoingEvent {
        source: "auditlog.test".into(),
        resources: vec![],
        detail: Detail {
            metadata: Metadata {
                event_id: EventId::new_v7(),
                tenant_id: TenantId::parse(tenant).unwrap(),
                event_type: if n.is_multiple_of(2) {
                    "scim.user.created".into()
                } else {
                    "app.document.shared".into()
                },
                schema_version: 1,
                occurred_at: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
                    + chrono::Duration::seconds(n as i64),
                producer: "test".into(),
                actor: Actor {
                    kind: ActorType::Idp,
                    id: "okta".into(),
                    name: Some("Okta".into()),
                },
                correlation_id: Some(format!("corr-{n}")),
                request_id: None,
                source_ip: Some("203.0.113.9".into()),
                user_agent: None,
            },
            payload: if n.is_multiple_of(2) {
                json!({"id": format!("u-{n}"), "userName": format!("user{n}@{tenant}.test"), "active": true})
            } else {
                json!({"action": "share", "target": {"type": "document", "id": format!("d-{n}")}})
            },
        },
    }
}

/// The invocation the handler gets for this SQS event: the full Lambda JSON shape
/// (as `aws_lambda_events` writes it) read into the handler's lean `SqsBatch`, as the
/// runtime does.
fn as_delivered(event: &SqsEvent) -> LambdaEvent<auditlog::SqsBatch> {
    let json = serde_json::to_string(event).unwrap();
    LambdaEvent::new(serde_json::from_str(&json).unwrap(), Context::default())
}

#[tokio::test]
async fn events_flow_from_the_bus_to_parquet_in_s3_row_by_row() {
    let st = Stack::new().await;
    let events: Vec<OutgoingEvent> = (0..25)
        .map(|n| event(["acme", "globex", "initech"][n % 3], n))
        .collect();
    let report = st.publisher().publish(&events).await.unwrap();
    assert!(report.all_accepted());
    assert_eq!(
        report.requests, 3,
        "25 entries need three PutEvents calls of at most 10"
    );

    let failed = st.drain(&st.subscriber()).await;
    assert!(failed.is_empty());
    assert!(
        st.receive_all().await.is_empty(),
        "successes were deleted from the queue"
    );

    let objects = st.blobs().list(INGEST_PREFIX).await.unwrap();
    assert_eq!(
        objects.len(),
        1,
        "one ingest object for a batch of three tenants"
    );
    assert!(objects[0].key.starts_with("ingest/dt=2026-11-21/"));
    let rows = st.ingest_rows().await;
    assert_eq!(rows.len(), 25);
    // sorted by tenant then time
    let order: Vec<(String, chrono::DateTime<Utc>)> = rows
        .iter()
        .map(|r| (r.tenant_id.to_string(), r.occurred_at))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let by_id: BTreeMap<&str, &AuditRecord> =
        rows.iter().map(|r| (r.event_id.as_str(), r)).collect();
    for (e, (_, bus_id)) in events.iter().zip(&report.accepted) {
        let m = &e.detail.metadata;
        let r = by_id[m.event_id.as_str()];
        assert_eq!(r.tenant_id, m.tenant_id);
        assert_eq!(r.event_type, m.event_type);
        assert_eq!(r.occurred_at, m.occurred_at);
        assert_eq!(r.actor_id, "okta");
        assert_eq!(r.correlation_id, m.correlation_id);
        assert_eq!(r.source, "auditlog.test");
        assert_eq!(
            &r.bus_event_id, bus_id,
            "provenance: EventBridge's id is kept, not used as key"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&r.payload).unwrap(),
            e.detail.payload
        );
        assert_eq!(r.payload_sha256, auditlog::payload_sha256(&r.payload));
    }

    // compaction in S3: tenant-day files, the ingest tier emptied, readers unchanged
    let before = st.read("acme").await;
    let rep = Compactor::new(st.blobs(), CompactorConfig::default())
        .run()
        .await
        .unwrap();
    assert_eq!(
        (
            rep.totals.tenant_files_written,
            rep.totals.ingest_files_folded
        ),
        (3, 1)
    );
    assert!(st.blobs().list(INGEST_PREFIX).await.unwrap().is_empty());
    let keys: Vec<String> = st
        .blobs()
        .list("audit/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        keys.iter().all(|k| k.contains("/dt=2026-11-21/part-")),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("audit/tenant_id=acme/"))
            .count(),
        1
    );
    assert_eq!(st.read("acme").await, before);
    assert_eq!(before.len(), 9);
}

#[tokio::test]
async fn same_event_twice_in_one_batch_and_again_in_a_later_batch() {
    let st = Stack::new().await;
    let e = event("acme", 0);
    // a producer retry: same detail, new PutEvents call, new EventBridge id
    st.publisher()
        .publish(std::slice::from_ref(&e))
        .await
        .unwrap();
    st.publisher()
        .publish(std::slice::from_ref(&e))
        .await
        .unwrap();
    let sub = st.subscriber();
    let msgs = st.receive_all().await;
    assert_eq!(msgs.len(), 2);
    assert!(st.invoke(&sub, &msgs).await.is_empty());
    st.publisher()
        .publish(std::slice::from_ref(&e))
        .await
        .unwrap();
    assert!(st.drain(&sub).await.is_empty());
    assert_eq!(st.ingest_rows().await.len(), 1);
    assert_eq!(st.read("acme").await.len(), 1);
}

#[tokio::test]
async fn replayed_a_week_later_is_recognised() {
    let st = Stack::new().await;
    let events: Vec<OutgoingEvent> = (0..5).map(|n| event("acme", n)).collect();
    st.publisher().publish(&events).await.unwrap();
    assert!(st.drain(&st.subscriber()).await.is_empty());
    // an archive replay a week later: new EventBridge ids, same event ids
    st.clock.advance(chrono::Duration::days(7));
    st.publisher().publish(&events).await.unwrap();
    let sub = st.subscriber();
    let msgs = st.receive_all().await;
    assert_eq!(msgs.len(), 5);
    assert!(st.invoke(&sub, &msgs).await.is_empty());
    assert_eq!(st.ingest_rows().await.len(), 5);
    let rows = st.read("acme").await;
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r.occurred_at.date_naive().to_string() == "2026-11-21")
    );
}

#[tokio::test]
async fn two_consumers_racing_on_the_same_events_write_one_copy() {
    let st = Stack::new().await;
    let events: Vec<OutgoingEvent> = (0..30).map(|n| event("acme", n)).collect();
    st.publisher().publish(&events).await.unwrap();
    let msgs = st.receive_all().await;
    // SQS at-least-once: both consumers got the same messages
    let (a, b) = (st.subscriber(), st.subscriber());
    let (fa, fb) = tokio::join!(st.invoke(&a, &msgs), st.invoke(&b, &msgs));
    // whatever was in progress elsewhere is retried, and then is a duplicate
    let mut retries = 0;
    while !st.receive_all().await.is_empty() || retries == 0 {
        retries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        if st.drain(&a).await.is_empty() {
            break;
        }
        assert!(retries < 5);
    }
    let _ = (fa, fb);
    let rows = st.ingest_rows().await;
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len(), 30);
    assert_eq!(rows.len(), 30, "exactly one copy of each event in S3");
}

#[tokio::test]
async fn s3_write_failing_mid_batch_is_retried_to_exactly_one_copy() {
    let st = Stack::new().await;
    // events on two days: the second day's file write fails, the first succeeds
    let mut events: Vec<OutgoingEvent> = (0..10).map(|n| event("acme", n)).collect();
    for e in events.iter_mut().skip(5) {
        e.detail.metadata.occurred_at -= chrono::Duration::days(1);
    }
    st.publisher().publish(&events).await.unwrap();
    let msgs = st.receive_all().await;
    // let the first day's PUT through, fail the second, and fail releasing its claims
    // too: the claims stay in DynamoDB, but they must never read as completed
    let blobs = FaultyBlobStore::healthy(st.blobs());
    blobs.faults().fail_where(Op::Put, |n| n == 2);
    let dedupe = FaultyDedupeStore::healthy(st.dedupe());
    dedupe.faults().fail_next(Op::Release, Fault::Fail, 1);
    let first_day_ok = st.subscriber_with(dedupe, blobs, SubscriberConfig::default());
    let failed = st.invoke(&first_day_ok, &msgs).await;
    assert_eq!(
        failed.len(),
        5,
        "the five events of the failed write are retried"
    );
    assert_eq!(st.ingest_rows().await.len(), 5);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let retry = st.receive_all().await;
    assert_eq!(retry.len(), 5);
    // the unreleased claims hold the retry back until their lease runs out...
    assert_eq!(st.invoke(&st.subscriber(), &retry).await.len(), 5);
    assert_eq!(st.ingest_rows().await.len(), 5);
    st.clock.advance(chrono::Duration::minutes(16));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let retry = st.receive_all().await;
    assert_eq!(retry.len(), 5);
    // ...then they are taken over and written: nothing acknowledged unwritten
    assert!(st.invoke(&st.subscriber(), &retry).await.is_empty());
    let rows = st.ingest_rows().await;
    assert_eq!(rows.len(), 10);
    assert_eq!(
        rows.iter()
            .map(|r| r.event_id.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        10
    );
}

#[tokio::test]
async fn s3_unreachable_bucket_means_retry_and_nothing_lost() {
    let st = Stack::new().await;
    let events: Vec<OutgoingEvent> = (0..6).map(|n| event("acme", n)).collect();
    st.publisher().publish(&events).await.unwrap();
    // a real S3 error over the wire: the bucket does not exist (yet)
    let missing = unique("missing");
    let sub = st.subscriber_with(
        st.dedupe(),
        S3BlobStore::new(st.s3.clone(), &missing),
        SubscriberConfig::default(),
    );
    let msgs = st.receive_all().await;
    assert_eq!(st.invoke(&sub, &msgs).await.len(), 6);
    st.s3.create_bucket().bucket(&missing).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(
        st.drain(&sub).await.is_empty(),
        "claims were released, so the retry is not blocked"
    );
    let blobs = S3BlobStore::new(st.s3.clone(), &missing);
    let mut rows = 0;
    for o in blobs.list(INGEST_PREFIX).await.unwrap() {
        rows += decode_parquet(blobs.get(&o.key).await.unwrap(), None)
            .unwrap()
            .len();
    }
    assert_eq!(rows, 6);
}

/// Throttling in the wire path: DynamoDB answers the claims' PutItem calls with
/// ProvisionedThroughputExceededException past the SDK's own retries; the adapter
/// classifies it, the subscriber retries the messages, and nothing is lost or written
/// without its claim.
#[tokio::test]
async fn dynamodb_throttling_means_retry_not_loss() {
    let st = Stack::new().await;
    let events: Vec<OutgoingEvent> = (0..8).map(|n| event("acme", n)).collect();
    st.publisher().publish(&events).await.unwrap();
    let c = sdk_config().await;
    // every claim's first PutItem attempts: eight claims, three SDK attempts each
    let http = ThrottlingHttpClient::new("PutItem", 24);
    let throttled = DynamoDbDedupeStore::new(dynamodb_client_with(&c, http.clone()), &st.table);
    let sub = st.subscriber_with(throttled, st.blobs(), SubscriberConfig::default());
    assert_eq!(st.drain(&sub).await.len(), 8);
    assert_eq!(
        http.left(),
        0,
        "every throttled answer went through the SDK"
    );
    assert!(
        st.ingest_rows().await.is_empty(),
        "nothing written without a claim"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(st.drain(&sub).await.is_empty());
    assert_eq!(st.ingest_rows().await.len(), 8);
    // and a throttle the SDK's retries absorb is invisible to the subscriber
    let more: Vec<OutgoingEvent> = (8..12).map(|n| event("acme", n)).collect();
    st.publisher().publish(&more).await.unwrap();
    let http = ThrottlingHttpClient::new("PutItem", 2);
    let brief = DynamoDbDedupeStore::new(dynamodb_client_with(&c, http.clone()), &st.table);
    let sub = st.subscriber_with(brief, st.blobs(), SubscriberConfig::default());
    assert!(st.drain(&sub).await.is_empty());
    assert_eq!(http.left(), 0);
    assert_eq!(st.ingest_rows().await.len(), 12);
}

#[tokio::test]
async fn dedupe_table_missing_is_a_retry_over_the_wire() {
    let st = Stack::new().await;
    st.publisher().publish(&[event("acme", 1)]).await.unwrap();
    let sub = st.subscriber_with(
        DynamoDbDedupeStore::new(st.ddb.clone(), unique("no-such-table")),
        st.blobs(),
        SubscriberConfig::default(),
    );
    assert_eq!(st.drain(&sub).await.len(), 1);
    assert!(st.ingest_rows().await.is_empty());
}

#[tokio::test]
async fn bad_messages_are_quarantined_in_s3_and_acknowledged() {
    let st = Stack::new().await;
    let good = event("acme", 1);
    let good_text = serde_json::to_value(&good.detail).unwrap();
    let wrap = |detail: serde_json::Value| {
        json!({"version": "0", "id": "x", "detail-type": "app.document.shared", "source": "legacy",
               "account": "111122223333", "time": "2026-11-21T10:00:00Z", "region": "us-east-1",
               "resources": [], "detail": detail})
        .to_string()
    };
    let mut bodies = vec!["{not json".to_owned()];
    for tenant in [
        json!("../globex"),
        json!("acme/../globex"),
        json!("tenant_id=globex"),
        json!(""),
        json!(null),
    ] {
        let mut d = good_text.clone();
        d["metadata"]["tenant_id"] = tenant;
        bodies.push(wrap(d));
    }
    let mut violating = good_text.clone();
    violating["payload"] = json!({"target": "not an object"});
    bodies.push(wrap(violating));
    let mut unknown = good_text.clone();
    unknown["metadata"]["schema_version"] = json!(7);
    bodies.push(wrap(unknown));
    for b in &bodies {
        st.sqs
            .send_message()
            .queue_url(&st.queue_url)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    let failed = st.drain(&st.subscriber()).await;
    assert!(
        failed.is_empty(),
        "permanent failures are acknowledged, not retried forever"
    );
    let q = st.quarantined().await;
    assert_eq!(q.len(), bodies.len());
    let mut codes: Vec<String> = q
        .iter()
        .map(|x| x["reason_code"].as_str().unwrap().to_owned())
        .collect();
    codes.sort();
    // a null tenant_id is as missing as an absent one
    let mut expected = vec![
        "malformed_json",
        "invalid_tenant",
        "invalid_tenant",
        "invalid_tenant",
        "invalid_tenant",
        "invalid_tenant",
        "schema_violation",
        "unknown_schema",
    ];
    expected.sort();
    assert_eq!(codes, expected);
    let bodies_back: BTreeSet<&str> = q.iter().map(|x| x["body"].as_str().unwrap()).collect();
    assert!(
        bodies.iter().all(|b| bodies_back.contains(b.as_str())),
        "raw bodies are kept"
    );
    // nothing reached any tenant's partition, least of all globex's
    assert!(st.blobs().list("audit/").await.unwrap().is_empty());
    assert!(st.blobs().list(INGEST_PREFIX).await.unwrap().is_empty());
    assert!(st.read("globex").await.is_empty());
}

#[tokio::test]
async fn oversize_events_are_refused_by_the_publisher_and_quarantined_by_the_subscriber() {
    let st = Stack::new().await;
    let mut big = event("acme", 1);
    big.detail.payload = json!({"action": "x", "details": {"pad": "y".repeat(1_100_000)}});
    let err = st
        .publisher()
        .publish(&[event("acme", 2), big.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::Oversize {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        st.receive_all().await.is_empty(),
        "nothing of the call was sent"
    );

    // an oversize body that reached the queue some other way is quarantined, not retried
    let body = json!({"version": "0", "id": "x", "detail-type": "t", "source": "s", "account": "1",
        "time": "2026-11-21T10:00:00Z", "region": "r", "resources": [], "detail": big.detail})
    .to_string();
    let mut event = SqsEvent::default();
    let mut r = SqsMessage::default();
    r.message_id = Some("big-1".into());
    r.body = Some(body);
    event.records = vec![r];
    let response = audit_subscriber::handle(as_delivered(&event), &st.subscriber())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let q = st.quarantined().await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["reason_code"], "oversize");
}

#[tokio::test]
async fn conflicting_payload_under_a_known_event_id_is_kept_in_quarantine() {
    let st = Stack::new().await;
    let e = event("acme", 1);
    st.publisher()
        .publish(std::slice::from_ref(&e))
        .await
        .unwrap();
    assert!(st.drain(&st.subscriber()).await.is_empty());
    let mut evil = e.clone();
    evil.detail.payload = json!({"action": "delete", "target": {"type": "document", "id": "d-1"}});
    st.publisher().publish(&[evil]).await.unwrap();
    assert!(st.drain(&st.subscriber()).await.is_empty());
    let q = st.quarantined().await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["reason_code"], "conflict");
    assert_eq!(q[0]["event_id"], e.detail.metadata.event_id.as_str());
    let rows = st.read("acme").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].action, "share",
        "the accepted record is never overwritten"
    );
}

#[tokio::test]
async fn event_bus_conformance_eventbridge_to_sqs() {
    let st = Stack::new().await;
    let bus = EventBridgeBus::new(st.eb.clone(), &st.bus);
    let bodies = |msgs: Vec<aws_sdk_sqs::types::Message>| {
        msgs.into_iter()
            .map(|m| m.body.unwrap())
            .collect::<Vec<_>>()
    };
    let st_ref = &st;
    auditlog_tests::conformance::event_bus(
        &bus,
        || async move { bodies(st_ref.receive_all().await) },
    )
    .await;
}

/// The tenant logs on the AWS adapters: tiles and checkpoints in S3, the leaf index in
/// DynamoDB; the compactor folds only what was integrated; a row edited in S3 is found.
#[tokio::test]
async fn accepted_events_reach_their_tenants_logs_in_s3_and_verify() {
    use adapters_aws::DynamoDbLeafIndex;
    use auditlog::integration::{BlobLog, TrustAnchor, integrate, verify_tenant};
    use transparency::checkpoint::{self, CheckpointSigner as _, LocalKey};
    use transparency::integrate::{CheckpointPolicy, Integrator};
    use transparency::verify::Problem;

    let st = Stack::new().await;
    let first: Vec<OutgoingEvent> = (0..30)
        .map(|n| event(["acme", "globex"][n % 2], n))
        .collect();
    st.publisher().publish(&first).await.unwrap();
    assert!(st.drain(&st.subscriber()).await.is_empty());
    let second: Vec<OutgoingEvent> = (30..40).map(|n| event("acme", n)).collect();
    st.publisher().publish(&second).await.unwrap();
    assert!(st.drain(&st.subscriber()).await.is_empty());

    let leaves = unique("leaves");
    DynamoDbLeafIndex::create_table(&st.ddb, &leaves)
        .await
        .unwrap();
    let index = DynamoDbLeafIndex::new(st.ddb.clone(), &leaves);
    let blobs = st.blobs();
    let store = BlobLog(&blobs);
    let key = LocalKey::generate("audit.example").unwrap();
    let integrator = Integrator {
        store: &store,
        index: &index,
        signer: &key,
        log_name: "audit.example",
        policy: CheckpointPolicy::default(),
    };
    let out = integrate(&blobs, &integrator, st.clock.now(), true)
        .await
        .unwrap();
    assert_eq!((out.files, out.added, out.tenants), (2, 40, 2));
    // a redelivered copy of the first file's events adds nothing
    st.publisher().publish(&first[..5]).await.unwrap();
    assert!(st.drain(&st.subscriber()).await.is_empty());
    let again = integrate(&blobs, &integrator, st.clock.now(), true)
        .await
        .unwrap();
    assert_eq!(again.added, 0);

    let cfg = CompactorConfig {
        integrated_only: true,
        ..CompactorConfig::default()
    };
    Compactor::new(st.blobs(), cfg).run().await.unwrap();
    assert!(st.blobs().list(INGEST_PREFIX).await.unwrap().is_empty());

    let keys = checkpoint::trusted(&[key.verifier_key().to_owned()]).unwrap();
    let anchor = TrustAnchor {
        trusted: &keys,
        log_name: "audit.example",
        pinned: None,
    };
    let acme = TenantId::parse("acme").unwrap();
    for (tenant, n) in [("acme", 25), ("globex", 15)] {
        let t = TenantId::parse(tenant).unwrap();
        let (report, pending) = verify_tenant(&blobs, &index, &anchor, &t).await.unwrap();
        assert!(
            report.ok() && pending == 0,
            "{tenant}: {:?}",
            report.findings
        );
        assert_eq!(report.rows_verified, n, "{tenant}");
    }
    // the same from the command line, over the bucket: `auditlog verify --bucket`
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("log-verifier.key");
    std::fs::write(&key_file, key.verifier_key()).unwrap();
    let cli = || {
        std::process::Command::new(auditlog_tests::cli_binary())
            .arg("--data")
            .arg(dir.path().join("unused"))
            .args(["verify", "--tenant", "acme", "--bucket", &st.bucket])
            .args([
                "--leaf-table",
                &leaves,
                "--log-name",
                "audit.example",
                "--key",
            ])
            .arg(&key_file)
            .env("AWS_ENDPOINT_URL", &auditlog_tests::moto().endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let o = cli();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("rows verified        25"), "{out}");
    // an edit of acme's compacted file in S3
    let part = blobs.list("audit/tenant_id=acme/").await.unwrap()[0]
        .key
        .clone();
    let mut rows = decode_parquet(blobs.get(&part).await.unwrap(), Some(&acme)).unwrap();
    rows[3].payload = r#"{"edited":true}"#.into();
    let bytes = auditlog::encode_parquet(&rows, auditlog::Tier::Tenant, 3).unwrap();
    blobs.put(&part, bytes.into()).await.unwrap();
    let (report, _) = verify_tenant(&blobs, &index, &anchor, &acme).await.unwrap();
    let problems: Vec<Problem> = report.findings.iter().map(|f| f.problem).collect();
    assert_eq!(problems, vec![Problem::Modified], "{:?}", report.findings);
    let o = cli();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("MODIFIED"), "{out}");
    // the same with the bucket, leaf index and log name from a stack's outputs
    let outputs = dir.path().join("outputs.json");
    std::fs::write(
        &outputs,
        serde_json::json!({"AuditBucketName": st.bucket, "LeafIndexTableName": leaves,
            "LogName": "audit.example"})
        .to_string(),
    )
    .unwrap();
    let o = std::process::Command::new(auditlog_tests::cli_binary())
        .arg("--stack-outputs")
        .arg(&outputs)
        .args(["verify", "--tenant", "acme", "--key"])
        .arg(&key_file)
        .env("AWS_ENDPOINT_URL", &auditlog_tests::moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("MODIFIED"), "{out}");
}

/// S3 Object Lock per object following each tenant's retention: the compactor locks each
/// part it writes until the day after the tenant's retention would remove it (the
/// tenant's days from the published snapshot, the default for the others).
#[tokio::test]
async fn compacted_parts_are_locked_for_their_tenants_retention() {
    use auditlog::retention_snapshot::RetentionSnapshot;
    use auditlog_tests::audit_http::{at, record};
    let c = auditlog_tests::sdk_config().await;
    let s3 = auditlog_tests::s3_client(&c);
    let bucket = auditlog_tests::unique("locked");
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let blobs = Arc::new(
        adapters_aws::S3BlobStore::new(s3.clone(), &bucket)
            .with_object_lock("GOVERNANCE")
            .unwrap(),
    );
    let rows = vec![
        record("acme", "l-1", at(20, 10), "u-ada"),
        record("globex", "l-2", at(20, 20), "u-eve"),
    ];
    auditlog::BlobStore::put(
        blobs.as_ref(),
        &auditlog::ingest_object_key(rows[0].occurred_at.date_naive(), &rows),
        auditlog::encode_parquet(&rows, auditlog::Tier::Ingest, 1)
            .unwrap()
            .into(),
    )
    .await
    .unwrap();
    let mut snapshot = RetentionSnapshot::default();
    snapshot.tenants.insert("acme".into(), 90);
    snapshot.publish(blobs.as_ref()).await.unwrap();
    let cfg = CompactorConfig {
        lock_parts_default_days: Some(365),
        ..CompactorConfig::default()
    };
    Compactor::new(blobs.clone(), cfg).run().await.unwrap();
    let day = rows[0].occurred_at.date_naive();
    for (tenant, days) in [("acme", 90u64), ("globex", 365)] {
        let parts =
            auditlog::BlobStore::list(blobs.as_ref(), &format!("audit/tenant_id={tenant}/"))
                .await
                .unwrap();
        assert_eq!(parts.len(), 1, "{tenant}: {parts:?}");
        // HeadObject: this moto answers GetObjectRetention with the object itself
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(&parts[0].key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode,
            Some(aws_sdk_s3::types::ObjectLockMode::Governance)
        );
        let until = head.object_lock_retain_until_date.unwrap().secs();
        let want = (day + chrono::Days::new(days + 1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp();
        assert_eq!(until, want, "{tenant}");
    }
    // an unknown mode is refused, not ignored
    assert!(
        adapters_aws::S3BlobStore::new(s3, &bucket)
            .with_object_lock("FOREVER")
            .is_err()
    );
}
