//! The DynamoDB SCIM store under throttling it cannot retry away at once: batch writes
//! answered with every item unprocessed, as DynamoDB answers a throttled partition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use auditlog_tests::{ThrottlingHttpClient, dynamodb_client_with, new_scim_table, sdk_config};
use envelope::{EventId, TenantId};
use scim::{OutboxEntry, Resource, ResourceKind, ScimStore, StoreError};
use serde_json::json;

fn group(id: &str) -> Resource {
    let now = chrono::Utc::now();
    Resource {
        id: id.into(),
        kind: ResourceKind::Group,
        version: 1,
        created: now,
        last_modified: now,
        body: json!({"displayName": id}),
    }
}

/// A group of 60 members on a store whose client answers `unprocessed` batch writes
/// with everything unprocessed.
async fn store_with(unprocessed: usize) -> (adapters_aws::DynamoDbScimStore, ThrottlingHttpClient) {
    let c = sdk_config().await;
    let table = new_scim_table(&aws_sdk_dynamodb::Client::new(&c)).await;
    let http = ThrottlingHttpClient::unprocessed_batch_writes(unprocessed);
    let store = adapters_aws::DynamoDbScimStore::new(dynamodb_client_with(&c, http.clone()), table);
    let acme = TenantId::parse("acme").unwrap();
    store.create(&acme, &group("g1"), &[]).await.unwrap();
    let members: Vec<String> = (0..60).map(|i| format!("m{i:03}")).collect();
    let event = |m: &str| OutboxEntry {
        event_id: EventId::new_v7(),
        tenant_id: acme.clone(),
        event_type: "scim.group.member_added".into(),
        occurred_at: chrono::Utc::now(),
        actor: envelope::Actor {
            kind: envelope::ActorType::Idp,
            id: "okta".into(),
            name: None,
        },
        payload: json!({"member": m}),
    };
    store
        .add_members(&acme, "g1", &members, &event)
        .await
        .unwrap();
    (store, http)
}

#[tokio::test]
async fn unprocessed_deletes_are_retried_with_backoff_until_they_go_through() {
    let acme = TenantId::parse("acme").unwrap();
    let (store, http) = store_with(4).await;
    store
        .delete(&acme, ResourceKind::Group, "g1", None, &[])
        .await
        .unwrap();
    assert_eq!(http.left(), 0, "the store met every unprocessed answer");
    assert!(store.groups_of(&acme, "m007").await.unwrap().is_empty());
}

#[tokio::test]
async fn deletes_that_stay_unprocessed_end_as_a_retryable_error_not_a_spin() {
    let acme = TenantId::parse("acme").unwrap();
    let (store, http) = store_with(usize::MAX).await;
    let started = std::time::Instant::now();
    let e = store
        .delete(&acme, ResourceKind::Group, "g1", None, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Throttled(_)), "{e}");
    let tries = usize::MAX - http.left();
    assert_eq!(tries, 12, "a bounded number of tries");
    // the backoff waited between them (jittered: at least some of its 20 ms..2.56 s)
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
}
