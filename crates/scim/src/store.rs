//! The `ScimStore` port: what the SCIM service needs from storage, shaped so that no
//! operation ever reads or writes a whole member list.
//!
//! One record per user, per group, and per membership (group, member), plus the reverse
//! index (member → groups) for `User.groups`. Every write carries the outbox entries of
//! the events it causes and commits them in the same transaction, so a committed change
//! always produces its bus event even if the process dies right after the commit; a
//! relay publishes the outbox and acknowledges what was accepted.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use envelope::{Actor, EventId, TenantId};
use serde_json::Value;

use crate::kind::ResourceKind;

/// A stored user or group: its own attributes only (no `id`, `meta`, `members`,
/// `groups`: those are derived or kept apart).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: String,
    pub kind: ResourceKind,
    /// Incremented by every write; rendered as the weak ETag `W/"<version>"`.
    pub version: u64,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub body: Value,
}

/// Attributes unique per tenant and kind, looked up by index rather than by scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueAttr {
    /// `userName`, compared case-insensitively (RFC 7643 §4.1.1).
    UserName,
    /// A group's `displayName` (case-insensitive).
    DisplayName,
}

/// An event to publish, committed with the change that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub payload: Value,
}

/// An outbox entry as stored, with the receipt that acknowledges it (opaque: a row
/// number in SQLite, a key in DynamoDB).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub receipt: String,
    pub entry: OutboxEntry,
}

/// An outbox entry that can never be published (it fails its own event schema: a bug
/// in the producer), moved aside with the reason so the rest of the outbox flows on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub entry: OutboxEntry,
    pub reason: String,
    pub dead_lettered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique attribute (userName, a group's displayName) is taken: 409 uniqueness.
    #[error("{attr} {value:?} is already used by another resource")]
    Uniqueness { attr: &'static str, value: String },
    /// The resource changed since it was read: the caller re-reads and retries, or
    /// answers 412 when the client sent If-Match.
    #[error("resource version changed (expected {expected})")]
    VersionMismatch { expected: u64 },
    #[error("store throttled: {0}")]
    Throttled(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The resource is over what the store can hold (DynamoDB: 400 KB an item): 413.
    #[error("too large for the store: {0}")]
    TooLarge(String),
    /// A value the store cannot take, such as one too long to be a key: 400.
    #[error("a value the store cannot take: {0}")]
    Invalid(String),
}

/// Each id once, in order: what `get_many` implementations read.
pub fn distinct(ids: &[String]) -> Vec<&String> {
    let mut unique: Vec<&String> = ids.iter().collect();
    unique.sort_unstable();
    unique.dedup();
    unique
}

/// Builds the event for one membership change (member id in, entry out).
pub type MemberEvent<'a> = &'a (dyn Fn(&str) -> OutboxEntry + Send + Sync);

#[async_trait]
pub trait ScimStore: Send + Sync {
    /// Creates a resource; fails with `Uniqueness` if its unique attribute is taken.
    async fn create(
        &self,
        tenant: &TenantId,
        resource: &Resource,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError>;

    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Resource, StoreError>;

    /// The resources of `kind` among `ids` that exist, in any order. Stores that can
    /// batch reads override this (DynamoDB: one BatchGetItem per 100 ids).
    async fn get_many(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        ids: &[String],
    ) -> Result<Vec<Resource>, StoreError> {
        let unique = distinct(ids);
        let mut out = Vec::with_capacity(unique.len());
        for id in unique {
            match self.get(tenant, kind, id).await {
                Ok(r) => out.push(r),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn find_unique(
        &self,
        tenant: &TenantId,
        attr: UniqueAttr,
        value: &str,
    ) -> Result<Option<Resource>, StoreError>;

    /// Replaces a resource if its stored version is still `expected_version`; the new
    /// record's `version` must be greater.
    async fn update(
        &self,
        tenant: &TenantId,
        resource: &Resource,
        expected_version: u64,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError>;

    /// Deletes a resource (and, for a group, its memberships; for a user, theirs).
    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        events: &[OutboxEntry],
    ) -> Result<(), StoreError>;

    /// Finishes the delete of a resource that is gone: memberships a delete left behind
    /// when it stopped between the resource and them (a store that deletes both in one
    /// transaction leaves none). Touches nothing while the resource exists.
    async fn delete_leftovers(
        &self,
        _tenant: &TenantId,
        _kind: ResourceKind,
        _id: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Resources of a kind ordered by id, after `after`, at most `limit`.
    async fn list(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Resource>, StoreError>;

    /// Adds members to a group; adding an existing member is a no-op. Returns the ids
    /// actually added, each with its event committed. Costs O(members named).
    async fn add_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError>;

    /// Removes members; removing a non-member is a no-op. Returns the ids removed.
    async fn remove_members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        members: &[String],
        event: MemberEvent<'_>,
    ) -> Result<Vec<String>, StoreError>;

    /// A page of a group's member ids, ordered, after `after`.
    async fn members(
        &self,
        tenant: &TenantId,
        group_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// The groups a member belongs to (the reverse index).
    async fn groups_of(
        &self,
        tenant: &TenantId,
        member_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Outbox entries not yet acknowledged, of every tenant, oldest first (by commit
    /// order where the store has one, by occurred_at otherwise).
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>, StoreError>;

    /// Acknowledges published entries; unknown receipts are ignored.
    async fn outbox_ack(&self, receipts: &[String]) -> Result<(), StoreError>;

    /// Moves entries that can never be published out of the outbox, each with its
    /// reason, atomically per entry: it is pending or dead-lettered, never neither.
    async fn outbox_dead_letter(
        &self,
        entries: &[(PendingEvent, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Dead-lettered entries, oldest first (to inspect, count and alarm on).
    async fn outbox_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;
}
