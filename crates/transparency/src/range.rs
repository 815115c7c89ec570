//! Range proofs: that the entries at `a..b` are exactly those of a tree of `size` with a
//! given root, without the rest of the log. The verifier hashes the range's entries and
//! combines them with the proof's hashes of the subtrees outside the range (RFC 6962's
//! decomposition of the tree, left to right) into the root; nothing else is needed.
//! This is what lets an export carry only its window's entries, not the whole log's.
//!
//! The proof is made from the published tiles: each subtree outside the range is, or
//! splits into, full aligned subtrees whose hashes the tiles store.

use tlog_tiles::{Error as TlogError, Hash, HashReader, node_hash, stored_hash_index};

use crate::proof::{ProofError, TileSource, with_tiles};
use crate::tree::root_of;

/// The largest power of two smaller than `n` (n ≥ 2): RFC 6962's split point.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The subtrees `lo..hi` of the tree over `lo..hi` that lie wholly outside `a..b`, in
/// the order `root_from` consumes them.
fn outside(lo: u64, hi: u64, a: u64, b: u64, out: &mut Vec<(u64, u64)>) {
    if hi <= a || lo >= b {
        out.push((lo, hi));
    } else if !(a <= lo && hi <= b) {
        let k = split(hi - lo);
        outside(lo, lo + k, a, b, out);
        outside(lo + k, hi, a, b, out);
    }
}

/// The root of the tree over `lo..hi`, from the leaf hashes of `a..b` and the hashes of
/// the subtrees outside it, in order.
fn root_from(
    lo: u64,
    hi: u64,
    a: u64,
    b: u64,
    leaves: &[Hash],
    proof: &mut std::slice::Iter<'_, Hash>,
) -> Option<Hash> {
    if hi <= a || lo >= b {
        return proof.next().copied();
    }
    if a <= lo && hi <= b {
        let from = usize::try_from(lo - a).ok()?;
        let to = usize::try_from(hi - a).ok()?;
        return Some(root_of(leaves.get(from..to)?));
    }
    let k = split(hi - lo);
    let left = root_from(lo, lo + k, a, b, leaves, proof)?;
    let right = root_from(lo + k, hi, a, b, leaves, proof)?;
    Some(node_hash(left, right))
}

/// The stored hash of subtree `lo..hi` (one of `outside`'s: either full and aligned, or
/// at the tree's right edge, which splits into full aligned ones).
fn subtree_hash<R: HashReader>(lo: u64, hi: u64, r: &R) -> Result<Hash, TlogError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = u8::try_from(n.trailing_zeros())
            .map_err(|_| TlogError::InvalidInput("subtree too high".into()))?;
        let hashes = r.read_hashes(&[stored_hash_index(level, lo >> level)])?;
        return hashes
            .first()
            .copied()
            .ok_or_else(|| TlogError::InvalidInput("no hash read".into()));
    }
    let k = split(n);
    Ok(node_hash(
        subtree_hash(lo, lo + k, r)?,
        subtree_hash(lo + k, hi, r)?,
    ))
}

/// The proof that entries `a..b` are those of the tree of `size` with `root`.
pub async fn range_proof(
    source: &dyn TileSource,
    size: u64,
    root: Hash,
    a: u64,
    b: u64,
) -> Result<Vec<Hash>, ProofError> {
    if a >= b || b > size {
        return Err(ProofError::NotInTree { index: b, size });
    }
    let mut nodes = Vec::new();
    outside(0, size, a, b, &mut nodes);
    with_tiles(source, size, root, |r| {
        nodes
            .iter()
            .map(|&(lo, hi)| subtree_hash(lo, hi, r))
            .collect()
    })
    .await
}

/// Checks that `leaves` (the record hashes of entries `a..a + leaves.len()`) with
/// `proof` make the tree of `size` with `root`.
pub fn verify_range(
    size: u64,
    root: Hash,
    a: u64,
    leaves: &[Hash],
    proof: &[Hash],
) -> Result<(), ProofError> {
    let b = a + leaves.len() as u64;
    if leaves.is_empty() || b > size {
        return Err(ProofError::NotInTree { index: b, size });
    }
    let mut it = proof.iter();
    match root_from(0, size, a, b, leaves, &mut it) {
        Some(r) if r == root && it.next().is_none() => Ok(()),
        _ => Err(ProofError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::TilesInMemory;
    use crate::tree::TreeEdge;
    use tlog_tiles::record_hash;

    fn entry(i: u64) -> Vec<u8> {
        format!("entry {i}").into_bytes()
    }

    fn grown(size: u64) -> (TilesInMemory, Hash) {
        let mut tiles = TilesInMemory::default();
        let mut edge = TreeEdge::empty();
        for p in edge.append((0..size).map(entry)).unwrap() {
            tiles.0.insert(p.path, p.bytes);
        }
        for p in edge.partials().unwrap() {
            tiles.0.insert(p.path, p.bytes);
        }
        (tiles, edge.root())
    }

    #[tokio::test]
    async fn any_range_of_any_tree_proves_into_its_root_and_nothing_else_does() {
        for size in [1u64, 2, 3, 7, 256, 257, 1000, 70_000] {
            let (tiles, root) = grown(size);
            let mut ranges = vec![(0, size), (0, 1), (size - 1, size)];
            if size > 300 {
                ranges.extend([(255, 257), (1, size - 1), (256, 512), (size / 3, size / 2)]);
            }
            for (a, b) in ranges {
                let proof = range_proof(&tiles, size, root, a, b).await.unwrap();
                let leaves: Vec<Hash> = (a..b).map(|i| record_hash(&entry(i))).collect();
                verify_range(size, root, a, &leaves, &proof)
                    .unwrap_or_else(|e| panic!("{a}..{b} of {size}: {e}"));
                // an entry changed, the range shifted, a leaf left out, a wrong root
                let mut changed = leaves.clone();
                changed[0] = record_hash(b"forged");
                assert!(verify_range(size, root, a, &changed, &proof).is_err());
                if a > 0 {
                    assert!(verify_range(size, root, a - 1, &leaves, &proof).is_err());
                }
                if leaves.len() > 1 {
                    let fewer = &leaves[..leaves.len() - 1];
                    assert!(verify_range(size, root, a, fewer, &proof).is_err());
                }
                assert!(verify_range(size, Hash([1; 32]), a, &leaves, &proof).is_err());
            }
        }
    }

    #[tokio::test]
    async fn a_small_range_of_a_big_log_needs_few_hashes() {
        let (tiles, root) = grown(70_000);
        let proof = range_proof(&tiles, 70_000, root, 30_000, 30_500)
            .await
            .unwrap();
        // about two per level of the tree: the sides of the range
        assert!(proof.len() <= 2 * 17, "{}", proof.len());
        assert!(matches!(
            range_proof(&tiles, 70_000, root, 5, 5).await,
            Err(ProofError::NotInTree { .. })
        ));
    }
}
