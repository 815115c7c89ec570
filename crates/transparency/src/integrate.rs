//! The integrator: the one writer of each tenant's log. It takes newly accepted events in
//! the order the pipeline wrote them, gives each new event the next index, publishes the
//! tiles, commits the new size, and signs a checkpoint when one is due.
//!
//! Under `trust/<tenant>/`: `tile/...` (C2SP tiles and entry bundles), `checkpoint` (the
//! latest signed checkpoint), `state` (the committed size and root; the commit point).
//!
//! Every step is safe to crash after, because each is repeated by the next run:
//! 1. `LeafIndex::record` the new events' indices: a record at or past the committed size
//!    is a reservation, replaced by the next run;
//! 2. put the tiles: tiles of sizes never committed are rewritten by the next run;
//! 3. put `state`: the commit;
//! 4. sign and put `checkpoint` when due: a missed one is signed by the next run.
//!
//! One writer per tenant is the caller's duty (the embedded default runs one integrator;
//! on AWS one per tenant shard under a lease). `state` is read again just before the
//! commit, so a second writer that committed meanwhile is noticed (`IntegrateError::Moved`)
//! rather than overwritten; closing that window entirely takes a conditional put (S3
//! `If-Match`), which is the AWS store's to use.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::{EventId, TenantId};
use tlog_tiles::{EMPTY_HASH, Hash};

use crate::checkpoint::{self, CheckpointError, CheckpointSigner};
use crate::layout::{CHECKPOINT, TILE_WIDTH, decode_bundle, decode_tile};
use crate::leaf::{EventLeaf, Leaf};
use crate::proof::{ProofError, TileSource};
use crate::tree::{TreeEdge, TreeError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("log store unavailable: {0}")]
    Unavailable(String),
}

/// Where a tenant's log objects live (S3 under the trust prefix, a local directory).
#[async_trait]
pub trait LogStore: Send + Sync {
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes the whole object atomically.
    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
}

/// A tenant's log objects read through its store.
struct TenantLog<'a> {
    store: &'a dyn LogStore,
    prefix: String,
}

#[async_trait]
impl TileSource for TenantLog<'_> {
    async fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, ProofError> {
        self.store
            .get(&format!("{}{path}", self.prefix))
            .await
            .map_err(|e| ProofError::Store(e.to_string()))
    }
}

/// `trust/<tenant>/expired`: the index ranges the log's expiry leaves removed, one
/// `<first> <end> <expiry leaf index>` line per range (derived from the log, which is
/// the evidence).
pub const EXPIRED: &str = "expired";

/// One line of `expired`: the indices removed, and the expiry leaf that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub removed: std::ops::Range<u64>,
    pub leaf: u64,
}

/// The lines of an `expired` object; a malformed line is an error naming it.
pub fn parse_expired_leaves(bytes: &[u8]) -> Result<Vec<Expired>, StoreError> {
    let bad = |line: &str| StoreError::Unavailable(format!("expired: malformed line {line:?}"));
    let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let n: Vec<u64> = line
                .split(' ')
                .map(|f| f.parse().map_err(|_| bad(line)))
                .collect::<Result<_, _>>()?;
            match n[..] {
                [a, b, leaf] if a <= b && b <= leaf => Ok(Expired {
                    removed: a..b,
                    leaf,
                }),
                _ => Err(bad(line)),
            }
        })
        .collect()
}

/// The index ranges of an `expired` object.
pub fn parse_expired(bytes: &[u8]) -> Result<Vec<std::ops::Range<u64>>, StoreError> {
    Ok(parse_expired_leaves(bytes)?
        .into_iter()
        .map(|e| e.removed)
        .collect())
}

/// `trust/<tenant>/`
pub fn log_prefix(tenant: &TenantId) -> String {
    format!("trust/{tenant}/")
}

/// Where an event is in its tenant's log, and the payload hash it was logged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub index: u64,
    pub payload_sha256: [u8; 32],
}

/// Where each event of a tenant is in its log: how a duplicate delivery, even years
/// later, adds no leaf, and how the audit API finds an event's proof.
#[async_trait]
pub trait LeafIndex: Send + Sync {
    /// The recorded index and payload hash of each of `events` that has one.
    async fn lookup(
        &self,
        tenant: &TenantId,
        events: &[EventId],
    ) -> Result<HashMap<EventId, Placed>, StoreError>;
    /// Records (or replaces) these events' indices.
    async fn record(
        &self,
        tenant: &TenantId,
        entries: &[(EventId, Placed)],
    ) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the log of {tenant} is damaged: {why}")]
    Damaged { tenant: TenantId, why: String },
    #[error("the log of {tenant} moved on while this run appended (another writer?)")]
    Moved { tenant: TenantId },
    #[error("leaf of {tenant} offered to the log of {log}")]
    WrongTenant { tenant: TenantId, log: TenantId },
}

/// When a checkpoint is due: after `every_events` new leaves, or `every` time after the
/// last one, whichever comes first (and never for an empty log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_events: u64,
    pub every: chrono::Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_events: 100_000,
            every: chrono::Duration::minutes(1),
        }
    }
}

/// The committed state: `trust/<t>/state`, two lines, `<size>` and base64 `<root>`,
/// then the size and time of the last signed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
struct State {
    size: u64,
    root: Hash,
    signed_size: u64,
    signed_at: Option<DateTime<Utc>>,
}

impl State {
    fn empty() -> Self {
        State {
            size: 0,
            root: EMPTY_HASH,
            signed_size: 0,
            signed_at: None,
        }
    }

    fn encode(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{}\n",
            self.size,
            self.root,
            self.signed_size,
            self.signed_at.map_or(-1, |t| t.timestamp_micros())
        )
        .into_bytes()
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        let size = lines.next()?.parse().ok()?;
        let root = Hash::parse_hash(lines.next()?).ok()?;
        let signed_size = lines.next()?.parse().ok()?;
        let at: i64 = lines.next()?.parse().ok()?;
        Some(State {
            size,
            root,
            signed_size,
            signed_at: (at >= 0)
                .then(|| DateTime::from_timestamp_micros(at))
                .flatten(),
        })
    }
}

/// What one append did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Appended {
    /// The index of each event offered, new or already in the log.
    pub indexes: Vec<(EventId, u64)>,
    /// Leaves added.
    pub added: u64,
    /// Events offered again (a redelivery, a replay): no leaf added.
    pub duplicates: u64,
    /// Events offered again with another payload hash: no leaf added; the log keeps the
    /// first, as the compactor keeps it and quarantines the other copy.
    pub conflicts: Vec<EventId>,
    /// The log's size after the append.
    pub size: u64,
    /// Whether a checkpoint was signed.
    pub signed: bool,
}

#[derive(Clone, Copy)]
pub struct Integrator<'a> {
    pub store: &'a dyn LogStore,
    pub index: &'a dyn LeafIndex,
    pub signer: &'a dyn CheckpointSigner,
    /// The first part of every origin line (`<log name>/<tenant>`).
    pub log_name: &'a str,
    pub policy: CheckpointPolicy,
}

impl Integrator<'_> {
    async fn state(&self, tenant: &TenantId) -> Result<State, IntegrateError> {
        match self
            .store
            .get(&format!("{}state", log_prefix(tenant)))
            .await?
        {
            None => Ok(State::empty()),
            Some(b) => State::parse(&b).ok_or_else(|| IntegrateError::Damaged {
                tenant: tenant.clone(),
                why: "the state object does not parse".into(),
            }),
        }
    }

    /// The tree's right edge at the committed size, from its partial tiles.
    async fn edge(&self, tenant: &TenantId, state: &State) -> Result<TreeEdge, IntegrateError> {
        let log = TenantLog {
            store: self.store,
            prefix: log_prefix(tenant),
        };
        let damaged = |why: String| IntegrateError::Damaged {
            tenant: tenant.clone(),
            why,
        };
        // the partial objects of the committed size must all be there
        let (log, damaged) = (&log, &damaged);
        let required = |p: String| async move {
            log.fetch(&p)
                .await
                .map_err(|e| damaged(e.to_string()))?
                .ok_or_else(|| damaged(format!("{p} is missing")))
                .map(|bytes| (p, bytes))
        };
        let (tiles, bundle) = TreeEdge::partial_paths(state.size);
        let mut rows = Vec::new();
        for path in tiles {
            rows.push(match path {
                None => Vec::new(),
                Some(p) => {
                    let (p, bytes) = required(p).await?;
                    decode_tile(&bytes).map_err(|e| damaged(format!("{p}: {e}")))?
                }
            });
        }
        let entries = match bundle {
            None => Vec::new(),
            Some(p) => {
                let (p, bytes) = required(p).await?;
                decode_bundle(&bytes).map_err(|e| damaged(format!("{p}: {e}")))?
            }
        };
        let edge = TreeEdge::from_partials(state.size, rows, entries)
            .map_err(|e| damaged(e.to_string()))?;
        if edge.root() != state.root {
            return Err(damaged(
                "the partial tiles do not hash to the committed root".into(),
            ));
        }
        Ok(edge)
    }

    /// Keeps only index records that the committed log confirms: a run that crashed after
    /// recording reservations may have left one below a size committed later by a run
    /// that put other events there. Duplicates are rare, so reading their bundles is cheap.
    async fn drop_stale(
        &self,
        tenant: &TenantId,
        state: &State,
        known: &mut HashMap<EventId, Placed>,
    ) -> Result<(), IntegrateError> {
        let log = TenantLog {
            store: self.store,
            prefix: log_prefix(tenant),
        };
        let mut bundles: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
        let mut stale = Vec::new();
        for (id, placed) in known.iter() {
            let i = &placed.index;
            if *i >= state.size {
                stale.push(id.clone());
                continue;
            }
            let n = i / TILE_WIDTH;
            if let std::collections::hash_map::Entry::Vacant(slot) = bundles.entry(n) {
                let width = (state.size - n * TILE_WIDTH).min(TILE_WIDTH);
                let entries = crate::verify::bundle(&log, n, width).await.map_err(|e| {
                    IntegrateError::Damaged {
                        tenant: tenant.clone(),
                        why: e.to_string(),
                    }
                })?;
                slot.insert(entries);
            }
            let logged = bundles
                .get(&n)
                .and_then(|b| b.get((i % TILE_WIDTH) as usize))
                .and_then(|e| crate::verify::event_id_of(e));
            if logged != Some(id.as_str().as_bytes()) {
                stale.push(id.clone());
            }
        }
        for id in stale {
            known.remove(&id);
        }
        Ok(())
    }

    /// Appends the events of one tenant, in the order given (the order they were
    /// written), and signs a checkpoint if one is due at `now`.
    pub async fn append(
        &self,
        tenant: &TenantId,
        events: Vec<EventLeaf>,
        now: DateTime<Utc>,
    ) -> Result<Appended, IntegrateError> {
        if let Some(other) = events.iter().find(|e| &e.tenant != tenant) {
            return Err(IntegrateError::WrongTenant {
                tenant: other.tenant.clone(),
                log: tenant.clone(),
            });
        }
        let state = self.state(tenant).await?;
        let edge = self.edge(tenant, &state).await?;
        let ids: Vec<EventId> = events.iter().map(|e| e.event_id.clone()).collect();
        let mut known = self.index.lookup(tenant, &ids).await?;
        self.drop_stale(tenant, &state, &mut known).await?;

        let mut out = Appended::default();
        let mut new: Vec<EventLeaf> = Vec::new();
        let mut in_batch: HashMap<EventId, Placed> = HashMap::new();
        for e in events {
            // `known` holds only records the committed log confirms (`drop_stale`)
            let earlier = known
                .get(&e.event_id)
                .or_else(|| in_batch.get(&e.event_id))
                .copied();
            match earlier {
                Some(placed) => {
                    out.duplicates += 1;
                    if placed.payload_sha256 != e.payload_sha256 {
                        out.conflicts.push(e.event_id.clone());
                    }
                    out.indexes.push((e.event_id, placed.index));
                }
                None => {
                    let i = state.size + new.len() as u64;
                    let placed = Placed {
                        index: i,
                        payload_sha256: e.payload_sha256,
                    };
                    in_batch.insert(e.event_id.clone(), placed);
                    out.indexes.push((e.event_id.clone(), i));
                    new.push(e);
                }
            }
        }
        let records: Vec<(EventId, Placed)> = new
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let placed = Placed {
                    index: state.size + k as u64,
                    payload_sha256: e.payload_sha256,
                };
                (e.event_id.clone(), placed)
            })
            .collect();
        if !records.is_empty() {
            self.index.record(tenant, &records).await?;
        }
        out.added = records.len() as u64;
        let entries = new.into_iter().map(|e| Leaf::Event(e).encode()).collect();
        (out.size, out.signed) = self.publish(tenant, state, edge, entries, now).await?;
        Ok(out)
    }

    /// Appends `entries` to the edge of the committed `state`: tiles, then the commit,
    /// then a checkpoint if one is due. Returns the new size and whether it signed.
    async fn publish(
        &self,
        tenant: &TenantId,
        state: State,
        mut edge: TreeEdge,
        entries: Vec<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> Result<(u64, bool), IntegrateError> {
        let prefix = log_prefix(tenant);
        let mut published = edge.append(entries)?;
        published.extend(edge.partials()?);
        for p in published {
            self.store
                .put(&format!("{prefix}{}", p.path), p.bytes)
                .await?;
        }
        let mut next = State {
            size: edge.size(),
            root: edge.root(),
            ..state
        };
        let due = next.size > next.signed_size
            && (next.size - next.signed_size >= self.policy.every_events
                || next.signed_at.is_none_or(|t| now - t >= self.policy.every));
        if next.size != state.size {
            // nobody else committed meanwhile (the single-writer duty, checked)
            if self.state(tenant).await? != state {
                return Err(IntegrateError::Moved {
                    tenant: tenant.clone(),
                });
            }
            self.store
                .put(&format!("{prefix}state"), next.encode())
                .await?;
        }
        if due {
            let origin = checkpoint::origin(self.log_name, tenant);
            let note = checkpoint::sign(self.signer, &origin, next.size, next.root).await?;
            self.store
                .put(&format!("{prefix}{CHECKPOINT}"), note)
                .await?;
            next.signed_size = next.size;
            next.signed_at = Some(now);
            self.store
                .put(&format!("{prefix}state"), next.encode())
                .await?;
        }
        Ok((next.size, due))
    }

    /// Records in the log that retention removed the events at `ranges` under `policy`,
    /// so a verifier tells "removed by policy" from "missing". Call it before removing
    /// the rows: a crash in between leaves rows the log says may go, never the reverse.
    /// Returns the log's size after.
    pub async fn record_expiry(
        &self,
        tenant: &TenantId,
        ranges: &[std::ops::Range<u64>],
        policy: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, IntegrateError> {
        let state = self.state(tenant).await?;
        let edge = self.edge(tenant, &state).await?;
        let mut entries = Vec::with_capacity(ranges.len());
        for r in ranges {
            if r.end > state.size {
                return Err(IntegrateError::Damaged {
                    tenant: tenant.clone(),
                    why: format!(
                        "expiry of {}..{} past the log's {}",
                        r.start, r.end, state.size
                    ),
                });
            }
            let leaf =
                crate::leaf::ExpiryLeaf::new(tenant, r.start, r.end, policy, now).map_err(|e| {
                    IntegrateError::Damaged {
                        tenant: tenant.clone(),
                        why: e.to_string(),
                    }
                })?;
            entries.push(Leaf::Expiry(leaf).encode());
        }
        let at = state.size;
        let size = self.publish(tenant, state, edge, entries, now).await?.0;
        // the index of what went, for readers that walk the log in order (a poll) and
        // must tell a removed event from a missing one without reading the whole log,
        // and where each expiry leaf is (an export proves the ones it needs); written
        // before the caller removes any row
        let path = format!("{}{EXPIRED}", log_prefix(tenant));
        let mut text = self.store.get(&path).await?.unwrap_or_default();
        for (k, r) in (at..).zip(ranges) {
            text.extend_from_slice(format!("{} {} {k}\n", r.start, r.end).as_bytes());
        }
        self.store.put(&path, text).await?;
        Ok(size)
    }

    /// Signs a checkpoint of `tenant`'s log if the policy says one is due (the
    /// interval's tick, for a tenant that received nothing since its log last grew).
    pub async fn sign_due(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<bool, IntegrateError> {
        Ok(self.append(tenant, Vec::new(), now).await?.signed)
    }

    /// Signs now if the log grew since its last checkpoint, whatever the interval says
    /// (the embedded default ends each run so, leaving everything integrated covered).
    pub async fn sign_pending(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<bool, IntegrateError> {
        let eager = Integrator {
            policy: CheckpointPolicy {
                every: chrono::Duration::zero(),
                ..self.policy
            },
            ..*self
        };
        eager.sign_due(tenant, now).await
    }
}

/// A `LogStore` and `LeafIndex` in memory, for tests and fault injection.
#[derive(Debug, Default)]
pub struct InMemoryLog {
    pub objects: Mutex<HashMap<String, Vec<u8>>>,
    leaves: Mutex<HashMap<(TenantId, EventId), Placed>>,
}

#[async_trait]
impl LogStore for InMemoryLog {
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let objects = self
            .objects
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        Ok(objects.get(path).cloned())
    }
    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.objects
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?
            .insert(path.to_owned(), bytes);
        Ok(())
    }
}

#[async_trait]
impl LeafIndex for InMemoryLog {
    async fn lookup(
        &self,
        tenant: &TenantId,
        events: &[EventId],
    ) -> Result<HashMap<EventId, Placed>, StoreError> {
        let leaves = self
            .leaves
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        let wanted: HashSet<&EventId> = events.iter().collect();
        Ok(wanted
            .into_iter()
            .filter_map(|e| {
                leaves
                    .get(&(tenant.clone(), e.clone()))
                    .map(|v| (e.clone(), *v))
            })
            .collect())
    }
    async fn record(
        &self,
        tenant: &TenantId,
        entries: &[(EventId, Placed)],
    ) -> Result<(), StoreError> {
        let mut leaves = self
            .leaves
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        for (e, placed) in entries {
            leaves.insert((tenant.clone(), e.clone()), *placed);
        }
        Ok(())
    }
}

/// The tenant's published log as a `TileSource` (for proofs and verification).
pub fn tiles_of<'a>(store: &'a dyn LogStore, tenant: &TenantId) -> impl TileSource + 'a {
    TenantLog {
        store,
        prefix: log_prefix(tenant),
    }
}

#[cfg(test)]
mod tests;
