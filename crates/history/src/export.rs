//! Exports: every matching row of a range, oldest first, as CSV or NDJSON, streamed a
//! day at a time into an upload (S3 multipart, or a local file), so memory follows one
//! day of one tenant whatever the range. No row cap.
//!
//! CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
//! `@`, tab or carriage return) get a leading `'`, as OWASP advises.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use envelope::TenantId;
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use auditlog::{
    BlobError, BlobStore, ReadAttempts, RecordColumns, RecordRef, StorageError, decode_columns,
};

use crate::history::{History, HistoryError};
use crate::query::EventQuery;
use crate::view::EventView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Ndjson,
    /// An offline verifiable bundle (`auditlog::bundle`): built with the tenant's log,
    /// by the audit API, not by `History::export`.
    Bundle,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Self::Csv),
            "ndjson" => Some(Self::Ndjson),
            "bundle" => Some(Self::Bundle),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
            Self::Bundle => "bundle.json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
            Self::Bundle => "application/json",
        }
    }
}

/// The CSV columns, in order: the audit record's columns (the payload as JSON text).
pub const CSV_COLUMNS: [&str; 25] = [
    "event_id",
    "occurred_at",
    "ingested_at",
    "event_type",
    "schema_version",
    "action",
    "outcome",
    "actor_type",
    "actor_id",
    "actor_name",
    "target_type",
    "target_id",
    "target_name",
    "producer",
    "source",
    "correlation_id",
    "request_id",
    "source_ip",
    "user_agent",
    "payload",
    "payload_sha256",
    "bus_event_id",
    "account",
    "region",
    "leaf_index",
];

/// Writes a CSV cell: neutralised against formula injection, quoted when needed.
fn csv_cell(out: &mut Vec<u8>, cell: &str) {
    let bytes = cell.as_bytes();
    let formula = bytes
        .first()
        .is_some_and(|b| matches!(b, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
    let quote = formula
        || memchr::memchr3(b',', b'"', b'\n', bytes).is_some()
        || memchr::memchr(b'\r', bytes).is_some();
    if !quote {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    if formula {
        out.push(b'\'');
    }
    // doubled quotes, copying the runs between them whole
    let mut from = 0;
    for at in memchr::memchr_iter(b'"', bytes) {
        out.extend_from_slice(&bytes[from..=at]);
        out.push(b'"');
        from = at + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// A time cell (RFC 3339, microseconds, UTC): never needs quoting. Digits by hand: the
/// two per row are a third of a CSV row's cost through `format`.
fn time_cell(out: &mut Vec<u8>, t: DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        use std::io::Write;
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        return;
    }
    let digits = |out: &mut Vec<u8>, v: u32, width: usize| {
        let mut buf = [b'0'; 6];
        let mut v = v;
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..width]);
    };
    digits(out, year.unsigned_abs(), 4);
    out.push(b'-');
    digits(out, t.month(), 2);
    out.push(b'-');
    digits(out, t.day(), 2);
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    digits(out, t.second(), 2);
    out.push(b'.');
    // a leap second's nanos run past 10^9; the micros stay six digits
    digits(out, (t.nanosecond() / 1000) % 1_000_000, 6);
    out.push(b'Z');
}

/// Encodes rows of one format into a buffer.
pub struct RowWriter {
    format: ExportFormat,
    pub buf: Vec<u8>,
}

impl RowWriter {
    pub fn new(format: ExportFormat) -> Self {
        let mut w = Self {
            format,
            buf: Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
        };
        if format == ExportFormat::Csv {
            for (i, c) in CSV_COLUMNS.iter().enumerate() {
                if i > 0 {
                    w.buf.push(b',');
                }
                w.buf.extend_from_slice(c.as_bytes());
            }
            w.buf.extend_from_slice(b"\r\n");
        }
        w
    }

    pub fn write<'a>(&mut self, r: impl Into<RecordRef<'a>>) {
        let r = r.into();
        match self.format {
            // rows go to a bundle through `auditlog::bundle`; as lines, they would be NDJSON
            ExportFormat::Ndjson | ExportFormat::Bundle => {
                // a view of strings and numbers always serialises
                let _ = serde_json::to_writer(&mut self.buf, &EventView::full(r));
                self.buf.push(b'\n');
            }
            ExportFormat::Csv => {
                // cells straight into the buffer: no String per cell on the hot path
                use std::io::Write;
                let b = &mut self.buf;
                csv_cell(b, r.event_id);
                b.push(b',');
                time_cell(b, r.occurred_at);
                b.push(b',');
                time_cell(b, r.ingested_at);
                b.push(b',');
                csv_cell(b, r.event_type);
                // a number never needs quoting
                let _ = write!(b, ",{}", r.schema_version);
                let none = |v: Option<&'a str>| v.unwrap_or("");
                for cell in [
                    r.action,
                    r.outcome,
                    r.actor_type,
                    r.actor_id,
                    none(r.actor_name),
                    none(r.target_type),
                    none(r.target_id),
                    none(r.target_name),
                    r.producer,
                    r.source,
                    none(r.correlation_id),
                    none(r.request_id),
                    none(r.source_ip),
                    none(r.user_agent),
                    r.payload,
                    r.payload_sha256,
                    r.bus_event_id,
                    r.account,
                    r.region,
                ] {
                    b.push(b',');
                    csv_cell(b, cell);
                }
                b.push(b',');
                if let Some(i) = r.leaf_index {
                    let _ = write!(b, "{i}");
                }
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// The bytes so far; the buffer starts again at full capacity, so the next chunk
    /// is written without growing (and copying) it by doubling.
    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
        ))
    }
}

/// Bytes buffered before a chunk goes to the upload (S3 parts must be at least 5 MiB).
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Where an export's bytes go, in order; nothing is visible until `finish`.
#[async_trait]
pub trait ExportUpload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError>;
    async fn finish(self: Box<Self>) -> Result<(), BlobError>;
    /// Drops what was written (best effort).
    async fn abort(self: Box<Self>);
}

/// Export files: S3 (multipart upload, presigned download URLs) or a local directory.
#[async_trait]
pub trait ExportStore: Send + Sync {
    async fn create(&self, key: &str) -> Result<Box<dyn ExportUpload>, BlobError>;
    /// A URL the file can be fetched from without our credentials, valid for a while;
    /// None when the API serves it itself (the local store).
    async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
    ) -> Result<Option<String>, BlobError>;
    /// The file's bytes, for a store whose files the API serves itself.
    async fn read(&self, key: &str) -> Result<Bytes, BlobError>;
}

#[async_trait]
impl<T: ExportStore + ?Sized> ExportStore for std::sync::Arc<T> {
    async fn create(&self, key: &str) -> Result<Box<dyn ExportUpload>, BlobError> {
        (**self).create(key).await
    }
    async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
    ) -> Result<Option<String>, BlobError> {
        (**self).download_url(key, file_name, content_type).await
    }
    async fn read(&self, key: &str) -> Result<Bytes, BlobError> {
        (**self).read(key).await
    }
}

impl<B: BlobStore> History<B> {
    /// Bytes of stored files an export of `query` would read: what decides whether it
    /// answers at once or runs as a job.
    pub async fn export_size(
        &self,
        tenant: &TenantId,
        query: &EventQuery,
    ) -> Result<u64, HistoryError> {
        let files = self.reader().files(tenant).await?;
        Ok(files
            .days
            .iter()
            .filter(|(d, _)| day_in(query, **d))
            .flat_map(|(_, fs)| fs.iter().map(|f| f.size))
            .sum())
    }

    /// Writes every row matching `query`, oldest first, into `upload`; the row count.
    /// Rows go from the decoded columns to the encoder without becoming records.
    pub async fn export(
        &self,
        tenant: &TenantId,
        query: &EventQuery,
        format: ExportFormat,
        upload: &mut dyn ExportUpload,
    ) -> Result<u64, HistoryError> {
        let mut listed = self.reader().files(tenant).await?;
        let days: Vec<NaiveDate> = listed
            .days
            .keys()
            .copied()
            .filter(|d| day_in(query, *d))
            .collect();
        let mut w = RowWriter::new(format);
        let mut rows = 0u64;
        for day in days {
            let files = listed.days.remove(&day).unwrap_or_default();
            let batches = self.read_day(tenant, day, files).await?;
            for (b, i) in day_rows(&batches, tenant, query) {
                w.write(batches[b].row(i));
                rows += 1;
                if w.buf.len() >= CHUNK_BYTES {
                    upload.write(w.take()).await.map_err(StorageError::from)?;
                }
            }
        }
        if !w.buf.is_empty() {
            upload.write(w.take()).await.map_err(StorageError::from)?;
        }
        Ok(rows)
    }

    /// One day's columns of `tenant` from the files listed for it, listing again if
    /// compaction moved a file away meanwhile (its rows stay in the same day).
    async fn read_day(
        &self,
        tenant: &TenantId,
        day: NaiveDate,
        mut files: Vec<auditlog::ObjectInfo>,
    ) -> Result<Vec<RecordColumns>, StorageError> {
        let mut attempts = ReadAttempts::default();
        loop {
            match self.day_columns(tenant, &files).await? {
                Ok(batches) => return Ok(batches),
                Err(key) => attempts.vanished(key)?,
            }
            files = self
                .reader()
                .files(tenant)
                .await?
                .days
                .remove(&day)
                .unwrap_or_default();
        }
    }

    /// `Ok(Err(key))` if a listed file was gone.
    async fn day_columns(
        &self,
        tenant: &TenantId,
        files: &[auditlog::ObjectInfo],
    ) -> Result<Result<Vec<RecordColumns>, String>, StorageError> {
        let mut out = Vec::new();
        for file in files {
            let Some(bytes) = self.reader().fetch(&file.key).await? else {
                return Ok(Err(file.key.clone()));
            };
            let batches =
                decode_columns(bytes, Some(tenant)).map_err(|source| StorageError::Codec {
                    key: file.key.clone(),
                    source,
                })?;
            out.extend(batches);
        }
        Ok(Ok(out))
    }
}

/// The rows of `tenant` matching `query` in one day's batches, as (batch, row), oldest
/// first by (occurred_at, event_id): one per event id, the original (first ingested) as
/// the views and `TenantReader` keep it. Every copy is seen before the filter applies,
/// so a filter cannot let a later copy stand in for the original.
fn day_rows(
    batches: &[RecordColumns],
    tenant: &TenantId,
    query: &EventQuery,
) -> Vec<(usize, usize)> {
    use std::collections::hash_map::Entry;
    let mut originals: HashMap<&str, (usize, usize)> = HashMap::new();
    for (b, cols) in batches.iter().enumerate() {
        for i in 0..cols.len() {
            // the tenant tier's files carry no tenant column: their path named it
            if cols.tenant(i).is_some_and(|t| t != tenant.as_str()) {
                continue;
            }
            match originals.entry(cols.event_id(i)) {
                Entry::Vacant(e) => {
                    e.insert((b, i));
                }
                Entry::Occupied(mut e) => {
                    let (kb, ki) = *e.get();
                    if cols.arrival(i) < batches[kb].arrival(ki) {
                        e.insert((b, i));
                    }
                }
            }
        }
    }
    let mut kept: Vec<(i64, &str, usize, usize)> = originals
        .into_iter()
        .filter(|(_, (b, i))| query.matches(batches[*b].row(*i)))
        .map(|(id, (b, i))| (batches[b].occurred_at_micros(i), id, b, i))
        .collect();
    kept.sort_unstable();
    kept.into_iter().map(|(_, _, b, i)| (b, i)).collect()
}

fn day_in(query: &EventQuery, d: NaiveDate) -> bool {
    query.from.is_none_or(|f| d >= f.date_naive()) && query.to.is_none_or(|t| d <= t.date_naive())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = Vec::new();
        csv_cell(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formulas_are_neutralised_and_cells_quoted() {
        assert_eq!(cell("ada"), "ada");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "\"'+1\"");
        assert_eq!(cell("-2"), "\"'-2\"");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(cell("\tx"), "\"'\tx\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("a=b"), "a=b");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn time_cells_are_what_chrono_formats() {
        use chrono::TimeZone;
        for micros in [
            0i64,
            1,
            999_999,
            1_764_547_200_123_456,
            -1,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // year 10000: the slow path
        ] {
            let t = Utc.timestamp_micros(micros).unwrap();
            let mut out = Vec::new();
            time_cell(&mut out, t);
            let want = t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{micros}");
        }
    }

    #[test]
    fn quotes_inside_a_quoted_cell_are_doubled_at_every_position() {
        assert_eq!(cell("\""), "\"\"\"\"");
        assert_eq!(cell("a\"b\"\"c\""), "\"a\"\"b\"\"\"\"c\"\"\"");
        assert_eq!(cell("{\"n\":1}"), "\"{\"\"n\"\":1}\"");
        assert_eq!(cell("-\"x"), "\"'-\"\"x\"");
        assert_eq!(cell("carriage\rreturn"), "\"carriage\rreturn\"");
    }
}
