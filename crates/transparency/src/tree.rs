//! Appending to a tenant's tree. The writer holds only the tree's right edge: at each
//! tile level the hashes of the rightmost, not yet full tile, and the entries of the
//! rightmost bundle. That is exactly what the partial tiles of the current size hold, so
//! the edge is reloaded from them after a restart (`TreeEdge::from_partials`), and its
//! memory is bounded (under 256 hashes per level) however large the log grows.

use tlog_tiles::{EMPTY_HASH, Hash, node_hash, record_hash};

use crate::layout::{
    LayoutError, TILE_HEIGHT, TILE_WIDTH, encode_bundle, encode_tile, entries_path, tile_path,
};

/// An object the log publishes: a tile or an entry bundle, by its path under the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("the partial tiles do not describe a tree of size {size}: {why}")]
    Edge { size: u64, why: String },
}

/// The RFC 6962 hash of a complete subtree whose leaves' (or nodes') hashes these are.
fn subtree(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => EMPTY_HASH,
        1 => hashes[0],
        n => {
            let half = n.next_power_of_two() / 2;
            node_hash(subtree(&hashes[..half]), subtree(&hashes[half..]))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TreeEdge {
    size: u64,
    /// `rows[k]`: the hashes at tree level `8k` in the rightmost incomplete tile of level k.
    rows: Vec<Vec<Hash>>,
    /// The entries of the rightmost incomplete bundle.
    entries: Vec<Vec<u8>>,
}

impl Default for TreeEdge {
    fn default() -> Self {
        Self::empty()
    }
}

/// How many hashes the rightmost tile of each level holds in a tree of `size` leaves.
fn partial_widths(size: u64) -> Vec<u64> {
    let mut widths = Vec::new();
    let mut at_level = size;
    while at_level > 0 {
        widths.push(at_level % TILE_WIDTH);
        at_level /= TILE_WIDTH;
    }
    widths
}

impl TreeEdge {
    pub fn empty() -> Self {
        TreeEdge {
            size: 0,
            rows: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// The paths of the partial tiles (by level) and partial bundle of a tree of `size`;
    /// `None` where that level's rightmost tile is full or absent.
    pub fn partial_paths(size: u64) -> (Vec<Option<String>>, Option<String>) {
        let tiles = partial_widths(size)
            .into_iter()
            .enumerate()
            .map(|(k, w)| {
                let count = size >> (u32::from(TILE_HEIGHT) * k as u32);
                (w > 0).then(|| tile_path(k as u8, count / TILE_WIDTH, w))
            })
            .collect();
        let w = size % TILE_WIDTH;
        (tiles, (w > 0).then(|| entries_path(size / TILE_WIDTH, w)))
    }

    /// The edge of a tree of `size`, from what its partial tiles and bundle hold (empty
    /// where `partial_paths` gives `None`).
    pub fn from_partials(
        size: u64,
        rows: Vec<Vec<Hash>>,
        entries: Vec<Vec<u8>>,
    ) -> Result<Self, TreeError> {
        let widths = partial_widths(size);
        let bad = |why: String| TreeError::Edge { size, why };
        if rows.len() > widths.len() {
            return Err(bad(format!("{} levels, not {}", rows.len(), widths.len())));
        }
        let mut rows = rows;
        rows.resize(widths.len(), Vec::new());
        for (k, (row, w)) in rows.iter().zip(&widths).enumerate() {
            if row.len() as u64 != *w {
                return Err(bad(format!(
                    "level {k} holds {} hashes, not {w}",
                    row.len()
                )));
            }
        }
        if entries.len() as u64 != size % TILE_WIDTH {
            return Err(bad(format!("{} entries in the last bundle", entries.len())));
        }
        if let Some(first) = rows.first()
            && first
                .iter()
                .zip(&entries)
                .any(|(h, e)| *h != record_hash(e))
        {
            return Err(bad("an entry does not hash to its leaf".into()));
        }
        Ok(TreeEdge {
            size,
            rows,
            entries,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends entries in order; returns the tiles and bundles that became full. Call
    /// `partials()` at the end of a batch to publish the new size's partial tiles too.
    pub fn append<E: Into<Vec<u8>>>(
        &mut self,
        entries: impl IntoIterator<Item = E>,
    ) -> Result<Vec<Published>, TreeError> {
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.into();
            if entry.len() > crate::layout::MAX_ENTRY {
                return Err(LayoutError::EntryTooLong(entry.len()).into());
            }
            let hash = record_hash(&entry);
            self.entries.push(entry);
            self.size += 1;
            if self.entries.len() as u64 == TILE_WIDTH {
                out.push(Published {
                    path: entries_path(self.size / TILE_WIDTH - 1, TILE_WIDTH),
                    bytes: encode_bundle(&self.entries)?,
                });
                self.entries.clear();
            }
            self.push(0, hash, &mut out);
        }
        Ok(out)
    }

    fn push(&mut self, level: usize, hash: Hash, out: &mut Vec<Published>) {
        if self.rows.len() <= level {
            self.rows.resize(level + 1, Vec::new());
        }
        self.rows[level].push(hash);
        if self.rows[level].len() as u64 == TILE_WIDTH {
            let full = std::mem::take(&mut self.rows[level]);
            let count = self.size >> (u32::from(TILE_HEIGHT) * level as u32);
            out.push(Published {
                path: tile_path(level as u8, count / TILE_WIDTH - 1, TILE_WIDTH),
                bytes: encode_tile(&full),
            });
            self.push(level + 1, subtree(&full), out);
        }
    }

    /// The partial tiles and bundle of the current size (C2SP: published with each size).
    pub fn partials(&self) -> Result<Vec<Published>, TreeError> {
        let (tiles, bundle) = Self::partial_paths(self.size);
        let mut out: Vec<Published> = tiles
            .into_iter()
            .zip(&self.rows)
            .filter_map(|(path, row)| {
                path.map(|path| Published {
                    path,
                    bytes: encode_tile(row),
                })
            })
            .collect();
        if let Some(path) = bundle {
            out.push(Published {
                path,
                bytes: encode_bundle(&self.entries)?,
            });
        }
        Ok(out)
    }

    /// The tree hash (RFC 6962 §2.1) of the current size.
    pub fn root(&self) -> Hash {
        // the maximal complete subtrees, largest (leftmost) first: each level's row, top
        // level first, split into powers of two from the left
        let mut parts = Vec::new();
        for row in self.rows.iter().rev() {
            let mut at = 0;
            for bit in (0..TILE_HEIGHT).rev() {
                let span = 1usize << bit;
                if row.len() & span != 0 {
                    parts.push(subtree(&row[at..at + span]));
                    at += span;
                }
            }
        }
        let Some(mut root) = parts.pop() else {
            return EMPTY_HASH;
        };
        while let Some(left) = parts.pop() {
            root = node_hash(left, root);
        }
        root
    }
}

/// The tree hash of leaves given by their hashes, in order (for verifiers holding them).
pub fn root_of(leaf_hashes: &[Hash]) -> Hash {
    subtree(leaf_hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{decode_bundle, decode_tile};
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    use std::collections::{BTreeSet, HashMap};
    use tlog_tiles::Tile;

    fn entry(i: u64) -> Vec<u8> {
        format!("entry {i}").into_bytes()
    }

    fn reference_root(n: u64) -> [u8; 32] {
        let mut t = MemoryBackedTree::<sha2_v011::Sha256, Vec<u8>>::new();
        for i in 0..n {
            t.push(entry(i));
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(t.root().as_bytes().as_slice());
        out
    }

    #[test]
    fn roots_agree_with_ct_merkle_at_every_size_across_tile_boundaries() {
        let mut edge = TreeEdge::empty();
        assert_eq!(edge.root(), EMPTY_HASH);
        let mut hashes = Vec::new();
        for i in 0..700u64 {
            edge.append([entry(i)]).unwrap();
            hashes.push(record_hash(&entry(i)));
            if i < 20 || (250..260).contains(&i) || (505..515).contains(&i) || i == 699 {
                assert_eq!(edge.root().0, reference_root(i + 1), "size {}", i + 1);
                assert_eq!(root_of(&hashes), edge.root(), "size {}", i + 1);
            }
        }
    }

    #[test]
    fn a_batch_publishes_exactly_the_tiles_tlog_tiles_says_a_new_size_needs() {
        // 70,000 leaves reach tile level 2 (65,536 = 256^2)
        for (old, new) in [
            (0u64, 1u64),
            (5, 300),
            (255, 257),
            (0, 70_000),
            (65_000, 66_000),
        ] {
            let mut edge = TreeEdge::empty();
            edge.append((0..old).map(entry)).unwrap();
            let mut published = edge.append((old..new).map(entry)).unwrap();
            published.extend(edge.partials().unwrap());
            let tiles: BTreeSet<String> = published
                .iter()
                .map(|p| p.path.clone())
                .filter(|p| !p.starts_with("tile/entries"))
                .collect();
            let want: BTreeSet<String> = Tile::new_tiles(TILE_HEIGHT, old, new)
                .iter()
                .map(crate::layout::path_of)
                .collect();
            assert_eq!(tiles, want, "{old} -> {new}");
        }
    }

    #[test]
    fn the_edge_reloads_from_the_partial_tiles_and_carries_on_identically() {
        let mut store: HashMap<String, Vec<u8>> = HashMap::new();
        let mut edge = TreeEdge::empty();
        for p in edge.append((0..66_000u64).map(entry)).unwrap() {
            store.insert(p.path, p.bytes);
        }
        for p in edge.partials().unwrap() {
            store.insert(p.path, p.bytes);
        }
        let (tiles, bundle) = TreeEdge::partial_paths(66_000);
        let rows = tiles
            .iter()
            .map(|p| p.as_ref().map_or(Ok(vec![]), |p| decode_tile(&store[p])))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let entries = bundle.map_or(vec![], |p| decode_bundle(&store[&p]).unwrap());
        let mut reloaded = TreeEdge::from_partials(66_000, rows.clone(), entries.clone()).unwrap();
        assert_eq!(reloaded, edge);
        reloaded.append((66_000..67_000u64).map(entry)).unwrap();
        edge.append((66_000..67_000u64).map(entry)).unwrap();
        assert_eq!(reloaded.root(), edge.root());
        // a partial tile of the wrong width, or an entry that is not the leaf, is refused
        assert!(TreeEdge::from_partials(66_001, rows.clone(), entries.clone()).is_err());
        let mut wrong = entries;
        wrong[0] = b"forged".to_vec();
        assert!(TreeEdge::from_partials(66_000, rows, wrong).is_err());
    }

    #[test]
    fn an_entry_over_the_bundle_limit_is_refused_before_it_changes_the_tree() {
        let mut edge = TreeEdge::empty();
        let before = edge.clone();
        assert!(edge.append([vec![0u8; 70_000]]).is_err());
        assert_eq!(edge, before);
    }
}
