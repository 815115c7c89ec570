//! Every adapter of a port passes the same suite: S3 and the local directory (and the
//! in-memory double), DynamoDB and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use adapters_aws::{DynamoDbDedupeStore, S3BlobStore};
use adapters_local::{LocalDirBlobStore, SqliteDedupeStore};
use auditlog::memory::{MemoryBlobStore, MemoryDedupeStore};
use auditlog_tests::{
    conformance, new_bucket, new_dedupe_table, new_scim_table, s3_client, sdk_config,
};

#[tokio::test]
async fn blob_store_s3() {
    let c = sdk_config().await;
    let s3 = s3_client(&c);
    let bucket = new_bucket(&s3).await;
    conformance::blob_store(&S3BlobStore::new(s3, bucket)).await;
}

#[tokio::test]
async fn blob_store_local_dir() {
    let dir = tempfile::tempdir().unwrap();
    conformance::blob_store(&LocalDirBlobStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn blob_store_memory() {
    conformance::blob_store(&MemoryBlobStore::default()).await;
}

#[tokio::test]
async fn dedupe_store_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_dedupe_table(&ddb).await;
    conformance::dedupe_store(&DynamoDbDedupeStore::new(ddb, table), "ddb").await;
}

#[tokio::test]
async fn dedupe_store_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteDedupeStore::open(&dir.path().join("d.sqlite")).unwrap();
    conformance::dedupe_store(&store, "sqlite").await;
    // a reopened store remembers
    drop(store);
    let store = SqliteDedupeStore::open(&dir.path().join("d.sqlite")).unwrap();
    conformance::dedupe_store(&store, "sqlite-2").await;
}

#[tokio::test]
async fn dedupe_store_memory() {
    conformance::dedupe_store(&MemoryDedupeStore::default(), "mem").await;
}

#[tokio::test]
async fn local_dir_refuses_keys_that_escape_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalDirBlobStore::open(dir.path().join("root")).unwrap());
    for bad in [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a//b",
        "a\\b",
        "",
        "./a",
        ".tmp/x",
    ] {
        assert!(
            matches!(
                auditlog::BlobStore::put(&*store, bad, bytes::Bytes::new()).await,
                Err(auditlog::BlobError::InvalidKey(_))
            ),
            "{bad:?}"
        );
    }
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn event_bus_in_process() {
    let queue = Arc::new(adapters_local::LocalQueue::default());
    let mut bus = adapters_local::InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
    bus.add_rule(
        envelope::pattern::EventPattern::parse(r#"{"account": [{"exists": true}]}"#).unwrap(),
        queue.clone(),
    );
    let q = &queue;
    conformance::event_bus(&bus, || async move {
        q.receive(1000, usize::MAX, 0)
            .into_iter()
            .map(|m| m.body)
            .collect()
    })
    .await;
}

#[tokio::test]
async fn in_process_bus_routes_only_matching_events() {
    let all = Arc::new(adapters_local::LocalQueue::default());
    let scim = Arc::new(adapters_local::LocalQueue::default());
    let mut bus = adapters_local::InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
    bus.add_rule(
        envelope::pattern::EventPattern::parse(r#"{"account": [{"exists": true}]}"#).unwrap(),
        all.clone(),
    );
    bus.add_rule(
        envelope::pattern::EventPattern::parse(r#"{"detail-type": [{"prefix": "scim."}]}"#)
            .unwrap(),
        scim.clone(),
    );
    let entry = |t: &str| envelope::PutEventsEntry {
        source: "s".into(),
        detail_type: t.into(),
        detail: "{}".into(),
        resources: vec![],
        time: None,
    };
    let out = envelope::EventBus::put_events(&bus, &[entry("scim.user.created"), entry("app.x.y")])
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((all.len(), scim.len()), (2, 1));
    let bad = envelope::PutEventsEntry {
        detail: "[1]".into(),
        ..entry("app.x.y")
    };
    let out = envelope::EventBus::put_events(&bus, &[bad]).await.unwrap();
    assert!(
        matches!(&out[0], envelope::EntryOutcome::Failed { code, .. } if code == "MalformedDetail")
    );
}

#[tokio::test]
async fn scim_store_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = adapters_local::SqliteScimStore::open(&dir.path().join("scim.sqlite")).unwrap();
    conformance::scim_store(&store, "sqlite").await;
}

#[tokio::test]
async fn scim_store_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_scim_table(&ddb).await;
    let store = adapters_aws::DynamoDbScimStore::new(ddb, table).with_concurrency(1);
    conformance::scim_store(&store, "ddb").await;
}

#[tokio::test]
async fn scim_concurrent_membership_sqlite() {
    let store = adapters_local::SqliteScimStore::in_memory().unwrap();
    conformance::scim_concurrent_membership(&store, "sqlite").await;
}

#[tokio::test]
async fn scim_concurrent_membership_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_scim_table(&ddb).await;
    // eight PATCHes in flight at once, each sequential inside (see with_concurrency)
    let store = adapters_aws::DynamoDbScimStore::new(ddb, table).with_concurrency(1);
    conformance::scim_concurrent_membership(&store, "ddb").await;
}

#[tokio::test]
async fn retention_settings_sqlite() {
    let store = adapters_local::SqliteScimStore::in_memory().unwrap();
    conformance::retention_settings(&store, "sqlite").await;
}

#[tokio::test]
async fn retention_settings_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_scim_table(&ddb).await;
    let store = adapters_aws::DynamoDbTenantDirectory::new(ddb, table);
    conformance::retention_settings(&store, "ddb").await;
}

#[tokio::test]
async fn tenant_directory_sqlite() {
    let store = adapters_local::SqliteScimStore::in_memory().unwrap();
    conformance::tenant_directory(&store, "sqlite").await;
    conformance::policy_store(&store, "sqlite").await;
}

#[tokio::test]
async fn tenant_directory_in_memory() {
    conformance::tenant_directory(&tenants::TokenRegistry::default(), "memory").await;
}

/// A store made before scopes existed: its credentials read as SCIM tokens.
#[tokio::test]
async fn tenant_directory_sqlite_made_before_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.sqlite");
    {
        let conn = rusqlite_open(&path);
        conn.execute_batch(
            "CREATE TABLE scim_credentials (token_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, idp TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER) WITHOUT ROWID;
             INSERT INTO scim_credentials VALUES ('h1', 'acme', 'okta', 0, NULL);",
        )
        .unwrap();
    }
    let store = adapters_local::SqliteScimStore::open(&path).unwrap();
    let c = scim::TenantDirectory::credential(&store, "h1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.scopes, vec![scim::Scope::Scim]);
    assert_eq!(c.idp, "okta");
}

fn rusqlite_open(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn tenant_directory_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_scim_table(&ddb).await;
    let store = adapters_aws::DynamoDbScimStore::new(ddb, table);
    conformance::tenant_directory(&store, "ddb").await;
    conformance::policy_store(&store, "ddb").await;
}

#[tokio::test]
async fn leaf_index_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let index = adapters_local::SqliteLeafIndex::open(&dir.path().join("l.sqlite")).unwrap();
    conformance::leaf_index(&index, "sqlite").await;
}

#[tokio::test]
async fn leaf_index_in_memory() {
    conformance::leaf_index(&transparency::integrate::InMemoryLog::default(), "mem").await;
}

#[tokio::test]
async fn leaf_index_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = auditlog_tests::unique("leaves");
    adapters_aws::DynamoDbLeafIndex::create_table(&ddb, &table)
        .await
        .unwrap();
    conformance::leaf_index(&adapters_aws::DynamoDbLeafIndex::new(ddb, table), "ddb").await;
}
