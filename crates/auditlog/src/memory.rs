//! In-memory adapters for unit tests and benchmarks. They follow the same contracts as
//! the real adapters (the conformance suite runs against them too), plus fault injection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::ports::{
    BlobError, BlobStore, ClaimContext, ClaimOutcome, ClaimRequest, DedupeError, DedupeStore,
    ObjectInfo,
};

#[derive(Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    puts: Mutex<usize>,
}

impl MemoryBlobStore {
    pub fn put_count(&self) -> usize {
        self.puts.lock().map(|p| *p).unwrap_or(0)
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects
            .lock()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn poisoned<T>(_: T) -> BlobError {
    BlobError::Unavailable("lock poisoned".into())
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        *self.puts.lock().map_err(poisoned)? += 1;
        self.objects
            .lock()
            .map_err(poisoned)?
            .insert(key.to_owned(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        self.objects
            .lock()
            .map_err(poisoned)?
            .get(key)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        Ok(self
            .objects
            .lock()
            .map_err(poisoned)?
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectInfo {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.objects.lock().map_err(poisoned)?.remove(key);
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Claim {
    payload_sha256: String,
    batch_id: String,
    lease_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct MemoryDedupeStore {
    claims: Mutex<HashMap<(String, String), Claim>>,
    completed: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Number of upcoming claim calls that answer throttled for every key.
    throttle_claims: Mutex<usize>,
}

impl MemoryDedupeStore {
    pub fn throttle_next_claims(&self, n: usize) {
        if let Ok(mut t) = self.throttle_claims.lock() {
            *t = n;
        }
    }
}

fn dpoisoned<T>(_: T) -> DedupeError {
    DedupeError::Unavailable("lock poisoned".into())
}

#[async_trait]
impl DedupeStore for MemoryDedupeStore {
    async fn claim(
        &self,
        ctx: &ClaimContext,
        requests: &[ClaimRequest],
    ) -> Result<Vec<ClaimOutcome>, DedupeError> {
        {
            let mut t = self.throttle_claims.lock().map_err(dpoisoned)?;
            if *t > 0 {
                *t -= 1;
                return Ok(requests
                    .iter()
                    .map(|_| ClaimOutcome::Unavailable(DedupeError::Throttled("injected".into())))
                    .collect());
            }
        }
        let mut claims = self.claims.lock().map_err(dpoisoned)?;
        let completed = self.completed.lock().map_err(dpoisoned)?;
        Ok(requests
            .iter()
            .map(|r| {
                let key = (r.tenant_id.to_string(), r.event_id.to_string());
                let fresh = Claim {
                    payload_sha256: r.payload_sha256.clone(),
                    batch_id: ctx.batch_id.clone(),
                    lease_until: ctx.lease_until(),
                    expires_at: ctx.expires_at(),
                };
                match claims.get(&key) {
                    Some(c) if c.expires_at > ctx.now => {
                        if completed.get(&c.batch_id).is_some_and(|exp| *exp > ctx.now) {
                            ClaimOutcome::Completed {
                                payload_sha256: c.payload_sha256.clone(),
                            }
                        } else if c.batch_id != ctx.batch_id && c.lease_until > ctx.now {
                            ClaimOutcome::InProgress
                        } else {
                            claims.insert(key, fresh);
                            ClaimOutcome::Claimed
                        }
                    }
                    _ => {
                        claims.insert(key, fresh);
                        ClaimOutcome::Claimed
                    }
                }
            })
            .collect())
    }

    async fn complete(&self, ctx: &ClaimContext) -> Result<(), DedupeError> {
        self.completed
            .lock()
            .map_err(dpoisoned)?
            .insert(ctx.batch_id.clone(), ctx.expires_at());
        Ok(())
    }

    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError> {
        let mut claims = self.claims.lock().map_err(dpoisoned)?;
        for r in keys {
            let key = (r.tenant_id.to_string(), r.event_id.to_string());
            if claims.get(&key).is_some_and(|c| c.batch_id == ctx.batch_id) {
                claims.remove(&key);
            }
        }
        Ok(())
    }
}

/// Wraps any `BlobStore` and fails the puts a rule picks (by 1-based put number), or the
/// next few puts on demand, for outage and crash tests over real adapters too.
pub struct FaultyBlobStore<B> {
    inner: B,
    fail: Box<dyn Fn(usize) -> bool + Send + Sync>,
    puts: AtomicUsize,
    fail_next: AtomicUsize,
}

impl<B> FaultyBlobStore<B> {
    pub fn new(inner: B, fail: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        Self {
            inner,
            fail: Box::new(fail),
            puts: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
        }
    }

    /// Passes every put through until `fail_next_puts` says otherwise.
    pub fn healthy(inner: B) -> Self {
        Self::new(inner, |_| false)
    }

    /// Fails every put after the first `ok` ones: a crash at that point.
    pub fn crash_after(inner: B, ok: usize) -> Self {
        Self::new(inner, move |n| n > ok)
    }

    /// Fails the next `n` puts (an outage starting now), whatever the rule says.
    pub fn fail_next_puts(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl<B: BlobStore> BlobStore for FaultyBlobStore<B> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        let outage = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
            .is_ok();
        if outage || (self.fail)(n) {
            return Err(BlobError::Unavailable(format!(
                "injected failure of put #{n}"
            )));
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // an outage on top of the crash rule: still failing, nothing more stored
        store.fail_next_puts(1);
        assert!(!put(&store, "e").await);
        assert_eq!(store.inner.put_count(), 2);
    }
}
