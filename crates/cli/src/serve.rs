//! `auditlog serve`: the SCIM API on localhost over the embedded store, with its outbox
//! relayed to the in-process bus and the bus drained into the audit log, so that a
//! client can provision against it and then read the audit records with `show`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adapters_local::{Delivery, DeliveryConfig, InProcessBus, LocalQueue, SqliteScimStore};
use anyhow::{Context, Result, bail};
use envelope::pattern::EventPattern;
use envelope::{Publisher, PublisherConfig, TenantId};
use scim::{Credential, OutboxRelay, TenantDirectory};

use crate::pipeline::open;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A bearer token for a tenant, as TOKEN=TENANT[:IDP]; repeat for more tenants.
    /// Without any, a development token is generated and printed.
    #[arg(long = "token")]
    tokens: Vec<String>,
}

fn parse_token(spec: &str) -> Result<(String, TenantId, String)> {
    let (token, rest) = spec
        .split_once('=')
        .context("--token takes TOKEN=TENANT[:IDP]")?;
    let (tenant, idp) = rest.split_once(':').unwrap_or((rest, "idp"));
    if token.len() < 8 {
        bail!("--token: a token needs at least 8 characters");
    }
    let tenant = TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("--token: {e}"))?;
    Ok((token.to_owned(), tenant, idp.to_owned()))
}

pub async fn serve(data: &Path, schemas: Option<&Path>, args: ServeArgs) -> Result<()> {
    // the audit log's stores and subscriber, exactly as `demo` and `ingest` use them
    let embedded = open(data, schemas)?;
    // tokens live hashed in the SCIM store (`auditlog tokens` manages them); --token
    // adds one for this run's convenience
    let store = Arc::new(SqliteScimStore::open(&data.join("scim.sqlite"))?);
    let now = chrono::Utc::now();
    for spec in &args.tokens {
        let (token, tenant, idp) = parse_token(spec)?;
        store
            .put_credential(&Credential::new(&token, tenant, &idp, now))
            .await?;
    }
    if args.tokens.is_empty() {
        let dev = TenantId::parse("dev")?;
        if store.credentials(&dev).await?.is_empty() {
            let token = scim::tenants::new_token();
            store
                .put_credential(&Credential::new(&token, dev, "dev-idp", now))
                .await?;
            println!("development token for tenant `dev` (stored hashed; keep it): {token}");
        }
    }
    let registry = embedded.registry;

    // outbox -> bus -> queue -> audit subscriber, in the background
    let queue = Arc::new(LocalQueue::default());
    let mut bus = InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
    bus.add_rule(
        EventPattern::parse(r#"{"account": [{"exists": true}]}"#)?,
        queue.clone(),
    );
    let relay = OutboxRelay::new(
        store.clone(),
        Publisher::new(bus, (*registry).clone(), PublisherConfig::default()),
    );
    let subscriber = embedded.subscriber;
    // the audit queue's redrive policy: five receives, then the dead-letter queue
    let delivery = Delivery::new(
        queue,
        DeliveryConfig {
            max_receives: 5,
            redelivery_delay: Duration::from_secs(1),
            ..DeliveryConfig::default()
        },
    );
    tokio::spawn(async move {
        loop {
            if let Err(e) = relay.drain(500).await {
                tracing::warn!(error = %e, "outbox relay failed; retrying");
            }
            while let Some((_, report)) = delivery.deliver_once(subscriber.as_ref()).await {
                if report.dead_lettered > 0 {
                    tracing::error!(
                        messages = report.dead_lettered,
                        "audit messages failed five times and went to the dead-letter queue"
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let base = format!("http://{}/scim/v2", args.listen);
    let app = scim::mounted(scim::router(store.clone(), store, &base));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!(
        "SCIM API at {base} (audit records: auditlog --data {} show --tenant <t>)",
        data.display()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}
