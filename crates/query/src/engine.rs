//! The local engine: a DataFusion session over the pipeline's Parquet layout, with the
//! Glue tables of template.yaml registered as Hive-partitioned listing tables and the
//! views of `queries/ddl` created from their files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auditlog::{Tier, arrow_schema};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;

use crate::catalog::{QueryFile, VIEW_FILES};
use crate::params::{BindError, bind};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Catalog(String),
    #[error("query failed: {0}")]
    Engine(#[from] DataFusionError),
    #[error("{path}: {reason}")]
    Data { path: String, reason: String },
}

/// The Glue tables, as the local engine registers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `audit/tenant_id=<t>/dt=<d>/`: the compacted tier (per-tenant access path).
    AuditRecords,
    /// The same files, for cross-tenant scans (in Athena: registered partitions).
    AuditRecordsAll,
    /// `ingest/dt=<d>/`: the subscriber's files, tenant_id a column.
    AuditIngest,
}

impl Table {
    pub const ALL: [Table; 3] = [
        Table::AuditRecords,
        Table::AuditRecordsAll,
        Table::AuditIngest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::AuditRecords => "audit_records",
            Table::AuditRecordsAll => "audit_records_all",
            Table::AuditIngest => "audit_ingest",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Table::AuditRecords | Table::AuditRecordsAll => "audit",
            Table::AuditIngest => "ingest",
        }
    }

    /// Partition columns, from the path.
    pub fn partitions(self) -> Vec<(String, DataType)> {
        match self {
            Table::AuditRecords | Table::AuditRecordsAll => vec![
                ("tenant_id".into(), DataType::Utf8),
                ("dt".into(), DataType::Utf8),
            ],
            Table::AuditIngest => vec![("dt".into(), DataType::Utf8)],
        }
    }

    pub fn tier(self) -> Tier {
        match self {
            Table::AuditRecords | Table::AuditRecordsAll => Tier::Tenant,
            Table::AuditIngest => Tier::Ingest,
        }
    }
}

pub struct Engine {
    ctx: SessionContext,
}

impl Engine {
    /// Opens the layout under `blob_root` (the `blobs/` directory of a data dir).
    pub async fn open(blob_root: &Path) -> Result<Self, QueryError> {
        Self::open_with_store(blob_root, None).await
    }

    /// As `open`, reading files through `store` (tests count what is read).
    pub async fn open_with_store(
        blob_root: &Path,
        store: Option<Arc<dyn ObjectStore>>,
    ) -> Result<Self, QueryError> {
        let root: PathBuf = std::fs::canonicalize(blob_root).map_err(|e| QueryError::Data {
            path: blob_root.display().to_string(),
            reason: format!("{e} (run `auditlog demo` or `auditlog serve` first)"),
        })?;
        let config = SessionConfig::new()
            .with_target_partitions(2)
            // plain Utf8 columns, as the files are written and as the UDFs expect
            .set_bool(
                "datafusion.execution.parquet.schema_force_view_types",
                false,
            )
            .set_bool("datafusion.execution.parquet.pushdown_filters", true);
        let ctx = SessionContext::new_with_config(config);
        if let Some(store) = store {
            let url = url::Url::parse("file://").map_err(|e| QueryError::Catalog(e.to_string()))?;
            ctx.register_object_store(&url, store);
        }
        ctx.register_udf(crate::json::json_extract_scalar());
        for table in Table::ALL {
            let dir = root.join(table.prefix());
            std::fs::create_dir_all(&dir).map_err(|e| QueryError::Data {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
            let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(table.partitions());
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(arrow_schema(table.tier()));
            ctx.register_table(table.name(), Arc::new(ListingTable::try_new(config)?))?;
        }
        for (_, ddl) in VIEW_FILES {
            ctx.sql(ddl).await?;
        }
        Ok(Self { ctx })
    }

    /// Runs a catalog query with its parameters bound.
    pub async fn run(
        &self,
        query: &QueryFile,
        values: &HashMap<String, String>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        self.sql(&bind(query, values)?).await
    }

    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }
}

/// Column names and rows as text (NULL as `NULL`), for printing and for tests that
/// assert exact rows.
pub fn to_rows(batches: &[RecordBatch]) -> Result<(Vec<String>, Vec<Vec<String>>), QueryError> {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    let options = FormatOptions::default().with_null("NULL");
    for batch in batches {
        if header.is_empty() {
            header = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
        }
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DataFusionError::from)?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TABLE_FILES;

    type Columns = Vec<(String, String)>;

    /// `name type` pairs between the first `(` and its `)`, and in PARTITIONED BY.
    fn ddl_columns(ddl: &str) -> (Columns, Columns) {
        let pairs = |s: &str| {
            s.split(',')
                .map(|c| {
                    let mut w = c.split_whitespace();
                    (w.next().unwrap().to_owned(), w.next().unwrap().to_owned())
                })
                .collect::<Vec<_>>()
        };
        // skip the header comments, which may hold parentheses
        let ddl = &ddl[ddl.find("CREATE").unwrap()..];
        let body = ddl.split_once('(').unwrap().1.split_once(')').unwrap().0;
        let parts = ddl
            .split_once("PARTITIONED BY (")
            .map(|(_, rest)| pairs(rest.split_once(')').unwrap().0))
            .unwrap_or_default();
        (pairs(body), parts)
    }

    fn athena_type(dt: &DataType) -> &'static str {
        match dt {
            DataType::Utf8 => "string",
            DataType::Int32 => "int",
            DataType::Int64 => "bigint",
            DataType::Timestamp(_, _) => "timestamp",
            other => panic!("no Athena type for {other}"),
        }
    }

    #[test]
    fn athena_ddl_matches_the_parquet_schema_and_partitions() {
        for table in Table::ALL {
            let ddl = TABLE_FILES
                .iter()
                .find(|(n, _)| *n == table.name())
                .unwrap()
                .1;
            let (columns, partitions) = ddl_columns(ddl);
            let schema = arrow_schema(table.tier());
            let expected: Vec<(String, String)> = schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), athena_type(f.data_type()).to_owned()))
                .collect();
            assert_eq!(columns, expected, "{}", table.name());
            let expected_parts: Vec<(String, String)> = table
                .partitions()
                .iter()
                .map(|(n, t)| (n.clone(), athena_type(t).to_owned()))
                .collect();
            assert_eq!(partitions, expected_parts, "{}", table.name());
        }
    }
}
