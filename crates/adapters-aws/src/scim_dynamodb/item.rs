//! The SCIM store's items to and from the attribute maps DynamoDB stores, each decoded
//! through `crate::item::Item` (a missing or malformed field names the item and field).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use envelope::{EventId, TenantId};
use scim::{DeadLetter, OutboxEntry, Resource, ResourceKind, StoreError};

pub(super) use crate::item::Item;
use crate::item::{n, s};

pub(super) fn outbox_item(
    pk: String,
    sk: String,
    e: &OutboxEntry,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let actor =
        serde_json::to_string(&e.actor).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(HashMap::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        ("tenant_id".to_owned(), s(e.tenant_id.as_str())),
        ("event_id".to_owned(), s(e.event_id.as_str())),
        ("event_type".to_owned(), s(&e.event_type)),
        (
            "occurred_at".to_owned(),
            n(e.occurred_at.timestamp_micros()),
        ),
        ("actor".to_owned(), s(actor)),
        ("payload".to_owned(), s(e.payload.to_string())),
    ]))
}

pub(super) fn outbox_entry(
    fields: &HashMap<String, AttributeValue>,
) -> Result<OutboxEntry, StoreError> {
    let item = Item::new("outbox", fields);
    let invalid = |field: &str| item.corrupt(field, "is invalid");
    Ok(OutboxEntry {
        event_id: EventId::parse(item.text("event_id")?).map_err(|_| invalid("event_id"))?,
        tenant_id: TenantId::parse(item.text("tenant_id")?).map_err(|_| invalid("tenant_id"))?,
        event_type: item.text("event_type")?.to_owned(),
        occurred_at: item.time("occurred_at")?,
        actor: item.json("actor")?,
        payload: item.json("payload")?,
    })
}

/// A user or group.
pub(super) fn resource(
    kind: ResourceKind,
    fields: &HashMap<String, AttributeValue>,
) -> Result<Resource, StoreError> {
    let item = Item::new("resource", fields);
    Ok(Resource {
        id: item.text("id")?.to_owned(),
        kind,
        version: u64::try_from(item.number("version")?)
            .map_err(|_| item.corrupt("version", "is negative"))?,
        created: item.time("created")?,
        last_modified: item.time("last_modified")?,
        body: item.json("body")?,
    })
}

/// A dead-lettered outbox entry, with why and when.
pub(super) fn dead_letter(
    fields: &HashMap<String, AttributeValue>,
) -> Result<DeadLetter, StoreError> {
    let item = Item::new("dead letter", fields);
    Ok(DeadLetter {
        entry: outbox_entry(fields)?,
        reason: item.text("reason")?.to_owned(),
        dead_lettered_at: item.time("dead_lettered_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use envelope::{Actor, ActorType};

    fn entry() -> OutboxEntry {
        OutboxEntry {
            event_id: EventId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap(),
            tenant_id: TenantId::parse("acme").unwrap(),
            event_type: "scim.user.created".into(),
            occurred_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            actor: Actor {
                kind: ActorType::Idp,
                id: "entra".into(),
                name: None,
            },
            payload: serde_json::json!({"id": "u1"}),
        }
    }

    #[test]
    fn an_outbox_entry_reads_back_as_written() {
        let item = outbox_item("O#1".into(), "sk".into(), &entry()).unwrap();
        assert_eq!(outbox_entry(&item).unwrap(), entry());
    }

    #[test]
    fn a_missing_or_malformed_field_is_a_corrupt_item_named_never_a_default() {
        let full = HashMap::from([
            ("id".to_owned(), s("u1")),
            ("version".to_owned(), n(3)),
            ("created".to_owned(), n(1)),
            ("last_modified".to_owned(), n(2)),
            ("body".to_owned(), s("{\"userName\":\"ada\"}")),
        ]);
        let r = resource(ResourceKind::User, &full).unwrap();
        assert_eq!((r.id.as_str(), r.version), ("u1", 3));
        for field in ["id", "version", "created", "last_modified", "body"] {
            let mut item = full.clone();
            item.remove(field);
            let e = resource(ResourceKind::User, &item).unwrap_err();
            assert!(
                e.to_string().contains(&format!("resource item: {field}")),
                "{e}"
            );
        }
        let mut bad = full.clone();
        bad.insert("body".into(), s("{not json"));
        assert!(resource(ResourceKind::User, &bad).is_err());
        let mut item = outbox_item("O#1".into(), "sk".into(), &entry()).unwrap();
        item.remove("reason");
        assert!(
            dead_letter(&item)
                .unwrap_err()
                .to_string()
                .contains("dead letter item: reason")
        );
    }
}
