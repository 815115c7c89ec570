//! The SCIM API Lambda's logic, runnable without the Lambda runtime: one HTTP request
//! (from API Gateway's HTTP API) through the same axum router `auditlog serve` runs, on
//! the DynamoDB store; after a request that changed something, the outbox is relayed to
//! EventBridge within the same invocation (bounded), so events reach the bus in about
//! a request's time. A scheduled `outbox-relay` function publishes whatever a crash or
//! a bus outage left behind.

use std::sync::{Arc, OnceLock};

use adapters_aws::{DynamoDbScimStore, EventBridgeBus};
use axum::body::Body;
use axum::http::{Method, Request, Response};
use scim::{OutboxRelay, RateLimit};
use tower::ServiceExt;

use scim::MOUNT;
/// Outbox entries relayed at most after one request (a large group PATCH may commit
/// more; the scheduled relay picks up the rest).
pub const RELAY_AFTER_REQUEST: usize = 500;

pub struct ScimApi {
    store: Arc<DynamoDbScimStore>,
    relay: OutboxRelay<EventBridgeBus>,
    base_url: Option<String>,
    limits: (f64, u32),
    router: OnceLock<axum::Router>,
}

impl ScimApi {
    /// `base_url` fixes `meta.location` (a custom domain); without it, the first
    /// request's Host header decides.
    pub fn new(
        store: Arc<DynamoDbScimStore>,
        relay: OutboxRelay<EventBridgeBus>,
        base_url: Option<String>,
        limits: (f64, u32),
    ) -> Self {
        Self {
            store,
            relay,
            base_url,
            limits,
            router: OnceLock::new(),
        }
    }

    fn router(&self, host: Option<&str>) -> &axum::Router {
        self.router.get_or_init(|| {
            let base = self
                .base_url
                .clone()
                .unwrap_or_else(|| format!("https://{}{MOUNT}", host.unwrap_or("localhost")));
            scim::mounted(scim::router_with_limits(
                self.store.clone(),
                self.store.clone(),
                &base,
                RateLimit::new(self.limits.0, self.limits.1),
            ))
        })
    }

    /// Serves one request. Never fails: every error is a SCIM error response.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let router = self.router(host.as_deref()).clone();
        let response = match router.oneshot(req.map(Body::new)).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        if changes && response.status().is_success() {
            // the change is committed with its events: a relay failure only delays them
            match self.relay.run_once(RELAY_AFTER_REQUEST).await {
                Ok(r) if r.failed > 0 || r.dead_lettered > 0 => {
                    tracing::warn!(
                        ?r,
                        "some outbox events were not published; the scheduled relay retries"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay failed; the scheduled relay retries")
                }
            }
        }
        response
    }
}
