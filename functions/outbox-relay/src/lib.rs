//! The outbox-relay Lambda's handler: one scheduled run publishes what the SCIM API did
//! not relay itself (a crash between commit and publish, a bus outage) and moves events
//! that can never be published to the outbox's dead letters. `main.rs` is wiring only.

use envelope::EventBus;
use scim::{OutboxRelay, RelayError, RelayReport};

/// Pending events read per round; the relay keeps going while rounds make progress.
pub const BATCH: usize = 500;

/// One scheduled invocation; its report is the function's JSON result. (The relay logs
/// the `outbox_dead_lettered` line the template's metric filter counts.)
pub async fn handle<B: EventBus>(relay: &OutboxRelay<B>) -> Result<RelayReport, RelayError> {
    let r = relay.drain(BATCH).await?;
    tracing::info!(
        published = r.published,
        failed = r.failed,
        dead_lettered = r.dead_lettered,
        "outbox relayed"
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use adapters_local::{InProcessBus, LocalQueue, SqliteScimStore};
    use envelope::pattern::EventPattern;
    use envelope::{
        Actor, ActorType, EventId, Publisher, PublisherConfig, SchemaRegistry, TenantId,
    };
    use scim::{OutboxEntry, Resource, ResourceKind, ScimStore};
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn publishes_the_valid_events_and_dead_letters_the_rest() {
        let store = Arc::new(SqliteScimStore::in_memory().unwrap());
        let tenant = TenantId::parse("acme").unwrap();
        let now = chrono::Utc::now();
        for (i, payload) in [
            json!({"id": "u0", "active": 3}),
            json!({"id": "u1", "userName": "ada@acme.test"}),
        ]
        .into_iter()
        .enumerate()
        {
            let r = Resource {
                id: format!("u{i}"),
                kind: ResourceKind::User,
                version: 1,
                created: now,
                last_modified: now,
                body: json!({"userName": format!("u{i}@acme.test")}),
            };
            let e = OutboxEntry {
                event_id: EventId::new_v7(),
                tenant_id: tenant.clone(),
                event_type: "scim.user.created".into(),
                occurred_at: now,
                actor: Actor {
                    kind: ActorType::Idp,
                    id: "okta".into(),
                    name: None,
                },
                payload,
            };
            store.create(&tenant, &r, &[e]).await.unwrap();
        }
        let queue = Arc::new(LocalQueue::default());
        let mut bus = InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
        bus.add_rule(
            EventPattern::parse(r#"{"account": [{"exists": true}]}"#).unwrap(),
            queue.clone(),
        );
        let publisher = Publisher::new(
            bus,
            SchemaRegistry::builtin().unwrap(),
            PublisherConfig::default(),
        );
        let relay = OutboxRelay::new(store.clone(), publisher);
        let report = handle(&relay).await.unwrap();
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            json!({"published": 1, "failed": 0, "dead_lettered": 1})
        );
        assert_eq!(queue.len(), 1);
        let dead = store.outbox_dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].reason.contains("/active"), "{}", dead[0].reason);
    }
}
