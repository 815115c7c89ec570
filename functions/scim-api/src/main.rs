//! Wiring only: configuration from the environment, SDK clients built once, then the
//! HTTP runtime loop. See README.md beside this file.

use adapters_aws::{DynamoDbScimStore, EventBridgeBus};
use envelope::{Publisher, PublisherConfig, SchemaRegistry};
use lambda_http::{Error, Request, run, service_fn};
use scim::OutboxRelay;
use scim_api::ScimApi;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let table = lambda_env::var("SCIM_TABLE")?;
    let bus = lambda_env::var("EVENT_BUS_NAME")?;
    let aws = aws_config::load_from_env().await;
    let store = std::sync::Arc::new(DynamoDbScimStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        table,
    ));
    let publisher = Publisher::new(
        EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&aws), bus),
        SchemaRegistry::builtin()?,
        PublisherConfig::default(),
    );
    let api = ScimApi::new(
        store.clone(),
        OutboxRelay::new(store, publisher),
        std::env::var("SCIM_BASE_URL").ok(),
        (
            lambda_env::var_or("RATE_LIMIT_PER_SECOND", scim::DEFAULT_RATE_PER_SECOND)?,
            lambda_env::var_or("RATE_LIMIT_BURST", scim::DEFAULT_BURST)?,
        ),
    );
    let api = &api;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(api.handle(req).await)
    }))
    .await
}
