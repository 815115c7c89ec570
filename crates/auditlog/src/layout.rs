//! Object keys: where each kind of object lives, named deterministically so that
//! reprocessing the same events writes the same key.
//!
//! ```text
//! ingest/dt=<YYYY-MM-DD>/<hash of the file's (tenant, event_id) set>.parquet
//! audit/tenant_id=<t>/dt=<YYYY-MM-DD>/part-<hash of the file's event_id set>.parquet
//! quarantine/dt=<YYYY-MM-DD>/<reason>/<hash of the raw message>.json
//! ```

use chrono::NaiveDate;
use envelope::TenantId;
use sha2::{Digest, Sha256};

use crate::record::AuditRecord;

pub const INGEST_PREFIX: &str = "ingest/";
pub const AUDIT_PREFIX: &str = "audit/";
pub const QUARANTINE_PREFIX: &str = "quarantine/";
/// Markers of the ingest files the integrator has put in the tenant logs
/// (`trust/_integrated/<ingest key>`), which the compactor may fold.
pub const INTEGRATED_PREFIX: &str = "trust/_integrated/";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit object key: {key}")]
pub struct KeyError {
    pub key: String,
}

/// One tenant-day: the unit of the queryable layout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub tenant: TenantId,
    pub dt: NaiveDate,
}

impl PartitionKey {
    pub fn new(tenant: TenantId, dt: NaiveDate) -> Self {
        Self { tenant, dt }
    }

    /// `audit/tenant_id=<t>/dt=<d>/`
    pub fn prefix(&self) -> String {
        format!("{}dt={}/", tenant_prefix(&self.tenant), self.dt)
    }

    /// The compacted file for exactly these records (sorted, deduplicated), named by
    /// their event ids and payload hashes: the same rows give the same key, and a file
    /// holding another payload under an id gets another key, never the same one.
    pub fn object_key(&self, records: &[AuditRecord]) -> String {
        let mut h = Sha256::new();
        for r in records {
            h.update(r.event_id.as_str().as_bytes());
            h.update(b"/");
            h.update(r.payload_sha256.as_bytes());
            h.update(b"\n");
        }
        format!("{}part-{}.parquet", self.prefix(), short_hex(h))
    }
}

/// `audit/tenant_id=<t>/`: everything of one tenant and nothing of any other, because a
/// `TenantId` cannot contain `/` or `=`.
pub fn tenant_prefix(tenant: &TenantId) -> String {
    format!("{AUDIT_PREFIX}tenant_id={tenant}/")
}

pub fn ingest_day_prefix(dt: NaiveDate) -> String {
    format!("{INGEST_PREFIX}dt={dt}/")
}

/// The ingest file of one invocation and day, named by its newest and oldest
/// `occurred_at` and its set of (tenant, event_id, payload hash):
/// `n<10^16 - 1 - newest µs>-<oldest µs>-<hash>.parquet`.
/// - Reprocessing the same events writes the same key; a conflicting copy (same ids,
///   another payload) must not, or its file would overwrite the original's.
/// - Keys sort newest first, so one listing of the first keys finds a day's newest
///   files, and a reader knows from the name alone that a file holds nothing newer.
pub fn ingest_object_key(dt: NaiveDate, records: &[AuditRecord]) -> String {
    let mut keys: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r.tenant_id.as_str(),
                r.event_id.as_str(),
                r.payload_sha256.as_str(),
            )
        })
        .collect();
    keys.sort_unstable();
    let mut h = Sha256::new();
    for (t, e, p) in keys {
        h.update(t.as_bytes());
        h.update(b"/");
        h.update(e.as_bytes());
        h.update(b"/");
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    let times = || records.iter().map(|r| r.occurred_at.timestamp_micros());
    let newest = times().max().unwrap_or(0).clamp(0, NEWEST_MAX);
    let oldest = times().min().unwrap_or(0).clamp(0, NEWEST_MAX);
    format!(
        "{}n{:016}-{oldest:016}-{}.parquet",
        ingest_day_prefix(dt),
        NEWEST_MAX - newest,
        short_hex(h)
    )
}

const NEWEST_MAX: i64 = 9_999_999_999_999_999;

/// The (oldest, newest) `occurred_at` an ingest file holds, from its name (None for
/// names of files written before names carried them).
pub fn ingest_file_span(
    key: &str,
) -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let name = key.rsplit('/').next()?;
    let rest = name.strip_prefix('n')?;
    let (inverted, rest) = rest.split_once('-')?;
    let (oldest, _) = rest.split_once('-')?;
    if inverted.len() != 16 || oldest.len() != 16 {
        return None;
    }
    let newest = NEWEST_MAX - inverted.parse::<i64>().ok()?;
    let oldest: i64 = oldest.parse().ok()?;
    Some((
        chrono::DateTime::from_timestamp_micros(oldest)?,
        chrono::DateTime::from_timestamp_micros(newest)?,
    ))
}

/// The newest `occurred_at` an ingest file holds, from its name.
pub fn ingest_file_newest(key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    ingest_file_span(key).map(|(_, newest)| newest)
}

/// A quarantined message, named by its reason and raw bytes, so a redelivery of the same
/// bad message overwrites its own record instead of piling up.
pub fn quarantine_object_key(day: NaiveDate, reason_code: &str, raw: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(raw);
    format!(
        "{QUARANTINE_PREFIX}dt={day}/{reason_code}/{}.json",
        short_hex(h)
    )
}

fn short_hex(h: Sha256) -> String {
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

/// A parsed object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKey {
    Ingest { dt: NaiveDate },
    Tenant { partition: PartitionKey },
}

impl ObjectKey {
    pub fn parse(key: &str) -> Result<Self, KeyError> {
        let err = || KeyError {
            key: key.to_owned(),
        };
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| err());
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["ingest", dt, file] if file.ends_with(".parquet") => Ok(ObjectKey::Ingest {
                dt: date(dt.strip_prefix("dt=").ok_or_else(err)?)?,
            }),
            ["audit", tenant, dt, file] if file.ends_with(".parquet") => {
                let tenant = tenant.strip_prefix("tenant_id=").ok_or_else(err)?;
                Ok(ObjectKey::Tenant {
                    partition: PartitionKey {
                        tenant: TenantId::parse(tenant).map_err(|_| err())?,
                        dt: date(dt.strip_prefix("dt=").ok_or_else(err)?)?,
                    },
                })
            }
            _ => Err(err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let pk = PartitionKey::new(TenantId::parse("acme").unwrap(), d);
        let key = pk.object_key(&[]);
        assert!(
            key.starts_with("audit/tenant_id=acme/dt=2026-11-21/part-"),
            "{key}"
        );
        assert_eq!(
            ObjectKey::parse(&key).unwrap(),
            ObjectKey::Tenant { partition: pk }
        );
        let ik = ingest_object_key(d, &[]);
        assert_eq!(ObjectKey::parse(&ik).unwrap(), ObjectKey::Ingest { dt: d });
        // ingest names carry their newest occurred_at, and sort newest first
        let mut a = crate::codec::tests::records(1, &["acme"]);
        let mut b = a.clone();
        a[0].occurred_at = chrono::DateTime::from_timestamp(1_763_719_200, 123_456_000).unwrap();
        b[0].occurred_at = a[0].occurred_at + chrono::Duration::microseconds(1);
        let (ka, kb) = (ingest_object_key(d, &a), ingest_object_key(d, &b));
        assert_eq!(ingest_file_newest(&ka), Some(a[0].occurred_at));
        assert_eq!(
            ingest_file_span(&ka),
            Some((a[0].occurred_at, a[0].occurred_at))
        );
        assert_eq!(ingest_file_newest(&kb), Some(b[0].occurred_at));
        assert!(kb < ka, "{kb} should sort before {ka}");
        assert_eq!(
            ingest_file_newest("ingest/dt=2026-11-21/0123abcd.parquet"),
            None
        );
        for bad in [
            "audit/tenant_id=../dt=2026-11-21/x.parquet",
            "audit/tenant=acme/dt=2026-11-21/x.parquet",
            "audit/tenant_id=acme/dt=2026-13-01/x.parquet",
            "ingest/dt=2026-11-21/x.json",
            "other/x",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quarantine_keys_are_deterministic() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let a = quarantine_object_key(d, "malformed_json", b"{");
        assert_eq!(a, quarantine_object_key(d, "malformed_json", b"{"));
        assert_ne!(a, quarantine_object_key(d, "malformed_json", b"{{"));
        assert!(a.starts_with("quarantine/dt=2026-11-21/malformed_json/"));
    }
}
