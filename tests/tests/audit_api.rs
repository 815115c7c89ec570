//! The audit API through HTTP: the same suite on the embedded stores and on S3 and
//! DynamoDB (moto). Tenant isolation is tested the way an attacker would try it: with
//! one tenant's token and the other tenant's ids, cursors, checkpoints and export ids.

use std::sync::Arc;

use adapters_local::{LocalDirBlobStore, SqliteScimStore};
use auditlog_tests::audit_http::{
    ACME_EXPORT, ACME_READ, ACME_SCIM, AuditHarness, GLOBEX_ALL, at, eid, names, record,
};
use axum::http::StatusCode;
use serde_json::json;

async fn embedded(dir: &std::path::Path, inline_export_bytes: u64) -> AuditHarness {
    let blobs = Arc::new(LocalDirBlobStore::open(dir.join("data")).unwrap());
    let directory = Arc::new(SqliteScimStore::open(&dir.join("scim.sqlite")).unwrap());
    AuditHarness::over(
        blobs.clone(),
        directory.clone(),
        directory,
        blobs,
        inline_export_bytes,
    )
    .await
}

/// Everything below, in order, on one harness.
pub async fn suite(h: &AuditHarness) {
    h.seed().await;
    authentication(h).await;
    listing_and_paging(h).await;
    filters(h).await;
    one_event(h).await;
    polling(h).await;
    exports(h).await;
    viewer_sessions(h).await;
    isolation(h).await;
    reads_are_audited(h).await;
}

async fn authentication(h: &AuditHarness) {
    let r = h.get("/v1/events", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "unauthorized");
    assert!(r.headers.contains_key("www-authenticate"));
    let r = h.get("/v1/events", Some("audit_not_a_token")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // an IdP's SCIM token is not an audit token
    let r = h.get("/v1/events", Some(ACME_SCIM)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // a read token cannot export
    let r = h
        .post("/v1/exports", Some(ACME_READ), json!({"format": "csv"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = h.get("/v1/nothing-here", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn listing_and_paging(h: &AuditHarness) {
    let r = h.get("/v1/events", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(names(&r.body), ["a-5", "a-4", "a-3", "a-2", "a-1"]);
    assert!(r.body["next"].is_null());
    // the list leaves payloads out; one event has it
    assert!(r.body["events"][0].get("payload").is_none());

    // two at a time, by the cursor in the body and by the Link header
    let r1 = h.get("/v1/events?limit=2", Some(ACME_READ)).await;
    assert_eq!(names(&r1.body), ["a-5", "a-4"]);
    let link = r1.headers["link"].to_str().unwrap().to_owned();
    assert!(link.ends_with("rel=\"next\""), "{link}");
    let next_uri = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let r2 = h.get(&next_uri, Some(ACME_READ)).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.text);
    assert_eq!(names(&r2.body), ["a-3", "a-2"]);
    let cursor = r2.body["next"].as_str().unwrap();
    let r3 = h
        .get(
            &format!("/v1/events?limit=2&cursor={cursor}"),
            Some(ACME_READ),
        )
        .await;
    assert_eq!(names(&r3.body), ["a-1"]);
    assert!(r3.body["next"].is_null());

    for bad in [
        "/v1/events?limit=0",
        "/v1/events?limit=1001",
        "/v1/events?limit=ten",
        "/v1/events?tenant=globex",
        "/v1/events?from=last-week",
        "/v1/events?cursor=c1.garbage.here",
    ] {
        let r = h.get(bad, Some(ACME_READ)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().len() > 10);
    }
}

async fn filters(h: &AuditHarness) {
    let r = h.get("/v1/events?actor=user:u-ada", Some(ACME_READ)).await;
    assert_eq!(names(&r.body), ["a-5", "a-3", "a-1"]);
    let r = h
        .get(
            "/v1/events?from=2026-11-21&to=2026-11-22T00:00:15Z",
            Some(ACME_READ),
        )
        .await;
    assert_eq!(names(&r.body), ["a-5", "a-4", "a-3"]);
    let r = h
        .get(
            "/v1/events?event_type=app.document.*&q=BOB",
            Some(ACME_READ),
        )
        .await;
    assert_eq!(names(&r.body), ["a-4", "a-2"]);
    let target = "/v1/events?target=document:doc-a-3";
    assert_eq!(names(&h.get(target, Some(ACME_READ)).await.body), ["a-3"]);
    let r = h.get("/v1/events?outcome=failure", Some(ACME_READ)).await;
    assert!(names(&r.body).is_empty());
    // a cursor continues only its own query
    let r = h
        .get("/v1/events?limit=1&actor=u-ada", Some(ACME_READ))
        .await;
    let cursor = r.body["next"].as_str().unwrap();
    let r = h
        .get(
            &format!("/v1/events?limit=1&actor=u-bob&cursor={cursor}"),
            Some(ACME_READ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "invalid_cursor");
}

async fn one_event(h: &AuditHarness) {
    let r = h
        .get(&format!("/v1/events/{}", eid("a-3")), Some(ACME_READ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["payload"]["name"], "a-3");
    assert_eq!(r.body["actor"]["id"], "u-ada");
    let r = h.get("/v1/events/not-an-event", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn polling(h: &AuditHarness) {
    // only what the tenant's signed log covers: the 20th's, not the ingest tier's yet
    let r = h.get("/v1/events/stream", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(names(&r.body), ["a-1", "a-2"], "{}", r.text);
    assert_eq!(r.body["tree_size"], 2);
    h.integrate().await;
    // from the beginning, in log order (the order accepted), in pages of 2, each event
    // with its index in the log
    let mut got = Vec::new();
    let mut leaf_indexes = Vec::new();
    let mut uri = "/v1/events/stream?limit=2".to_owned();
    for _ in 0..10 {
        let r = h.get(&uri, Some(ACME_READ)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = names(&r.body);
        let next = r.body["next"].as_str().unwrap().to_owned();
        uri = format!("/v1/events/stream?limit=2&after={next}");
        if page.is_empty() {
            break;
        }
        got.extend(page);
        leaf_indexes.extend(
            r.body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["leaf_index"].as_u64().unwrap()),
        );
        assert!(r.body["tree_size"].as_u64().unwrap() >= 5);
    }
    assert_eq!(got, ["a-1", "a-2", "a-3", "a-4", "a-5"]);
    assert_eq!(leaf_indexes, [0, 1, 2, 3, 4]);
    // a late event (occurred on the 19th, accepted now) comes next, not lost behind
    let mut late = record("acme", "a-late", at(19, 0), "u-ada");
    late.ingested_at = h.clock_now();
    h.ingest(&[late]).await;
    h.integrate().await;
    let r = h.get(&uri, Some(ACME_READ)).await;
    assert_eq!(names(&r.body), ["a-late"], "{}", r.text);
    // `since` starts from a time (a little before it: at least once)
    let r = h
        .get("/v1/events/stream?since=2026-01-01", Some(ACME_READ))
        .await;
    assert_eq!(names(&r.body).len(), 6, "{}", r.text);
    let r = h
        .get(
            &format!(
                "/v1/events/stream?after={}",
                r.body["next"].as_str().unwrap()
            ),
            Some(ACME_READ),
        )
        .await;
    assert!(names(&r.body).is_empty());
    assert!(r.body["next"].is_string());
    let r = h.get("/v1/events/stream?cursor=x", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn exports(h: &AuditHarness) {
    let r = h
        .post(
            "/v1/exports",
            Some(ACME_EXPORT),
            json!({"from": "2026-11-20", "to": "2026-11-22", "format": "csv"}),
        )
        .await;
    assert!(
        r.status == StatusCode::CREATED || r.status == StatusCode::ACCEPTED,
        "{}",
        r.text
    );
    let id = r.body["id"].as_str().unwrap().to_owned();
    let status = wait_for_export(h, ACME_EXPORT, &id).await;
    assert_eq!(status["rows"], 4, "{status}");
    let csv = download(h, ACME_EXPORT, status["download_url"].as_str().unwrap()).await;
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("event_id,occurred_at"));
    assert!(
        lines[1].starts_with(&eid("a-1")),
        "oldest first: {}",
        lines[1]
    );
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{csv}"
    );
    assert!(!csv.contains(&eid("g-1")));

    let r = h
        .post(
            "/v1/exports",
            Some(ACME_EXPORT),
            json!({"format": "ndjson", "actor": "u-bob"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let status = wait_for_export(h, ACME_EXPORT, &id).await;
    assert_eq!(status["rows"], 2);
    let nd = download(h, ACME_EXPORT, status["download_url"].as_str().unwrap()).await;
    let first: serde_json::Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
    assert_eq!(first["payload"]["name"], "a-2");

    // a bundle: the events accepted in the window, with what an offline verifier needs
    h.integrate().await;
    let r = h
        .post(
            "/v1/exports",
            Some(ACME_EXPORT),
            json!({"format": "bundle", "from": "2000-01-01", "to": "2100-01-01"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let status = wait_for_export(h, ACME_EXPORT, &id).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    let text = download(h, ACME_EXPORT, status["download_url"].as_str().unwrap()).await;
    let bundle: auditlog::bundle::Bundle = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle.tenant, "acme");
    assert!(!text.contains(&eid("g-1")), "only the caller's tenant");
    let keys = transparency::checkpoint::trusted(&[
        transparency::checkpoint::CheckpointSigner::verifier_key(&h.log_key).to_owned(),
    ])
    .unwrap();
    let report = auditlog::bundle::verify(&bundle, &keys, None)
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.rows_verified, bundle.rows.len() as u64);
    assert!(report.rows_verified >= 5, "{}", report.rows_verified);
    let mut edited = bundle.clone();
    edited.rows[0].payload = "{\"edited\":true}".into();
    let report = auditlog::bundle::verify(&edited, &keys, None)
        .await
        .unwrap();
    assert_eq!(
        report.findings[0].problem,
        transparency::verify::Problem::Modified
    );

    for (body, what) in [
        (
            json!({"format": "bundle", "from": "2000-01-01", "to": "2100-01-01", "actor": "u-bob"}),
            "bundle with a filter",
        ),
        (
            json!({"format": "bundle", "from": "2000-01-01"}),
            "bundle without an end",
        ),
        (json!({"format": "xlsx"}), "format"),
        (json!({"from": 5}), "non-string"),
        (json!({"tenant": "globex"}), "unknown filter"),
        (json!(["csv"]), "not an object"),
    ] {
        let r = h.post("/v1/exports", Some(ACME_EXPORT), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
    }
    let r = h.get("/v1/exports/..%2F..%2Fetc", Some(ACME_EXPORT)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn wait_for_export(h: &AuditHarness, token: &str, id: &str) -> serde_json::Value {
    for _ in 0..200 {
        let r = h.get(&format!("/v1/exports/{id}"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        match r.body["status"].as_str().unwrap() {
            "succeeded" => return r.body,
            "failed" => panic!("export failed: {}", r.body),
            _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    panic!("export {id} did not finish");
}

/// Fetches a download URL: our own route (local), or a presigned S3 URL (moto).
async fn download(h: &AuditHarness, token: &str, url: &str) -> String {
    if url.starts_with("/v1/") {
        let r = h.get(url, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        return r.text;
    }
    presigned_get(url).await
}

/// A plain HTTP GET of a presigned URL, with no credentials (what a browser does).
async fn presigned_get(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap_or(80);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

async fn viewer_sessions(h: &AuditHarness) {
    let token = h.viewer_token("acme", "u-carol", "audit:read", 300);
    let r = h
        .post("/v1/viewer/session", None, json!({"viewer_token": token}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let session = r.body["session_token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["tenant"], "acme");
    let r = h.get("/v1/events?limit=1", Some(&session)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // read-only session: no export
    let r = h
        .post("/v1/exports", Some(&session), json!({"format": "csv"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // used once
    let r = h
        .post("/v1/viewer/session", None, json!({"viewer_token": token}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(r.text.contains("already"));
    // at most five minutes, signed with the shared secret, audit scopes only
    for (bad, why) in [
        (h.viewer_token("acme", "u", "audit:read", 301), "too long"),
        (h.viewer_token("acme", "u", "scim", 60), "scim scope"),
        (h.viewer_token("acme", "u", "audit:export", 60), "no read"),
        (
            h.viewer_token("Not A Tenant", "u", "audit:read", 60),
            "tenant",
        ),
        (
            audit_api::mint_viewer_token(
                b"another-secret-0123456789abcdef0123456789",
                &audit_api::ViewerClaims {
                    tid: "acme".into(),
                    sub: "u".into(),
                    name: None,
                    scope: "audit:read".into(),
                    aud: audit_api::auth::VIEWER_AUDIENCE.into(),
                    iat: h.clock_now().timestamp(),
                    exp: h.clock_now().timestamp() + 60,
                    jti: "j".into(),
                },
            )
            .unwrap(),
            "another secret",
        ),
    ] {
        let r = h
            .post("/v1/viewer/session", None, json!({"viewer_token": bad}))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.text);
    }
    // an expired token, and an expired session
    let old = h.viewer_token("acme", "u-dan", "audit:read audit:export", 60);
    h.clock.advance(chrono::Duration::seconds(61));
    let r = h
        .post("/v1/viewer/session", None, json!({"viewer_token": old}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.clock.advance(chrono::Duration::minutes(16));
    let r = h.get("/v1/events", Some(&session)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // an edited session token
    let fresh = h.viewer_token("acme", "u-erin", "audit:read", 60);
    let r = h
        .post("/v1/viewer/session", None, json!({"viewer_token": fresh}))
        .await;
    let s = r.body["session_token"].as_str().unwrap();
    let forged = s.replacen("s1.", "s1.e", 1);
    assert_eq!(
        h.get("/v1/events", Some(&forged)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn isolation(h: &AuditHarness) {
    // globex's own view
    let r = h.get("/v1/events", Some(GLOBEX_ALL)).await;
    assert_eq!(names(&r.body), ["g-2", "g-1"]);
    // acme's event ids, from globex: nothing
    for name in ["a-1", "a-3", "a-5"] {
        let r = h
            .get(&format!("/v1/events/{}", eid(name)), Some(GLOBEX_ALL))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}");
    }
    // acme's cursor and checkpoint, from globex: refused
    let r = h.get("/v1/events?limit=1", Some(ACME_READ)).await;
    let cursor = r.body["next"].as_str().unwrap();
    let r = h
        .get(
            &format!("/v1/events?limit=1&cursor={cursor}"),
            Some(GLOBEX_ALL),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "invalid_cursor");
    let r = h.get("/v1/events/stream?limit=1", Some(ACME_READ)).await;
    let cp = r.body["next"].as_str().unwrap();
    let r = h
        .get(&format!("/v1/events/stream?after={cp}"), Some(GLOBEX_ALL))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "invalid_checkpoint");
    // acme's export, from globex: no status, no file
    let r = h
        .post("/v1/exports", Some(ACME_EXPORT), json!({"format": "csv"}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    wait_for_export(h, ACME_EXPORT, &id).await;
    for uri in [
        format!("/v1/exports/{id}"),
        format!("/v1/exports/{id}/download"),
    ] {
        let r = h.get(&uri, Some(GLOBEX_ALL)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text);
    }
    // filters naming acme's actors and targets find nothing of acme's
    let r = h
        .get("/v1/events?target=document:doc-a-3", Some(GLOBEX_ALL))
        .await;
    assert!(names(&r.body).is_empty());
    let r = h.get("/v1/events?q=a-5", Some(GLOBEX_ALL)).await;
    assert!(names(&r.body).is_empty());
    // globex's export holds only globex rows
    let r = h
        .post("/v1/exports", Some(GLOBEX_ALL), json!({"format": "ndjson"}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let status = wait_for_export(h, GLOBEX_ALL, &id).await;
    let nd = download(h, GLOBEX_ALL, status["download_url"].as_str().unwrap()).await;
    assert_eq!(nd.lines().count(), 2);
    assert!(!nd.contains("for acme only"));
}

async fn reads_are_audited(h: &AuditHarness) {
    let before = h.recorded().len();
    let r = h
        .get("/v1/events?actor=u-ada&limit=2", Some(ACME_READ))
        .await;
    let cursor = r.body["next"].as_str().unwrap().to_owned();
    // the next page of the same search is not a new search
    h.get(
        &format!("/v1/events?actor=u-ada&limit=2&cursor={cursor}"),
        Some(ACME_READ),
    )
    .await;
    h.get(&format!("/v1/events/{}", eid("a-2")), Some(ACME_READ))
        .await;
    let recorded = h.recorded()[before..].to_vec();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(recorded[0].0, "audit.log.searched");
    assert_eq!(recorded[0].1["query"]["actor"], "u-ada");
    assert_eq!(recorded[0].1["results"], 2);
    assert_eq!(recorded[1].0, "audit.log.viewed");
    assert_eq!(recorded[1].1["target"]["id"], eid("a-2"));
    // every recorded event is valid against its schema
    let registry = envelope::SchemaRegistry::builtin().unwrap();
    let events = h.trail.events.lock().unwrap().clone();
    for e in &events {
        let p = envelope::Publisher::new(
            adapters_local::InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES),
            registry.clone(),
            envelope::PublisherConfig::default(),
        );
        p.publish(std::slice::from_ref(e))
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", e.detail.metadata.event_type));
    }
    let types: std::collections::BTreeSet<String> =
        h.recorded().into_iter().map(|(t, _)| t).collect();
    for t in [
        "audit.log.viewed",
        "audit.log.searched",
        "audit.log.exported",
        "audit.token.created",
    ] {
        assert!(types.contains(t), "{t} never recorded: {types:?}");
    }
    // no record, no read
    h.trail
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = h.get("/v1/events?actor=u-bob", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    h.trail
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
}

#[tokio::test]
async fn audit_api_on_the_embedded_stores() {
    let dir = tempfile::tempdir().unwrap();
    suite(&embedded(dir.path(), history_inline()).await).await;
}

#[tokio::test]
async fn exports_too_big_to_answer_at_once_run_as_jobs() {
    let dir = tempfile::tempdir().unwrap();
    // every export is "big": it is queued and runs beside the API
    let h = embedded(dir.path(), 0).await;
    h.seed().await;
    let r = h
        .post("/v1/exports", Some(ACME_EXPORT), json!({"format": "csv"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["status"], "queued");
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/exports/")
    );
    let status = wait_for_export(&h, ACME_EXPORT, r.body["id"].as_str().unwrap()).await;
    assert_eq!(status["rows"], 5);
}

fn history_inline() -> u64 {
    audit_api::INLINE_EXPORT_BYTES
}

/// The OpenAPI document describes exactly what the router serves: every documented
/// operation is routed (not the fallback), every documented filter is accepted, the
/// served document is the generated one, and docs/openapi.json is that document
/// (`UPDATE_OPENAPI=1` rewrites it).
#[tokio::test]
async fn the_openapi_document_is_in_step_with_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let h = embedded(dir.path(), history_inline()).await;
    let doc = serde_json::to_value(audit_api::openapi_document()).unwrap();
    let served = h.get("/v1/openapi.json", None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body, doc);

    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(operations.len(), 11, "{operations:?}");
    for (method, path) in &operations {
        let uri = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let body = (method == "POST").then(|| json!({}));
        let r = h.call(method, &uri, None, body).await;
        assert_ne!(
            (r.status, r.body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{method} {path} is documented but not routed: {}",
            r.text
        );
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    let r = h.get("/v1/undocumented", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // each documented filter of GET /v1/events is one the handler takes
    h.seed().await;
    let params = doc["paths"]["/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let sample = |name: &str| match name {
        "from" => "2026-11-01",
        "to" => "2026-12-01",
        "actor" => "user:u-ada",
        "action" => "share",
        "event_type" => "app.*",
        "target" => "document:doc-a-1",
        "outcome" => "success",
        "q" => "ada",
        "limit" => "5",
        "cursor" => "",
        other => panic!("a documented parameter without a sample: {other}"),
    };
    assert_eq!(params.len(), 10);
    for p in params {
        let name = p["name"].as_str().unwrap();
        let r = h
            .get(
                &format!("/v1/events?{name}={}", sample(name)),
                Some(ACME_READ),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text);
    }

    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&file, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json is not the router's document; regenerate it: UPDATE_OPENAPI=1 bash scripts/test audit_api"
    );
}

#[tokio::test]
async fn audit_api_on_s3_and_dynamodb() {
    let c = auditlog_tests::sdk_config().await;
    let s3 = auditlog_tests::s3_client(&c);
    let bucket = auditlog_tests::new_bucket(&s3).await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = auditlog_tests::new_scim_table(&ddb).await;
    let blobs = Arc::new(adapters_aws::S3BlobStore::new(s3, bucket));
    let directory = Arc::new(adapters_aws::DynamoDbTenantDirectory::new(ddb, table));
    let h = AuditHarness::over(
        blobs.clone(),
        directory.clone(),
        directory,
        blobs,
        history_inline(),
    )
    .await;
    suite(&h).await;
}

#[tokio::test]
async fn a_big_export_on_s3_is_a_multipart_upload_with_a_presigned_link() {
    let c = auditlog_tests::sdk_config().await;
    let s3 = auditlog_tests::s3_client(&c);
    let bucket = auditlog_tests::new_bucket(&s3).await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = auditlog_tests::new_scim_table(&ddb).await;
    let blobs = Arc::new(adapters_aws::S3BlobStore::new(s3.clone(), bucket.clone()));
    let directory = Arc::new(adapters_aws::DynamoDbTenantDirectory::new(ddb, table));
    let h = AuditHarness::over(blobs.clone(), directory.clone(), directory, blobs, 0).await;
    // 40,000 rows: about 16 MB of CSV, a part of 8 MiB and a last one
    let mut rows = Vec::new();
    for i in 0..40_000i64 {
        rows.push(record("acme", &format!("big-{i}"), at(21, i), "u-ada"));
    }
    h.ingest(&rows).await;
    let r = h
        .post("/v1/exports", Some(ACME_EXPORT), json!({"format": "csv"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let status = wait_for_export(&h, ACME_EXPORT, r.body["id"].as_str().unwrap()).await;
    assert_eq!(status["rows"], 40_000);
    let url = status["download_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature"), "{url}");
    let csv = presigned_get(url).await;
    assert!(csv.len() > history::CHUNK_BYTES, "{} bytes", csv.len());
    assert_eq!(csv.split("\r\n").filter(|l| !l.is_empty()).count(), 40_001);
    // a multipart object's ETag ends in -<parts>
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(format!(
            "exports/tenant_id=acme/{}.csv",
            status["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap();
    assert!(etag.trim_matches('"').ends_with("-2"), "{etag}");
}

/// What the README states: an event is in the history as soon as the subscriber has
/// written it, and in the stream once a signed checkpoint of its tenant's log covers it.
#[tokio::test]
async fn freshness_browse_at_once_stream_once_signed() {
    let dir = tempfile::tempdir().unwrap();
    let h = embedded(dir.path(), history_inline()).await;
    let subscriber = auditlog::Subscriber::new(
        Arc::new(auditlog::memory::MemoryDedupeStore::default()),
        h.blobs.clone(),
        h.clock.clone(),
        Arc::new(envelope::SchemaRegistry::builtin().unwrap()),
        auditlog::SubscriberConfig::default(),
    );
    let accepted = h.clock_now();
    let body = json!({
        "version": "0", "id": "bus-fresh-1", "detail-type": "app.document.shared",
        "source": "app.docs", "account": "111122223333", "time": accepted.to_rfc3339(),
        "region": "us-east-1", "resources": [],
        "detail": {
            "metadata": {
                "event_id": eid("fresh-1"), "tenant_id": "acme", "event_type": "app.document.shared",
                "schema_version": 1, "occurred_at": accepted.to_rfc3339(), "producer": "docs",
                "actor": {"type": "user", "id": "u-ada"}, "request_id": "fresh-1"
            },
            "payload": {"action": "share", "target": {"type": "document", "id": "d-1"}}
        }
    });
    let outcome = subscriber
        .handle(&[auditlog::InboundMessage {
            message_id: "m-1".into(),
            body: body.to_string(),
        }])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    // browsing: at once, with no time passing
    let r = h.get("/v1/events", Some(ACME_READ)).await;
    assert_eq!(names(&r.body), ["fresh-1"], "{}", r.text);
    // the stream: not before a signed checkpoint covers it, however long ...
    let lag = history::HistoryConfig::default().poll_lag;
    h.clock
        .advance(chrono::Duration::from_std(lag).unwrap() * 2);
    let r = h.get("/v1/events/stream", Some(ACME_READ)).await;
    assert!(names(&r.body).is_empty(), "{}", r.text);
    assert_eq!(r.body["tree_size"], 0);
    let next = r.body["next"].as_str().unwrap().to_owned();
    // ... and once integrated, from the checkpoint of the empty poll, with its index
    h.integrate().await;
    let r = h
        .get(&format!("/v1/events/stream?after={next}"), Some(ACME_READ))
        .await;
    assert_eq!(names(&r.body), ["fresh-1"], "{}", r.text);
    assert_eq!(r.body["events"][0]["leaf_index"], 0);
    assert_eq!(r.body["tree_size"], 1);
}

/// The log endpoints: the checkpoint, an event's inclusion proof and a consistency
/// proof, each checked here as a customer would; another tenant's event is not there.
#[tokio::test]
async fn the_log_endpoints_prove_an_event_and_the_logs_growth_to_its_tenant_only() {
    use auditlog_tests::audit_http::LOG_NAME;
    use transparency::checkpoint::{self, CheckpointSigner as _};
    use transparency::{Hash, proof};

    let dir = tempfile::tempdir().unwrap();
    let h = embedded(dir.path(), history_inline()).await;
    assert_eq!(
        h.get("/v1/log/checkpoint", Some(ACME_READ)).await.status,
        StatusCode::NOT_FOUND
    );
    h.seed().await;
    h.integrate().await;
    let keys = checkpoint::trusted(&[h.log_key.verifier_key().to_owned()]).unwrap();
    let acme = envelope::TenantId::parse("acme").unwrap();
    let origin = checkpoint::origin(LOG_NAME, &acme);

    let r = h.get("/v1/log/checkpoint", Some(ACME_READ)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cp = checkpoint::open(r.text.as_bytes(), &keys, &origin).unwrap();
    // the published verifier keys: the signer's, which opens the checkpoint
    let published = h.get("/v1/log/keys", Some(ACME_READ)).await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    let listed: Vec<String> = published.text.lines().map(str::to_owned).collect();
    assert_eq!(listed, [h.log_key.verifier_key().to_owned()]);
    let from_api = checkpoint::trusted(&listed).unwrap();
    assert!(checkpoint::open(r.text.as_bytes(), &from_api, &origin).is_ok());
    assert_eq!(
        h.get("/v1/log/keys", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(cp.size >= 3, "acme's events: {}", cp.size);
    assert_eq!(
        h.get("/v1/log/checkpoint", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let hash = |s: &serde_json::Value| Hash::parse_hash(s.as_str().unwrap()).unwrap();
    let id = eid("a-3");
    let r = h
        .get(&format!("/v1/log/events/{id}/proof"), Some(ACME_READ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let b = &r.body;
    let leaf = b["leaf"].as_str().unwrap();
    assert!(leaf.starts_with(&format!("v1 event acme {id} ")), "{leaf}");
    assert_eq!(
        hash(&b["leaf_hash"]),
        transparency::leaf::record_hash(leaf.as_bytes())
    );
    let proof_hashes: Vec<Hash> = b["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    let size = b["tree_size"].as_u64().unwrap();
    let root = hash(&b["root_hash"]);
    proof::verify_inclusion(
        &proof_hashes,
        size,
        root,
        b["leaf_index"].as_u64().unwrap(),
        hash(&b["leaf_hash"]),
    )
    .unwrap();
    let signed =
        checkpoint::open(b["checkpoint"].as_str().unwrap().as_bytes(), &keys, &origin).unwrap();
    assert_eq!(
        (signed.size, signed.root),
        (size, root),
        "the proof is into the signed checkpoint"
    );

    // another tenant's event, an unknown one, a malformed one: nothing here
    for (uri, token) in [
        (format!("/v1/log/events/{}/proof", eid("g-1")), ACME_READ),
        (format!("/v1/log/events/{id}/proof"), GLOBEX_ALL),
        (format!("/v1/log/events/{}/proof", eid("nope")), ACME_READ),
        ("/v1/log/events/not-an-id/proof".to_owned(), ACME_READ),
    ] {
        assert_eq!(
            h.get(&uri, Some(token)).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }

    // the log grows; the new checkpoint extends the old one
    h.ingest(&[
        record("acme", "a-9", at(23, 10), "u-ada"),
        record("acme", "a-10", at(23, 20), "u-bob"),
    ])
    .await;
    h.integrate().await;
    let r = h
        .get(
            &format!("/v1/log/consistency?from={}", cp.size),
            Some(ACME_READ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_size = r.body["tree_size"].as_u64().unwrap();
    assert_eq!(new_size, cp.size + 2);
    let hashes: Vec<Hash> = r.body["consistency_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    proof::verify_consistency(
        &hashes,
        cp.size,
        cp.root,
        new_size,
        hash(&r.body["root_hash"]),
    )
    .unwrap();
    for bad in ["0", "x", &(new_size + 1).to_string()] {
        let r = h
            .get(&format!("/v1/log/consistency?from={bad}"), Some(ACME_READ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "from={bad}");
    }
}
