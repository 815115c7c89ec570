//! Scheduled Lambda: publishes the SCIM outbox events that the API did not relay itself
//! (a crash between commit and publish, a bus outage). Wiring only; the relay is
//! `scim::OutboxRelay`.

use adapters_aws::{DynamoDbScimStore, EventBridgeBus};
use anyhow::Context;
use envelope::{Publisher, PublisherConfig, SchemaRegistry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use scim::OutboxRelay;
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let aws = aws_config::load_from_env().await;
    let store = DynamoDbScimStore::new(aws_sdk_dynamodb::Client::new(&aws), env("SCIM_TABLE")?);
    let publisher = Publisher::new(
        EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            env("EVENT_BUS_NAME")?,
        ),
        SchemaRegistry::builtin()?,
        PublisherConfig::default(),
    );
    let relay = OutboxRelay::new(store, publisher);
    let relay = &relay;
    run(service_fn(move |_: LambdaEvent<Value>| async move {
        let r = relay.drain(500).await?;
        tracing::info!(
            published = r.published,
            failed = r.failed,
            invalid = r.invalid,
            "outbox relayed"
        );
        Ok::<_, Error>(json!({"published": r.published, "failed": r.failed, "invalid": r.invalid}))
    }))
    .await
}
