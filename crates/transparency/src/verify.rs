//! Offline verification of a tenant's stored rows against its signed log, with a
//! diagnosis of what differs.
//!
//! 1. The checkpoint must verify against a trusted key and name the tenant's log.
//! 2. A checkpoint the customer pinned earlier must be consistent with it: a smaller log
//!    than pinned is `Truncated`, an inconsistent one is `HistoryRewritten` (a rebuilt or
//!    forked tree, even one signed with our own key).
//! 3. The log's entries must hash to the checkpoint's root.
//! 4. Every row's leaf (recomputed by the caller from the row's fields) must equal the
//!    entry at the row's index; every entry must have its row, unless an expiry entry
//!    says its index was removed by policy. What differs is `Modified` (same event, other
//!    facts), `Reordered` (the event is in the log at another index), `Inserted` (the log
//!    never had it) or `Missing`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use chrono::{DateTime, Utc};
use tlog_tiles::Hash;

use crate::checkpoint::{self, SignedCheckpoint};
use crate::layout::{TILE_WIDTH, decode_bundle, entries_path};
use crate::leaf::Leaf;
use crate::proof::{self, ProofError, TileSource};
use crate::tree::root_of;

/// A stored row as the verifier sees it: the leaf index it carries and the leaf its
/// fields make (the payload hash recomputed from the payload where it is still held).
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub index: u64,
    pub leaf: Leaf,
    /// Where the row was read (a file and row number), for the report.
    pub location: String,
}

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// A checkpoint does not verify (altered, untrusted key, another tenant's).
    Signature,
    /// A row holds the event the log has at its index, with other facts.
    Modified,
    /// The log has an event at these indices and no row holds it.
    Missing,
    /// A row holds an event the log never accepted (or past the log's end).
    Inserted,
    /// A row holds an event the log has at another index.
    Reordered,
    /// The log is shorter than a checkpoint the customer pinned.
    Truncated,
    /// The log is not an extension of the pinned checkpoint's, or its published tiles
    /// and entries do not hash to its signed root.
    HistoryRewritten,
    /// Evidence needed to decide is not there: a tile or bundle not published, or a row
    /// past the checkpoint's end (pending the next checkpoint, or forged).
    Unverifiable,
}

impl Problem {
    pub fn name(self) -> &'static str {
        match self {
            Problem::Signature => "bad signature",
            Problem::Modified => "modified",
            Problem::Missing => "missing",
            Problem::Inserted => "inserted",
            Problem::Reordered => "reordered",
            Problem::Truncated => "truncated",
            Problem::HistoryRewritten => "history rewritten",
            Problem::Unverifiable => "unverifiable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub problem: Problem,
    /// The leaf indices concerned (consecutive ones of one kind are merged).
    pub indexes: Range<u64>,
    /// The first event concerned, where there is one.
    pub event_id: Option<String>,
    pub detail: String,
}

/// What was verified, and what was found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub origin: String,
    /// The checkpoint verified against: size, root, signers.
    pub checkpoint: Option<SignedCheckpoint>,
    /// The pinned checkpoint's size, when one was given and checked.
    pub pinned_size: Option<u64>,
    /// Rows whose leaf equals the log's entry at their index.
    pub rows_verified: u64,
    /// Indices without a row that an expiry entry accounts for.
    pub removed_by_policy: u64,
    /// Logged events accepted outside an export's window (`verify_window`): not expected.
    pub outside_window: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checkpoint.is_some() && self.findings.is_empty()
    }

    fn find(
        &mut self,
        problem: Problem,
        indexes: Range<u64>,
        event_id: Option<&str>,
        detail: String,
    ) {
        // a run of the same problem (a deleted file's rows) is one finding
        if let Some(last) = self.findings.last_mut()
            && last.problem == problem
            && last.indexes.end == indexes.start
            && matches!(
                problem,
                Problem::Missing | Problem::Inserted | Problem::Modified | Problem::Unverifiable
            )
        {
            last.indexes.end = indexes.end;
            return;
        }
        self.findings.push(Finding {
            problem,
            indexes,
            event_id: event_id.map(str::to_owned),
            detail,
        });
    }
}

/// What the log publishes, as the verifier was given it.
pub struct Evidence<'a> {
    /// The tenant log's origin line (`checkpoint::origin`).
    pub origin: &'a str,
    /// The latest signed checkpoint.
    pub checkpoint: &'a [u8],
    /// An older checkpoint the customer kept, to prove the log only grew since.
    pub pinned: Option<&'a [u8]>,
    pub trusted: &'a signed_note::VerifierList,
    /// The log's tiles and entry bundles.
    pub tiles: &'a dyn TileSource,
}

/// Bundle `n`'s first `width` entries.
pub(crate) async fn bundle(
    source: &dyn TileSource,
    n: u64,
    width: u64,
) -> Result<Vec<Vec<u8>>, ProofError> {
    let path = entries_path(n, width);
    let bytes = match source.fetch(&path).await? {
        Some(b) => b,
        // a partial bundle is the start of the full one
        None => source
            .fetch(&entries_path(n, TILE_WIDTH))
            .await?
            .ok_or_else(|| ProofError::MissingTile(path.clone()))?,
    };
    let mut bundle =
        decode_bundle(&bytes).map_err(|e| ProofError::Inconsistent(format!("{path}: {e}")))?;
    if (bundle.len() as u64) < width {
        return Err(ProofError::Inconsistent(format!(
            "{path} holds {} entries, not {width}",
            bundle.len()
        )));
    }
    bundle.truncate(width as usize);
    Ok(bundle)
}

/// The entries `0..size`, read from the published bundles.
async fn entries(source: &dyn TileSource, size: u64) -> Result<Vec<Vec<u8>>, ProofError> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for n in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH);
        out.extend(bundle(source, n, width).await?);
    }
    Ok(out)
}

pub(crate) fn event_id_of(entry: &[u8]) -> Option<&[u8]> {
    // `v1 event <tenant> <event_id> ...`: the fourth field
    let rest = entry.strip_prefix(b"v1 event ")?;
    rest.split(|b| *b == b' ').nth(1)
}

fn differences(row: &Leaf, logged: &Leaf) -> String {
    match (row, logged) {
        (Leaf::Event(r), Leaf::Event(l)) => {
            let mut what = Vec::new();
            if r.tenant != l.tenant {
                what.push(format!("tenant {} (logged {})", r.tenant, l.tenant));
            }
            if r.accepted_at != l.accepted_at {
                what.push(format!(
                    "accepted_at {} (logged {})",
                    r.accepted_at, l.accepted_at
                ));
            }
            if r.payload_sha256 != l.payload_sha256 {
                what.push("payload (its SHA-256 differs from the logged one)".to_owned());
            }
            what.join(", ")
        }
        _ => "not the kind of entry the log holds".to_owned(),
    }
}

/// Verifies `rows` (a tenant's whole stored log) against the evidence.
pub async fn verify(evidence: &Evidence<'_>, rows: Vec<StoredRow>) -> Report {
    verify_window(evidence, rows, None).await
}

/// `verify` for an export of the events accepted in `window` (from, to): a logged event
/// accepted outside it is not expected among the rows; one inside it is.
pub async fn verify_window(
    evidence: &Evidence<'_>,
    rows: Vec<StoredRow>,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Report {
    let (mut report, cp) = opened(evidence.origin, evidence.checkpoint, evidence.trusted);
    let Some(cp) = cp else {
        return report;
    };
    let size = cp.size;
    let mut truncated_at = None;
    if let Some(pinned) = evidence.pinned {
        let tiles = evidence.tiles;
        let grew = |old_size, old_root| async move {
            let p = proof::consistency(tiles, old_size, size, cp.root).await?;
            proof::verify_consistency(&p, old_size, old_root, size, cp.root)
        };
        let (trusted, origin) = (evidence.trusted, evidence.origin);
        check_pinned(
            trusted,
            origin,
            pinned,
            &cp,
            &mut report,
            &mut truncated_at,
            grew,
        )
        .await;
    }

    let logged = match entries(evidence.tiles, size).await {
        Ok(e) => e,
        Err(e) => {
            let problem = match e {
                ProofError::MissingTile(_) => Problem::Unverifiable,
                _ => Problem::HistoryRewritten,
            };
            report.find(problem, 0..size, None, format!("the log's entries: {e}"));
            return report;
        }
    };
    let hashes: Vec<Hash> = logged.iter().map(|e| tlog_tiles::record_hash(e)).collect();
    if root_of(&hashes) != cp.root {
        report.find(
            Problem::HistoryRewritten,
            0..size,
            None,
            "the published entries do not hash to the signed checkpoint's root".into(),
        );
        return report;
    }
    let log = Logged {
        first: 0,
        entries: &logged,
        expired: &[],
    };
    compare(&mut report, log, rows, size, truncated_at, window);
    report
}

/// What an export of the entries `first..first + entries.len()` carries instead of the
/// whole log: those entries, the range proof (`range::range_proof`), each expiry entry
/// of the log with its inclusion proof (an expiry is logged after what it removed, so
/// usually past the range), and a consistency proof from the size the customer pinned.
pub struct RangeEvidence<'a> {
    pub origin: &'a str,
    pub checkpoint: &'a [u8],
    pub trusted: &'a signed_note::VerifierList,
    pub first: u64,
    pub entries: &'a [Vec<u8>],
    pub proof: &'a [Hash],
    /// (index, entry, inclusion proof)
    pub expiries: &'a [(u64, Vec<u8>, Vec<Hash>)],
    /// (the pinned checkpoint, the consistency proof from its size)
    pub pinned: Option<(&'a [u8], &'a [Hash])>,
}

/// `verify_window` for a range export: the range's entries must hash, with the range
/// proof, to the signed root; every event of the range accepted in `window` must have
/// its row; a row outside the range cannot be decided (`Unverifiable`).
pub async fn verify_range_export(
    evidence: &RangeEvidence<'_>,
    rows: Vec<StoredRow>,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Report {
    let (mut report, cp) = opened(evidence.origin, evidence.checkpoint, evidence.trusted);
    let Some(cp) = cp else {
        return report;
    };
    let size = cp.size;
    let mut truncated_at = None;
    if let Some((note, proof)) = evidence.pinned {
        let grew = |old_size, old_root| async move {
            proof::verify_consistency(proof, old_size, old_root, size, cp.root)
        };
        let (trusted, origin) = (evidence.trusted, evidence.origin);
        // the bundle carries its consistency proof: nothing to fetch
        check_pinned(
            trusted,
            origin,
            note,
            &cp,
            &mut report,
            &mut truncated_at,
            grew,
        )
        .await;
    }
    let end = evidence.first + evidence.entries.len() as u64;
    let hashes: Vec<Hash> = evidence
        .entries
        .iter()
        .map(|e| tlog_tiles::record_hash(e))
        .collect();
    if let Err(e) =
        crate::range::verify_range(size, cp.root, evidence.first, &hashes, evidence.proof)
    {
        report.find(
            Problem::HistoryRewritten,
            evidence.first..end,
            None,
            format!("the exported entries do not prove into the signed checkpoint: {e}"),
        );
        return report;
    }
    let mut expired = Vec::new();
    for (i, entry, path) in evidence.expiries {
        let proved =
            proof::verify_inclusion(path, size, cp.root, *i, tlog_tiles::record_hash(entry));
        match (proved, Leaf::parse(entry)) {
            (Ok(()), Ok(Leaf::Expiry(x))) => expired.push(x.first..x.end),
            _ => report.find(
                Problem::HistoryRewritten,
                *i..*i + 1,
                None,
                "an expiry given with the export is not in the signed log".into(),
            ),
        }
    }
    let (inside, outside): (Vec<StoredRow>, Vec<StoredRow>) = rows
        .into_iter()
        .partition(|r| (evidence.first..end).contains(&r.index) || r.index >= size);
    for row in outside {
        report.find(
            Problem::Unverifiable,
            row.index..row.index + 1,
            None,
            format!(
                "{} carries index {}, outside the exported range {}..{end}",
                row.location, row.index, evidence.first
            ),
        );
    }
    let log = Logged {
        first: evidence.first,
        entries: evidence.entries,
        expired: &expired,
    };
    compare(&mut report, log, inside, size, truncated_at, Some(window));
    report
}

/// The opened checkpoint, and the report about to be filled (with the signature
/// finding, and no checkpoint, when it does not open).
fn opened(
    origin: &str,
    note: &[u8],
    trusted: &signed_note::VerifierList,
) -> (Report, Option<SignedCheckpoint>) {
    let mut report = Report {
        origin: origin.to_owned(),
        ..Report::default()
    };
    match checkpoint::open(note, trusted, origin) {
        Ok(cp) => {
            report.checkpoint = Some(cp.clone());
            (report, Some(cp))
        }
        Err(e) => {
            report.find(Problem::Signature, 0..0, None, format!("checkpoint: {e}"));
            (report, None)
        }
    }
}

/// The pinned checkpoint against the signed one: a bigger one is `Truncated`, one of
/// the same size with another root or a smaller one that `grew` (old size, old root)
/// does not prove the log extends is `HistoryRewritten`.
async fn check_pinned<F, Fut>(
    trusted: &signed_note::VerifierList,
    origin: &str,
    pinned: &[u8],
    cp: &SignedCheckpoint,
    report: &mut Report,
    truncated_at: &mut Option<u64>,
    grew: F,
) where
    F: FnOnce(u64, Hash) -> Fut,
    Fut: std::future::Future<Output = Result<(), ProofError>>,
{
    let old = match checkpoint::open(pinned, trusted, origin) {
        Ok(old) => old,
        Err(e) => {
            report.find(
                Problem::Signature,
                0..0,
                None,
                format!("pinned checkpoint: {e}"),
            );
            return;
        }
    };
    report.pinned_size = Some(old.size);
    if old.size > cp.size {
        *truncated_at = Some(cp.size);
        report.find(
            Problem::Truncated,
            cp.size..old.size,
            None,
            format!(
                "the log holds {} entries, fewer than the {} of the pinned checkpoint",
                cp.size, old.size
            ),
        );
    } else if old.size == cp.size {
        if old.root != cp.root {
            report.find(
                Problem::HistoryRewritten,
                0..cp.size,
                None,
                "the pinned checkpoint has the same size and another root: two trees".into(),
            );
        }
    } else if old.size > 0
        && let Err(e) = grew(old.size, old.root).await
    {
        report.find(
            Problem::HistoryRewritten,
            0..old.size,
            None,
            format!(
                "the log of {} does not extend the pinned log of {}: {e}",
                cp.size, old.size
            ),
        );
    }
}

/// The entries a comparison runs over: `logged` are the log's entries from `first`;
/// `expired` adds the ranges of expiry entries proved elsewhere (a range export's).
struct Logged<'a> {
    first: u64,
    entries: &'a [Vec<u8>],
    expired: &'a [Range<u64>],
}

fn compare(
    report: &mut Report,
    log: Logged<'_>,
    rows: Vec<StoredRow>,
    size: u64,
    truncated_at: Option<u64>,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) {
    let Logged {
        first,
        entries: logged,
        expired: proved,
    } = log;
    // what expiry entries removed, by policy
    let mut expired: Vec<Range<u64>> = proved.to_vec();
    for e in logged.iter().filter(|e| e.starts_with(b"v1 expiry ")) {
        if let Ok(Leaf::Expiry(x)) = Leaf::parse(e) {
            expired.push(x.first..x.end);
        }
    }
    let by_policy = |i: u64| expired.iter().any(|r| r.contains(&i));

    let mut rows = rows;
    rows.sort_by_key(|r| r.index);
    // the events rows hold, and where each logged event is: built on first need only
    let mut row_events: Option<HashSet<&[u8]>> = None;
    let mut index_of: Option<HashMap<&[u8], u64>> = None;
    let mut encoded = Vec::with_capacity(256);
    let mut next = 0;

    for (i, entry) in (first..).zip(logged) {
        let start = next;
        while next < rows.len() && rows[next].index == i {
            next += 1;
        }
        let mut matched = false;
        for row in &rows[start..next] {
            encoded.clear();
            row.leaf.encode_into(&mut encoded);
            if encoded == *entry && !matched {
                matched = true;
                report.rows_verified += 1;
                continue;
            }
            let index_of = index_of.get_or_insert_with(|| {
                logged
                    .iter()
                    .enumerate()
                    .filter_map(|(j, e)| event_id_of(e).map(|id| (id, first + j as u64)))
                    .collect()
            });
            let id = event_id_of(&encoded);
            let shown = id.map(|b| String::from_utf8_lossy(b).into_owned());
            if encoded == *entry {
                report.find(
                    Problem::Inserted,
                    i..i + 1,
                    shown.as_deref(),
                    format!("a second row for index {i} ({})", row.location),
                );
            } else if id.is_some() && id == event_id_of(entry) {
                let detail = match Leaf::parse(entry) {
                    Ok(l) => differences(&row.leaf, &l),
                    Err(e) => e.to_string(),
                };
                report.find(
                    Problem::Modified,
                    i..i + 1,
                    shown.as_deref(),
                    format!("{}: {detail}", row.location),
                );
            } else if let Some(&j) = id.and_then(|id| index_of.get(id)) {
                report.find(
                    Problem::Reordered,
                    i..i + 1,
                    shown.as_deref(),
                    format!(
                        "{} carries index {i}; the log has this event at {j}",
                        row.location
                    ),
                );
            } else {
                report.find(
                    Problem::Inserted,
                    i..i + 1,
                    shown.as_deref(),
                    format!("{}: the log never accepted this event", row.location),
                );
            }
        }
        if matched || entry.starts_with(b"v1 expiry ") {
            continue;
        }
        let id = event_id_of(entry);
        let row_events = row_events.get_or_insert_with(|| {
            rows.iter()
                .filter_map(|r| match &r.leaf {
                    Leaf::Event(e) => Some(e.event_id.as_str().as_bytes()),
                    Leaf::Expiry(_) => None,
                })
                .collect()
        });
        if id.is_some_and(|id| row_events.contains(id)) {
            continue; // its row is elsewhere: reported there as reordered
        }
        let outside = window.is_some_and(|(from, to)| match Leaf::parse(entry) {
            Ok(Leaf::Event(e)) => e.accepted_at < from || e.accepted_at >= to,
            _ => false,
        });
        if outside {
            report.outside_window += 1;
        } else if by_policy(i) {
            report.removed_by_policy += 1;
        } else {
            let shown = id.map(|b| String::from_utf8_lossy(b).into_owned());
            report.find(
                Problem::Missing,
                i..i + 1,
                shown.as_deref(),
                "no row holds this entry and no expiry removed it".into(),
            );
        }
    }
    // rows past the log's end
    for row in &rows[next..] {
        let i = row.index;
        let shown = match &row.leaf {
            Leaf::Event(e) => Some(e.event_id.to_string()),
            Leaf::Expiry(_) => None,
        };
        // a row newer than the checkpoint is either pending (the next checkpoint will
        // cover it) or forged; only a newer checkpoint can tell
        let (problem, why) = match truncated_at {
            Some(_) => (Problem::Truncated, "past the end of the truncated log"),
            None => (
                Problem::Unverifiable,
                "not covered by the checkpoint (newer than it, or forged)",
            ),
        };
        report.find(
            problem,
            i..i + 1,
            shown.as_deref(),
            format!(
                "{} carries index {i}, past the log of {size}: {why}",
                row.location
            ),
        );
    }
}

#[cfg(test)]
mod tests;
