//! The audit-api and audit-export Lambdas' handlers on moto, wired as deployed: the
//! API's own events go through EventBridge and the audit queue into the audit log (and
//! then show in the tenant's history), and a big export goes through the export queue
//! to the worker.

use std::sync::Arc;

use audit_api_fn::{Settings, deployed, handle, handle_export_jobs};
use auditlog::{Subscriber, SubscriberConfig, SystemClock};
use auditlog_tests::audit_http::{at, record};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tenants::{Credential, Scope, TenantDirectory};

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let res = handle(router, req).await;
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(msgs);
    }
    out
}

fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id.clone();
            r.body = m.body.clone();
            r
        })
        .collect();
    event
}

#[tokio::test]
async fn the_deployed_audit_api_records_its_reads_and_exports_through_the_queue() {
    let c = auditlog_tests::sdk_config().await;
    let s3 = auditlog_tests::s3_client(&c);
    let bucket = auditlog_tests::new_bucket(&s3).await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = auditlog_tests::new_scim_table(&ddb).await;
    let dedupe_table = auditlog_tests::new_dedupe_table(&ddb).await;
    let leaf_table = auditlog_tests::unique("leaves");
    adapters_aws::DynamoDbLeafIndex::create_table(&ddb, &leaf_table)
        .await
        .unwrap();
    let (bus, audit_queue) = auditlog_tests::bus_with_audit_queue(&c).await;
    let sqs = aws_sdk_sqs::Client::new(&c);
    let export_queue = sqs
        .create_queue()
        .queue_name(auditlog_tests::unique("exports"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let token = "audit_lambda_test_token_0123456789";
    adapters_aws::DynamoDbTenantDirectory::new(ddb.clone(), &table)
        .put_credential(&Credential::with_scopes(
            token,
            envelope::TenantId::parse("acme").unwrap(),
            "splunk",
            vec![Scope::AuditRead, Scope::AuditExport],
            chrono::Utc::now(),
        ))
        .await
        .unwrap();
    let blobs = adapters_aws::S3BlobStore::new(s3.clone(), &bucket);
    let rows: Vec<_> = (0..30)
        .map(|i| record("acme", &format!("l-{i}"), at(21, i), "u-ada"))
        .collect();
    auditlog::BlobStore::put(
        &blobs,
        &auditlog::ingest_object_key(rows[0].occurred_at.date_naive(), &rows),
        auditlog::encode_parquet(&rows, auditlog::Tier::Ingest, 1)
            .unwrap()
            .into(),
    )
    .await
    .unwrap();

    let api = deployed(
        &c,
        Settings {
            bucket: bucket.clone(),
            directory_table: table,
            bus,
            export_queue_url: Some(export_queue.clone()),
            seal_key: b"a-sealing-key-for-the-lambda-test-0123".to_vec(),
            viewer_secret: None,
            frame_ancestors: "'self'".into(),
            poll_lag_secs: 180,
            // every export goes through the queue
            inline_export_bytes: 0,
            leaf_index_table: Some(leaf_table.clone()),
            log_name: "audit.lambda.test".into(),
        },
    )
    .unwrap();
    let router = audit_api::router(api.clone());

    // before the integrator has run there is no log to prove anything into
    let (status, _) = call(&router, "GET", "/v1/log/checkpoint", token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // the integrator's run, over the same bucket and leaf index table
    let log_key = transparency::checkpoint::LocalKey::generate("audit.lambda.test").unwrap();
    let integrator = integrator::Handler {
        blobs: adapters_aws::S3BlobStore::new(s3.clone(), &bucket),
        index: adapters_aws::DynamoDbLeafIndex::new(ddb.clone(), &leaf_table),
        signer: log_key.clone(),
        log_name: "audit.lambda.test".into(),
        policy: transparency::integrate::CheckpointPolicy::default(),
    };
    let run = integrator.handle(chrono::Utc::now()).await.unwrap();
    assert_eq!((run.files, run.added, run.checkpoints), (1, 30, 1));
    let (status, page) = call(&router, "GET", "/v1/events?limit=1", token, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let id = page["events"][0]["event_id"].as_str().unwrap().to_owned();
    let (status, proof) = call(
        &router,
        "GET",
        &format!("/v1/log/events/{id}/proof"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let hash = |v: &Value| transparency::Hash::parse_hash(v.as_str().unwrap()).unwrap();
    let path: Vec<_> = proof["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    transparency::proof::verify_inclusion(
        &path,
        proof["tree_size"].as_u64().unwrap(),
        hash(&proof["root_hash"]),
        proof["leaf_index"].as_u64().unwrap(),
        hash(&proof["leaf_hash"]),
    )
    .unwrap();
    let keys = transparency::checkpoint::trusted(&[
        transparency::checkpoint::CheckpointSigner::verifier_key(&log_key).to_owned(),
    ])
    .unwrap();
    let origin = transparency::checkpoint::origin(
        "audit.lambda.test",
        &envelope::TenantId::parse("acme").unwrap(),
    );
    let signed = transparency::checkpoint::open(
        proof["checkpoint"].as_str().unwrap().as_bytes(),
        &keys,
        &origin,
    )
    .unwrap();
    assert_eq!(signed.size, 30);

    let (status, page) = call(
        &router,
        "GET",
        "/v1/events?actor=u-ada&limit=5",
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 5);
    // no viewer secret configured: sessions are off, clearly
    let (status, body) = call(
        &router,
        "POST",
        "/v1/viewer/session",
        "",
        Some(json!({"viewer_token": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "viewer_disabled");

    // an export: queued, run by the worker from the queue's message
    let (status, job) = call(
        &router,
        "POST",
        "/v1/exports",
        token,
        Some(json!({"format": "ndjson"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let messages = receive(&sqs, &export_queue).await;
    assert_eq!(messages.len(), 1);
    let response = handle_export_jobs(&api, sqs_event(&messages)).await;
    assert!(response.batch_item_failures.is_empty());
    let (status, done) = call(
        &router,
        "GET",
        &format!("/v1/exports/{}", job["id"].as_str().unwrap()),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rows"], 30);
    assert!(
        done["download_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1")
    );
    // a message that is not a job goes back to the queue (and on to its DLQ)
    let mut junk = SqsEvent::default();
    let mut m = SqsMessage::default();
    m.message_id = Some("junk-1".into());
    m.body = Some("{not a job".into());
    junk.records = vec![m];
    let response = handle_export_jobs(&api, junk).await;
    assert_eq!(response.batch_item_failures[0].item_identifier, "junk-1");

    // the API's own events went onto the bus and reach the audit queue; the audit
    // subscriber writes them, and they are then in the tenant's history
    let audit_messages = receive(&sqs, &audit_queue).await;
    let types: Vec<String> = audit_messages
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
            v["detail-type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        types.contains(&"audit.log.searched".to_owned()),
        "{types:?}"
    );
    assert!(
        types.contains(&"audit.log.exported".to_owned()),
        "{types:?}"
    );
    let subscriber = Subscriber::new(
        Arc::new(adapters_aws::DynamoDbDedupeStore::new(
            ddb.clone(),
            &dedupe_table,
        )),
        Arc::new(adapters_aws::S3BlobStore::new(s3.clone(), &bucket)),
        SystemClock,
        Arc::new(envelope::SchemaRegistry::builtin().unwrap()),
        SubscriberConfig::default(),
    );
    let json = serde_json::to_string(&sqs_event(&audit_messages)).unwrap();
    let delivered = LambdaEvent::new(serde_json::from_str(&json).unwrap(), Context::default());
    let r = audit_subscriber::handle(delivered, &subscriber)
        .await
        .unwrap();
    assert!(r.batch_item_failures.is_empty());
    let (_, page) = call(
        &router,
        "GET",
        "/v1/events?event_type=audit.log.*&from=2026-01-01",
        token,
        None,
    )
    .await;
    let searched = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "audit.log.searched")
        .unwrap_or_else(|| panic!("no searched event in {page}"))
        .clone();
    assert_eq!(searched["actor"]["id"], "splunk");
    let (_, full) = call(
        &router,
        "GET",
        &format!("/v1/events/{}", searched["event_id"].as_str().unwrap()),
        token,
        None,
    )
    .await;
    assert_eq!(full["payload"]["query"]["actor"], "u-ada");
    assert_eq!(full["payload"]["results"], 5);
}
