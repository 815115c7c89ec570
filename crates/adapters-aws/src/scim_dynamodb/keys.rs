//! The table's keys (see the module doc's table): every tenant's start with
//! `T#<tenant>#`, and a `TenantId` cannot contain `#`.

use envelope::TenantId;
use scim::{OutboxEntry, Resource, ResourceKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Partition keys per group's memberships.
pub const MEMBER_SHARDS: u32 = 16;

/// Partition keys of the outbox.
pub const OUTBOX_SHARDS: u32 = 8;

/// Partition key of the dead-lettered outbox entries (few: each is a producer bug).
pub(super) const OUTBOX_DEAD_PK: &str = "OD";

pub(super) fn outbox_sk(e: &OutboxEntry) -> String {
    format!(
        "{:020}#{}",
        e.occurred_at.timestamp_micros().max(0),
        e.event_id
    )
}

pub(super) use crate::item::{n, s};

pub(super) fn shard(key: &str, shards: u32) -> u32 {
    let d = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % shards
}

pub(super) fn resource_pk(t: &TenantId, kind: ResourceKind) -> String {
    format!("T#{t}#{}", kind.name())
}

pub(super) fn unique_pk(t: &TenantId, kind: ResourceKind, name: &str) -> String {
    format!("T#{t}#{}#U#{}", kind.name(), name.to_lowercase())
}

pub(super) fn member_pk(t: &TenantId, group: &str, member: &str) -> String {
    format!("T#{t}#G#{group}#S{}", shard(member, MEMBER_SHARDS))
}

pub(super) fn reverse_pk(t: &TenantId, member: &str) -> String {
    format!("T#{t}#M#{member}")
}

pub(super) fn unique_name(r: &Resource) -> Option<String> {
    scim::filter::get_ci(&r.body, r.kind.unique_attribute())
        .and_then(Value::as_str)
        .map(str::to_owned)
}
