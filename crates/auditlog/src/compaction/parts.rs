//! Where an event falls in a tenant-day, and how the files of a tenant-day are named.
//!
//! A tenant-day of the tenant tier is one or more part files, each holding the events
//! whose `event_hash` lies in its inclusive range `[lo, hi]`; after a clean compaction
//! the ranges tile `0..=u64::MAX`. A small tenant-day is one part over the whole range
//! (what the compactor always wrote before), a busy one is cut into as many ranges as
//! keep each part within the worker's bound. Copies of one event always share a hash,
//! so deduplication and conflict detection never need another part.
//!
//! ```text
//! part-<lo:016x>-<hi:016x>-r<rows>-<hash of (event_id, payload_sha256) list>.parquet
//! part-<hash>.parquet      (before ranges: the whole range, rows unknown)
//! ```

use envelope::EventId;
use sha2::{Digest, Sha256};

use crate::layout::PartitionKey;
use crate::record::AuditRecord;

/// A stable 64-bit hash of an event id: the first eight bytes of its SHA-256. Stable
/// across builds and versions, because part names persist it.
pub fn event_hash(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

pub fn event_id_hash(id: &EventId) -> u64 {
    event_hash(id.as_str())
}

/// An inclusive range of event hashes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct HashRange {
    pub lo: u64,
    pub hi: u64,
}

impl HashRange {
    pub const ALL: HashRange = HashRange {
        lo: 0,
        hi: u64::MAX,
    };

    pub fn contains(&self, h: u64) -> bool {
        self.lo <= h && h <= self.hi
    }

    pub fn overlaps(&self, o: &HashRange) -> bool {
        self.lo <= o.hi && o.lo <= self.hi
    }

    /// The share of all hashes in this range, in 0..=1.
    pub fn fraction(&self) -> f64 {
        ((self.hi - self.lo) as f64 + 1.0) / (u64::MAX as f64 + 1.0)
    }

    /// `k` contiguous ranges of (nearly) equal width that tile this one (fewer when
    /// the range holds fewer than `k` hashes).
    pub fn split(&self, k: usize) -> Vec<HashRange> {
        let width = u128::from(self.hi - self.lo) + 1;
        let k = (k.max(1) as u128).min(width);
        (0..k)
            .map(|i| {
                let lo = u128::from(self.lo) + width * i / k;
                let hi = u128::from(self.lo) + width * (i + 1) / k - 1;
                // both within [self.lo, self.hi], so they fit in u64
                HashRange {
                    lo: u64::try_from(lo).unwrap_or(u64::MAX),
                    hi: u64::try_from(hi).unwrap_or(u64::MAX),
                }
            })
            .collect()
    }
}

/// What a part file's name says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartName {
    pub range: HashRange,
    /// Rows in the file; `None` for files named before ranges.
    pub rows: Option<usize>,
}

impl PartName {
    /// Reads a part file name (the last path segment); anything else is not a part.
    pub fn parse(file: &str) -> Option<Self> {
        let stem = file.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let fields: Vec<&str> = stem.split('-').collect();
        match fields.as_slice() {
            [_hash] => Some(PartName {
                range: HashRange::ALL,
                rows: None,
            }),
            [lo, hi, rows, _hash] => {
                let lo = u64::from_str_radix(lo, 16).ok()?;
                let hi = u64::from_str_radix(hi, 16).ok()?;
                let rows = rows.strip_prefix('r')?.parse().ok()?;
                (lo <= hi).then_some(PartName {
                    range: HashRange { lo, hi },
                    rows: Some(rows),
                })
            }
            _ => None,
        }
    }
}

/// The part file for exactly these records (deduplicated, all in `range`), named by
/// their range, count, event ids and payload hashes: the same rows give the same key.
pub fn part_key(partition: &PartitionKey, range: HashRange, records: &[AuditRecord]) -> String {
    let mut ids: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.event_id.as_str(), r.payload_sha256.as_str()))
        .collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for (id, sha) in ids {
        h.update(id.as_bytes());
        h.update(b"/");
        h.update(sha.as_bytes());
        h.update(b"\n");
    }
    let digest = h.finalize();
    format!(
        "{}part-{:016x}-{:016x}-r{}-{}.parquet",
        partition.prefix(),
        range.lo,
        range.hi,
        records.len(),
        hex::encode(&digest[..16])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip_and_old_names_cover_everything() {
        let p = PartitionKey::new(
            envelope::TenantId::parse("acme").unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        );
        let r = HashRange { lo: 16, hi: 255 };
        let key = part_key(&p, r, &[]);
        let file = key.rsplit('/').next().unwrap();
        assert_eq!(
            PartName::parse(file),
            Some(PartName {
                range: r,
                rows: Some(0)
            })
        );
        assert_eq!(
            PartName::parse("part-6d75889d5443a60e6779c963006ff961.parquet"),
            Some(PartName {
                range: HashRange::ALL,
                rows: None
            })
        );
        for bad in [
            "x.parquet",
            "part-.json",
            "part-zz-01-r1-h.parquet",
            "part-0f-01-r1-h.parquet",
            "part-00-01-1-h.parquet",
        ] {
            assert_eq!(PartName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // pinned: part names on disk depend on it
        assert_eq!(
            event_hash("0192f4a0-7b3c-7d4e-8f00-000000000001"),
            0x2981_5399_d747_5ca0
        );
    }

    proptest! {
        #[test]
        fn a_split_tiles_its_range(lo in any::<u64>(), width in any::<u64>(), k in 1usize..50) {
            // narrow ranges too, where there are fewer hashes than pieces
            let hi = lo.saturating_add(if width % 3 == 0 { width % 7 } else { width });
            let r = HashRange { lo, hi };
            let parts = r.split(k);
            let expected = (u128::from(hi - lo) + 1).min(k as u128) as usize;
            prop_assert_eq!(parts.len(), expected);
            prop_assert_eq!(parts[0].lo, lo);
            prop_assert_eq!(parts.last().unwrap().hi, hi);
            for w in parts.windows(2) {
                prop_assert_eq!(w[0].hi.wrapping_add(1), w[1].lo);
                prop_assert!(w[0].lo <= w[0].hi);
            }
        }
    }
}
