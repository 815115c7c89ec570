//! The scim-api Lambda's handler without the Lambda runtime: API Gateway HTTP API (v2)
//! events in, responses out, on DynamoDB and EventBridge through moto_server. A change
//! reaches the bus within the request that made it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use adapters_aws::{DynamoDbScimStore, EventBridgeBus};
use auditlog_tests::{bus_with_audit_queue, new_scim_table, sdk_config};
use envelope::{Publisher, PublisherConfig, SchemaRegistry, TenantId};
use http_body_util::BodyExt;
use scim::{Credential, OutboxRelay, TenantDirectory};
use scim_api::ScimApi;
use serde_json::{Value, json};

fn http_api_event(method: &str, path: &str, token: &str, body: Option<Value>) -> String {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {token}"),
            "content-type": "application/scim+json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "111122223333", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "Okta SCIM Client"},
            "requestId": "req-1", "routeKey": "$default", "stage": "$default",
            "time": "22/Nov/2026:02:00:00 +0000", "timeEpoch": 1795312800000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::test]
async fn http_api_events_provision_and_the_change_reaches_the_bus() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = new_scim_table(&ddb).await;
    let store = DynamoDbScimStore::new(ddb, table);
    store
        .put_credential(&Credential::new(
            "okta-secret-123",
            TenantId::parse("acme").unwrap(),
            "okta",
            chrono::Utc::now(),
        ))
        .await
        .unwrap();
    let (bus, queue_url) = bus_with_audit_queue(&c).await;
    let publisher = Publisher::new(
        EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&c), &bus),
        SchemaRegistry::builtin().unwrap(),
        PublisherConfig::default(),
    );
    let store = std::sync::Arc::new(store);
    let api = ScimApi::new(
        store.clone(),
        OutboxRelay::new(store, publisher),
        None,
        (100.0, 200),
    );

    let call = |method: &str, path: &str, token: &str, body: Option<Value>| {
        let req =
            lambda_http::request::from_str(&http_api_event(method, path, token, body)).unwrap();
        let api = &api;
        async move {
            let res = api.handle(req).await;
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = call("GET", "/scim/v1/Users", "okta-secret-123", None).await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidVers"))
    );
    // an unknown path under the version we speak is a SCIM 404, not a version error
    for path in ["/scim/v2/Nope", "/scim/v2/Users/a/b/c", "/scim/v1"] {
        let (status, body) = call("GET", path, "okta-secret-123", None).await;
        let want = if path == "/scim/v1" { 400 } else { 404 };
        assert_eq!(status, want, "{path}: {body}");
        assert_eq!(body["status"], want.to_string(), "{path}: {body}");
    }
    let (status, body) = call(
        "GET",
        "/scim/v2/ResourceTypes/User",
        "okta-secret-123",
        None,
    )
    .await;
    assert_eq!((status, body["id"].as_str()), (200, Some("User")), "{body}");
    let (status, body) = call("GET", "/scim/v2/Users", "wrong", None).await;
    assert_eq!((status, body["status"].as_str()), (401, Some("401")));
    let (status, body) = call(
        "POST",
        "/scim/v2/Users",
        "okta-secret-123",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@acme.test", "active": true})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["meta"]["location"]
            .as_str()
            .unwrap()
            .starts_with("https://abc123.execute-api.us-east-1.amazonaws.com/scim/v2/Users/"),
        "{body}"
    );
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        "GET",
        &format!("/scim/v2/Users/{id}"),
        "okta-secret-123",
        None,
    )
    .await;
    assert_eq!(
        (status, body["userName"].as_str()),
        (200, Some("ada@acme.test"))
    );

    // the relay ran inside the POST: the event is already routed to the audit queue
    let sqs = aws_sdk_sqs::Client::new(&c);
    let msgs = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(msgs.len(), 1);
    let event: Value = serde_json::from_str(msgs[0].body().unwrap()).unwrap();
    assert_eq!(event["detail-type"], "scim.user.created");
    assert_eq!(event["detail"]["metadata"]["tenant_id"], "acme");
    assert_eq!(event["detail"]["metadata"]["actor"]["id"], "okta");
    assert_eq!(event["detail"]["payload"]["id"], id.as_str());
}
