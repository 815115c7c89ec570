//! What the SCIM stores cannot hold, answered alike on both: values too long to be keys
//! and resources too large for an item are 400 and 413, never a 503 an IdP retries
//! forever. And the DynamoDB store under throttling it cannot retry away at once: batch
//! writes answered with every item unprocessed, as DynamoDB answers a throttled table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use auditlog_tests::scim_http::{ACME, Api, assert_scim_error, user};
use auditlog_tests::{ThrottlingHttpClient, dynamodb_client_with, new_scim_table, sdk_config};
use axum::http::StatusCode;
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
async fn store_with(
    unprocessed: usize,
) -> (
    adapters_aws::DynamoDbScimStore,
    ThrottlingHttpClient,
    String,
) {
    let c = sdk_config().await;
    let table = new_scim_table(&aws_sdk_dynamodb::Client::new(&c)).await;
    let http = ThrottlingHttpClient::unprocessed_batch_writes(unprocessed);
    let store =
        adapters_aws::DynamoDbScimStore::new(dynamodb_client_with(&c, http.clone()), &table);
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
    (store, http, table)
}

#[tokio::test]
async fn unprocessed_deletes_are_retried_with_backoff_until_they_go_through() {
    let acme = TenantId::parse("acme").unwrap();
    let (store, http, _) = store_with(4).await;
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
    let (store, http, table) = store_with(usize::MAX).await;
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
    // the resource went first, its memberships did not: like a crash between the two.
    // The IdP's retried DELETE answers 404 and finishes the cleanup.
    assert_eq!(store.groups_of(&acme, "m007").await.unwrap(), ["g1"]);
    let healthy = adapters_aws::DynamoDbScimStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config().await),
        table,
    );
    let api = Api::over(healthy.clone(), scim::RateLimit::default()).await;
    let again = api
        .call("DELETE", "/Groups/g1", Some(ACME), None, &[])
        .await;
    assert_scim_error(&again, 404, None);
    assert!(healthy.groups_of(&acme, "m007").await.unwrap().is_empty());
    assert!(
        healthy
            .members(&acme, "g1", None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn values_over_the_limits_are_the_clients_fault<S>(api: &Api<S>) {
    let long = format!("{}@acme.test", "a".repeat(600));
    // writes naming one: 400, or 413 for a resource too large
    assert_scim_error(
        &api.post("/Users", ACME, user(&long)).await,
        400,
        Some("invalidValue"),
    );
    let mut big = user("big@acme.test");
    big["title"] = json!("x".repeat(300 * 1024));
    assert_scim_error(&api.post("/Users", ACME, big).await, 413, None);
    let id = api.create_user(ACME, "ada@acme.test").await;
    let grow = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "title", "value": "y".repeat(300 * 1024)}]
    });
    let r = api
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(ACME),
            Some(grow),
            &[],
        )
        .await;
    assert_scim_error(&r, 413, None);
    let rename = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": long}]
    });
    let r = api
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(ACME),
            Some(rename),
            &[],
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    // reads naming one find nothing: no such id or name was ever written
    let filter = format!("/Users?filter=userName%20eq%20%22{long}%22");
    let r = api.call("GET", &filter, Some(ACME), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 0);
    let r = api
        .call(
            "GET",
            &format!("/Users/{}", "b".repeat(3000)),
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_scim_error(&r, 404, None);
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Ops",
        "members": [{"value": "c".repeat(3000)}]
    });
    assert_scim_error(
        &api.post("/Groups", ACME, group).await,
        400,
        Some("invalidValue"),
    );
    // nothing of it was kept: the user is as it was
    let r = api
        .call("GET", &format!("/Users/{id}"), Some(ACME), None, &[])
        .await;
    assert_eq!(r.body["userName"], "ada@acme.test");
    assert!(r.body.get("title").is_none());
}

#[tokio::test]
async fn values_over_the_limits_are_400_or_413_on_sqlite() {
    let api = Api::two_tenants(scim::RateLimit::default()).await;
    values_over_the_limits_are_the_clients_fault(&api).await;
}

#[tokio::test]
async fn values_over_the_limits_are_400_or_413_on_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_scim_table(&ddb).await;
    let store = adapters_aws::DynamoDbScimStore::new(ddb, table).with_concurrency(1);
    let api = Api::over(store.clone(), scim::RateLimit::default()).await;
    values_over_the_limits_are_the_clients_fault(&api).await;
    // and the store's own answer, for a path that reached the table with one anyway
    let acme = TenantId::parse("acme").unwrap();
    let mut r = group("huge");
    r.body["description"] = json!("z".repeat(420 * 1024));
    let e = store.create(&acme, &r, &[]).await.unwrap_err();
    assert!(matches!(e, StoreError::TooLarge(_)), "{e}");
    let e = store
        .get(&acme, ResourceKind::User, &"d".repeat(3000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(_) | StoreError::NotFound),
        "{e}"
    );
}

/// A filter the store has no index for scans, and one naming `groups` reads each
/// scanned user's groups: past the service's limits either answers 400 `tooMany`,
/// never an unbounded read.
#[tokio::test]
async fn filters_past_their_scan_limits_answer_too_many() {
    use scim::{Caller, ListQuery, ScanLimits, ScimService, Shape};
    let store = std::sync::Arc::new(adapters_local::SqliteScimStore::in_memory().unwrap());
    let limits = ScanLimits {
        resources: 30,
        group_lookups: 10,
    };
    let service =
        ScimService::new(store.clone(), "https://scim.test/scim/v2").with_scan_limits(limits);
    let caller = Caller {
        tenant: TenantId::parse("acme").unwrap(),
        actor: envelope::Actor {
            kind: envelope::ActorType::Idp,
            id: "okta".into(),
            name: None,
        },
        policy: scim::CompatPolicy::default(),
    };
    let (ops, _) = service
        .create(&caller, ResourceKind::Group, json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops"}), &Shape::default())
        .await
        .unwrap();
    let ops = ops["id"].as_str().unwrap().to_owned();
    let list = |filter: String| {
        let (service, caller) = (&service, &caller);
        async move {
            let q = ListQuery {
                filter: Some(filter),
                ..ListQuery::default()
            };
            service
                .list(caller, ResourceKind::User, &q, &Shape::default())
                .await
        }
    };
    let in_ops = format!("groups[value eq \"{ops}\"]");
    for n in 0..31 {
        let (u, _) = service
            .create(
                &caller,
                ResourceKind::User,
                user(&format!("u{n:02}@acme.test")),
                &Shape::default(),
            )
            .await
            .unwrap();
        if n < 3 {
            let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": u["id"]}]}]});
            let request = scim::service::parse_patch(add).unwrap();
            service
                .patch(
                    &caller,
                    ResourceKind::Group,
                    &ops,
                    &request,
                    None,
                    &Shape::default(),
                )
                .await
                .unwrap();
        }
        match n {
            // within both limits: the right answer
            9 => {
                let r = list(in_ops.clone()).await.unwrap();
                assert_eq!(r["totalResults"], 3, "{r}");
            }
            // more users than group lookups allowed
            10 => {
                let e = list(in_ops.clone()).await.unwrap_err();
                assert_eq!(
                    (e.status, e.scim_type),
                    (400, Some("tooMany")),
                    "{}",
                    e.detail
                );
                let r = list("active eq true".into()).await.unwrap();
                assert_eq!(r["totalResults"], 11);
            }
            // more users than a scan may read
            30 => {
                let e = list("active eq true".into()).await.unwrap_err();
                assert_eq!(
                    (e.status, e.scim_type),
                    (400, Some("tooMany")),
                    "{}",
                    e.detail
                );
                // the unique index still answers at any size
                let r = list("userName eq \"u07@acme.test\"".into()).await.unwrap();
                assert_eq!(r["totalResults"], 1);
            }
            _ => {}
        }
    }
}
