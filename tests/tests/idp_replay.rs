//! The IdP conversations in tests/fixtures/idp replayed against both SCIM stores:
//! SQLite (embedded) and DynamoDB (through moto_server), asserting every answer and the
//! stored state after each step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use auditlog_tests::idp_replay::replay;
use auditlog_tests::scim_http::Api;
use auditlog_tests::sdk_config;
use scim::RateLimit;

const FIXTURES: &[&str] = &[
    "entra.json",
    "okta.json",
    "onelogin.json",
    "jumpcloud.json",
    "rippling.json",
];

#[tokio::test]
async fn every_idp_fixture_replays_on_sqlite() {
    for f in FIXTURES {
        let api = Api::two_tenants(RateLimit::default()).await;
        assert!(replay(&api, f).await > 5, "{f} has steps");
    }
}

#[tokio::test]
async fn every_idp_fixture_replays_on_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    for f in FIXTURES {
        let table = auditlog_tests::new_scim_table(&ddb).await;
        let store = adapters_aws::DynamoDbScimStore::new(ddb.clone(), table).with_concurrency(1);
        let api = Api::over(store, RateLimit::default()).await;
        assert!(replay(&api, f).await > 5, "{f} has steps");
    }
}
