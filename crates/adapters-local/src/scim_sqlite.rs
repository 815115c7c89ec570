//! `ScimStore` on SQLite: a row per resource, a row per membership with an index for the
//! reverse direction, and an outbox table written in the same transaction as the change.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::{Actor, EventId, TenantId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use scim::tenants::directory_error;
use scim::{
    CompatPolicy, Credential, DeadLetter, DirectoryError, MemberEvent, OutboxEntry, PendingEvent,
    PolicyStore, Resource, ResourceKind, ScimStore, Scope, StoreError, TenantDirectory, UniqueAttr,
};
use serde_json::Value;
use tenants::{Retention, RetentionSettings};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = OFF;
CREATE TABLE IF NOT EXISTS scim_resources (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    unique_key TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS scim_resources_unique
    ON scim_resources (tenant_id, kind, unique_key) WHERE unique_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS scim_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scim_members_reverse ON scim_members (tenant_id, member_id, group_id);
CREATE TABLE IF NOT EXISTS scim_credentials (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    idp TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    scopes TEXT NOT NULL DEFAULT 'scim'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scim_credentials_tenant ON scim_credentials (tenant_id);
CREATE TABLE IF NOT EXISTS redeemed_tokens (
    tenant_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, token_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenant_retention (
    tenant_id TEXT PRIMARY KEY,
    days INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scim_policies (
    tenant_id TEXT PRIMARY KEY,
    policy TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scim_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scim_outbox_dead (
    seq INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_lettered_at INTEGER NOT NULL
);
";

/// The outbox columns that `outbox_row` reads, in its order.
const OUTBOX_COLUMNS: &str = "seq, tenant_id, event_id, event_type, occurred_at, actor, payload";

type OutboxRow = (i64, String, String, String, i64, String, String);

fn outbox_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn outbox_entry(row: OutboxRow) -> Result<(i64, OutboxEntry), StoreError> {
    let (seq, tenant, event_id, event_type, at, actor, payload) = row;
    let corrupt = |what: &str| StoreError::Unavailable(format!("outbox row {seq}: invalid {what}"));
    let actor: Actor = serde_json::from_str(&actor).map_err(|_| corrupt("actor"))?;
    Ok((
        seq,
        OutboxEntry {
            event_id: EventId::parse(&event_id).map_err(|_| corrupt("event_id"))?,
            tenant_id: TenantId::parse(&tenant).map_err(|_| corrupt("tenant_id"))?,
            event_type,
            occurred_at: time(at),
            actor,
            payload: serde_json::from_str(&payload).map_err(|_| corrupt("payload"))?,
        },
    ))
}

const ADD_MEMBER: &str =
    "INSERT OR IGNORE INTO scim_members (tenant_id, group_id, member_id) VALUES (?1, ?2, ?3)";
const REMOVE_MEMBER: &str =
    "DELETE FROM scim_members WHERE tenant_id = ?1 AND group_id = ?2 AND member_id = ?3";

pub struct SqliteScimStore {
    conn: Mutex<Connection>,
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Throttled(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// The lowercased unique attribute of a resource, if it has one.
fn unique_key(r: &Resource) -> Option<(&'static str, String)> {
    let attr = r.kind.unique_attribute();
    scim::filter::get_ci(&r.body, attr)
        .and_then(Value::as_str)
        .map(|v| (attr, v.to_lowercase()))
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn insert_events(tx: &Transaction<'_>, events: &[OutboxEntry]) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO scim_outbox (tenant_id, event_id, event_type, occurred_at, actor, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(map_err)?;
    for e in events {
        let actor =
            serde_json::to_string(&e.actor).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        stmt.execute(params![
            e.tenant_id.as_str(),
            e.event_id.as_str(),
            e.event_type,
            micros(e.occurred_at),
            actor,
            e.payload.to_string()
        ])
        .map_err(map_err)?;
    }
    Ok(())
}

/// A unique-index violation means the attribute is taken.
fn uniqueness(e: rusqlite::Error, r: &Resource) -> StoreError {
    match (&e, unique_key(r)) {
        (rusqlite::Error::SqliteFailure(f, Some(msg)), Some((attr, value)))
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("unique_key") =>
        {
            StoreError::Uniqueness { attr, value }
        }
        _ => map_err(e),
    }
}

impl SqliteScimStore {
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
        // stores made before scopes: every credential in them is a SCIM token
        let has_scopes = conn
            .prepare("SELECT 1 FROM pragma_table_info('scim_credentials') WHERE name = 'scopes'")
            .and_then(|mut s| s.exists([]))
            .map_err(map_err)?;
        if !has_scopes {
            conn.execute_batch(
                "ALTER TABLE scim_credentials ADD COLUMN scopes TEXT NOT NULL DEFAULT 'scim'",
            )
            .map_err(map_err)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Unavailable("connection lock poisoned".into()))
    }

    fn row_to_resource(kind: ResourceKind, row: &rusqlite::Row<'_>) -> rusqlite::Result<Resource> {
        let body: String = row.get(4)?;
        Ok(Resource {
            id: row.get(0)?,
            kind,
            version: row.get::<_, i64>(1)?.max(0) as u64,
            created: time(row.get(2)?),
            last_modified: time(row.get(3)?),
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
        })
    }

    /// Runs `statement` (add or remove) per member in one transaction; a member whose row
    /// did not change gets no event.
    fn change_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
        statement: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        if !Self::group_exists(&tx, tenant, group_id)? {
            return Err(StoreError::NotFound);
        }
        let mut changed = Vec::new();
        {
            let mut stmt = tx.prepare_cached(statement).map_err(map_err)?;
            for m in members {
                if stmt
                    .execute(params![tenant.as_str(), group_id, m])
                    .map_err(map_err)?
                    == 1
                {
                    changed.push(m.clone());
                }
            }
        }
        let events: Vec<OutboxEntry> = changed.iter().map(|m| event(m)).collect();
        insert_events(&tx, &events)?;
        tx.commit().map_err(map_err)?;
        Ok(changed)
    }

    fn group_exists(
        tx: &Transaction<'_>,
        tenant: &TenantId,
        group_id: &str,
    ) -> Result<bool, StoreError> {
        tx.query_row(
            "SELECT 1 FROM scim_resources WHERE tenant_id = ?1 AND kind = 'Group' AND id = ?2",
            params![tenant.as_str(), group_id],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
        .map_err(map_err)
    }
}

#[async_trait]
impl ScimStore for SqliteScimStore {
    async fn create(
        &self,
        tenant: &TenantId,
        r: &Resource,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        tx.execute(
            "INSERT INTO scim_resources (tenant_id, kind, id, version, created, last_modified, unique_key, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                tenant.as_str(),
                r.kind.name(),
                r.id,
                r.version as i64,
                micros(r.created),
                micros(r.last_modified),
                unique_key(r).map(|(_, v)| v),
                r.body.to_string()
            ],
        )
        .map_err(|e| uniqueness(e, r))?;
        insert_events(&tx, events)?;
        tx.commit().map_err(map_err)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Resource, StoreError> {
        self.lock()?
            .query_row(
                "SELECT id, version, created, last_modified, body FROM scim_resources WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3",
                params![tenant.as_str(), kind.name(), id],
                |row| Self::row_to_resource(kind, row),
            )
            .optional()
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        ids: &[String],
    ) -> Result<Vec<Resource>, StoreError> {
        let unique = scim::store::distinct(ids);
        let (tenant_str, kind_s) = (tenant.as_str(), kind.name());
        let conn = self.lock()?;
        let mut out = Vec::with_capacity(unique.len());
        // SQLite binds at most 32,766 parameters; 500 ids per statement
        for chunk in unique.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT id, version, created, last_modified, body FROM scim_resources WHERE tenant_id = ? AND kind = ? AND id IN ({marks})"
                ))
                .map_err(map_err)?;
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&tenant_str, &kind_s];
            values.extend(chunk.iter().map(|id| *id as &dyn rusqlite::ToSql));
            let rows = stmt
                .query_map(values.as_slice(), |row| Self::row_to_resource(kind, row))
                .map_err(map_err)?;
            for r in rows {
                out.push(r.map_err(map_err)?);
            }
        }
        Ok(out)
    }

    async fn find_unique(
        &self,
        tenant: &TenantId,
        attr: UniqueAttr,
        value: &str,
    ) -> Result<Option<Resource>, StoreError> {
        let kind = attr.kind();
        self.lock()?
            .query_row(
                "SELECT id, version, created, last_modified, body FROM scim_resources WHERE tenant_id = ?1 AND kind = ?2 AND unique_key = ?3",
                params![tenant.as_str(), kind.name(), value.to_lowercase()],
                |row| Self::row_to_resource(kind, row),
            )
            .optional()
            .map_err(map_err)
    }

    async fn update(
        &self,
        tenant: &TenantId,
        r: &Resource,
        expected_version: u64,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE scim_resources SET version = ?4, last_modified = ?5, unique_key = ?6, body = ?7
                 WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3 AND version = ?8",
                params![
                    tenant.as_str(),
                    r.kind.name(),
                    r.id,
                    r.version as i64,
                    micros(r.last_modified),
                    unique_key(r).map(|(_, v)| v),
                    r.body.to_string(),
                    expected_version as i64
                ],
            )
            .map_err(|e| uniqueness(e, r))?;
        if changed == 0 {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM scim_resources WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3",
                    params![tenant.as_str(), r.kind.name(), r.id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(map_err)?;
            return Err(if exists.is_some() {
                StoreError::VersionMismatch {
                    expected: expected_version,
                }
            } else {
                StoreError::NotFound
            });
        }
        insert_events(&tx, events)?;
        tx.commit().map_err(map_err)
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        let version: Option<i64> = tx
            .query_row(
                "SELECT version FROM scim_resources WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3",
                params![tenant.as_str(), kind.name(), id],
                |row| row.get(0),
            )
            .optional()
            .map_err(map_err)?;
        let Some(version) = version else {
            return Err(StoreError::NotFound);
        };
        if let Some(expected) = expected_version
            && version as u64 != expected
        {
            return Err(StoreError::VersionMismatch { expected });
        }
        tx.execute(
            "DELETE FROM scim_resources WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3",
            params![tenant.as_str(), kind.name(), id],
        )
        .map_err(map_err)?;
        // its memberships in other groups (a user's, and a nested group's), and a
        // group's own members
        let rows = match kind {
            ResourceKind::Group => "(group_id = ?2 OR member_id = ?2)",
            ResourceKind::User => "member_id = ?2",
        };
        tx.execute(
            &format!("DELETE FROM scim_members WHERE tenant_id = ?1 AND {rows}"),
            params![tenant.as_str(), id],
        )
        .map_err(map_err)?;
        insert_events(&tx, events)?;
        tx.commit().map_err(map_err)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Resource>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, version, created, last_modified, body FROM scim_resources
                 WHERE tenant_id = ?1 AND kind = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(
                params![
                    tenant.as_str(),
                    kind.name(),
                    after.unwrap_or(""),
                    limit as i64
                ],
                |row| Self::row_to_resource(kind, row),
            )
            .map_err(map_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
    }

    async fn add_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError> {
        self.change_members(tenant, group_id, members, event, ADD_MEMBER)
    }

    async fn remove_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError> {
        self.change_members(tenant, group_id, members, event, REMOVE_MEMBER)
    }

    async fn members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT member_id FROM scim_members WHERE tenant_id = ?1 AND group_id = ?2 AND member_id > ?3 ORDER BY member_id LIMIT ?4",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(
                params![tenant.as_str(), group_id, after.unwrap_or(""), limit as i64],
                |row| row.get(0),
            )
            .map_err(map_err)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(map_err)
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached("SELECT group_id FROM scim_members WHERE tenant_id = ?1 AND member_id = ?2 ORDER BY group_id")
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![tenant.as_str(), member_id], |row| row.get(0))
            .map_err(map_err)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(map_err)
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM scim_outbox ORDER BY seq LIMIT ?1"
            ))
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![limit as i64], outbox_row)
            .map_err(map_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, entry) = outbox_entry(row.map_err(map_err)?)?;
            out.push(PendingEvent {
                receipt: seq.to_string(),
                entry,
            });
        }
        Ok(out)
    }

    async fn outbox_dead_letter(
        &self,
        entries: &[(PendingEvent, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        {
            let mut copy = tx
                .prepare_cached(&format!(
                    "INSERT OR IGNORE INTO scim_outbox_dead ({OUTBOX_COLUMNS}, reason, dead_lettered_at)
                     SELECT {OUTBOX_COLUMNS}, ?2, ?3 FROM scim_outbox WHERE seq = ?1"
                ))
                .map_err(map_err)?;
            let mut del = tx
                .prepare_cached("DELETE FROM scim_outbox WHERE seq = ?1")
                .map_err(map_err)?;
            for (p, reason) in entries {
                if let Ok(seq) = p.receipt.parse::<i64>() {
                    copy.execute(params![seq, reason, micros(at)])
                        .map_err(map_err)?;
                    del.execute(params![seq]).map_err(map_err)?;
                }
            }
        }
        tx.commit().map_err(map_err)
    }

    async fn outbox_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS}, reason, dead_lettered_at FROM scim_outbox_dead ORDER BY seq LIMIT ?1"
            ))
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![limit as i64], |row| {
                Ok((
                    outbox_row(row)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, i64>(8)?,
                ))
            })
            .map_err(map_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (r, reason, at) = row.map_err(map_err)?;
            out.push(DeadLetter {
                entry: outbox_entry(r)?.1,
                reason,
                dead_lettered_at: time(at),
            });
        }
        Ok(out)
    }

    async fn outbox_ack(&self, receipts: &[String]) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(map_err)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM scim_outbox WHERE seq = ?1")
                .map_err(map_err)?;
            for r in receipts {
                if let Ok(seq) = r.parse::<i64>() {
                    del.execute(params![seq]).map_err(map_err)?;
                }
            }
        }
        tx.commit().map_err(map_err)
    }
}

type CredentialRow = (String, String, String, i64, Option<i64>, String);

fn credential_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_credential(
    (token_hash, tenant, idp, created, expires, scopes): CredentialRow,
) -> Result<Credential, DirectoryError> {
    let corrupt = |what: String| DirectoryError::Unavailable(format!("stored credential: {what}"));
    Ok(Credential {
        token_hash,
        tenant: TenantId::parse(&tenant).map_err(|e| corrupt(e.to_string()))?,
        idp,
        scopes: Scope::parse_list(&scopes).map_err(|e| corrupt(e.to_string()))?,
        created_at: time(created),
        expires_at: expires.map(time),
    })
}

const CREDENTIAL_COLUMNS: &str = "token_hash, tenant_id, idp, created, expires, scopes";

fn dir_err(e: rusqlite::Error) -> DirectoryError {
    directory_error(map_err(e))
}

#[async_trait]
impl tenants::OneTimeTokens for SqliteScimStore {
    async fn redeem(
        &self,
        tenant: &TenantId,
        token_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DirectoryError> {
        let conn = self.lock().map_err(directory_error)?;
        conn.execute(
            "DELETE FROM redeemed_tokens WHERE expires < ?1",
            params![micros(now)],
        )
        .map_err(dir_err)?;
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO redeemed_tokens (tenant_id, token_id, expires) VALUES (?1, ?2, ?3)",
                params![tenant.as_str(), token_id, micros(expires_at)],
            )
            .map_err(dir_err)?;
        Ok(n == 1)
    }
}

#[async_trait]
impl RetentionSettings for SqliteScimStore {
    async fn retention(&self, tenant: &TenantId) -> Result<Option<Retention>, DirectoryError> {
        let days: Option<i64> = self
            .lock()
            .map_err(directory_error)?
            .query_row(
                "SELECT days FROM tenant_retention WHERE tenant_id = ?1",
                params![tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(dir_err)?;
        days.map(|d| {
            u32::try_from(d)
                .ok()
                .and_then(|d| Retention::days(d).ok())
                .ok_or_else(|| {
                    DirectoryError::Unavailable(format!(
                        "tenant_retention of {tenant}: {d} days is not a retention"
                    ))
                })
        })
        .transpose()
    }

    async fn put_retention(
        &self,
        tenant: &TenantId,
        retention: Retention,
    ) -> Result<(), DirectoryError> {
        self.lock()
            .map_err(directory_error)?
            .execute(
                "INSERT OR REPLACE INTO tenant_retention (tenant_id, days) VALUES (?1, ?2)",
                params![tenant.as_str(), retention.get()],
            )
            .map_err(dir_err)?;
        Ok(())
    }
}

#[async_trait]
impl TenantDirectory for SqliteScimStore {
    async fn credential(&self, token_hash: &str) -> Result<Option<Credential>, DirectoryError> {
        let row = self
            .lock()
            .map_err(directory_error)?
            .query_row(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM scim_credentials WHERE token_hash = ?1"),
                params![token_hash],
                credential_from_row,
            )
            .optional()
            .map_err(dir_err)?;
        row.map(to_credential).transpose()
    }

    async fn put_credential(&self, c: &Credential) -> Result<(), DirectoryError> {
        self.lock()
            .map_err(directory_error)?
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO scim_credentials ({CREDENTIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    c.token_hash,
                    c.tenant.as_str(),
                    c.idp,
                    micros(c.created_at),
                    c.expires_at.map(micros),
                    Scope::list(&c.scopes)
                ],
            )
            .map_err(dir_err)?;
        Ok(())
    }

    async fn revoke_credential(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<bool, DirectoryError> {
        let n = self
            .lock()
            .map_err(directory_error)?
            .execute(
                "DELETE FROM scim_credentials WHERE token_hash = ?1 AND tenant_id = ?2",
                params![token_hash, tenant.as_str()],
            )
            .map_err(dir_err)?;
        Ok(n == 1)
    }

    async fn credentials(&self, tenant: &TenantId) -> Result<Vec<Credential>, DirectoryError> {
        let conn = self.lock().map_err(directory_error)?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM scim_credentials WHERE tenant_id = ?1 ORDER BY created, token_hash"
            ))
            .map_err(dir_err)?;
        let rows = stmt
            .query_map(params![tenant.as_str()], credential_from_row)
            .map_err(dir_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(dir_err)?;
        rows.into_iter().map(to_credential).collect()
    }
}

#[async_trait]
impl PolicyStore for SqliteScimStore {
    async fn policy(&self, tenant: &TenantId) -> Result<CompatPolicy, StoreError> {
        let text: Option<String> = self
            .lock()?
            .query_row(
                "SELECT policy FROM scim_policies WHERE tenant_id = ?1",
                params![tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)?;
        match text {
            None => Ok(CompatPolicy::default()),
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| StoreError::Unavailable(format!("stored policy: {e}"))),
        }
    }

    async fn put_policy(&self, tenant: &TenantId, policy: &CompatPolicy) -> Result<(), StoreError> {
        let text =
            serde_json::to_string(policy).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.lock()?
            .execute(
                "INSERT OR REPLACE INTO scim_policies (tenant_id, policy) VALUES (?1, ?2)",
                params![tenant.as_str(), text],
            )
            .map_err(map_err)?;
        Ok(())
    }
}
