//! Fault injection over any adapter, for the loss tests and `auditlog soak`.
//!
//! A `FaultInjector` decides, operation by operation, whether a call fails and how:
//! before doing anything, after the store applied it (a timeout after the server
//! committed, the case that makes retries ambiguous), or as a crash that fails
//! everything until `restart`. `FaultyBlobStore` and `FaultyDedupeStore` wrap a real
//! store and ask the injector before each call. Faults come from a script (the next
//! calls of an operation) or at random at a rate from a seed, and every injected fault
//! is counted by kind.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::{
    BlobError, BlobStore, ClaimContext, ClaimOutcome, ClaimRequest, DedupeError, DedupeStore,
    ObjectInfo,
};

/// An operation of a store that a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Put,
    Get,
    List,
    Delete,
    Claim,
    Complete,
    Release,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Put,
        Op::Get,
        Op::List,
        Op::Delete,
        Op::Claim,
        Op::Complete,
        Op::Release,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Claim => "claim",
            Op::Complete => "complete",
            Op::Release => "release",
        }
    }

    /// The faults that make sense for this operation: a read cannot be "applied".
    fn faults(self) -> &'static [Fault] {
        match self {
            Op::Get | Op::List => &[Fault::Fail],
            Op::Claim => &[
                Fault::Fail,
                Fault::AppliedThenFail,
                Fault::AppliedThenKeyUnavailable,
            ],
            Op::Put | Op::Delete | Op::Complete | Op::Release => {
                &[Fault::Fail, Fault::AppliedThenFail]
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The call fails and changes nothing.
    Fail,
    /// The store applies the call, then the caller sees an error.
    AppliedThenFail,
    /// Claims only: every claim is applied, then one key is reported unavailable.
    AppliedThenKeyUnavailable,
    /// The process dies here: this call and every later one fails until `restart`.
    Crash,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Fail => "fail",
            Fault::AppliedThenFail => "applied-then-error",
            Fault::AppliedThenKeyUnavailable => "applied-then-key-unavailable",
            Fault::Crash => "crash",
        }
    }
}

/// Picks calls of one operation by their 1-based number.
type CallRule = Box<dyn Fn(usize) -> bool + Send>;

struct State {
    rate: f64,
    crash_rate: f64,
    rng: u64,
    scripted: HashMap<Op, VecDeque<Fault>>,
    /// Fails the calls of one operation whose 1-based number the rule picks.
    rule: Option<(Op, CallRule, Fault)>,
    calls: HashMap<Op, usize>,
    crashed: bool,
    injected: BTreeMap<(Op, Fault), usize>,
}

/// Decides which calls fail. Shared (`Arc`) by the wrappers of one simulated process.
pub struct FaultInjector {
    state: Mutex<State>,
}

impl Default for FaultInjector {
    fn default() -> Self {
        Self::with(0.0, 0.0, 0)
    }
}

impl FaultInjector {
    fn with(rate: f64, crash_rate: f64, seed: u64) -> Self {
        Self {
            state: Mutex::new(State {
                rate,
                crash_rate,
                // splitmix64 of the seed: any seed, zero included, gives a good stream
                rng: seed ^ 0x9e37_79b9_7f4a_7c15,
                scripted: HashMap::new(),
                rule: None,
                calls: HashMap::new(),
                crashed: false,
                injected: BTreeMap::new(),
            }),
        }
    }

    /// No faults until told.
    pub fn healthy() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Each call fails with probability `rate` (a fault the operation allows, picked
    /// at random), and crashes with probability `crash_rate`.
    pub fn random(rate: f64, crash_rate: f64, seed: u64) -> Arc<Self> {
        Arc::new(Self::with(rate, crash_rate, seed))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `n` calls of `op` fail with `fault`.
    pub fn fail_next(&self, op: Op, fault: Fault, n: usize) {
        let mut s = self.lock();
        let q = s.scripted.entry(op).or_default();
        q.extend(std::iter::repeat_n(fault, n));
    }

    /// Fails the calls of `op` whose 1-based number `rule` picks (counted from now).
    pub fn fail_where(&self, op: Op, rule: impl Fn(usize) -> bool + Send + 'static) {
        let mut s = self.lock();
        s.calls.insert(op, 0);
        s.rule = Some((op, Box::new(rule), Fault::Fail));
    }

    /// The process dies at the `n`-th call of `op` from now (1-based): that call and
    /// every later one fails until `restart`.
    pub fn crash_at(&self, op: Op, n: usize) {
        let mut s = self.lock();
        s.calls.insert(op, 0);
        s.rule = Some((op, Box::new(move |k| k == n), Fault::Crash));
    }

    /// Calls of `op` seen since its rule was set (or since the start).
    pub fn calls(&self, op: Op) -> usize {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Changes the random rates from now on (0 and 0: only scripted faults).
    pub fn set_rates(&self, rate: f64, crash_rate: f64) {
        let mut s = self.lock();
        s.rate = rate;
        s.crash_rate = crash_rate;
    }

    /// True after a crash, until `restart`.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The process came back: calls work again (random faults go on).
    pub fn restart(&self) {
        self.lock().crashed = false;
    }

    /// Every fault injected so far, by operation and kind.
    pub fn injected(&self) -> BTreeMap<(Op, Fault), usize> {
        self.lock().injected.clone()
    }

    pub fn total_injected(&self) -> usize {
        self.lock().injected.values().sum()
    }

    /// The fault for this call of `op`, if any.
    pub fn decide(&self, op: Op) -> Option<Fault> {
        let mut s = self.lock();
        if s.crashed {
            return Some(Fault::Crash);
        }
        let n = {
            let c = s.calls.entry(op).or_insert(0);
            *c += 1;
            *c
        };
        let mut fault = s.scripted.get_mut(&op).and_then(VecDeque::pop_front);
        if fault.is_none()
            && let Some((rule_op, rule, kind)) = &s.rule
            && *rule_op == op
            && rule(n)
        {
            fault = Some(*kind);
        }
        if fault.is_none() && (s.rate > 0.0 || s.crash_rate > 0.0) {
            let u = s.next_unit();
            if u < s.crash_rate {
                fault = Some(Fault::Crash);
            } else if u < s.crash_rate + s.rate {
                let kinds = op.faults();
                let pick = (s.next_u64() % kinds.len() as u64) as usize;
                fault = kinds.get(pick).copied();
            }
        }
        if let Some(f) = fault {
            if f == Fault::Crash {
                s.crashed = true;
            }
            *s.injected.entry((op, f)).or_insert(0) += 1;
        }
        fault
    }

    /// A number in 0..n, from the injector's stream (for picking which key fails).
    fn pick(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.lock().next_u64() % n as u64) as usize
    }
}

impl State {
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn blob_fault(op: Op, f: Fault) -> BlobError {
    BlobError::Unavailable(format!("injected {} of {}", f.as_str(), op.as_str()))
}

fn dedupe_fault(op: Op, f: Fault) -> DedupeError {
    DedupeError::Unavailable(format!("injected {} of {}", f.as_str(), op.as_str()))
}

/// A `BlobStore` whose calls fail when its injector says so.
pub struct FaultyBlobStore<B> {
    inner: B,
    faults: Arc<FaultInjector>,
}

impl<B> FaultyBlobStore<B> {
    pub fn new(inner: B, faults: Arc<FaultInjector>) -> Self {
        Self { inner, faults }
    }

    /// Passes every call through until told otherwise.
    pub fn healthy(inner: B) -> Self {
        Self::new(inner, FaultInjector::healthy())
    }

    /// Fails every put after the first `ok` ones: a crash at that point.
    pub fn crash_after(inner: B, ok: usize) -> Self {
        let s = Self::healthy(inner);
        s.faults.fail_where(Op::Put, move |n| n > ok);
        s
    }

    /// Fails the next `n` puts (an outage starting now).
    pub fn fail_next_puts(&self, n: usize) {
        self.faults.fail_next(Op::Put, Fault::Fail, n);
    }

    pub fn faults(&self) -> &Arc<FaultInjector> {
        &self.faults
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }
}

/// Runs `call` unless the injector fails this call of `op`: before it (nothing applied)
/// or after it (applied, then an error).
async fn unless_faulted<T, E, F, Fut>(
    faults: &FaultInjector,
    op: Op,
    error: fn(Op, Fault) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match faults.decide(op) {
        None => call().await,
        Some(f @ Fault::AppliedThenFail) => {
            call().await?;
            Err(error(op, f))
        }
        Some(f) => Err(error(op, f)),
    }
}

#[async_trait]
impl<B: BlobStore> BlobStore for FaultyBlobStore<B> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        unless_faulted(&self.faults, Op::Put, blob_fault, || {
            self.inner.put(key, body)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        unless_faulted(&self.faults, Op::Get, blob_fault, || self.inner.get(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        unless_faulted(&self.faults, Op::List, blob_fault, || {
            self.inner.list(prefix)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        unless_faulted(&self.faults, Op::Delete, blob_fault, || {
            self.inner.delete(key)
        })
        .await
    }
}

/// A `DedupeStore` whose calls fail when its injector says so.
pub struct FaultyDedupeStore<D> {
    inner: D,
    faults: Arc<FaultInjector>,
}

impl<D> FaultyDedupeStore<D> {
    pub fn new(inner: D, faults: Arc<FaultInjector>) -> Self {
        Self { inner, faults }
    }

    pub fn healthy(inner: D) -> Self {
        Self::new(inner, FaultInjector::healthy())
    }

    pub fn faults(&self) -> &Arc<FaultInjector> {
        &self.faults
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }
}

#[async_trait]
impl<D: DedupeStore> DedupeStore for FaultyDedupeStore<D> {
    async fn claim(
        &self,
        ctx: &ClaimContext,
        requests: &[ClaimRequest],
    ) -> Result<Vec<ClaimOutcome>, DedupeError> {
        match self.faults.decide(Op::Claim) {
            None => self.inner.claim(ctx, requests).await,
            Some(f @ Fault::AppliedThenFail) => {
                self.inner.claim(ctx, requests).await?;
                Err(dedupe_fault(Op::Claim, f))
            }
            Some(f @ Fault::AppliedThenKeyUnavailable) => {
                let mut out = self.inner.claim(ctx, requests).await?;
                let i = self.faults.pick(out.len());
                if let Some(o) = out.get_mut(i) {
                    *o = ClaimOutcome::Unavailable(dedupe_fault(Op::Claim, f));
                }
                Ok(out)
            }
            Some(f) => Err(dedupe_fault(Op::Claim, f)),
        }
    }

    async fn complete(&self, ctx: &ClaimContext) -> Result<(), DedupeError> {
        unless_faulted(&self.faults, Op::Complete, dedupe_fault, || {
            self.inner.complete(ctx)
        })
        .await
    }

    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError> {
        unless_faulted(&self.faults, Op::Release, dedupe_fault, || {
            self.inner.release(ctx, keys)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBlobStore;

    async fn put(store: &impl BlobStore, key: &str) -> bool {
        store.put(key, Bytes::from_static(b"x")).await.is_ok()
    }

    #[tokio::test]
    async fn an_outage_fails_the_next_puts_then_lifts() {
        let store = FaultyBlobStore::healthy(MemoryBlobStore::default());
        assert!(put(&store, "a").await);
        store.fail_next_puts(2);
        assert!(!put(&store, "b").await);
        assert!(!put(&store, "c").await);
        assert!(put(&store, "d").await);
        assert_eq!(
            store.inner.keys(),
            vec!["a", "d"],
            "failed puts store nothing"
        );
    }

    #[tokio::test]
    async fn a_crash_fails_every_put_after_the_first_ones() {
        let store = FaultyBlobStore::crash_after(MemoryBlobStore::default(), 2);
        let results = [
            put(&store, "a").await,
            put(&store, "b").await,
            put(&store, "c").await,
            put(&store, "d").await,
        ];
        assert_eq!(results, [true, true, false, false]);
        store.fail_next_puts(1);
        assert!(!put(&store, "e").await);
        assert_eq!(store.inner.put_count(), 2);
    }

    #[tokio::test]
    async fn applied_then_error_stores_and_still_fails() {
        let store = FaultyBlobStore::healthy(MemoryBlobStore::default());
        store.faults().fail_next(Op::Put, Fault::AppliedThenFail, 1);
        assert!(!put(&store, "a").await);
        assert_eq!(store.inner.keys(), vec!["a"]);
        store.faults().fail_next(Op::Delete, Fault::Fail, 1);
        assert!(store.delete("a").await.is_err());
        assert_eq!(
            store.inner.keys(),
            vec!["a"],
            "a failed delete removes nothing"
        );
    }

    #[tokio::test]
    async fn a_crash_fails_everything_until_restart() {
        let store = FaultyBlobStore::healthy(MemoryBlobStore::default());
        store.faults().fail_next(Op::Get, Fault::Crash, 1);
        assert!(store.get("x").await.is_err());
        assert!(store.faults().crashed());
        assert!(!put(&store, "a").await);
        assert!(store.list("").await.is_err());
        store.faults().restart();
        assert!(put(&store, "a").await);
        // the crash is one injected fault, not one per call it failed
        assert_eq!(
            store.faults().injected().get(&(Op::Get, Fault::Crash)),
            Some(&1)
        );
        assert_eq!(store.faults().total_injected(), 1);
    }

    #[test]
    fn random_faults_hit_about_their_rate_and_only_allowed_kinds() {
        let f = FaultInjector::random(0.1, 0.0, 7);
        let mut hits = 0;
        for _ in 0..10_000 {
            for op in Op::ALL {
                if let Some(fault) = f.decide(op) {
                    assert!(op.faults().contains(&fault), "{op:?} {fault:?}");
                    hits += 1;
                }
            }
        }
        assert!((6_000..8_000).contains(&hits), "{hits} of 70,000 at 10%");
        assert_eq!(f.total_injected(), hits);
        // the same seed gives the same faults
        let (a, b) = (
            FaultInjector::random(0.3, 0.01, 9),
            FaultInjector::random(0.3, 0.01, 9),
        );
        for _ in 0..1000 {
            assert_eq!(a.decide(Op::Claim), b.decide(Op::Claim));
        }
    }
}
