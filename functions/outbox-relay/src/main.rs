//! Wiring only: the SCIM table and the bus from the environment, then the runtime loop
//! around `outbox_relay::handle`. See README.md beside this file.

use adapters_aws::{DynamoDbScimStore, EventBridgeBus};
use envelope::{Publisher, PublisherConfig, SchemaRegistry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use scim::OutboxRelay;
use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let aws = aws_config::load_from_env().await;
    let store = DynamoDbScimStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        lambda_env::var("SCIM_TABLE")?,
    );
    let publisher = Publisher::new(
        EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            lambda_env::var("EVENT_BUS_NAME")?,
        ),
        SchemaRegistry::builtin()?,
        PublisherConfig::default(),
    );
    let relay = OutboxRelay::new(std::sync::Arc::new(store), publisher);
    let relay = &relay;
    run(service_fn(move |_: LambdaEvent<Value>| async move {
        Ok::<_, Error>(outbox_relay::handle(relay).await?)
    }))
    .await
}
