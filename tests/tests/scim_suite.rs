//! The discovery-driven SCIM conformance run (`auditlog_tests::scim_suite`) against both
//! stores: SQLite (embedded) and DynamoDB (through moto_server).

use auditlog_tests::scim_http::Api;
use auditlog_tests::scim_suite::{Report, Suite};
use auditlog_tests::sdk_config;
use envelope::TenantId;
use scim::RateLimit;
use scim::{CompatPolicy, PolicyStore};

fn assert_passes(store: &str, r: &Report) {
    assert!(
        r.failures.is_empty(),
        "{store}: {} of {} checks failed:\n  {}",
        r.failures.len(),
        r.checks,
        r.failures.join("\n  ")
    );
    // the run reached its checks: every attribute of both resource types
    assert!(r.checks > 500, "{store}: only {} checks ran", r.checks);
}

/// The suite checks RFC 7644 read literally; the IdP replays check the lenient default.
async fn strict(store: &impl PolicyStore) {
    let acme = TenantId::parse("acme").unwrap();
    store
        .put_policy(&acme, &CompatPolicy::strict())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_discovery_driven_suite_passes_on_sqlite() {
    let api = Api::two_tenants(RateLimit::new(1e9, u32::MAX)).await;
    strict(&*api.store).await;
    assert_passes("sqlite", &Suite::run(&api).await);
}

#[tokio::test]
async fn the_discovery_driven_suite_passes_on_dynamodb() {
    let c = sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = auditlog_tests::new_scim_table(&ddb).await;
    let store = adapters_aws::DynamoDbScimStore::new(ddb, table);
    let api = Api::over(store, RateLimit::new(1e9, u32::MAX)).await;
    strict(&api.store).await;
    assert_passes("dynamodb", &Suite::run(&api).await);
}
