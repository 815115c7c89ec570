//! Every adapter of a port passes the same suite: S3 and the local directory (and the
//! in-memory double), DynamoDB and SQLite.

use std::sync::Arc;

use adapters_aws::{DynamoDbDedupeStore, S3BlobStore};
use adapters_local::{LocalDirBlobStore, SqliteDedupeStore};
use auditlog::memory::{MemoryBlobStore, MemoryDedupeStore};
use auditlog_tests::{conformance, new_bucket, new_dedupe_table, s3_client, sdk_config};

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
