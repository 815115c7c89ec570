//! The compactor registering tenant-day partitions of the cross-tenant table in Glue,
//! through the SDK against moto_server: every partition it writes, with its location and
//! the table's storage descriptor, and a partition that exists already is no error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use adapters_aws::{GluePartitionCatalog, S3BlobStore};
use auditlog::fixtures::bus_event_body;
use auditlog::{
    AuditRecord, BlobStore, Compactor, CompactorConfig, Tier, encode_parquet, ingest_object_key,
};
use auditlog_tests::{new_bucket, s3_client, sdk_config, unique};
use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use envelope::SchemaRegistry;

async fn put_ingest(blobs: &S3BlobStore, ns: std::ops::Range<usize>, tenants: usize) {
    let registry = SchemaRegistry::builtin().unwrap();
    let records: Vec<AuditRecord> = ns
        .map(|n| {
            let body = bus_event_body(n, tenants, 600);
            let e = envelope::decode_bus_event(&body, &registry, 1 << 20).unwrap();
            AuditRecord::from_event(e, chrono::Utc::now())
        })
        .collect();
    let dt = records[0].dt();
    let bytes = encode_parquet(&records, Tier::Ingest, 1).unwrap();
    blobs
        .put(&ingest_object_key(dt, &records), bytes.into())
        .await
        .unwrap();
}

#[tokio::test]
async fn compaction_registers_every_tenant_day_in_glue() {
    let c = sdk_config().await;
    let s3 = s3_client(&c);
    let bucket = new_bucket(&s3).await;
    let glue = aws_sdk_glue::Client::new(&c);
    let database = unique("audit").replace('-', "_");
    glue.create_database()
        .database_input(DatabaseInput::builder().name(&database).build().unwrap())
        .send()
        .await
        .unwrap();
    let col = |n: &str, t: &str| Column::builder().name(n).r#type(t).build().unwrap();
    glue.create_table()
        .database_name(&database)
        .table_input(
            TableInput::builder()
                .name("audit_records_all")
                .table_type("EXTERNAL_TABLE")
                .partition_keys(col("tenant_id", "string"))
                .partition_keys(col("dt", "string"))
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .location(format!("s3://{bucket}/audit/"))
                        .columns(col("event_id", "string"))
                        .columns(col("occurred_at", "timestamp"))
                        .input_format(
                            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        )
                        .serde_info(
                            SerDeInfo::builder()
                                .serialization_library(
                                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let blobs = S3BlobStore::new(s3.clone(), &bucket);
    put_ingest(&blobs, 0..30, 3).await;
    let catalog = Arc::new(GluePartitionCatalog::new(
        glue.clone(),
        &database,
        "audit_records_all",
        &bucket,
    ));
    let compactor =
        Compactor::new(blobs.clone(), CompactorConfig::default()).with_catalog(catalog.clone());
    let report = compactor.run().await.unwrap();
    assert_eq!(report.totals.partitions, 3);

    let partitions = |glue: aws_sdk_glue::Client, database: String| async move {
        let out = glue
            .get_partitions()
            .database_name(&database)
            .table_name("audit_records_all")
            .send()
            .await
            .unwrap();
        let mut got: Vec<(Vec<String>, String, usize)> = out
            .partitions()
            .iter()
            .map(|p| {
                let sd = p.storage_descriptor().unwrap();
                (
                    p.values().to_vec(),
                    sd.location().unwrap().to_owned(),
                    sd.columns().len(),
                )
            })
            .collect();
        got.sort();
        got
    };
    let got = partitions(glue.clone(), database.clone()).await;
    assert_eq!(got.len(), 3);
    for (i, (values, location, columns)) in got.iter().enumerate() {
        let tenant = format!("tenant-{i:04}");
        assert_eq!(values[0], tenant);
        assert_eq!(
            location,
            &format!("s3://{bucket}/audit/tenant_id={tenant}/dt={}/", values[1])
        );
        assert_eq!(*columns, 2, "the table's columns are copied");
    }

    // more events for the same tenant-days: the partitions exist already, which is fine
    put_ingest(&blobs, 30..60, 3).await;
    compactor.run().await.unwrap();
    assert_eq!(partitions(glue, database).await, got);
}
