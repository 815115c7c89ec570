//! A SCIM client for tests: requests through the router with `tower::ServiceExt::oneshot`
//! (no server, the same router the Lambda and `auditlog serve` run), over the SQLite
//! store or any other `ScimStore`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::sync::Arc;

use adapters_local::SqliteScimStore;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use envelope::TenantId;
use http_body_util::BodyExt;
use scim::{Credential, RateLimit, ScimDirectory, ScimStore, router_with_limits};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ACME: &str = "acme-token";
pub const GLOBEX: &str = "globex-token";
pub const BASE_URL: &str = "https://scim.test/scim/v2";

pub struct Api<S = SqliteScimStore> {
    pub app: axum::Router,
    pub store: Arc<S>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Api {
    /// Tenants `acme` (token `ACME`, IdP entra) and `globex` (`GLOBEX`, okta) on an
    /// in-memory SQLite store.
    pub async fn two_tenants(limits: RateLimit) -> Self {
        Api::over(Arc::new(SqliteScimStore::in_memory().unwrap()), limits).await
    }
}

impl<S: ScimStore + ScimDirectory + 'static> Api<S> {
    /// The router over `store` (or an `Arc` of it), which also keeps the two tenants'
    /// credentials.
    pub async fn over(store: impl Into<Arc<S>>, limits: RateLimit) -> Self {
        let store = store.into();
        let now = chrono::Utc::now();
        for (token, tenant, idp) in [(ACME, "acme", "entra"), (GLOBEX, "globex", "okta")] {
            store
                .put_credential(&Credential::new(
                    token,
                    TenantId::parse(tenant).unwrap(),
                    idp,
                    now,
                ))
                .await
                .unwrap();
        }
        Api {
            app: router_with_limits(store.clone(), store.clone(), BASE_URL, limits),
            store,
        }
    }
}

impl<S> Api<S> {
    /// `POST` of a JSON body with a tenant's token: how most provisioning starts.
    pub async fn post(&self, uri: &str, token: &str, body: Value) -> Reply {
        self.call("POST", uri, Some(token), Some(body), &[]).await
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/scim+json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POSTs a user and returns its id.
    pub async fn create_user(&self, token: &str, name: &str) -> String {
        let r = self.post("/Users", token, user(name)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }
}

pub fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "active": true,
        "name": {"givenName": "Ada", "familyName": null},
        "emails": [{"value": name, "type": "work", "primary": true}]
    })
}

pub fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(r.body["status"], status.to_string(), "status is a string");
    match scim_type {
        Some(t) => assert_eq!(r.body["scimType"], t),
        None => assert!(r.body.get("scimType").is_none(), "{}", r.body),
    }
}
