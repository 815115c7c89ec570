//! In-memory adapters for unit tests and benchmarks. They follow the same contracts as
//! the real adapters (the conformance suite runs against them too). Fault injection over
//! any adapter is in `faults`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::ports::{
    BlobError, BlobStore, ClaimContext, ClaimOutcome, ClaimRequest, DedupeError, DedupeStore,
    ObjectInfo,
};

#[derive(Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, (Bytes, DateTime<Utc>)>>,
    puts: Mutex<usize>,
    gets: Mutex<usize>,
}

impl MemoryBlobStore {
    pub fn put_count(&self) -> usize {
        self.puts.lock().map(|p| *p).unwrap_or(0)
    }

    /// Stores an object as if written at `at` (what `list` reports as its time).
    pub fn put_at(&self, key: &str, body: Bytes, at: DateTime<Utc>) {
        if let Ok(mut o) = self.objects.lock() {
            o.insert(key.to_owned(), (body, at));
        }
    }

    /// GETs served so far.
    pub fn get_count(&self) -> usize {
        self.gets.lock().map(|p| *p).unwrap_or(0)
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
            .insert(key.to_owned(), (body, Utc::now()));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        *self.gets.lock().map_err(poisoned)? += 1;
        self.objects
            .lock()
            .map_err(poisoned)?
            .get(key)
            .map(|(body, _)| body.clone())
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        Ok(self
            .objects
            .lock()
            .map_err(poisoned)?
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (body, at))| ObjectInfo {
                key: k.clone(),
                size: body.len() as u64,
                modified: Some(*at),
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
    unit_id: String,
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
                    unit_id: ctx.unit_id.clone(),
                    lease_until: ctx.lease_until(),
                    expires_at: ctx.expires_at(),
                };
                match claims.get(&key) {
                    Some(c) if c.expires_at > ctx.now => {
                        if completed.get(&c.unit_id).is_some_and(|exp| *exp > ctx.now) {
                            ClaimOutcome::Completed {
                                payload_sha256: c.payload_sha256.clone(),
                            }
                        } else if c.unit_id != ctx.unit_id && c.lease_until > ctx.now {
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
            .insert(ctx.unit_id.clone(), ctx.expires_at());
        Ok(())
    }

    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError> {
        let mut claims = self.claims.lock().map_err(dpoisoned)?;
        for r in keys {
            let key = (r.tenant_id.to_string(), r.event_id.to_string());
            if claims.get(&key).is_some_and(|c| c.unit_id == ctx.unit_id) {
                claims.remove(&key);
            }
        }
        Ok(())
    }
}
