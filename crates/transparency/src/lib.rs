//! Tamper evidence: one append-only Merkle log per tenant (RFC 6962/9162 hashing) of
//! every accepted event, which a customer verifies offline.
//!
//! - `leaf`: what each leaf commits to (tenant, event id, acceptance time, payload hash;
//!   or a retention expiry), one documented line each.
//! - `tree`: appending, holding only the tree's right edge; publishes C2SP tiles.
//! - `layout`: the C2SP tlog-tiles paths and entry bundles.
//! - `checkpoint`: C2SP checkpoints in signed notes, the `CheckpointSigner` port and the
//!   embedded default's Ed25519 key file.
//! - `proof`: inclusion and consistency proofs from published (untrusted) tiles.
//! - `range`: range proofs, so an export carries only its window's entries.
//! - `integrate`: the one writer of each tenant's log (indices, tiles, checkpoints).
//! - `verify`: recomputes rows into leaves and diagnoses what differs from the log.
//!
//! Pure: storage is the caller's (`proof::TileSource` to read, `tree::Published` to
//! write), signing is behind `CheckpointSigner`.

pub mod checkpoint;
pub mod integrate;
pub mod layout;
pub mod leaf;
pub mod proof;
pub mod range;
pub mod tree;
pub mod verify;

pub use checkpoint::{CheckpointError, CheckpointSigner, LocalKey, SignedCheckpoint};
pub use leaf::{EventLeaf, ExpiryLeaf, Leaf, LeafError};
pub use proof::{ProofError, TileSource, TilesInMemory};
pub use tlog_tiles::Hash;
pub use tree::{Published, TreeEdge, TreeError};
