//! The C2SP tlog-tiles layout: where each tile, entry bundle and the checkpoint live
//! under a log's prefix, and how entry bundles are encoded. (`tlog_tiles::Tile::path`
//! spells the older Go sumdb layout `tile/H/L/N`; C2SP fixes the height at 8 and drops it.)

use tlog_tiles::{HASH_SIZE, Hash, Tile};

/// Levels of the tree one tile spans.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// The latest signed checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// C2SP entry bundles prefix each entry with a big-endian u16 length.
pub const MAX_ENTRY: usize = u16::MAX as usize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("an entry of {0} bytes is over the {MAX_ENTRY}-byte limit of an entry bundle")]
    EntryTooLong(usize),
    #[error("entry bundle is truncated at byte {0}")]
    TruncatedBundle(usize),
    #[error("tile of {0} bytes is not a whole number of hashes")]
    RaggedTile(usize),
}

/// `N` as C2SP spells it: three digits per element, all but the last prefixed with `x`.
fn index_path(n: u64) -> String {
    let mut n = n;
    let mut out = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        out = format!("x{:03}/{out}", n % 1000);
    }
    out
}

fn partial(width: u64) -> String {
    if width == TILE_WIDTH {
        String::new()
    } else {
        format!(".p/{width}")
    }
}

/// `tile/<L>/<N>[.p/<W>]`: `width` hashes of tree level `8 * level`, from `n * 256`.
pub fn tile_path(level: u8, n: u64, width: u64) -> String {
    format!("tile/{level}/{}{}", index_path(n), partial(width))
}

/// `tile/entries/<N>[.p/<W>]`: entries `n * 256 .. n * 256 + width`.
pub fn entries_path(n: u64, width: u64) -> String {
    format!("tile/entries/{}{}", index_path(n), partial(width))
}

/// Where `tlog_tiles` wants a tile of height 8 read from.
pub fn path_of(tile: &Tile) -> String {
    tile_path(tile.level(), tile.level_index(), u64::from(tile.width()))
}

pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, LayoutError> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| LayoutError::EntryTooLong(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

pub fn decode_bundle(bytes: &[u8]) -> Result<Vec<Vec<u8>>, LayoutError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 2) else {
            return Err(LayoutError::TruncatedBundle(at));
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(entry) = bytes.get(at + 2..at + 2 + len) else {
            return Err(LayoutError::TruncatedBundle(at));
        };
        out.push(entry.to_vec());
        at += 2 + len;
    }
    Ok(out)
}

pub fn encode_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

pub fn decode_tile(bytes: &[u8]) -> Result<Vec<Hash>, LayoutError> {
    if !bytes.len().is_multiple_of(HASH_SIZE) {
        return Err(LayoutError::RaggedTile(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(HASH_SIZE)
        .map(|c| {
            let mut h = [0u8; HASH_SIZE];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp_tlog_tiles() {
        // the spec's own examples
        assert_eq!(tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(0, 1_234_067, 8), "tile/0/x001/x234/067.p/8");
        assert_eq!(entries_path(1_234_067, 8), "tile/entries/x001/x234/067.p/8");
        assert_eq!(tile_path(3, 0, 1), "tile/3/000.p/1");
        assert_eq!(entries_path(1000, 256), "tile/entries/x001/000");
        let t = Tile::new(TILE_HEIGHT, 2, 5, 7, false);
        assert_eq!(path_of(&t), "tile/2/005.p/7");
    }

    #[test]
    fn bundles_round_trip_and_refuse_what_does_not_fit() {
        let entries = vec![b"a".to_vec(), vec![], vec![7u8; 300]];
        let b = encode_bundle(&entries).unwrap();
        assert_eq!(&b[..3], &[0, 1, b'a']);
        assert_eq!(decode_bundle(&b).unwrap(), entries);
        assert_eq!(
            decode_bundle(&b[..b.len() - 1]),
            Err(LayoutError::TruncatedBundle(5))
        );
        assert_eq!(
            encode_bundle(&[vec![0u8; MAX_ENTRY + 1]]),
            Err(LayoutError::EntryTooLong(MAX_ENTRY + 1))
        );
        assert_eq!(decode_tile(&[0u8; 33]), Err(LayoutError::RaggedTile(33)));
    }
}
