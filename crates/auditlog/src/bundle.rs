//! An export bundle: what an offline verifier needs to check a tenant's events accepted
//! in a time window against its signed log, and nothing of the rest of the log. One
//! JSON document (`auditlog verify FILE`), written by `auditlog export` and by the
//! audit API's exports (`format: "bundle"`).
//!
//! It holds the rows of the window (each with its leaf index and its payload, whose
//! SHA-256 the verifier recomputes), the signed checkpoint, the log's entries
//! `first_index..end_index` (the range the rows span), the range proof of those entries
//! into the checkpoint, the log's expiry entries that touch the range with their
//! inclusion proofs, and optionally a consistency proof from a size the customer pinned.

use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use serde::{Deserialize, Serialize};
use transparency::integrate::{
    EXPIRED, LeafIndex, LogStore as _, log_prefix, parse_expired_leaves,
};
use transparency::verify::{RangeEvidence, Report, StoredRow, verify_range_export};
use transparency::{EventLeaf, Hash, Leaf, checkpoint, proof, range};

use crate::integration::{BlobLog, IntegrationError, leaf_indexes};
use crate::ports::BlobStore;
use crate::reader::TenantReader;

pub const FORMAT: &str = "auditlog-bundle/1";

/// One row of the window: what its leaf is made of, and what a reader wants to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRow {
    pub leaf_index: u64,
    pub event_id: String,
    /// Microseconds since the epoch, exactly as the leaf holds it.
    pub accepted_at: i64,
    pub occurred_at: String,
    pub event_type: String,
    /// The canonical JSON payload, as stored: its SHA-256 is recomputed on verify.
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvedEntry {
    pub index: u64,
    pub entry: String,
    pub inclusion_proof: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub tenant: String,
    /// The tenant log's origin line, which the checkpoint must name.
    pub origin: String,
    /// Events accepted in `[from, to)`, microseconds since the epoch.
    pub from_micros: i64,
    pub to_micros: i64,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
    pub first_index: u64,
    pub end_index: u64,
    /// The log's entries `first_index..end_index`.
    pub entries: Vec<String>,
    /// Base64 hashes, as in the audit API.
    pub range_proof: Vec<String>,
    pub expiries: Vec<ProvedEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
    pub rows: Vec<BundleRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Read(#[from] IntegrationError),
    #[error("{0} has no signed checkpoint yet")]
    NoCheckpoint(TenantId),
    #[error("no event of {0} accepted in that window is under its signed checkpoint yet")]
    Empty(TenantId),
    #[error("{rows} events in that window: a bundle holds at most {max}; narrow the window")]
    TooBig { rows: usize, max: usize },
    /// The tenant's log could not be read, or is not what its checkpoint says.
    #[error("the tenant log: {0}")]
    Log(String),
    #[error("consistency: {0}")]
    Consistency(String),
    #[error("not a bundle this verifier reads: {0}")]
    Malformed(String),
}

fn log_error(e: impl std::fmt::Display) -> BundleError {
    BundleError::Log(e.to_string())
}

fn b64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(ToString::to_string).collect()
}

fn unb64(texts: &[String]) -> Result<Vec<Hash>, BundleError> {
    texts
        .iter()
        .map(|t| {
            Hash::parse_hash(t).map_err(|e| BundleError::Malformed(format!("hash {t:?}: {e}")))
        })
        .collect()
}

/// The bundle of `tenant`'s events accepted in `[from, to)` and under its latest signed
/// checkpoint (later ones are left for a later bundle), at most `max_rows` of them.
#[allow(clippy::too_many_arguments)]
pub async fn build<B: BlobStore + Clone>(
    blobs: &B,
    index: &dyn LeafIndex,
    tenant: &TenantId,
    log_name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    consistency_from: Option<u64>,
    max_rows: usize,
) -> Result<Bundle, BundleError> {
    let store = BlobLog(blobs);
    let prefix = log_prefix(tenant);
    let note = store
        .get(&format!("{prefix}checkpoint"))
        .await
        .map_err(IntegrationError::from)?
        .ok_or_else(|| BundleError::NoCheckpoint(tenant.clone()))?;
    let (_, size, root) = checkpoint::parse_unverified(&note).map_err(log_error)?;
    let rows = TenantReader::new(blobs.clone())
        .read(tenant, None, None)
        .await
        .map_err(IntegrationError::from)?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.ingested_at >= from && r.ingested_at < to)
        .collect();
    let placed = leaf_indexes(index, tenant, &rows)
        .await
        .map_err(IntegrationError::from)?;
    let mut out = Vec::new();
    for (r, at) in rows.iter().zip(placed) {
        // not integrated, or not under the checkpoint yet: for a later bundle
        let Some(leaf_index) = at.filter(|i| *i < size) else {
            continue;
        };
        out.push(BundleRow {
            leaf_index,
            event_id: r.event_id.to_string(),
            accepted_at: r.ingested_at.timestamp_micros(),
            occurred_at: r.occurred_at.to_rfc3339(),
            event_type: r.event_type.clone(),
            payload: r.payload.clone(),
        });
    }
    if out.len() > max_rows {
        return Err(BundleError::TooBig {
            rows: out.len(),
            max: max_rows,
        });
    }
    out.sort_by_key(|r| r.leaf_index);
    let (Some(first), Some(last)) = (out.first(), out.last()) else {
        return Err(BundleError::Empty(tenant.clone()));
    };
    // acceptance order is the log's only to within a subscriber invocation, so the
    // range the rows span may hold a few events accepted outside the window
    let (first, end) = (first.leaf_index, last.leaf_index + 1);
    let tiles = transparency::integrate::tiles_of(&store, tenant);
    let mut entries = Vec::new();
    for (_, e) in proof::entries(&tiles, first, end, size)
        .await
        .map_err(log_error)?
    {
        entries.push(String::from_utf8(e).map_err(log_error)?);
    }
    let range_proof = range::range_proof(&tiles, size, root, first, end)
        .await
        .map_err(log_error)?;
    let mut expiries = Vec::new();
    if let Some(listed) = store
        .get(&format!("{prefix}{EXPIRED}"))
        .await
        .map_err(IntegrationError::from)?
    {
        for x in parse_expired_leaves(&listed).map_err(log_error)? {
            if x.removed.start < end && first < x.removed.end && x.leaf < size {
                let entry = proof::entry_at(&tiles, x.leaf, size)
                    .await
                    .map_err(log_error)?;
                let path = proof::inclusion(&tiles, size, root, x.leaf)
                    .await
                    .map_err(log_error)?;
                expiries.push(ProvedEntry {
                    index: x.leaf,
                    entry: String::from_utf8(entry).map_err(log_error)?,
                    inclusion_proof: b64(&path),
                });
            }
        }
    }
    let consistency = match consistency_from {
        None => None,
        Some(n) if n == size => None,
        Some(n) if n == 0 || n > size => {
            return Err(BundleError::Consistency(format!(
                "from {n}: a log size from 1 to {size}"
            )));
        }
        Some(n) => Some(ConsistencyProof {
            from: n,
            proof: b64(&proof::consistency(&tiles, n, size, root)
                .await
                .map_err(log_error)?),
        }),
    };
    Ok(Bundle {
        format: FORMAT.to_owned(),
        tenant: tenant.to_string(),
        origin: checkpoint::origin(log_name, tenant),
        from_micros: from.timestamp_micros(),
        to_micros: to.timestamp_micros(),
        checkpoint: String::from_utf8_lossy(&note).into_owned(),
        first_index: first,
        end_index: end,
        entries,
        range_proof: b64(&range_proof),
        expiries,
        consistency,
        rows: out,
    })
}

/// Verifies a bundle against the keys to trust and, optionally, a checkpoint the
/// customer pinned (the bundle must then carry a consistency proof from its size).
pub async fn verify(
    bundle: &Bundle,
    trusted: &checkpoint::VerifierList,
    pinned: Option<&[u8]>,
) -> Result<Report, BundleError> {
    if bundle.format != FORMAT {
        return Err(BundleError::Malformed(format!(
            "format {:?}, not {FORMAT:?}",
            bundle.format
        )));
    }
    let tenant =
        TenantId::parse(&bundle.tenant).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if bundle.entries.len() as u64 != bundle.end_index.saturating_sub(bundle.first_index) {
        return Err(BundleError::Malformed(format!(
            "{} entries for the range {}..{}",
            bundle.entries.len(),
            bundle.first_index,
            bundle.end_index
        )));
    }
    let mut rows = Vec::with_capacity(bundle.rows.len());
    for (n, r) in bundle.rows.iter().enumerate() {
        let malformed = |why: String| BundleError::Malformed(format!("row {}: {why}", n + 1));
        let event_id = EventId::parse(&r.event_id).map_err(|e| malformed(e.to_string()))?;
        let accepted = DateTime::from_timestamp_micros(r.accepted_at)
            .ok_or_else(|| malformed("accepted_at out of range".into()))?;
        let sha = crate::record::payload_sha256(&r.payload);
        let leaf = EventLeaf::of_row(&tenant, &event_id, accepted, &sha)
            .map_err(|e| malformed(e.to_string()))?;
        rows.push(StoredRow {
            index: r.leaf_index,
            leaf: Leaf::Event(leaf),
            location: format!("row {} (event {})", n + 1, r.event_id),
        });
    }
    let entries: Vec<Vec<u8>> = bundle
        .entries
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let expiries = bundle
        .expiries
        .iter()
        .map(|x| {
            Ok((
                x.index,
                x.entry.as_bytes().to_vec(),
                unb64(&x.inclusion_proof)?,
            ))
        })
        .collect::<Result<Vec<_>, BundleError>>()?;
    let size = checkpoint::parse_unverified(bundle.checkpoint.as_bytes())
        .map(|(_, size, _)| size)
        .unwrap_or(0);
    let consistency = match (pinned, &bundle.consistency) {
        (None, _) => None,
        (Some(note), c) => {
            let (_, pinned_size, _) = checkpoint::parse_unverified(note)
                .map_err(|e| BundleError::Consistency(format!("the pinned checkpoint: {e}")))?;
            match c {
                Some(c) if c.from == pinned_size => Some(unb64(&c.proof)?),
                // the same size, or a bigger one (truncation): judged without a proof
                _ if pinned_size >= size => Some(Vec::new()),
                _ => {
                    return Err(BundleError::Consistency(format!(
                        "the bundle proves no growth from the pinned size {pinned_size}: export it with --consistency-from {pinned_size}"
                    )));
                }
            }
        }
    };
    let range_proof = unb64(&bundle.range_proof)?;
    let evidence = RangeEvidence {
        origin: &bundle.origin,
        checkpoint: bundle.checkpoint.as_bytes(),
        trusted,
        first: bundle.first_index,
        entries: &entries,
        proof: &range_proof,
        expiries: &expiries,
        pinned: pinned.zip(consistency.as_deref()),
    };
    let window = (
        DateTime::from_timestamp_micros(bundle.from_micros).unwrap_or_default(),
        DateTime::from_timestamp_micros(bundle.to_micros).unwrap_or_default(),
    );
    Ok(verify_range_export(&evidence, rows, window).await)
}
