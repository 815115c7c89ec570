//! `DedupeStore` on SQLite: one row per claim, one per completed unit (the `batch_id`
//! columns hold the completion unit's id; named before units were per ingest file).

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use auditlog::{ClaimContext, ClaimOutcome, ClaimRequest, DedupeError, DedupeStore};
use rusqlite::{Connection, OptionalExtension, params};

pub struct SqliteDedupeStore {
    conn: Mutex<Connection>,
}

fn map_err(e: rusqlite::Error) -> DedupeError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            DedupeError::Throttled(e.to_string())
        }
        _ => DedupeError::Unavailable(e.to_string()),
    }
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
-- claims are looked up at random: keep the working set in memory, not in pread calls
PRAGMA cache_size = -131072;
PRAGMA mmap_size = 1073741824;
-- a batch dirties thousands of random pages: checkpoint less often than every 1,000
PRAGMA wal_autocheckpoint = 16384;
CREATE TABLE IF NOT EXISTS dedupe_claims (
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedupe_batches (
    batch_id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

impl SqliteDedupeStore {
    pub fn open(path: &Path) -> Result<Self, DedupeError> {
        Self::init(Connection::open(path).map_err(map_err)?)
    }

    pub fn in_memory() -> Result<Self, DedupeError> {
        Self::init(Connection::open_in_memory().map_err(map_err)?)
    }

    fn init(conn: Connection) -> Result<Self, DedupeError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(map_err)?;
        conn.execute_batch(SCHEMA).map_err(map_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Removes claims and batches past their retention (DynamoDB does this with TTL).
    pub fn purge_expired(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, DedupeError> {
        let conn = self.lock()?;
        let t = now.timestamp_micros();
        let a = conn
            .execute("DELETE FROM dedupe_claims WHERE expires_at <= ?1", [t])
            .map_err(map_err)?;
        let b = conn
            .execute("DELETE FROM dedupe_batches WHERE expires_at <= ?1", [t])
            .map_err(map_err)?;
        Ok(a + b)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, DedupeError> {
        self.conn
            .lock()
            .map_err(|_| DedupeError::Unavailable("connection lock poisoned".into()))
    }
}

#[async_trait]
impl DedupeStore for SqliteDedupeStore {
    async fn claim(
        &self,
        ctx: &ClaimContext,
        requests: &[ClaimRequest],
    ) -> Result<Vec<ClaimOutcome>, DedupeError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let now = ctx.now.timestamp_micros();
        let mut out = Vec::with_capacity(requests.len());
        {
            let mut find = tx
                .prepare_cached(
                    "SELECT c.payload_sha256, c.batch_id, c.lease_until, b.expires_at
                     FROM dedupe_claims c LEFT JOIN dedupe_batches b ON b.batch_id = c.batch_id
                     WHERE c.tenant_id = ?1 AND c.event_id = ?2 AND c.expires_at > ?3",
                )
                .map_err(map_err)?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO dedupe_claims
                     (tenant_id, event_id, payload_sha256, batch_id, lease_until, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(map_err)?;
            for r in requests {
                let existing: Option<(String, String, i64, Option<i64>)> = find
                    .query_row(
                        params![r.tenant_id.as_str(), r.event_id.as_str(), now],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                    )
                    .optional()
                    .map_err(map_err)?;
                let outcome = match existing {
                    Some((hash, _, _, Some(done))) if done > now => ClaimOutcome::Completed {
                        payload_sha256: hash,
                    },
                    Some((_, batch, lease, _)) if batch != ctx.unit_id && lease > now => {
                        ClaimOutcome::InProgress
                    }
                    _ => {
                        upsert
                            .execute(params![
                                r.tenant_id.as_str(),
                                r.event_id.as_str(),
                                r.payload_sha256,
                                ctx.unit_id,
                                ctx.lease_until().timestamp_micros(),
                                ctx.expires_at().timestamp_micros()
                            ])
                            .map_err(map_err)?;
                        ClaimOutcome::Claimed
                    }
                };
                out.push(outcome);
            }
        }
        tx.commit().map_err(map_err)?;
        Ok(out)
    }

    async fn complete(&self, ctx: &ClaimContext) -> Result<(), DedupeError> {
        self.lock()?
            .execute(
                "INSERT OR REPLACE INTO dedupe_batches (batch_id, expires_at) VALUES (?1, ?2)",
                params![ctx.unit_id, ctx.expires_at().timestamp_micros()],
            )
            .map_err(map_err)?;
        Ok(())
    }

    async fn release(&self, ctx: &ClaimContext, keys: &[ClaimRequest]) -> Result<(), DedupeError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM dedupe_claims WHERE tenant_id = ?1 AND event_id = ?2 AND batch_id = ?3")
                .map_err(map_err)?;
            for k in keys {
                del.execute(params![
                    k.tenant_id.as_str(),
                    k.event_id.as_str(),
                    ctx.unit_id
                ])
                .map_err(map_err)?;
            }
        }
        tx.commit().map_err(map_err)
    }
}
