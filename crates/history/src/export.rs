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

use auditlog::{AuditRecord, BlobError, BlobStore, READ_ATTEMPTS, StorageError};

use crate::history::{History, HistoryError};
use crate::query::EventQuery;
use crate::view::EventView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Self::Csv),
            "ndjson" => Some(Self::Ndjson),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// The CSV columns, in order: the audit record's columns (the payload as JSON text).
pub const CSV_COLUMNS: [&str; 24] = [
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
];

/// Writes a CSV cell: neutralised against formula injection, quoted when needed.
fn csv_cell(out: &mut Vec<u8>, cell: &str) {
    let formula = cell
        .as_bytes()
        .first()
        .is_some_and(|b| matches!(b, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
    let quote = formula
        || cell
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if quote {
        out.push(b'"');
    }
    if formula {
        out.push(b'\'');
    }
    if quote {
        for b in cell.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// A time cell (RFC 3339, microseconds, UTC): never needs quoting.
fn time_cell(out: &mut Vec<u8>, t: DateTime<Utc>) {
    use std::io::Write;
    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
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

    pub fn write(&mut self, r: &AuditRecord) {
        match self.format {
            ExportFormat::Ndjson => {
                // a view of strings and numbers always serialises
                let _ = serde_json::to_writer(&mut self.buf, &EventView::full(r));
                self.buf.push(b'\n');
            }
            ExportFormat::Csv => {
                // cells straight into the buffer: no String per cell on the hot path
                use std::io::Write;
                let b = &mut self.buf;
                csv_cell(b, r.event_id.as_str());
                b.push(b',');
                time_cell(b, r.occurred_at);
                b.push(b',');
                time_cell(b, r.ingested_at);
                b.push(b',');
                csv_cell(b, &r.event_type);
                // a number never needs quoting
                let _ = write!(b, ",{}", r.schema_version);
                for cell in [
                    r.action.as_str(),
                    &r.outcome,
                    &r.actor_type,
                    &r.actor_id,
                    opt(&r.actor_name),
                    opt(&r.target_type),
                    opt(&r.target_id),
                    opt(&r.target_name),
                    &r.producer,
                    &r.source,
                    opt(&r.correlation_id),
                    opt(&r.request_id),
                    opt(&r.source_ip),
                    opt(&r.user_agent),
                    &r.payload,
                    &r.payload_sha256,
                    &r.bus_event_id,
                    &r.account,
                    &r.region,
                ] {
                    b.push(b',');
                    csv_cell(b, cell);
                }
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.buf))
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
        let keep = |r: &AuditRecord| query.matches(r);
        for day in days {
            let files = listed.days.remove(&day).unwrap_or_default();
            let mut day_rows = self.read_day(tenant, day, files, &keep).await?;
            day_rows.sort_by(|a, b| {
                (a.occurred_at, a.event_id.as_str()).cmp(&(b.occurred_at, b.event_id.as_str()))
            });
            for r in &day_rows {
                w.write(r);
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

    /// One day's rows from the files listed for it, listing again if compaction moved
    /// a file away meanwhile (its rows stay in the same day).
    async fn read_day(
        &self,
        tenant: &TenantId,
        day: NaiveDate,
        mut files: Vec<auditlog::ObjectInfo>,
        keep: &(dyn Fn(&AuditRecord) -> bool + Sync),
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let mut vanished = Vec::new();
        for _ in 0..READ_ATTEMPTS {
            match self.reader().read_files(tenant, &files, keep).await? {
                Ok(rows) => return Ok(rows),
                Err(key) => vanished.push(key),
            }
            files = self
                .reader()
                .files(tenant)
                .await?
                .days
                .remove(&day)
                .unwrap_or_default();
        }
        Err(StorageError::Unstable { keys: vanished })
    }
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
}
