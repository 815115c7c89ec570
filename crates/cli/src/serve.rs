//! `auditlog serve`: the SCIM API and the audit API (with its viewer) on localhost over
//! the embedded stores. The SCIM outbox and the audit API's own events go onto one
//! in-process bus that is drained into the audit log, so a client can provision
//! against it and then read, poll and export the resulting history at `/v1`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adapters_local::{Delivery, DeliveryConfig, LocalQueue, SqliteScimStore};
use anyhow::{Context, Result, bail};
use envelope::{Publisher, PublisherConfig, TenantId};
use scim::{Credential, OutboxRelay, TenantDirectory};

use crate::pipeline::open;
use crate::tenants::{SEAL_KEY_FILE, VIEWER_SECRET_FILE, secret_file};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// A bearer token for a tenant, as TOKEN=TENANT[:IDP]; repeat for more tenants.
    /// Without any, a development token is generated and printed.
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// How far behind the clock the poll stream stays (an event appears to pollers this
    /// long after it is accepted; here the subscriber runs in-process, so a few seconds).
    #[arg(long, default_value_t = 5)]
    poll_lag_secs: u64,
    /// How often accepted events are put in their tenants' transparency logs and
    /// signed (the stream and the proofs go up to the latest signed checkpoint). This
    /// process is then the logs' one writer: run no `auditlog integrate` beside it.
    #[arg(long, default_value_t = 5)]
    integrate_every_secs: u64,
    /// Origins that may embed the viewer in a frame (CSP frame-ancestors), e.g.
    /// "https://admin.example.com".
    #[arg(long, default_value = "'self' http://localhost:* http://127.0.0.1:*")]
    frame_ancestors: String,
    /// SCIM requests per second per tenant on average; past it, 429 with Retry-After.
    #[arg(long, default_value_t = scim::DEFAULT_RATE_PER_SECOND)]
    scim_rate_limit: f64,
    /// SCIM requests per tenant a burst may take at once.
    #[arg(long, default_value_t = scim::DEFAULT_BURST)]
    scim_burst: u32,
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

    // outbox and audit API -> bus -> queue -> audit subscriber, in the background
    let queue = Arc::new(LocalQueue::default());
    let bus = crate::trail::audit_bus(queue.clone())?;
    let relay = OutboxRelay::new(
        store.clone(),
        Publisher::new(bus.clone(), (*registry).clone(), PublisherConfig::default()),
    );
    let audit = audit_api::AuditApi::new(audit_api::AuditApiParts {
        blobs: embedded.blobs.clone(),
        directory: store.clone(),
        redeemed: store.clone(),
        exports: embedded.blobs.clone(),
        queue: None,
        trail: Arc::new(Publisher::new(
            bus,
            (*registry).clone(),
            PublisherConfig::default(),
        )),
        clock: Arc::new(auditlog::SystemClock),
        seal: history::SealKey::new(&secret_file(data, SEAL_KEY_FILE)?)?,
        viewer_secret: Some(secret_file(data, VIEWER_SECRET_FILE)?),
        history: history::HistoryConfig {
            poll_lag: Duration::from_secs(args.poll_lag_secs),
            ..history::HistoryConfig::default()
        },
        inline_export_bytes: audit_api::INLINE_EXPORT_BYTES,
        frame_ancestors: args.frame_ancestors.clone(),
        logs: Some(audit_api::proofs::TenantLogs {
            leaves: Arc::new(crate::trust::leaf_index(data)?),
            log_name: crate::trust::LOG_NAME.to_owned(),
        }),
    });
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

    // the integrator, as the scheduled Lambda on AWS (a run signs what it added)
    let dir = data.to_path_buf();
    let every = Duration::from_secs(args.integrate_every_secs.max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = crate::trust::integrate(&dir).await {
                tracing::error!(error = %e, "integration failed; retrying at the next run");
            }
        }
    });

    let base = format!("http://{}/scim/v2", args.listen);
    let limits = scim::RateLimit::new(args.scim_rate_limit, args.scim_burst);
    let app = scim::mounted(scim::router_with_limits(
        store.clone(),
        store,
        &base,
        limits,
    ))
    .merge(audit_api::router(audit));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("SCIM API at {base}");
    println!(
        "audit API at http://{0}/v1 (viewer: http://{0}/viewer; tokens: auditlog --data {1} tokens issue --tenant <t> --scope audit:read)",
        args.listen,
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
