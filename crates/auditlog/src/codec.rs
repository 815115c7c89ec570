//! The audit record's Arrow schema and its Parquet encoding (ZSTD, statistics on, rows
//! sorted), and the decoding back to records.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::record::{AuditRecord, RecordRef};

/// Which tier a file belongs to. Ingest files hold many tenants and so carry `tenant_id`
/// as their first column; tenant-partitioned files take it from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Ingest,
    Tenant,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("column {column} is missing or has an unexpected type")]
    Column { column: &'static str },
    #[error("row {row}: invalid {column}: {reason}")]
    Value {
        row: usize,
        column: &'static str,
        reason: String,
    },
    #[error("file holds tenant {found} where tenant {expected} was expected")]
    TenantMismatch { expected: String, found: String },
    #[error("file has no tenant_id column and no tenant was given by its path")]
    NoTenant,
}

fn ts_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Column names and nullability, in file order (after `tenant_id` for the ingest tier).
/// Final once landed: the Glue table and queries depend on them.
pub const COLUMNS: &[(&str, bool)] = &[
    ("event_id", false),
    ("event_type", false),
    ("schema_version", false),
    ("occurred_at", false),
    ("ingested_at", false),
    ("producer", false),
    ("source", false),
    ("actor_type", false),
    ("actor_id", false),
    ("actor_name", true),
    ("action", false),
    ("target_type", true),
    ("target_id", true),
    ("target_name", true),
    ("outcome", false),
    ("correlation_id", true),
    ("request_id", true),
    ("source_ip", true),
    ("user_agent", true),
    ("payload", false),
    ("payload_sha256", false),
    ("bus_event_id", false),
    ("account", false),
    ("region", false),
    // the event's index in its tenant's transparency log: set by compaction from the
    // integrator's marker, so null in the ingest tier and in parts folded before it
    ("leaf_index", true),
];

static INGEST_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| build_schema(Tier::Ingest));
static TENANT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| build_schema(Tier::Tenant));

fn build_schema(tier: Tier) -> SchemaRef {
    let mut fields = Vec::with_capacity(COLUMNS.len() + 1);
    if tier == Tier::Ingest {
        fields.push(Field::new("tenant_id", DataType::Utf8, false));
    }
    for (name, nullable) in COLUMNS {
        let dt = match *name {
            "schema_version" => DataType::Int32,
            "leaf_index" => DataType::Int64,
            "occurred_at" | "ingested_at" => ts_utc(),
            _ => DataType::Utf8,
        };
        fields.push(Field::new(*name, dt, *nullable));
    }
    Arc::new(Schema::new(fields))
}

pub fn arrow_schema(tier: Tier) -> SchemaRef {
    match tier {
        Tier::Ingest => INGEST_SCHEMA.clone(),
        Tier::Tenant => TENANT_SCHEMA.clone(),
    }
}

/// The order rows are written in: by tenant (ingest tier), then time, then id.
fn row_order(tier: Tier, a: &AuditRecord, b: &AuditRecord) -> std::cmp::Ordering {
    match tier {
        Tier::Ingest => (&a.tenant_id, a.occurred_at, &a.event_id).cmp(&(
            &b.tenant_id,
            b.occurred_at,
            &b.event_id,
        )),
        Tier::Tenant => (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)),
    }
}

/// Sorts records into the tier's row order.
pub fn sort_records(records: &mut [AuditRecord], tier: Tier) {
    records.sort_unstable_by(|a, b| row_order(tier, a, b));
}

fn strings<'a>(records: &[&'a AuditRecord], f: impl Fn(&'a AuditRecord) -> &'a str) -> ArrayRef {
    opt_strings(records, |r| Some(f(r)))
}

// The buffer is sized exactly first: growing a 2 MB payload column by doubling cost more
// than the extra pass over the lengths.
fn opt_strings<'a>(
    records: &[&'a AuditRecord],
    f: impl Fn(&'a AuditRecord) -> Option<&'a str>,
) -> ArrayRef {
    let bytes = records.iter().map(|r| f(r).map_or(0, str::len)).sum();
    let mut b = StringBuilder::with_capacity(records.len(), bytes);
    for r in records {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn times(records: &[&AuditRecord], f: impl Fn(&AuditRecord) -> DateTime<Utc>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter_values(
            records.iter().map(|r| f(r).timestamp_micros()),
        )
        .with_timezone("UTC"),
    )
}

fn leaf_indexes(records: &[&AuditRecord]) -> ArrayRef {
    // indices are below 2^63 (a log of 2^63 leaves is not a thing), so the cast is exact
    Arc::new(Int64Array::from_iter(
        records
            .iter()
            .map(|r| r.leaf_index.and_then(|i| i64::try_from(i).ok())),
    ))
}

/// The `leaf_index` column of a batch, if the file has one (files written before it
/// existed do not): a negative value is corruption, not an index.
fn leaf_index_column(batch: &RecordBatch) -> Result<Option<&Int64Array>, CodecError> {
    match batch.column_by_name("leaf_index") {
        None => Ok(None),
        Some(c) => c
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(Some)
            .ok_or(CodecError::Column {
                column: "leaf_index",
            }),
    }
}

fn leaf_index_at(a: Option<&Int64Array>, i: usize) -> Result<Option<u64>, CodecError> {
    match a {
        Some(a) if a.is_valid(i) => {
            u64::try_from(a.value(i))
                .map(Some)
                .map_err(|_| CodecError::Value {
                    row: i,
                    column: "leaf_index",
                    reason: "negative".into(),
                })
        }
        _ => Ok(None),
    }
}

/// Builds one Arrow batch from records, in the order given.
pub fn to_record_batch(records: &[&AuditRecord], tier: Tier) -> Result<RecordBatch, CodecError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len() + 1);
    if tier == Tier::Ingest {
        columns.push(strings(records, |r| r.tenant_id.as_str()));
    }
    columns.extend([
        strings(records, |r| r.event_id.as_str()),
        strings(records, |r| &r.event_type),
        Arc::new(Int32Array::from_iter_values(
            records.iter().map(|r| r.schema_version),
        )) as ArrayRef,
        times(records, |r| r.occurred_at),
        times(records, |r| r.ingested_at),
        strings(records, |r| &r.producer),
        strings(records, |r| &r.source),
        strings(records, |r| &r.actor_type),
        strings(records, |r| &r.actor_id),
        opt_strings(records, |r| r.actor_name.as_deref()),
        strings(records, |r| &r.action),
        opt_strings(records, |r| r.target_type.as_deref()),
        opt_strings(records, |r| r.target_id.as_deref()),
        opt_strings(records, |r| r.target_name.as_deref()),
        strings(records, |r| &r.outcome),
        opt_strings(records, |r| r.correlation_id.as_deref()),
        opt_strings(records, |r| r.request_id.as_deref()),
        opt_strings(records, |r| r.source_ip.as_deref()),
        opt_strings(records, |r| r.user_agent.as_deref()),
        strings(records, |r| &r.payload),
        strings(records, |r| &r.payload_sha256),
        strings(records, |r| &r.bus_event_id),
        strings(records, |r| &r.account),
        strings(records, |r| &r.region),
        leaf_indexes(records),
    ]);
    Ok(RecordBatch::try_new(arrow_schema(tier), columns)?)
}

fn writer_properties(tier: Tier, zstd_level: i32) -> Result<WriterProperties, CodecError> {
    let sorting = match tier {
        Tier::Ingest => vec![0, 4, 1],
        Tier::Tenant => vec![3, 0],
    }
    .into_iter()
    // indexes into the leaf columns: ingest (tenant_id, occurred_at, event_id),
    // tenant tier (occurred_at, event_id)
    .map(|column_idx| SortingColumn {
        column_idx,
        descending: false,
        nulls_first: false,
    })
    .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
        .set_sorting_columns(Some(sorting))
        .set_created_by("auditlog".to_owned());
    // Ingest files are short-lived (folded by the compactor) and hold one batch: a
    // dictionary only where values surely repeat. Measured on the bench batch: parquet
    // encoding ~7% faster and the file 236 KB instead of 254 KB (ZSTD does better on the
    // plain values than dictionaries of mostly distinct actor and target ids).
    if tier == Tier::Ingest {
        builder = builder.set_dictionary_enabled(false);
        for column in [
            "tenant_id",
            "event_type",
            "producer",
            "source",
            "actor_type",
            "action",
            "target_type",
            "outcome",
            "account",
            "region",
            "schema_version",
        ] {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), true);
        }
    }
    // Unique or nearly unique per row: a dictionary would only cost time and then be
    // abandoned. The low-cardinality columns (tenant, type, actor type, action, outcome,
    // account, region...) keep theirs.
    for column in [
        "event_id",
        "payload",
        "payload_sha256",
        "bus_event_id",
        "request_id",
        "correlation_id",
        "ingested_at",
        "occurred_at",
    ] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    // Statistics only where queries filter (tenant, time, id, type, who, whom): each
    // statistic costs a comparison per value, ~10% of encoding when on everywhere.
    builder = builder.set_statistics_enabled(EnabledStatistics::None);
    for column in [
        "tenant_id",
        "event_id",
        "event_type",
        "occurred_at",
        "actor_id",
        "target_id",
        "action",
        "outcome",
    ] {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Page);
    }
    Ok(builder.build())
}

/// Encodes records as one Parquet file, rows in the tier's order (sorted here, by
/// reference: moving 600-byte records around cost more than the sort itself).
pub fn encode_parquet(
    records: &[AuditRecord],
    tier: Tier,
    zstd_level: i32,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(records.len() * 400 + 4096);
    let mut writer = ArrowWriter::try_new(
        &mut out,
        arrow_schema(tier),
        Some(writer_properties(tier, zstd_level)?),
    )?;
    let mut order: Vec<&AuditRecord> = records.iter().collect();
    order.sort_unstable_by(|a, b| row_order(tier, a, b));
    // Chunks keep the Arrow copy of a large compaction bounded.
    for chunk in order.chunks(64 * 1024) {
        writer.write(&to_record_batch(chunk, tier)?)?;
    }
    writer.close()?;
    Ok(out)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a T, CodecError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or(CodecError::Column { column: name })
}

fn req(a: &StringArray, i: usize) -> String {
    a.value(i).to_owned()
}

fn opt(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_owned())
}

fn time(
    a: &TimestampMicrosecondArray,
    i: usize,
    column: &'static str,
) -> Result<DateTime<Utc>, CodecError> {
    DateTime::from_timestamp_micros(a.value(i)).ok_or_else(|| CodecError::Value {
        row: i,
        column,
        reason: "timestamp out of range".into(),
    })
}

/// Decodes a file of either tier. `expected_tenant` comes from the object path for the
/// tenant tier; for the ingest tier it filters rows to that tenant (None keeps all).
pub fn decode_parquet(
    bytes: Bytes,
    expected_tenant: Option<&TenantId>,
) -> Result<Vec<AuditRecord>, CodecError> {
    decode_rows(bytes, expected_tenant, &|_, _| true)
}

/// Decodes the rows whose (tenant, event id) pass `keep`; the others are skipped
/// without being materialised, so memory follows the rows kept, not the file.
pub fn decode_where(
    bytes: Bytes,
    expected_tenant: Option<&TenantId>,
    keep: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<AuditRecord>, CodecError> {
    decode_rows(bytes, expected_tenant, keep)
}

/// The columns of one decoded batch, read row by row as `RecordRef`s without building
/// records: the bulk path (exports), where a record per row would cost more than the
/// decoding. Timestamps are checked once per batch, so `row` cannot fail.
pub struct RecordColumns {
    tenant_id: Option<StringArray>,
    strings: [StringArray; 21],
    schema_version: Int32Array,
    occurred_at: TimestampMicrosecondArray,
    ingested_at: TimestampMicrosecondArray,
    leaf_index: Option<Int64Array>,
}

/// The string columns of `RecordColumns::strings`, in that order.
const STRING_COLUMNS: [&str; 21] = [
    "event_id",
    "event_type",
    "producer",
    "source",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_name",
    "outcome",
    "correlation_id",
    "request_id",
    "source_ip",
    "user_agent",
    "payload",
    "payload_sha256",
    "bus_event_id",
    "account",
    "region",
];

impl RecordColumns {
    fn new(batch: &RecordBatch) -> Result<Self, CodecError> {
        let tenant_id = match batch.column_by_name("tenant_id") {
            None => None,
            Some(c) => Some(
                c.as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or(CodecError::Column {
                        column: "tenant_id",
                    })?
                    .clone(),
            ),
        };
        let mut strings = Vec::with_capacity(STRING_COLUMNS.len());
        for name in STRING_COLUMNS {
            strings.push(column::<StringArray>(batch, name)?.clone());
        }
        let strings: [StringArray; 21] = strings
            .try_into()
            .map_err(|_| CodecError::Column { column: "event_id" })?;
        let occurred_at = column::<TimestampMicrosecondArray>(batch, "occurred_at")?.clone();
        let ingested_at = column::<TimestampMicrosecondArray>(batch, "ingested_at")?.clone();
        for (a, name) in [(&occurred_at, "occurred_at"), (&ingested_at, "ingested_at")] {
            for i in 0..a.len() {
                time(a, i, name)?;
            }
        }
        // required columns must hold a value in every row, or `row` would read garbage
        for (a, name) in strings.iter().zip(STRING_COLUMNS) {
            let nullable = COLUMNS.iter().any(|(c, n)| *c == name && *n);
            if !nullable && a.null_count() > 0 {
                return Err(CodecError::Value {
                    row: 0,
                    column: name,
                    reason: "null in a required column".into(),
                });
            }
        }
        let leaf_index = leaf_index_column(batch)?.cloned();
        if let Some(a) = &leaf_index {
            for i in 0..a.len() {
                leaf_index_at(Some(a), i)?;
            }
        }
        Ok(Self {
            tenant_id,
            strings,
            schema_version: column::<Int32Array>(batch, "schema_version")?.clone(),
            occurred_at,
            ingested_at,
            leaf_index,
        })
    }

    pub fn len(&self) -> usize {
        self.occurred_at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row's tenant, for an ingest-tier batch; None for the tenant tier.
    pub fn tenant(&self, i: usize) -> Option<&str> {
        self.tenant_id.as_ref().map(|c| c.value(i))
    }

    pub fn event_id(&self, i: usize) -> &str {
        self.strings[0].value(i)
    }

    pub fn occurred_at_micros(&self, i: usize) -> i64 {
        self.occurred_at.value(i)
    }

    /// The (ingested_at, bus_event_id) that decides which copy of an event is original.
    pub fn arrival(&self, i: usize) -> (i64, &str) {
        (self.ingested_at.value(i), self.strings[18].value(i))
    }

    pub fn row(&self, i: usize) -> RecordRef<'_> {
        let s = |c: usize| self.strings[c].value(i);
        let o = |c: usize| {
            self.strings[c]
                .is_valid(i)
                .then(|| self.strings[c].value(i))
        };
        let t = |a: &TimestampMicrosecondArray| {
            DateTime::from_timestamp_micros(a.value(i)).unwrap_or_default()
        };
        RecordRef {
            event_id: s(0),
            event_type: s(1),
            schema_version: self.schema_version.value(i),
            occurred_at: t(&self.occurred_at),
            ingested_at: t(&self.ingested_at),
            producer: s(2),
            source: s(3),
            actor_type: s(4),
            actor_id: s(5),
            actor_name: o(6),
            action: s(7),
            target_type: o(8),
            target_id: o(9),
            target_name: o(10),
            outcome: s(11),
            correlation_id: o(12),
            request_id: o(13),
            source_ip: o(14),
            user_agent: o(15),
            payload: s(16),
            payload_sha256: s(17),
            bus_event_id: s(18),
            account: s(19),
            region: s(20),
            // checked in `new`
            leaf_index: leaf_index_at(self.leaf_index.as_ref(), i).unwrap_or(None),
        }
    }
}

/// Decodes a file of either tier into batches of columns (see `RecordColumns`). For an
/// ingest-tier file and a `tenant`, only that tenant's rows are decoded (a row filter on
/// `tenant_id`), so memory follows the tenant's rows, not the file's.
pub fn decode_columns(
    bytes: Bytes,
    tenant: Option<&TenantId>,
) -> Result<Vec<RecordColumns>, CodecError> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::{ArrowPredicateFn, RowFilter};
    // strings read as views into the pages (Utf8View) measured slower here (export
    // 225k against 270k rows/s): they stay plain string arrays
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(8192);
    let has_tenant_column = builder.schema().column_with_name("tenant_id").is_some();
    if let (Some(t), true) = (tenant, has_tenant_column) {
        let want = t.as_str().to_owned();
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["tenant_id"]);
        let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
            let col = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| {
                    arrow::error::ArrowError::SchemaError("tenant_id is not a string".into())
                })?;
            Ok(col.iter().map(|v| Some(v == Some(want.as_str()))).collect())
        });
        builder = builder.with_row_filter(RowFilter::new(vec![Box::new(predicate)]));
    }
    let mut out = Vec::new();
    for batch in builder.build()? {
        let batch = batch?;
        if batch.num_rows() > 0 {
            out.push(RecordColumns::new(&batch)?);
        }
    }
    Ok(out)
}

/// Rows in a file, from its footer.
pub fn row_count(bytes: Bytes) -> Result<usize, CodecError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    Ok(usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0))
}

/// Each row's event id and leaf index (None where compaction wrote none), reading only
/// those two columns: what retention needs of the parts it removes.
pub fn event_leaf_indexes(bytes: Bytes) -> Result<Vec<(EventId, Option<u64>)>, CodecError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let has_index = builder.schema().column_with_name("leaf_index").is_some();
    let wanted: &[&str] = if has_index {
        &["event_id", "leaf_index"]
    } else {
        &["event_id"]
    };
    let mask =
        parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), wanted.iter().copied());
    let mut out = Vec::new();
    for batch in builder.with_projection(mask).build()? {
        let batch = batch?;
        let ids = column::<StringArray>(&batch, "event_id")?;
        let indexes = leaf_index_column(&batch)?;
        for i in 0..batch.num_rows() {
            let id = EventId::parse(ids.value(i)).map_err(|e| CodecError::Value {
                row: i,
                column: "event_id",
                reason: e.to_string(),
            })?;
            out.push((id, leaf_index_at(indexes, i)?));
        }
    }
    Ok(out)
}

/// Rows per tenant of an ingest-tier file, reading only the `tenant_id` column.
pub fn tenant_row_counts(
    bytes: Bytes,
) -> Result<std::collections::BTreeMap<String, usize>, CodecError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["tenant_id"]);
    let mut counts = std::collections::BTreeMap::new();
    for batch in builder.with_projection(mask).build()? {
        let batch = batch?;
        let col = column::<StringArray>(&batch, "tenant_id")?;
        for i in 0..batch.num_rows() {
            *counts.entry(col.value(i).to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn decode_rows(
    bytes: Bytes,
    expected_tenant: Option<&TenantId>,
    keep: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<AuditRecord>, CodecError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(8192)
        .build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let tenants = batch
            .column_by_name("tenant_id")
            .map(|c| {
                c.as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or(CodecError::Column {
                        column: "tenant_id",
                    })
            })
            .transpose()?;
        if tenants.is_none() && expected_tenant.is_none() {
            return Err(CodecError::NoTenant);
        }
        let s = |name| column::<StringArray>(&batch, name);
        let (event_id, event_type, producer, source) = (
            s("event_id")?,
            s("event_type")?,
            s("producer")?,
            s("source")?,
        );
        let (actor_type, actor_id, actor_name, action) = (
            s("actor_type")?,
            s("actor_id")?,
            s("actor_name")?,
            s("action")?,
        );
        let (target_type, target_id, target_name, outcome) = (
            s("target_type")?,
            s("target_id")?,
            s("target_name")?,
            s("outcome")?,
        );
        let (correlation_id, request_id, source_ip, user_agent) = (
            s("correlation_id")?,
            s("request_id")?,
            s("source_ip")?,
            s("user_agent")?,
        );
        let (payload, payload_sha256, bus_event_id, account, region) = (
            s("payload")?,
            s("payload_sha256")?,
            s("bus_event_id")?,
            s("account")?,
            s("region")?,
        );
        let schema_version = column::<Int32Array>(&batch, "schema_version")?;
        let occurred_at = column::<TimestampMicrosecondArray>(&batch, "occurred_at")?;
        let ingested_at = column::<TimestampMicrosecondArray>(&batch, "ingested_at")?;
        let leaf_index = leaf_index_column(&batch)?;
        for i in 0..batch.num_rows() {
            let tenant_id = match (tenants, expected_tenant) {
                (Some(col), expected) => {
                    let t = col.value(i);
                    match expected {
                        // ingest tier read for one tenant: other tenants' rows are skipped
                        Some(e) if e.as_str() != t => continue,
                        _ if !keep(t, event_id.value(i)) => continue,
                        _ => TenantId::parse(t).map_err(|e| CodecError::Value {
                            row: i,
                            column: "tenant_id",
                            reason: e.to_string(),
                        })?,
                    }
                }
                (None, Some(e)) if !keep(e.as_str(), event_id.value(i)) => continue,
                (None, Some(e)) => e.clone(),
                (None, None) => return Err(CodecError::NoTenant),
            };
            out.push(AuditRecord {
                tenant_id,
                event_id: EventId::parse(event_id.value(i)).map_err(|e| CodecError::Value {
                    row: i,
                    column: "event_id",
                    reason: e.to_string(),
                })?,
                event_type: req(event_type, i),
                schema_version: schema_version.value(i),
                occurred_at: time(occurred_at, i, "occurred_at")?,
                ingested_at: time(ingested_at, i, "ingested_at")?,
                producer: req(producer, i),
                source: req(source, i),
                actor_type: req(actor_type, i),
                actor_id: req(actor_id, i),
                actor_name: opt(actor_name, i),
                action: req(action, i),
                target_type: opt(target_type, i),
                target_id: opt(target_id, i),
                target_name: opt(target_name, i),
                outcome: req(outcome, i),
                correlation_id: opt(correlation_id, i),
                request_id: opt(request_id, i),
                source_ip: opt(source_ip, i),
                user_agent: opt(user_agent, i),
                payload: req(payload, i),
                payload_sha256: req(payload_sha256, i),
                bus_event_id: req(bus_event_id, i),
                account: req(account, i),
                region: req(region, i),
                leaf_index: leaf_index_at(leaf_index, i)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::tests::bus_event;
    use envelope::SchemaRegistry;
    use serde_json::json;

    pub fn records(n: usize, tenants: &[&str]) -> Vec<AuditRecord> {
        let reg = SchemaRegistry::builtin().unwrap();
        (0..n)
            .map(|i| {
                let id = format!("0192f4a0-7b3c-7d4e-8f00-{i:012}");
                let v = bus_event(
                    tenants[i % tenants.len()],
                    &id,
                    "app.doc.viewed",
                    json!({"action": "view", "n": i}),
                );
                let text = v.to_string();
                let e = envelope::decode_bus_event(&text, &reg, 1 << 20).unwrap();
                AuditRecord::from_event(e, Utc::now())
            })
            .collect()
    }

    #[test]
    fn ingest_tier_round_trips_with_tenants() {
        let mut rs = records(50, &["b", "a", "c"]);
        sort_records(&mut rs, Tier::Ingest);
        let bytes = encode_parquet(&rs, Tier::Ingest, 1).unwrap();
        let back = decode_parquet(Bytes::from(bytes.clone()), None).unwrap();
        assert_eq!(back.len(), rs.len());
        // timestamps are microsecond precision: compare after truncation
        for (a, b) in rs.iter().zip(&back) {
            assert_eq!(a.event_id, b.event_id);
            assert_eq!(a.tenant_id, b.tenant_id);
            assert_eq!(a.occurred_at, b.occurred_at);
            assert_eq!(a.payload, b.payload);
            assert_eq!(a.actor_name, b.actor_name);
            assert_eq!(a.target_id, b.target_id);
        }
        let only_a =
            decode_parquet(Bytes::from(bytes), Some(&TenantId::parse("a").unwrap())).unwrap();
        assert_eq!(only_a.len(), 17);
        assert!(only_a.iter().all(|r| r.tenant_id.as_str() == "a"));
    }

    #[test]
    fn tenant_tier_takes_tenant_from_path_and_is_zstd() {
        let rs = records(10, &["a"]);
        let bytes = encode_parquet(&rs, Tier::Tenant, 3).unwrap();
        let meta = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone()))
            .unwrap()
            .metadata()
            .clone();
        let rg = meta.row_group(0);
        assert!(
            rg.columns()
                .iter()
                .all(|c| matches!(c.compression(), Compression::ZSTD(_)))
        );
        assert!(rg.column(0).statistics().is_some());
        assert!(
            meta.file_metadata()
                .schema_descr()
                .columns()
                .iter()
                .all(|c| c.name() != "tenant_id")
        );
        assert!(matches!(
            decode_parquet(Bytes::from(bytes.clone()), None),
            Err(CodecError::NoTenant)
        ));
        let back =
            decode_parquet(Bytes::from(bytes), Some(&TenantId::parse("zz").unwrap())).unwrap();
        assert!(back.iter().all(|r| r.tenant_id.as_str() == "zz"));
    }

    #[test]
    fn columns_read_the_same_rows_as_records_and_filter_the_ingest_tier_by_tenant() {
        let mut rs = records(50, &["b", "a", "c"]);
        for (i, r) in rs.iter_mut().enumerate() {
            // nulls and values in the optional columns, both
            r.target_name = (i % 2 == 0).then(|| format!("name {i}"));
            r.user_agent = None;
            r.leaf_index = (i % 3 != 0).then_some(i as u64 * 7);
        }
        sort_records(&mut rs, Tier::Ingest);
        let bytes = Bytes::from(encode_parquet(&rs, Tier::Ingest, 1).unwrap());
        let a = TenantId::parse("a").unwrap();
        let records = decode_parquet(bytes.clone(), Some(&a)).unwrap();
        let batches = decode_columns(bytes.clone(), Some(&a)).unwrap();
        let rows: Vec<RecordRef<'_>> = batches
            .iter()
            .flat_map(|b| (0..b.len()).map(move |i| b.row(i)))
            .collect();
        assert_eq!(rows.len(), 17);
        assert_eq!(
            rows,
            records.iter().map(RecordRef::from).collect::<Vec<_>>()
        );
        assert!(
            batches
                .iter()
                .all(|b| (0..b.len()).all(|i| b.tenant(i) == Some("a")))
        );
        // no tenant: every row, each with its own
        let all = decode_columns(bytes, None).unwrap();
        assert_eq!(all.iter().map(RecordColumns::len).sum::<usize>(), 50);
        // the tenant tier has no tenant column: the path named it
        let part = Bytes::from(encode_parquet(&records, Tier::Tenant, 1).unwrap());
        let batches = decode_columns(part, Some(&a)).unwrap();
        assert_eq!(batches[0].tenant(0), None);
        assert_eq!(batches[0].row(3), RecordRef::from(&records[3]));
        assert!(decode_columns(Bytes::from_static(b"not parquet"), None).is_err());
    }

    /// A file of the tenant tier as written before `leaf_index` existed, or with the
    /// column replaced by `leaf_index`.
    fn without_leaf_index(rs: &[AuditRecord], replace: Option<ArrayRef>) -> Bytes {
        let refs: Vec<&AuditRecord> = rs.iter().collect();
        let batch = to_record_batch(&refs, Tier::Tenant).unwrap();
        let n = batch.num_columns() - 1;
        let mut fields: Vec<Field> = batch.schema().fields()[..n]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut columns: Vec<ArrayRef> = batch.columns()[..n].to_vec();
        if let Some(c) = replace {
            fields.push(Field::new("leaf_index", c.data_type().clone(), true));
            columns.push(c);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn leaf_index_round_trips_reads_as_none_in_older_files_and_rejects_negatives() {
        let mut rs = records(6, &["a"]);
        for (i, r) in rs.iter_mut().enumerate() {
            r.leaf_index = (i != 2).then_some(i as u64 + 1_000_000_000_000);
        }
        sort_records(&mut rs, Tier::Tenant);
        let a = TenantId::parse("a").unwrap();
        let back = decode_parquet(
            Bytes::from(encode_parquet(&rs, Tier::Tenant, 1).unwrap()),
            Some(&a),
        )
        .unwrap();
        assert_eq!(
            back.iter().map(|r| r.leaf_index).collect::<Vec<_>>(),
            rs.iter().map(|r| r.leaf_index).collect::<Vec<_>>()
        );
        let pairs =
            event_leaf_indexes(Bytes::from(encode_parquet(&rs, Tier::Tenant, 1).unwrap())).unwrap();
        assert_eq!(
            pairs,
            rs.iter()
                .map(|r| (r.event_id.clone(), r.leaf_index))
                .collect::<Vec<_>>()
        );
        let old = without_leaf_index(&rs, None);
        assert!(
            event_leaf_indexes(old.clone())
                .unwrap()
                .iter()
                .all(|(_, i)| i.is_none())
        );
        assert!(
            decode_parquet(old.clone(), Some(&a))
                .unwrap()
                .iter()
                .all(|r| r.leaf_index.is_none())
        );
        assert!(
            decode_columns(old, Some(&a)).unwrap()[0]
                .row(0)
                .leaf_index
                .is_none()
        );
        let negative: ArrayRef = Arc::new(Int64Array::from(vec![Some(-1i64); rs.len()]));
        let bad = without_leaf_index(&rs, Some(negative));
        for err in [
            decode_parquet(bad.clone(), Some(&a)).unwrap_err(),
            decode_columns(bad, Some(&a)).err().unwrap(),
        ] {
            assert!(
                matches!(
                    err,
                    CodecError::Value {
                        column: "leaf_index",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let text: ArrayRef = Arc::new(StringArray::from(vec!["1"; rs.len()]));
        assert!(matches!(
            decode_parquet(without_leaf_index(&rs, Some(text)), Some(&a)),
            Err(CodecError::Column {
                column: "leaf_index"
            })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_parquet(Bytes::from_static(b"PAR1 nope"), None).is_err());
    }
}
