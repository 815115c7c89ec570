//! The plan of one day's compaction, and the pure decisions that make it: how ingest
//! files are grouped into count and route tasks, and how each tenant's hash space is
//! cut into fold units. Every task and unit is bounded (bytes to count, rows to route,
//! rows to fold), whatever the size of the day, which is what keeps a worker's time and
//! memory flat from a thousand events a day to sixty million.
//!
//! Plans are stored as JSON beside the work (`compaction/dt=<day>/<plan>/`), so a worker
//! gets only the plan's key and an index, and a rerun finds the same plan.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::parts::HashRange;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestFile {
    pub key: String,
    pub bytes: u64,
}

/// The day as listed: its ingest files, grouped into count tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPlan {
    pub day: NaiveDate,
    /// Derived from the listed file set: the same files give the same plan.
    pub plan_id: String,
    pub files: Vec<IngestFile>,
    /// Indexes into `files`.
    pub count_tasks: Vec<Vec<usize>>,
    /// Whether every file has an integrator's marker that gives its rows' leaf indices
    /// (`CompactorConfig::integrated_only`).
    #[serde(default)]
    pub leaf_markers: bool,
}

/// An ingest file that could not be decoded: we wrote it, so it means corruption. It is
/// moved aside with its reason and the day goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damaged {
    pub key: String,
    pub moved_to: String,
    pub reason: String,
}

/// What one count task found in its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// (index into the day's files, rows) of each readable file.
    pub rows: Vec<(usize, usize)>,
    pub tenants: BTreeMap<String, usize>,
    pub damaged: Vec<Damaged>,
}

/// One tenant's hash range inside a fold unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantRange {
    pub tenant: String,
    pub range: HashRange,
}

/// What one fold worker does: merge the rows routed to its ranges with the existing
/// parts it supersedes, and write the new parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub ranges: Vec<TenantRange>,
    /// Existing part files this unit reads (every one overlapping its ranges).
    pub parts: Vec<String>,
    pub est_rows: usize,
}

/// The day once counted: route tasks over the readable files, and the fold units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitPlan {
    pub day: NaiveDate,
    pub plan_id: String,
    /// Indexes into the day plan's files; damaged files are in none.
    pub route_tasks: Vec<Vec<usize>>,
    pub units: Vec<Unit>,
    /// Existing parts read by some unit: removed once every unit has written.
    pub superseded: Vec<String>,
    pub damaged: Vec<Damaged>,
}

/// An existing part of a tenant-day, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingPart {
    pub key: String,
    pub range: HashRange,
    pub rows: usize,
}

/// One tenant's share of the day: rows waiting in the ingest tier, parts already written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLoad {
    pub fresh: usize,
    pub parts: Vec<ExistingPart>,
}

/// Consecutive items whose weights add up to at most `max` (at least one item each).
pub fn pack(weights: &[(usize, u64)], max: u64) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut load = 0u64;
    for &(i, w) in weights {
        match out.last_mut() {
            Some(group) if load + w <= max => {
                group.push(i);
                load += w;
            }
            _ => {
                out.push(vec![i]);
                load = w;
            }
        }
    }
    out
}

/// Cuts every tenant's hash space into ranges of about `unit_rows` rows (fresh rows
/// spread evenly over the hashes, existing parts at their counts), then packs
/// consecutive ranges into units of at most `unit_rows` estimated rows. Ranges follow
/// existing parts: a group of overlapping parts (normally one) is folded as a whole or
/// cut evenly, so every part read is superseded by what its units write.
pub fn plan_units(
    loads: &BTreeMap<String, TenantLoad>,
    unit_rows: usize,
) -> (Vec<Unit>, Vec<String>) {
    let unit_rows = unit_rows.max(1);
    // (range, its existing parts, estimated rows), in (tenant, lo) order
    let mut pieces: Vec<(TenantRange, Vec<String>, usize)> = Vec::new();
    let mut superseded = BTreeSet::new();
    for (tenant, load) in loads {
        for (segment, parts, existing) in segments(&load.parts) {
            let fresh = (load.fresh as f64 * segment.fraction()).ceil() as usize;
            let est = existing + fresh;
            let k = est.div_ceil(unit_rows).max(1);
            let share = est.div_ceil(k);
            for range in segment.split(k) {
                pieces.push((
                    TenantRange {
                        tenant: tenant.clone(),
                        range,
                    },
                    parts.clone(),
                    share,
                ));
            }
            superseded.extend(parts);
        }
    }
    let mut units: Vec<Unit> = Vec::new();
    for (range, parts, est) in pieces {
        match units.last_mut() {
            Some(u) if u.est_rows + est <= unit_rows => {
                u.ranges.push(range);
                for p in parts {
                    if !u.parts.contains(&p) {
                        u.parts.push(p);
                    }
                }
                u.est_rows += est;
            }
            _ => units.push(Unit {
                ranges: vec![range],
                parts,
                est_rows: est,
            }),
        }
    }
    (units, superseded.into_iter().collect())
}

/// The tenant's hash space as segments: each group of overlapping parts (its union),
/// and the gaps between them; with no parts, the whole space. Returns (segment, parts
/// in it, their rows).
fn segments(parts: &[ExistingPart]) -> Vec<(HashRange, Vec<String>, usize)> {
    let mut sorted: Vec<&ExistingPart> = parts.iter().collect();
    sorted.sort_by_key(|p| (p.range.lo, p.range.hi));
    let mut groups: Vec<(HashRange, Vec<String>, usize)> = Vec::new();
    for p in sorted {
        match groups.last_mut() {
            Some((r, keys, rows)) if p.range.lo <= r.hi => {
                r.hi = r.hi.max(p.range.hi);
                keys.push(p.key.clone());
                *rows += p.rows;
            }
            _ => groups.push((p.range, vec![p.key.clone()], p.rows)),
        }
    }
    // fill the gaps, so the segments tile the space
    let mut out = Vec::with_capacity(groups.len() * 2 + 1);
    let mut next: Option<u64> = Some(0);
    for (r, keys, rows) in groups {
        if let Some(n) = next
            && n < r.lo
        {
            out.push((
                HashRange {
                    lo: n,
                    hi: r.lo - 1,
                },
                vec![],
                0,
            ));
        }
        next = r.hi.checked_add(1);
        out.push((r, keys, rows));
    }
    if let Some(n) = next {
        out.push((
            HashRange {
                lo: n,
                hi: u64::MAX,
            },
            vec![],
            0,
        ));
    }
    out
}

/// Finds the unit of a (tenant, event hash): the ranges of a plan, sorted.
pub struct UnitIndex {
    ranges: Vec<(String, u64, u64, usize)>,
}

impl UnitIndex {
    pub fn new(units: &[Unit]) -> Self {
        let mut ranges: Vec<(String, u64, u64, usize)> = units
            .iter()
            .enumerate()
            .flat_map(|(i, u)| {
                u.ranges
                    .iter()
                    .map(move |r| (r.tenant.clone(), r.range.lo, r.range.hi, i))
            })
            .collect();
        ranges.sort();
        Self { ranges }
    }

    pub fn find(&self, tenant: &str, hash: u64) -> Option<usize> {
        // the last range starting at or before (tenant, hash)
        let at = self
            .ranges
            .partition_point(|(t, lo, _, _)| (t.as_str(), *lo) <= (tenant, hash));
        let (t, lo, hi, unit) = self.ranges.get(at.checked_sub(1)?)?;
        (t == tenant && *lo <= hash && hash <= *hi).then_some(*unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load(fresh: usize, parts: &[(u64, u64, usize)]) -> TenantLoad {
        TenantLoad {
            fresh,
            parts: parts
                .iter()
                .enumerate()
                .map(|(i, &(lo, hi, rows))| ExistingPart {
                    key: format!("p{i}-{lo}-{hi}"),
                    range: HashRange { lo, hi },
                    rows,
                })
                .collect(),
        }
    }

    #[test]
    fn small_tenants_share_a_unit_and_a_big_one_is_cut() {
        let mut loads = BTreeMap::new();
        loads.insert("a".to_owned(), load(10, &[]));
        loads.insert("b".to_owned(), load(20, &[]));
        loads.insert("big".to_owned(), load(1000, &[]));
        loads.insert("c".to_owned(), load(5, &[]));
        let (units, superseded) = plan_units(&loads, 100);
        assert!(superseded.is_empty());
        assert!(units.iter().all(|u| u.est_rows <= 100), "{units:?}");
        let big: Vec<&TenantRange> = units
            .iter()
            .flat_map(|u| &u.ranges)
            .filter(|r| r.tenant == "big")
            .collect();
        assert_eq!(big.len(), 10);
        assert_eq!(units[0].ranges.len(), 2, "a and b together");
        let idx = UnitIndex::new(&units);
        for h in [0, 1 << 40, u64::MAX / 2, u64::MAX] {
            for t in ["a", "b", "big", "c"] {
                assert!(idx.find(t, h).is_some(), "{t} {h}");
            }
        }
        assert_eq!(idx.find("zzz", 7), None);
        assert_eq!(idx.find("", 7), None);
    }

    #[test]
    fn existing_parts_are_folded_whole_or_cut_evenly_and_superseded() {
        let mut loads = BTreeMap::new();
        // two parts tiling the space, and an overlapping leftover of an interrupted run
        let half = u64::MAX / 2;
        loads.insert(
            "t".to_owned(),
            load(40, &[(0, half, 50), (half + 1, u64::MAX, 50), (10, 20, 1)]),
        );
        let (units, superseded) = plan_units(&loads, 80);
        assert_eq!(superseded.len(), 3);
        let ranges: Vec<HashRange> = units
            .iter()
            .flat_map(|u| u.ranges.iter().map(|r| r.range))
            .collect();
        // the overlap joins the first part's segment; nothing straddles a part boundary
        assert!(
            ranges.iter().all(|r| r.hi <= half || r.lo > half),
            "{ranges:?}"
        );
        for u in &units {
            for r in &u.ranges {
                // every unit reads all parts overlapping its ranges
                for p in &loads["t"].parts {
                    if p.range.overlaps(&r.range) {
                        assert!(u.parts.contains(&p.key), "{u:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn gaps_between_parts_are_covered() {
        let segs = segments(&load(0, &[(100, 200, 3), (500, 600, 4)]).parts);
        let ranges: Vec<(u64, u64)> = segs.iter().map(|s| (s.0.lo, s.0.hi)).collect();
        assert_eq!(
            ranges,
            vec![(0, 99), (100, 200), (201, 499), (500, 600), (601, u64::MAX)]
        );
    }

    #[test]
    fn tasks_pack_within_their_bound() {
        let groups = pack(&[(0, 5), (1, 5), (2, 11), (3, 1), (4, 9)], 10);
        assert_eq!(groups, vec![vec![0, 1], vec![2], vec![3, 4]]);
        assert!(pack(&[], 10).is_empty());
    }

    proptest! {
        /// Every (tenant, hash) of a planned tenant lands in exactly one unit, and no
        /// unit is estimated above the bound.
        #[test]
        fn units_tile_every_tenants_hash_space(
            fresh in prop::collection::vec(0usize..5000, 1..20),
            bound in 50usize..2000,
            probes in prop::collection::vec(any::<u64>(), 20),
        ) {
            let loads: BTreeMap<String, TenantLoad> = fresh
                .iter()
                .enumerate()
                .map(|(i, &f)| (format!("t{i:02}"), load(f, &[])))
                .collect();
            let (units, _) = plan_units(&loads, bound);
            for u in &units {
                prop_assert!(u.est_rows <= bound.max(1) || u.ranges.len() == 1);
            }
            let idx = UnitIndex::new(&units);
            for t in loads.keys() {
                for &h in &probes {
                    let owners: Vec<usize> = units
                        .iter()
                        .enumerate()
                        .filter(|(_, u)| u.ranges.iter().any(|r| &r.tenant == t && r.range.contains(h)))
                        .map(|(i, _)| i)
                        .collect();
                    prop_assert_eq!(owners.len(), 1);
                    prop_assert_eq!(idx.find(t, h), Some(owners[0]));
                }
            }
        }
    }
}
