//! `PartitionCatalog` on the Glue Data Catalog: registers the compactor's tenant-day
//! partitions on the cross-tenant table (`audit_records_all`), which scans every tenant
//! and so cannot use an injected partition projection. Each partition gets the table's
//! storage descriptor with its own location; `BatchCreatePartition` in batches of 100,
//! and a partition that already exists is success.

use std::sync::Arc;

use async_trait::async_trait;
use auditlog::{AUDIT_PREFIX, CatalogError, PartitionCatalog, PartitionKey};
use aws_sdk_glue::Client;
use aws_sdk_glue::types::{PartitionInput, StorageDescriptor};
use tokio::sync::OnceCell;

use crate::classify::describe;

#[derive(Debug, Clone)]
pub struct GluePartitionCatalog {
    client: Client,
    database: String,
    table: String,
    bucket: String,
    descriptor: Arc<OnceCell<StorageDescriptor>>,
}

impl GluePartitionCatalog {
    pub fn new(
        client: Client,
        database: impl Into<String>,
        table: impl Into<String>,
        bucket: impl Into<String>,
    ) -> Self {
        Self {
            client,
            database: database.into(),
            table: table.into(),
            bucket: bucket.into(),
            descriptor: Arc::new(OnceCell::new()),
        }
    }

    /// The table's storage descriptor (columns, formats, SerDe), read once.
    async fn descriptor(&self) -> Result<&StorageDescriptor, CatalogError> {
        self.descriptor
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_table()
                    .database_name(&self.database)
                    .name(&self.table)
                    .send()
                    .await
                    .map_err(|e| {
                        CatalogError(format!(
                            "get table {}.{}: {}",
                            self.database,
                            self.table,
                            describe(&e)
                        ))
                    })?;
                out.table()
                    .and_then(|t| t.storage_descriptor())
                    .cloned()
                    .ok_or_else(|| {
                        CatalogError(format!(
                            "table {}.{} has no storage descriptor",
                            self.database, self.table
                        ))
                    })
            })
            .await
    }
}

#[async_trait]
impl PartitionCatalog for GluePartitionCatalog {
    async fn add_partitions(&self, partitions: &[PartitionKey]) -> Result<(), CatalogError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let base = self.descriptor().await?;
        for chunk in partitions.chunks(100) {
            let inputs: Vec<PartitionInput> = chunk
                .iter()
                .map(|p| {
                    let mut sd = base.clone();
                    sd.location = Some(format!("s3://{}/{}", self.bucket, p.prefix()));
                    PartitionInput::builder()
                        .values(p.tenant.as_str())
                        .values(p.dt.to_string())
                        .storage_descriptor(sd)
                        .build()
                })
                .collect();
            let out = self
                .client
                .batch_create_partition()
                .database_name(&self.database)
                .table_name(&self.table)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .map_err(|e| CatalogError(format!("batch create partition: {}", describe(&e))))?;
            let failed: Vec<String> = out
                .errors()
                .iter()
                .filter(|e| {
                    e.error_detail()
                        .and_then(|d| d.error_code())
                        .is_none_or(|c| c != "AlreadyExistsException")
                })
                .map(|e| {
                    format!(
                        "{:?}: {}",
                        e.partition_values(),
                        e.error_detail()
                            .and_then(|d| d.error_message())
                            .unwrap_or("unknown error")
                    )
                })
                .collect();
            if !failed.is_empty() {
                return Err(CatalogError(format!(
                    "partitions not registered under s3://{}/{AUDIT_PREFIX}: {}",
                    self.bucket,
                    failed.join("; ")
                )));
            }
        }
        Ok(())
    }
}
