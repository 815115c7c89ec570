//! Quarantine as something an operator works with: list its records by reason and day,
//! read one, and redrive them once their cause is fixed (a producer bug mended, a
//! schema for a new event type added).
//!
//! A redrive submits each record's raw message through the same `Subscriber` as the
//! queue does. What is accepted leaves quarantine; a copy of an event already stored
//! is a duplicate and leaves too; what still fails is quarantined again with its
//! current reason (and its old record goes, if the reason or day changed); what fails
//! for a transient reason stays as it was. The original record is removed only after
//! the subscriber has stored the event or its new record, so a crash loses nothing,
//! and running a redrive twice changes nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::layout::QUARANTINE_PREFIX;
use crate::ports::{BlobError, BlobStore, Clock, DedupeStore};
use crate::subscriber::{InboundMessage, QuarantineRecord, Subscriber};

/// A quarantine object, from its key: `quarantine/dt=<day>/<reason>/<hash>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    pub key: String,
    pub day: NaiveDate,
    pub reason_code: String,
}

impl QuarantineEntry {
    pub fn parse(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(QUARANTINE_PREFIX)?;
        let mut parts = rest.split('/');
        let day = parts.next()?.strip_prefix("dt=")?;
        let reason = parts.next()?;
        let file = parts.next()?;
        if parts.next().is_some() || !file.ends_with(".json") || reason.is_empty() {
            return None;
        }
        Some(Self {
            key: key.to_owned(),
            day: NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?,
            reason_code: reason.to_owned(),
        })
    }
}

/// Which records: a reason, and an inclusive range of quarantine days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub reason: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Selection {
    fn matches(&self, e: &QuarantineEntry) -> bool {
        self.reason.as_ref().is_none_or(|r| *r == e.reason_code)
            && self.from.is_none_or(|f| e.day >= f)
            && self.to.is_none_or(|t| e.day <= t)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{key} is not a quarantine record: {reason}")]
    NotARecord { key: String, reason: String },
}

/// The selected records, oldest day first.
pub async fn list<B: BlobStore>(
    blobs: &B,
    selection: &Selection,
) -> Result<Vec<QuarantineEntry>, QuarantineError> {
    // quarantine is kept until redriven: a selection of a few days lists only their
    // prefixes (`status` asks for the last week of a bucket that holds years)
    let prefixes: Vec<String> = match (selection.from, selection.to) {
        (Some(from), Some(to)) if to >= from && (to - from).num_days() < 62 => from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| match &selection.reason {
                Some(r) => format!("{QUARANTINE_PREFIX}dt={d}/{r}/"),
                None => format!("{QUARANTINE_PREFIX}dt={d}/"),
            })
            .collect(),
        _ => vec![QUARANTINE_PREFIX.to_owned()],
    };
    let mut entries = Vec::new();
    for prefix in prefixes {
        entries.extend(
            blobs
                .list(&prefix)
                .await?
                .iter()
                .filter_map(|o| QuarantineEntry::parse(&o.key))
                .filter(|e| selection.matches(e)),
        );
    }
    Ok(entries)
}

pub async fn show<B: BlobStore>(blobs: &B, key: &str) -> Result<QuarantineRecord, QuarantineError> {
    if QuarantineEntry::parse(key).is_none() {
        return Err(QuarantineError::NotARecord {
            key: key.to_owned(),
            reason: "expected quarantine/dt=<day>/<reason>/<hash>.json".into(),
        });
    }
    let bytes = blobs.get(key).await?;
    serde_json::from_slice(&bytes).map_err(|e| QuarantineError::NotARecord {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RedriveReport {
    pub selected: usize,
    /// Stored now.
    pub accepted: usize,
    /// Already stored (the same event under the same payload).
    pub duplicates: usize,
    /// Quarantined again, by current reason.
    pub still_quarantined: BTreeMap<String, usize>,
    /// Failed for a transient reason: left as they were, for another redrive.
    pub retry_later: usize,
    /// Original records removed (accepted, duplicates, and those now kept under
    /// another reason or day).
    pub removed: usize,
}

/// Submits the selected records through `subscriber`, `batch` at a time.
pub async fn redrive<D, B, C, Q>(
    subscriber: &Subscriber<D, B, C>,
    blobs: &Q,
    selection: &Selection,
    batch: usize,
) -> Result<RedriveReport, QuarantineError>
where
    D: DedupeStore,
    B: BlobStore,
    C: Clock,
    Q: BlobStore,
{
    let entries = list(blobs, selection).await?;
    let mut report = RedriveReport {
        selected: entries.len(),
        ..RedriveReport::default()
    };
    for chunk in entries.chunks(batch.max(1)) {
        let mut messages = Vec::with_capacity(chunk.len());
        for e in chunk {
            let record = show(blobs, &e.key).await?;
            // the key is the message id: one per record, and it says what to remove
            messages.push(InboundMessage {
                message_id: e.key.clone(),
                body: record.body,
            });
        }
        let out = subscriber.handle(&messages).await;
        report.accepted += out.stats.written;
        report.duplicates += out.stats.duplicates;
        for e in chunk {
            if out.retry_reasons.contains_key(&e.key) {
                report.retry_later += 1;
                continue;
            }
            if let Some(new_key) = out.quarantined.get(&e.key) {
                let reason = QuarantineEntry::parse(new_key)
                    .map_or_else(|| e.reason_code.clone(), |n| n.reason_code);
                *report.still_quarantined.entry(reason).or_insert(0) += 1;
                if *new_key == e.key {
                    continue;
                }
            }
            blobs.delete(&e.key).await?;
            report.removed += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        let e =
            QuarantineEntry::parse("quarantine/dt=2026-11-21/unknown_schema/ab12.json").unwrap();
        assert_eq!(e.reason_code, "unknown_schema");
        assert_eq!(e.day.to_string(), "2026-11-21");
        for bad in [
            "quarantine/dt=2026-11-21/ab12.json",
            "quarantine/dt=21-11-2026/x/ab12.json",
            "quarantine/dt=2026-11-21/x/y/ab12.json",
            "ingest/dt=2026-11-21/x/ab12.json",
            "quarantine/dt=2026-11-21/x/ab12.parquet",
        ] {
            assert!(QuarantineEntry::parse(bad).is_none(), "{bad}");
        }
        let s = Selection {
            reason: Some("unknown_schema".into()),
            from: NaiveDate::from_ymd_opt(2026, 11, 21),
            to: NaiveDate::from_ymd_opt(2026, 11, 21),
        };
        assert!(s.matches(&e));
        let mut later = e.clone();
        later.day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert!(!s.matches(&later));
    }

    /// A bounded selection lists only its days' prefixes and finds what the whole
    /// listing finds.
    #[tokio::test]
    async fn a_bounded_selection_finds_what_the_whole_listing_finds() {
        let blobs = crate::memory::MemoryBlobStore::default();
        for (day, reason) in [
            ("2026-11-19", "unknown_schema"),
            ("2026-11-20", "unknown_schema"),
            ("2026-11-20", "malformed_json"),
            ("2026-11-21", "unknown_schema"),
            ("2026-12-25", "unknown_schema"),
        ] {
            let key = format!(
                "{QUARANTINE_PREFIX}dt={day}/{reason}/{}.json",
                day.replace('-', "")
            );
            blobs
                .put(&key, bytes::Bytes::from_static(b"{}"))
                .await
                .unwrap();
        }
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        for (reason, from, to) in [
            (None, d("2026-11-20"), d("2026-11-21")),
            (Some("unknown_schema"), d("2026-11-19"), d("2026-11-20")),
            (None, d("2026-11-01"), d("2026-12-31")),
            (None, d("2026-11-20"), None),
            (Some("malformed_json"), None, None),
        ] {
            let bounded = Selection {
                reason: reason.map(str::to_owned),
                from,
                to,
            };
            let all: Vec<String> = blobs
                .list(QUARANTINE_PREFIX)
                .await
                .unwrap()
                .iter()
                .filter_map(|o| QuarantineEntry::parse(&o.key))
                .filter(|e| bounded.matches(e))
                .map(|e| e.key)
                .collect();
            let mut got: Vec<String> = list(&blobs, &bounded)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.key)
                .collect();
            got.sort();
            assert!(!got.is_empty(), "{bounded:?}");
            assert_eq!(got, all, "{bounded:?}");
        }
    }
}
