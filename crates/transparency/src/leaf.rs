//! What the log commits to, one leaf per accepted event (and per retention expiry).
//!
//! A leaf is one line of ASCII, fields separated by single spaces, so an auditor can
//! recompute it with a shell one-liner (`printf` then SHA-256 over `0x00 || line`, RFC
//! 6962 §2.1):
//!
//! ```text
//! v1 event  <tenant> <event_id> <accepted_at> <payload_sha256>
//! v1 expiry <tenant> <first_index> <end_index> <policy> <expired_at>
//! ```
//!
//! Times are microseconds since the Unix epoch (UTC), hashes lowercase hex. The event leaf
//! holds the payload's hash, never the payload: erasing personal data from a payload later
//! leaves every proof intact. An expiry leaf records that the events at indices
//! `first_index..end_index` were removed under `policy` (for example `retention:P90D`), so a
//! verifier tells "removed by policy" from "missing".

use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use tlog_tiles::Hash;

/// The RFC 6962 leaf hash of an entry as stored: SHA-256 over `0x00 || entry`.
pub fn record_hash(entry: &[u8]) -> Hash {
    tlog_tiles::record_hash(entry)
}

/// One entry of a tenant's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    Event(EventLeaf),
    Expiry(ExpiryLeaf),
}

/// An accepted event: the facts a stored row must reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLeaf {
    pub tenant: TenantId,
    pub event_id: EventId,
    /// When the pipeline accepted it (the row's `ingested_at`), to the microsecond.
    pub accepted_at: DateTime<Utc>,
    pub payload_sha256: [u8; 32],
}

/// The removal, under a retention policy, of the events at `first..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryLeaf {
    pub tenant: TenantId,
    pub first: u64,
    /// Exclusive.
    pub end: u64,
    /// What removed them, without spaces (`retention:P90D`).
    pub policy: String,
    pub expired_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("not a leaf of this log: {0}")]
    Malformed(String),
    #[error("payload_sha256 {0:?} is not 64 lowercase hex digits")]
    PayloadHash(String),
    #[error("policy {0:?} must be non-empty printable ASCII without spaces")]
    Policy(String),
}

fn malformed(why: impl Into<String>) -> LeafError {
    LeafError::Malformed(why.into())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(field: &str) -> Result<DateTime<Utc>, LeafError> {
    field
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| malformed(format!("time {field:?}")))
}

fn index(field: &str) -> Result<u64, LeafError> {
    field
        .parse::<u64>()
        .map_err(|_| malformed(format!("index {field:?}")))
}

/// Lowercase hex only: one hash has one spelling, so one leaf has one encoding.
pub fn parse_sha256(hex_digits: &str) -> Result<[u8; 32], LeafError> {
    let bad = || LeafError::PayloadHash(hex_digits.chars().take(80).collect());
    if hex_digits.len() != 64 || hex_digits.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).map_err(|_| bad())?;
    Ok(out)
}

impl EventLeaf {
    /// The leaf of a stored row: its tenant, event id, `ingested_at` and `payload_sha256`.
    pub fn of_row(
        tenant: &TenantId,
        event_id: &EventId,
        accepted_at: DateTime<Utc>,
        payload_sha256: &str,
    ) -> Result<Self, LeafError> {
        Ok(EventLeaf {
            tenant: tenant.clone(),
            event_id: event_id.clone(),
            accepted_at: truncate_to_micros(accepted_at),
            payload_sha256: parse_sha256(payload_sha256)?,
        })
    }
}

/// Rows keep microseconds; a leaf made from a finer time must equal the row's leaf.
fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

impl ExpiryLeaf {
    pub fn new(
        tenant: &TenantId,
        first: u64,
        end: u64,
        policy: &str,
        expired_at: DateTime<Utc>,
    ) -> Result<Self, LeafError> {
        if policy.is_empty() || !policy.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(LeafError::Policy(policy.chars().take(80).collect()));
        }
        if first >= end {
            return Err(malformed(format!("empty expiry range {first}..{end}")));
        }
        Ok(ExpiryLeaf {
            tenant: tenant.clone(),
            first,
            end,
            policy: policy.to_owned(),
            expired_at: truncate_to_micros(expired_at),
        })
    }
}

impl Leaf {
    pub fn tenant(&self) -> &TenantId {
        match self {
            Leaf::Event(e) => &e.tenant,
            Leaf::Expiry(x) => &x.tenant,
        }
    }

    /// The entry as the log stores it (C2SP entry bundles) and hashes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        self.encode_into(&mut out);
        out
    }

    /// `encode`, appended to `out` (the verifier reuses one buffer for every row).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // writing to a Vec cannot fail
        let _ = match self {
            Leaf::Event(e) => {
                let mut sha = [0u8; 64];
                let _ = hex::encode_to_slice(e.payload_sha256, &mut sha);
                write!(
                    out,
                    "v1 event {} {} {} ",
                    e.tenant,
                    e.event_id,
                    micros(e.accepted_at)
                )
                .and_then(|()| out.write_all(&sha))
            }
            Leaf::Expiry(x) => write!(
                out,
                "v1 expiry {} {} {} {} {}",
                x.tenant,
                x.first,
                x.end,
                x.policy,
                micros(x.expired_at)
            ),
        };
    }

    /// RFC 6962 leaf hash: SHA-256 over `0x00 || encode()`.
    pub fn hash(&self) -> Hash {
        record_hash(&self.encode())
    }

    /// Reads an entry back; only the canonical encoding is accepted.
    pub fn parse(entry: &[u8]) -> Result<Self, LeafError> {
        let text = std::str::from_utf8(entry).map_err(|_| malformed("not UTF-8"))?;
        let fields: Vec<&str> = text.split(' ').collect();
        let tenant = |f: &str| TenantId::parse(f).map_err(|e| malformed(e.to_string()));
        let leaf = match fields.as_slice() {
            ["v1", "event", t, id, at, sha] => Leaf::Event(EventLeaf {
                tenant: tenant(t)?,
                event_id: EventId::parse(id).map_err(|e| malformed(e.to_string()))?,
                accepted_at: time(at)?,
                payload_sha256: parse_sha256(sha)?,
            }),
            ["v1", "expiry", t, first, end, policy, at] => Leaf::Expiry(ExpiryLeaf::new(
                &tenant(t)?,
                index(first)?,
                index(end)?,
                policy,
                time(at)?,
            )?),
            _ => {
                return Err(malformed(format!(
                    "{:?}",
                    text.chars().take(120).collect::<String>()
                )));
            }
        };
        if leaf.encode() != entry {
            return Err(malformed(format!(
                "{:?} is not in canonical form",
                text.chars().take(120).collect::<String>()
            )));
        }
        Ok(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Leaf {
        Leaf::Event(
            EventLeaf::of_row(
                &TenantId::parse("acme").unwrap(),
                &EventId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap(),
                DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
                &"ab".repeat(32),
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_leaf_is_one_documented_line_and_hashes_as_rfc_6962_says() {
        let line = format!(
            "v1 event acme 01890a5d-ac96-774b-bcce-b302099a8057 1700000000123456 {}",
            "ab".repeat(32)
        );
        assert_eq!(event().encode(), line.as_bytes());
        // SHA-256(0x00 || line), computed independently of tlog_tiles
        use sha2_v011::Digest;
        let mut h = sha2_v011::Sha256::new();
        h.update([0u8]);
        h.update(line.as_bytes());
        assert_eq!(event().hash().0.as_slice(), h.finalize().as_slice());
        assert_eq!(Leaf::parse(line.as_bytes()).unwrap(), event());
    }

    #[test]
    fn expiry_leaves_round_trip_and_refuse_what_would_not() {
        let t = TenantId::parse("acme").unwrap();
        let at = DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap();
        let x = Leaf::Expiry(ExpiryLeaf::new(&t, 0, 1000, "retention:P90D", at).unwrap());
        assert_eq!(
            x.encode(),
            b"v1 expiry acme 0 1000 retention:P90D 1800000000000000"
        );
        assert_eq!(Leaf::parse(&x.encode()).unwrap(), x);
        assert!(ExpiryLeaf::new(&t, 5, 5, "p", at).is_err(), "empty range");
        assert!(ExpiryLeaf::new(&t, 0, 5, "two words", at).is_err());
        assert!(ExpiryLeaf::new(&t, 0, 5, "", at).is_err());
    }

    #[test]
    fn only_the_canonical_encoding_parses() {
        let good = String::from_utf8(event().encode()).unwrap();
        for bad in [
            good.replace("ab", "AB"),    // uppercase hex: a second spelling
            good.replacen(' ', "  ", 1), // two spaces
            format!("{good} "),          // trailing space
            good.replace("1700000000123456", "+1700000000123456"),
            good.replace("v1", "v2"),
            good.replace("acme", "Acme"),      // not a tenant id
            good[..good.len() - 2].to_owned(), // short hash
            "v1 event acme".to_owned(),
        ] {
            assert!(Leaf::parse(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
        assert!(Leaf::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn a_leaf_from_a_nanosecond_time_equals_the_stored_rows_leaf() {
        let t = TenantId::parse("acme").unwrap();
        let id = EventId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
        let fine = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let stored = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let sha = "ab".repeat(32);
        assert_eq!(
            EventLeaf::of_row(&t, &id, fine, &sha).unwrap(),
            EventLeaf::of_row(&t, &id, stored, &sha).unwrap()
        );
    }
}
