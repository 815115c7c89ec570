//! Wiring only: configuration from the environment, SDK clients built once, then the
//! HTTP runtime loop. See README.md beside this file.

use adapters_aws::{DynamoDbScimStore, EventBridgeBus};
use anyhow::Context;
use envelope::{Publisher, PublisherConfig, SchemaRegistry};
use lambda_http::{Error, Request, run, service_fn};
use scim::OutboxRelay;
use scim_api::ScimApi;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let table = env("SCIM_TABLE")?;
    let bus = env("EVENT_BUS_NAME")?;
    let aws = aws_config::load_from_env().await;
    let store = DynamoDbScimStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
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
            env_or("RATE_LIMIT_PER_SECOND", 100.0)?,
            env_or("RATE_LIMIT_BURST", 200)?,
        ),
    );
    let api = &api;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(api.handle(req).await)
    }))
    .await
}
