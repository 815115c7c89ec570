//! The viewer in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! which `.ci/run` installs), driven over WebDriver: load with a viewer token, filter,
//! page, see each event checked against the tenant's signed log (verified, not yet in
//! it, or not verifying after a row was rewritten in storage), open a detail with the
//! keyboard and the mouse, export, dark theme, a phone's width. Screenshots of each step are kept in `artifacts/viewer/`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_local::{LocalDirBlobStore, SqliteScimStore};
use auditlog_tests::audit_http::{AuditHarness, record};
use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver() -> (Driver, u16) {
    let port = free_port();
    let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{bin}: {e}; install Debian's chromium and chromium-driver (.ci/run does)")
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

fn artifacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/viewer");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// Waits until `script` (a JS expression) is truthy; returns its value.
async fn until(c: &Client, what: &str, script: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = c
            .execute(&format!("return ({script});"), vec![])
            .await
            .unwrap();
        let truthy = !(v.is_null()
            || v == json!(false)
            || v == json!(0)
            || v == json!("")
            || v == json!([]));
        if truthy {
            return v;
        }
        if Instant::now() > deadline {
            let error = c
                .execute(
                    "return document.getElementById('error').textContent",
                    vec![],
                )
                .await
                .unwrap();
            shot(c, &format!("failed-{}", what.replace(' ', "-"))).await;
            panic!("{what}: not so after 15 s (page error: {error})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_viewer_lists_filters_pages_details_and_exports_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalDirBlobStore::open(dir.path().join("data")).unwrap());
    let directory = Arc::new(SqliteScimStore::open(&dir.path().join("scim.sqlite")).unwrap());
    let h = AuditHarness::over(
        blobs.clone(),
        directory.clone(),
        directory,
        blobs,
        audit_api::INLINE_EXPORT_BYTES,
    )
    .await;
    // the browser's "last 7 days" is the real clock's
    let now = Utc::now();
    h.clock.set(now);
    // 60 events of acme over the last two days, in both tiers; 5 of globex
    let mut rows = Vec::new();
    for i in 0..60i64 {
        let actor = if i % 3 == 0 { "u-ada" } else { "u-bob" };
        rows.push(record(
            "acme",
            &format!("v-{i:02}"),
            now - chrono::Duration::minutes(30 * (i + 1)),
            actor,
        ));
    }
    // all but the newest five in the tenant's signed log; then someone with write access
    // to storage rewrites v-40 (payload and hash, consistently, as an earlier copy)
    let same_day = |a: &auditlog::AuditRecord, b: &auditlog::AuditRecord| {
        a.occurred_at.date_naive() == b.occurred_at.date_naive()
    };
    for day_rows in rows[5..].chunk_by(same_day) {
        h.ingest(day_rows).await;
    }
    h.integrate().await;
    for day_rows in rows[..5].chunk_by(same_day) {
        h.ingest(day_rows).await;
    }
    let mut forged = rows[40].clone();
    forged.payload = forged.payload.replace("for acme only", "nothing to see");
    forged.payload_sha256 = auditlog::payload_sha256(&forged.payload);
    // the same acceptance time; its bus id sorts first, so every read keeps this copy
    forged.bus_event_id = "bus-forged".into();
    h.ingest(std::slice::from_ref(&forged)).await;
    for i in 0..5 {
        h.ingest(&[record(
            "globex",
            &format!("g-{i}"),
            now - chrono::Duration::minutes(7 * i),
            "u-eve",
        )])
        .await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = h.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (_driver, driver_port) = chromedriver();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");

    // load: the first 50, newest first, and the token gone from the address bar
    let token = h.viewer_token("acme", "u-carol", "audit:read audit:export", 300);
    c.goto(&format!("{base}/viewer#token={token}"))
        .await
        .unwrap();
    until(
        &c,
        "first page",
        "document.querySelectorAll('tr.event').length === 50",
    )
    .await;
    let url = c.current_url().await.unwrap();
    assert!(!url.as_str().contains("token"), "{url}");
    let first = until(
        &c,
        "first row",
        "document.querySelector('tr.event td:nth-child(4)').textContent",
    )
    .await;
    assert!(
        first.as_str().unwrap().contains("document:doc-v-00"),
        "{first}"
    );
    assert!(
        until(&c, "who", "document.getElementById('who').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("u-carol")
    );
    // the custom range's fields show only for a custom range
    let custom_shown = c
        .execute(
            "return [...document.querySelectorAll('.custom')].some(e => e.offsetParent !== null)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(custom_shown, json!(false));
    // each row's log mark, checked in the browser against the signed log
    let marks = until(
        &c,
        "log marks",
        "(() => { const m = [...document.querySelectorAll('tr.event td.log')].map(td => td.textContent); return m.length === 50 && !m.includes('checking…') && m; })()",
    )
    .await;
    let marks: Vec<String> = serde_json::from_value(marks).unwrap();
    for (i, mark) in marks.iter().enumerate() {
        let want = match i {
            0..5 => "not in the log yet",
            40 => "does not verify",
            _ => "verified",
        };
        assert_eq!(mark, want, "row {i} (v-{i:02})");
    }
    let why = c
        .execute(
            "return document.querySelectorAll('tr.event td.log')[40].title",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        why.as_str().unwrap().contains("payload"),
        "the mark says why: {why}"
    );
    shot(&c, "1-first-page").await;

    // page: older has the other 10; newer comes back
    c.find(Locator::Id("older"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "second page", "document.querySelectorAll('tr.event').length === 10 && document.getElementById('page').textContent === 'Page 2'").await;
    shot(&c, "2-second-page").await;
    c.find(Locator::Id("newer"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "back to the first page", "document.querySelectorAll('tr.event').length === 50 && document.getElementById('page').textContent === 'Page 1'").await;

    // filter: one actor
    c.find(Locator::Id("actor"))
        .await
        .unwrap()
        .send_keys("user:u-ada")
        .await
        .unwrap();
    c.find(Locator::Id("apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "filtered",
        "(() => { const r = [...document.querySelectorAll('tr.event td:nth-child(2)')]; return r.length === 20 && r.every(td => td.textContent.includes('u-ada')); })()",
    )
    .await;
    shot(&c, "3-filtered").await;

    // detail, with the keyboard: focus the first row, Enter
    c.execute("document.querySelector('tr.event').focus()", vec![])
        .await
        .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let payload = until(
        &c,
        "detail",
        "document.getElementById('detail').open && document.getElementById('detail-payload').textContent",
    )
    .await;
    assert!(
        payload.as_str().unwrap().contains("for acme only"),
        "{payload}"
    );
    let fields = c
        .execute(
            "return document.getElementById('detail-fields').textContent",
            vec![],
        )
        .await
        .unwrap();
    // the filter's first row is v-00, accepted after the log was last signed
    assert!(
        fields.as_str().unwrap().contains("Lognot in the log yet"),
        "the detail says where it stands in the log: {fields}"
    );
    shot(&c, "4-detail").await;
    c.find(Locator::Id("close"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "detail closed",
        "!document.getElementById('detail').open",
    )
    .await;

    // export what the filter shows: a CSV of its 20 rows
    c.find(Locator::Id("export"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let link = until(
        &c,
        "export",
        "document.getElementById('download') && document.getElementById('download').textContent",
    )
    .await;
    assert_eq!(link, json!("Download (20 rows)"));
    shot(&c, "5-exported").await;

    // a phone: rows become cards, the header row is hidden
    c.set_window_size(390, 844).await.unwrap();
    until(
        &c,
        "phone layout",
        "getComputedStyle(document.querySelector('thead')).display === 'none'",
    )
    .await;
    shot(&c, "6-phone").await;

    // dark, with a fresh viewer token (each one is exchanged once)
    c.set_window_size(1280, 900).await.unwrap();
    let token = h.viewer_token("acme", "u-carol", "audit:read", 300);
    c.goto(&format!("{base}/viewer?theme=dark#token={token}"))
        .await
        .unwrap();
    until(
        &c,
        "dark page",
        "document.querySelectorAll('tr.event').length === 50",
    )
    .await;
    let bg = c
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bg, json!("rgb(13, 17, 23)"));
    // a read-only session has no export button
    let hidden = c
        .execute("return document.getElementById('export').hidden", vec![])
        .await
        .unwrap();
    assert_eq!(hidden, json!(true));
    shot(&c, "7-dark").await;

    // the same token again: refused, and the page says so
    c.goto(&format!("{base}/viewer#token={token}"))
        .await
        .unwrap();
    let error = until(
        &c,
        "replayed token",
        "document.getElementById('error').textContent",
    )
    .await;
    assert!(error.as_str().unwrap().contains("already"), "{error}");
    c.close().await.unwrap();

    // what the user did is in the trail, as the user
    let recorded = h.trail.events.lock().unwrap().clone();
    let by_carol: Vec<&str> = recorded
        .iter()
        .filter(|e| e.detail.metadata.actor.id == "u-carol")
        .map(|e| e.detail.metadata.event_type.as_str())
        .collect();
    for t in [
        "audit.token.created",
        "audit.log.viewed",
        "audit.log.searched",
        "audit.log.exported",
    ] {
        assert!(by_carol.contains(&t), "{t} missing: {by_carol:?}");
    }
}
