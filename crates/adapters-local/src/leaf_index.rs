//! `LeafIndex` on SQLite: where each event of each tenant is in its transparency log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use envelope::{EventId, TenantId};
use rusqlite::{Connection, params};
use transparency::integrate::{LeafIndex, Placed, StoreError};

pub struct SqliteLeafIndex {
    conn: Mutex<Connection>,
}

fn map_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("leaf index: {e}"))
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS log_leaves (
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    leaf_index INTEGER NOT NULL,
    payload_sha256 BLOB NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;
";

impl SqliteLeafIndex {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path).map_err(map_err)?)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(map_err)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(map_err)?;
        conn.execute_batch(SCHEMA).map_err(map_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Unavailable("leaf index lock poisoned".into()))
    }
}

#[async_trait]
impl LeafIndex for SqliteLeafIndex {
    async fn lookup(
        &self,
        tenant: &TenantId,
        events: &[EventId],
    ) -> Result<HashMap<EventId, Placed>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT leaf_index, payload_sha256 FROM log_leaves
                 WHERE tenant_id = ?1 AND event_id = ?2",
            )
            .map_err(map_err)?;
        let mut out = HashMap::new();
        for e in events {
            let mut rows = stmt
                .query(params![tenant.as_str(), e.as_str()])
                .map_err(map_err)?;
            if let Some(row) = rows.next().map_err(map_err)? {
                let index: i64 = row.get(0).map_err(map_err)?;
                let sha: Vec<u8> = row.get(1).map_err(map_err)?;
                let corrupt =
                    || StoreError::Unavailable(format!("leaf index: corrupt row for {e}"));
                out.insert(
                    e.clone(),
                    Placed {
                        index: u64::try_from(index).map_err(|_| corrupt())?,
                        payload_sha256: sha.try_into().map_err(|_| corrupt())?,
                    },
                );
            }
        }
        Ok(out)
    }

    async fn record(
        &self,
        tenant: &TenantId,
        entries: &[(EventId, Placed)],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO log_leaves
                     (tenant_id, event_id, leaf_index, payload_sha256) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(map_err)?;
            for (e, placed) in entries {
                let index = i64::try_from(placed.index)
                    .map_err(|_| StoreError::Unavailable("leaf index over i64".into()))?;
                stmt.execute(params![
                    tenant.as_str(),
                    e.as_str(),
                    index,
                    placed.payload_sha256.as_slice()
                ])
                .map_err(map_err)?;
            }
        }
        tx.commit().map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn indices_are_per_tenant_and_a_record_replaces_a_reservation() {
        let index = SqliteLeafIndex::in_memory().unwrap();
        let (acme, globex) = (
            TenantId::parse("acme").unwrap(),
            TenantId::parse("globex").unwrap(),
        );
        let e = EventId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
        let at = |index| Placed {
            index,
            payload_sha256: [7u8; 32],
        };
        index.record(&acme, &[(e.clone(), at(5))]).await.unwrap();
        assert_eq!(
            index.lookup(&acme, std::slice::from_ref(&e)).await.unwrap()[&e],
            at(5)
        );
        assert!(
            index
                .lookup(&globex, std::slice::from_ref(&e))
                .await
                .unwrap()
                .is_empty()
        );
        index.record(&acme, &[(e.clone(), at(9))]).await.unwrap();
        assert_eq!(
            index.lookup(&acme, std::slice::from_ref(&e)).await.unwrap()[&e].index,
            9
        );
    }
}
