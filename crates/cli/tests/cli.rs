//! The `auditlog` binary end to end on the embedded default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn auditlog(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn figure(text: &str, label: &str) -> usize {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in\n{text}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn demo_runs_the_pipeline_and_accounts_for_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&auditlog(
        dir.path(),
        &[
            "demo",
            "--events",
            "3000",
            "--tenants",
            "7",
            "--invalid-rate",
            "0.02",
        ],
    ));
    let published = figure(&out, "events published");
    let invalid = figure(&out, "invalid messages");
    let received = figure(&out, "messages received");
    let written = figure(&out, "unique written");
    let dups = figure(&out, "duplicates dropped");
    let quarantined = figure(&out, "quarantined");
    assert_eq!(written, 3000, "{out}");
    assert_eq!(received, published + invalid);
    assert_eq!(
        received,
        written + dups + quarantined,
        "every message is accounted for"
    );
    assert!(invalid > 0 && dups > 0, "{out}");
    assert_eq!(figure(&out, "rows"), 3000);
    // the demo ends with compliance queries on what it wrote
    let privileged = out
        .lines()
        .find(|l| l.starts_with("query privileged_actions: "))
        .unwrap_or_else(|| panic!("{out}"));
    let n: usize = privileged["query privileged_actions: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0, "{privileged}");
    assert!(out.contains("query failed_actions: "), "{out}");
    // the data stays queryable afterwards, per tenant
    let show = stdout(&auditlog(
        dir.path(),
        &["show", "--tenant", "tenant-0003", "--json"],
    ));
    assert!(!show.is_empty());
    for line in show.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["tenant_id"], "tenant-0003");
    }
}

#[test]
fn ingest_then_show_round_trips_real_eventbridge_events() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<String> = (0..5)
        .map(|n| {
            serde_json::json!({
                "version": "0", "id": format!("bus-{n}"), "detail-type": "scim.user.created", "source": "idp",
                "account": "111122223333", "time": "2026-11-21T10:00:00Z", "region": "eu-west-1", "resources": [],
                "detail": {"metadata": {
                    "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{n:012}"), "tenant_id": if n < 3 { "acme" } else { "globex" },
                    "event_type": "scim.user.created", "schema_version": 1,
                    "occurred_at": format!("2026-11-2{}T10:00:00Z", n), "producer": "scim-api",
                    "actor": {"type": "idp", "id": "entra"}},
                    "payload": {"id": format!("u{n}"), "userName": format!("user{n}@x.test")}}
            })
            .to_string()
        })
        .collect();
    let mut input = events.join("\n");
    input.push_str("\n{broken\n");
    input.push_str(&events[0]); // the same event again
    let mut child = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("--data")
        .arg(dir.path())
        .args(["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = stdout(&child.wait_with_output().unwrap());
    assert!(out.contains("7 messages"), "{out}");
    assert!(
        out.contains("5 written, 1 duplicates, 1 quarantined"),
        "{out}"
    );

    let acme = stdout(&auditlog(dir.path(), &["show", "--tenant", "acme"]));
    assert!(acme.contains("3 of 3 records of tenant acme"), "{acme}");
    assert!(
        !acme.contains("u3") && !acme.contains("u4"),
        "no globex rows: {acme}"
    );
    let ranged = stdout(&auditlog(
        dir.path(),
        &[
            "show",
            "--tenant",
            "acme",
            "--from",
            "2026-11-21",
            "--to",
            "2026-11-22",
        ],
    ));
    assert!(ranged.contains("1 of 1 records"), "{ranged}");

    // compaction keeps what show returns
    stdout(&auditlog(dir.path(), &["compact"]));
    let again = stdout(&auditlog(dir.path(), &["show", "--tenant", "acme"]));
    assert_eq!(again, acme);
}

/// Exits non-zero and says `expected` on stderr.
fn fails_saying(o: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "succeeded: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    stderr
}

#[test]
fn bad_arguments_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    fails_saying(
        &auditlog(dir.path(), &["show", "--tenant", "../etc"]),
        "--tenant",
    );
    fails_saying(
        &auditlog(dir.path(), &["show", "--tenant", "acme"]),
        "no audit data",
    );
    fails_saying(
        &auditlog(
            dir.path(),
            &["show", "--tenant", "acme", "--from", "yesterday"],
        ),
        "yesterday",
    );
    fails_saying(
        &auditlog(dir.path(), &["ingest", "/nonexistent/file.jsonl"]),
        "/nonexistent/file.jsonl",
    );
    // a bucket's log is verified only against a key and a log name given by hand
    let o = auditlog(
        dir.path(),
        &["verify", "--tenant", "acme", "--bucket", "audit-bucket"],
    );
    let stderr = fails_saying(&o, "--key");
    assert!(stderr.contains("--log-name"), "{stderr}");
}

fn sample_events(n: usize) -> String {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "version": "0", "id": format!("bus-{i}"), "detail-type": "app.doc.viewed", "source": "app",
                "account": "111122223333", "time": "2026-11-21T10:00:00Z", "region": "eu-west-1", "resources": [],
                "detail": {"metadata": {
                    "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{i:012}"), "tenant_id": "acme",
                    "event_type": "app.doc.viewed", "schema_version": 1,
                    "occurred_at": "2026-11-21T10:00:00Z", "producer": "app",
                    "actor": {"type": "user", "id": "u1"}},
                    "payload": {"action": "view"}}
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// Loss path: `ingest` exited 0 with messages it could not process. Now it exits
/// non-zero, saves them, and prints the command that finishes the job.
#[test]
fn ingest_with_messages_left_fails_and_says_how_to_finish() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, sample_events(3)).unwrap();
    // the ingest tier cannot be written: its directory is a file
    std::fs::create_dir_all(dir.path().join("data/blobs")).unwrap();
    std::fs::write(dir.path().join("data/blobs/ingest"), "in the way").unwrap();
    let data = dir.path().join("data");
    let o = auditlog(&data, &["ingest", input.to_str().unwrap()]);
    let stderr = fails_saying(&o, "3 messages were not processed");
    assert!(stderr.contains("ingest file write failed"), "{stderr}");
    assert!(stderr.contains("input lines 1,2,3"), "{stderr}");
    let command = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("auditlog --data"))
        .unwrap_or_else(|| panic!("no command in {stderr}"))
        .trim()
        .to_owned();
    let left = command.rsplit(' ').next().unwrap();
    assert_eq!(std::fs::read_to_string(left).unwrap(), sample_events(3));
    // fix the cause, run what it said
    std::fs::remove_file(data.join("blobs/ingest")).unwrap();
    let out = stdout(&auditlog(&data, &["ingest", left]));
    assert!(out.contains("3 written"), "{out}");
    let shown = stdout(&auditlog(&data, &["show", "--tenant", "acme"]));
    assert!(shown.contains("3 of 3 records"), "{shown}");
}

/// One HTTP/1.1 request over a plain socket: (status, body).
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `auditlog serve` with `extra` flags and one token, listening.
fn served(dir: &std::path::Path, port: u16, extra: &[&str]) -> Server {
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_auditlog"))
            .arg("--data")
            .arg(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--token", "acme-secret-1=acme:okta"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server
}

/// The SCIM rate limit is a setting of `serve`, and its default lets a conformance
/// run's burst through (about 100 checks of 3-5 requests in two seconds).
#[test]
fn serve_takes_the_scim_rate_limit_as_a_setting() {
    let (dir, port) = (tempfile::tempdir().unwrap(), free_port());
    let _server = served(dir.path(), port, &[]);
    for n in 0..400 {
        let (status, body) = http(port, "GET", "/scim/v2/Users", "acme-secret-1", "");
        assert_eq!(status, 200, "request {n} of a burst: {body}");
    }
    drop(_server);
    let (dir, port) = (tempfile::tempdir().unwrap(), free_port());
    let _server = served(
        dir.path(),
        port,
        &["--scim-rate-limit", "0.5", "--scim-burst", "3"],
    );
    let statuses: Vec<u16> = (0..4)
        .map(|_| http(port, "GET", "/scim/v2/Users", "acme-secret-1", "").0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[test]
fn serve_provisions_over_http_and_the_changes_reach_the_audit_log() {
    let (dir, port) = (tempfile::tempdir().unwrap(), free_port());
    // a token issued before the server starts, kept hashed in the store
    let issued = stdout(&auditlog(
        dir.path(),
        &["tokens", "issue", "--tenant", "acme", "--idp", "entra"],
    ))
    .trim()
    .to_owned();
    let listed = stdout(&auditlog(
        dir.path(),
        &["tokens", "list", "--tenant", "acme"],
    ));
    assert!(
        listed.contains("holder=entra  scopes=scim") && !listed.contains(&issued),
        "{listed}"
    );
    // an audit API token lives in the same directory, with its scopes
    let audit = stdout(&auditlog(
        dir.path(),
        &[
            "tokens",
            "issue",
            "--tenant",
            "acme",
            "--idp",
            "splunk",
            "--scope",
            "audit:read,audit:export",
        ],
    ))
    .trim()
    .to_owned();
    assert!(audit.starts_with("audit_"), "{audit}");
    let listed = stdout(&auditlog(
        dir.path(),
        &["tokens", "list", "--tenant", "acme"],
    ));
    assert!(
        listed.contains("holder=splunk  scopes=audit:read,audit:export"),
        "{listed}"
    );
    fails_saying(
        &auditlog(
            dir.path(),
            &[
                "tokens",
                "issue",
                "--tenant",
                "acme",
                "--scope",
                "audit:write",
            ],
        ),
        "unknown scope",
    );
    fails_saying(
        &auditlog(
            dir.path(),
            &[
                "tokens",
                "issue",
                "--tenant",
                "acme",
                "--scope",
                "scim,audit:read",
            ],
        ),
        "issue audit tokens apart",
    );
    let policy = stdout(&auditlog(
        dir.path(),
        &[
            "policy",
            "set",
            "--tenant",
            "acme",
            r#"{"unknown_members": "skip"}"#,
        ],
    ));
    assert!(policy.contains(r#""unknown_members": "skip""#), "{policy}");
    assert!(
        !auditlog(dir.path(), &["policy", "set", "--tenant", "acme", "{nope"])
            .status
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let _server = served(dir.path(), port, &[]);
    let (status, _) = http(port, "GET", "/scim/v2/Users", "wrong-token", "");
    assert_eq!(status, 401);
    let (status, _) = http(port, "GET", "/scim/v2/Users", &issued, "");
    assert_eq!(status, 200, "an issued token works");
    let (status, _) = http(port, "GET", "/scim/v2/Users", &audit, "");
    assert_eq!(status, 403, "an audit token does not provision");
    stdout(&auditlog(
        dir.path(),
        &["tokens", "revoke", "--tenant", "acme", &issued],
    ));
    let (status, _) = http(port, "GET", "/scim/v2/Users", &issued, "");
    assert_eq!(status, 401, "a revoked token stops working at once");
    let (status, body) = http(
        port,
        "POST",
        "/scim/v2/Users",
        "acme-secret-1",
        r#"{"userName":"grace@acme.test","active":true}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = http(
        port,
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        "acme-secret-1",
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}"#,
    );
    assert_eq!(status, 200);
    // the relay and subscriber run in the background: poll the audit log
    loop {
        let out = auditlog(dir.path(), &["show", "--tenant", "acme", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect();
        let scim: Vec<String> = rows
            .iter()
            .filter(|v| v["event_type"].as_str().unwrap().starts_with("scim."))
            .map(|v| {
                assert_eq!(v["actor_id"], "okta");
                assert_eq!(v["target_id"], id.as_str());
                v["event_type"].as_str().unwrap().to_owned()
            })
            .collect();
        if scim.len() == 2 {
            assert_eq!(scim, ["scim.user.created", "scim.user.deactivated"]);
            // issuing and revoking tokens is in the log too
            let tokens: Vec<&str> = rows
                .iter()
                .filter_map(|v| v["event_type"].as_str())
                .filter(|t| t.starts_with("audit.token."))
                .collect();
            assert_eq!(
                tokens,
                [
                    "audit.token.created",
                    "audit.token.created",
                    "audit.token.revoked"
                ],
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit records did not arrive: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // the audit API beside the SCIM API: the same history, for the tenant's token
    let (status, body) = http(port, "GET", "/v1/events?limit=10", &audit, "");
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"scim.user.deactivated"), "{body}");
    let (status, _) = http(port, "GET", "/v1/events", &issued, "");
    assert_eq!(status, 401, "a revoked SCIM token reads nothing");
    let (status, _) = http(port, "GET", "/v1/events", "acme-secret-1", "");
    assert_eq!(status, 403, "a SCIM token is not an audit token");

    // a viewer token, minted as the SaaS backend would, exchanged once for a session
    let viewer = stdout(&auditlog(
        dir.path(),
        &[
            "tokens", "viewer", "--tenant", "acme", "--user", "u-7", "--name", "Ada",
        ],
    ));
    let (status, body) = http(
        port,
        "POST",
        "/v1/viewer/session",
        "",
        &format!(r#"{{"viewer_token":"{}"}}"#, viewer.trim()),
    );
    assert_eq!(status, 201, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).unwrap();
    let session = session["session_token"].as_str().unwrap().to_owned();
    let (status, body) = http(
        port,
        "GET",
        "/v1/events?event_type=scim.user.*",
        &session,
        "",
    );
    assert_eq!(status, 200, "{body}");
    // ... and that search is itself in the history, by the viewing user
    loop {
        let (_, body) = http(
            port,
            "GET",
            "/v1/events?event_type=audit.log.searched",
            &audit,
            "",
        );
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        let by_viewer = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"]["id"] == "u-7" && e["actor"]["type"] == "user");
        if by_viewer {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(20),
            "the viewer's search was not recorded: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // a SIEM polls from the start and gets, once serve's integrator has signed them,
    // the events in log order with their indices, and a checkpoint to go on
    loop {
        let (status, body) = http(port, "GET", "/v1/events/stream?limit=1000", &audit, "");
        assert_eq!(status, 200, "{body}");
        let polled: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(polled["next"].as_str().unwrap().starts_with("k2."));
        let events = polled["events"].as_array().unwrap();
        if !events.is_empty() {
            let indices: Vec<u64> = events
                .iter()
                .map(|e| e["leaf_index"].as_u64().unwrap())
                .collect();
            assert_eq!(indices, (0..indices.len() as u64).collect::<Vec<_>>());
            assert_eq!(polled["tree_size"].as_u64(), Some(indices.len() as u64));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(30),
            "nothing was integrated and signed: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn scim_bench_measures_and_checks_the_concurrent_union() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&auditlog(
        dir.path(),
        &["bench", "scim", "--group-size", "300", "--rounds", "3"],
    ));
    for line in [
        "GET /Users/{id}",
        "GET /Users?filter=userName eq",
        "POST /Users",
        "PATCH group: add 100 members",
        "PATCH group: remove 100 members",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(line) && l.contains("p50") && l.contains("(3 requests)")),
            "{line} missing in\n{out}"
        );
    }
    assert!(
        out.contains("union complete (800 members checked)"),
        "{out}"
    );
    assert!(out.contains("peak RSS"), "{out}");
}

#[test]
fn query_runs_the_compliance_sql_on_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&auditlog(
        dir.path(),
        &["demo", "--events", "3000", "--tenants", "3", "--fresh"],
    ));
    let listed = stdout(&auditlog(dir.path(), &["query"]));
    assert!(
        listed.contains("who_did_what") && listed.contains("--param tenant_id=<string>"),
        "{listed}"
    );
    let event_volume = |format: &str| {
        stdout(&auditlog(
            dir.path(),
            &[
                "query",
                "event_volume",
                "-p",
                "from_dt=2020-01-01",
                "-p",
                "to_dt=2030-12-31",
                "--format",
                format,
            ],
        ))
    };
    let volume = event_volume("csv");
    let mut lines = volume.lines();
    assert_eq!(lines.next(), Some("tenant_id,dt,event_type,events"));
    // every unique event is counted once across tenants, days and types
    let total: usize = lines
        .map(|l| l.rsplit(',').next().unwrap().parse::<usize>().unwrap())
        .sum();
    // the same rows as JSON lines: one object per row (values as text), the same total
    let json_total: usize = event_volume("json")
        .lines()
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            for column in ["tenant_id", "dt", "event_type"] {
                assert!(row[column].is_string(), "{column} in {l}");
            }
            row["events"].as_str().unwrap().parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(json_total, total);
    assert!(total > 2_500 && total <= 3_000, "{total}");
    let o = auditlog(
        dir.path(),
        &[
            "query",
            "who_did_what",
            "-p",
            "tenant_id=tenant-0000",
            "-p",
            "from=yesterday",
            "-p",
            "to=2030-01-01",
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"yesterday\" is not a valid timestamp"));
    let o = auditlog(dir.path(), &["query", "who_did_what", "-p", "tenant_id=x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing parameter from"));
    let o = auditlog(dir.path(), &["query", "nope"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("the queries are: who_did_what"));
}

fn billing_event(n: usize, payload: serde_json::Value) -> String {
    serde_json::json!({
        "version": "0", "id": format!("bus-b{n}"), "detail-type": "billing.invoice.paid", "source": "billing",
        "account": "111122223333", "time": "2026-11-21T10:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": {"metadata": {
            "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{:012}", 500 + n), "tenant_id": "acme",
            "event_type": "billing.invoice.paid", "schema_version": 1,
            "occurred_at": "2026-11-21T10:00:00Z", "producer": "billing",
            "actor": {"type": "service", "id": "billing"}},
            "payload": payload}
    })
    .to_string()
}

/// A team ships a new event type before its schema: the events are quarantined as
/// unknown_schema; the schema file is checked, added to the schema directory, and a
/// redrive brings the events into the log; a second redrive changes nothing.
#[test]
fn quarantine_redrive_after_adding_a_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n{}\n{{broken\n",
            billing_event(1, serde_json::json!({"amount": 10})),
            billing_event(2, serde_json::json!({"amount": 25}))
        ),
    )
    .unwrap();
    stdout(&auditlog(&data, &["ingest", input.to_str().unwrap()]));
    let listed = stdout(&auditlog(&data, &["quarantine", "list"]));
    assert!(
        listed.contains("3 quarantined (malformed_json 1, unknown_schema 2)"),
        "{listed}"
    );
    let json = stdout(&auditlog(
        &data,
        &["quarantine", "list", "--reason", "unknown_schema", "--json"],
    ));
    let keys: Vec<String> = json
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["reason_code"], "unknown_schema");
            v["key"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 2);
    let shown = stdout(&auditlog(&data, &["quarantine", "show", &keys[0]]));
    assert!(shown.contains("billing.invoice.paid"), "{shown}");
    fails_saying(
        &auditlog(&data, &["quarantine", "show", "quarantine/nope.json"]),
        "not a quarantine record",
    );

    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    let v1 = dir.path().join("billing.invoice.paid.v1.json");
    std::fs::write(&v1, r#"{"type": "object", "required": ["amount"]}"#).unwrap();
    let checked = stdout(&auditlog(
        &data,
        &["schemas", "check", v1.to_str().unwrap()],
    ));
    assert!(checked.contains("compiles"), "{checked}");
    assert!(
        checked.contains("2 quarantined events would now be accepted"),
        "{checked}"
    );
    std::fs::copy(&v1, schemas.join("billing.invoice.paid.v1.json")).unwrap();
    let s = schemas.to_str().unwrap();
    let list = stdout(&auditlog(&data, &["--schemas", s, "schemas", "list"]));
    assert!(
        list.lines().any(|l| l.starts_with("billing.invoice.paid")
            && l.ends_with("billing.invoice.paid.v1.json")),
        "{list}"
    );
    let redriven = stdout(&auditlog(
        &data,
        &[
            "--schemas",
            s,
            "quarantine",
            "redrive",
            "--reason",
            "unknown_schema",
        ],
    ));
    assert!(
        redriven.contains("redrove 2 quarantined messages: 2 accepted"),
        "{redriven}"
    );
    let shown = stdout(&auditlog(&data, &["show", "--tenant", "acme"]));
    assert!(shown.contains("2 of 2 records"), "{shown}");
    let again = stdout(&auditlog(&data, &["--schemas", s, "quarantine", "redrive"]));
    assert!(again.contains("0 accepted"), "{again}");
    assert!(again.contains("0 records removed"), "{again}");
    let listed = stdout(&auditlog(&data, &["quarantine", "list"]));
    assert!(
        listed.contains("1 quarantined (malformed_json 1)"),
        "{listed}"
    );
    // the embedded default's health: what is quarantined, what waits for compaction
    let status = auditlog(&data, &["status", "--check"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("quarantine, last 7 days: 1 (malformed_json 1)"),
        "{text}"
    );
    assert!(text.contains("1 messages quarantined"), "{text}");
    // the ingested and the redriven events, not compacted yet
    assert!(
        text.lines()
            .any(|l| l.starts_with("ingest tier: ") && l.contains(" files (")),
        "{text}"
    );
    fails_saying(
        &auditlog(&data, &["dlq", "list"]),
        "works on a deployed stack only",
    );

    // a v2 that needs a field v1 events lack is reported, and fails the check
    let v2 = dir.path().join("billing.invoice.paid.v2.json");
    std::fs::write(
        &v2,
        r#"{"type": "object", "required": ["amount", "currency"]}"#,
    )
    .unwrap();
    let o = auditlog(
        &data,
        &["--schemas", s, "schemas", "check", v2.to_str().unwrap()],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("rejects 2 of 2 stored billing.invoice.paid v1 events"),
        "{out}"
    );
    fails_saying(&o, "not backward compatible");
    // a file that is not a schema is refused with its name
    let bad = dir.path().join("billing.v1.json");
    std::fs::write(&bad, "{}").unwrap();
    fails_saying(
        &auditlog(&data, &["schemas", "check", bad.to_str().unwrap()]),
        "<event_type>.v<version>.json",
    );
}

/// A bounded soak: random faults in every store operation and crashes, then the log
/// is exact. (1,000,000 events at 5%: docs/reliability.md.)
#[test]
fn soak_under_faults_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&auditlog(
        dir.path(),
        &[
            "soak",
            "--events",
            "4000",
            "--fault-rate",
            "0.1",
            "--batch",
            "200",
            "--seed",
            "7",
        ],
    ));
    let last = out.lines().last().unwrap();
    assert_eq!(last, "lost 0, doubled 0", "{out}");
    let faults: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("faults injected: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(faults > 20, "faults were injected: {out}");
    assert!(out.contains("conflicts quarantined"), "{out}");
}

/// An outbox event that fails its own schema is dead-lettered by the relay and listed
/// by `auditlog outbox dead-letters` with its reason.
#[test]
fn outbox_dead_letters_are_listed_with_their_reason() {
    use adapters_local::{InProcessBus, SqliteScimStore};
    use scim::ScimStore;
    let dir = tempfile::tempdir().unwrap();
    fails_saying(
        &auditlog(dir.path(), &["outbox", "dead-letters"]),
        "no SCIM store",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store =
            std::sync::Arc::new(SqliteScimStore::open(&dir.path().join("scim.sqlite")).unwrap());
        let tenant = envelope::TenantId::parse("acme").unwrap();
        let now = chrono::Utc::now();
        let resource = scim::Resource {
            id: "u1".into(),
            kind: scim::ResourceKind::User,
            version: 1,
            created: now,
            last_modified: now,
            body: serde_json::json!({"userName": "ada@acme.test"}),
        };
        let event = scim::OutboxEntry {
            event_id: envelope::EventId::new_v7(),
            tenant_id: tenant.clone(),
            event_type: "scim.user.created".into(),
            occurred_at: now,
            actor: envelope::Actor {
                kind: envelope::ActorType::Idp,
                id: "okta".into(),
                name: None,
            },
            payload: serde_json::json!({"id": "u1", "active": "yes"}),
        };
        store.create(&tenant, &resource, &[event]).await.unwrap();
        let relay = scim::OutboxRelay::new(
            store.clone(),
            envelope::Publisher::new(
                InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES),
                envelope::SchemaRegistry::builtin().unwrap(),
                envelope::PublisherConfig::default(),
            ),
        );
        assert_eq!(relay.drain(10).await.unwrap().dead_lettered, 1);
    });
    let out = stdout(&auditlog(dir.path(), &["outbox", "dead-letters"]));
    assert!(out.contains("1 dead-lettered outbox events"), "{out}");
    assert!(
        out.contains("scim.user.created") && out.contains("userName"),
        "{out}"
    );
}

/// The tenant's compacted files, and a way to put one back as it was.
fn tenant_files(data: &std::path::Path, tenant: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let root = data.join("blobs/audit").join(format!("tenant_id={tenant}"));
    for day in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rewrite(path: &std::path::Path, change: impl FnOnce(&mut Vec<auditlog::AuditRecord>)) {
    let bytes = std::fs::read(path).unwrap();
    let tenant = envelope::TenantId::parse("tenant-0000").unwrap();
    let mut rows = auditlog::decode_parquet(bytes.into(), Some(&tenant)).unwrap();
    change(&mut rows);
    let out = auditlog::encode_parquet(&rows, auditlog::Tier::Tenant, 3).unwrap();
    std::fs::write(path, out).unwrap();
}

fn verify_fails_saying(data: &std::path::Path, expected: &str) -> String {
    let o = auditlog(data, &["verify", "--tenant", "tenant-0000"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(expected) && out.contains("NOT verified"),
        "{out}"
    );
    out
}

#[test]
fn verify_proves_the_stored_rows_and_names_each_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    stdout(&auditlog(
        data,
        &["demo", "--events", "800", "--tenants", "2"],
    ));
    let out = stdout(&auditlog(data, &["verify", "--tenant", "tenant-0000"]));
    assert!(out.contains("\nverified\n"), "{out}");
    let verified = figure(&out, "rows verified");
    assert!(verified > 300, "{out}");
    // the key was made on first run: private, and its public half next to it
    let key = std::fs::read_to_string(data.join("log-verifier.key")).unwrap();
    assert!(key.starts_with("auditlog.local+"), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("log-signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the signing key is readable by others: {mode:o}"
        );
    }
    let json = stdout(&auditlog(
        data,
        &["verify", "--tenant", "tenant-0000", "--json"],
    ));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["rows_verified"].as_u64(), Some(verified as u64));

    let file = tenant_files(data, "tenant-0000").remove(0);
    let original = std::fs::read(&file).unwrap();
    // an edited payload (its stored hash left as it was, as an editor would)
    rewrite(&file, |rows| rows[0].payload = r#"{"edited":true}"#.into());
    verify_fails_saying(data, "MODIFIED");
    // a deleted row
    std::fs::write(&file, &original).unwrap();
    rewrite(&file, |rows| {
        rows.remove(1);
    });
    verify_fails_saying(data, "MISSING: index");
    // the whole file deleted: one missing range
    std::fs::remove_file(&file).unwrap();
    verify_fails_saying(data, "MISSING: indices");
    // put back, everything verifies again
    std::fs::write(&file, &original).unwrap();
    stdout(&auditlog(data, &["verify", "--tenant", "tenant-0000"]));
    // another key is not trusted
    let other = data.join("other.key");
    std::fs::write(&other, "auditlog.local+00000000+AQ==\n").unwrap();
    let o = auditlog(
        data,
        &[
            "verify",
            "--tenant",
            "tenant-0000",
            "--key",
            other.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
}

#[test]
fn expiry_is_recorded_in_the_log_so_verify_tells_removed_from_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    stdout(&auditlog(
        data,
        &["demo", "--events", "800", "--tenants", "2"],
    ));
    let before = figure(
        &stdout(&auditlog(data, &["verify", "--tenant", "tenant-0000"])),
        "rows verified",
    );
    // the second oldest day: everything before it goes
    let mut days: Vec<String> = std::fs::read_dir(data.join("blobs/audit/tenant_id=tenant-0000"))
        .unwrap()
        .map(|d| {
            d.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_start_matches("dt=")
                .to_owned()
        })
        .collect();
    days.sort();
    assert!(days.len() >= 2, "{days:?}");
    let out = stdout(&auditlog(
        data,
        &[
            "expire",
            "--tenant",
            "tenant-0000",
            "--before",
            &days[1],
            "--policy",
            "retention:P90D",
        ],
    ));
    assert!(out.contains("retention:P90D"), "{out}");
    let oldest = format!("dt={}", days[0]);
    assert!(
        tenant_files(data, "tenant-0000")
            .iter()
            .all(|f| !f.to_string_lossy().contains(&oldest)),
        "the oldest day's files are gone"
    );
    let out = stdout(&auditlog(data, &["verify", "--tenant", "tenant-0000"]));
    let removed = figure(&out, "removed by policy");
    assert!(removed > 0, "{out}");
    assert_eq!(figure(&out, "rows verified") + removed, before, "{out}");
    // the other tenant's log is untouched
    stdout(&auditlog(data, &["verify", "--tenant", "tenant-0001"]));
    // a day deleted without an expiry is missing, not removed
    let file = tenant_files(data, "tenant-0000").remove(0);
    std::fs::remove_file(&file).unwrap();
    verify_fails_saying(data, "MISSING");
}

#[test]
fn retention_per_tenant_removes_only_what_is_past_it_and_the_log_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    stdout(&auditlog(
        data,
        &["demo", "--events", "600", "--tenants", "2"],
    ));
    // each tenant's oldest day, moved back to 2020 (as if written then)
    let mut verified = Vec::new();
    for t in ["tenant-0000", "tenant-0001"] {
        let root = data.join(format!("blobs/audit/tenant_id={t}"));
        let mut days: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|d| d.unwrap().path())
            .collect();
        days.sort();
        std::fs::rename(&days[0], root.join("dt=2020-01-01")).unwrap();
        verified.push(figure(
            &stdout(&auditlog(data, &["verify", "--tenant", t])),
            "rows verified",
        ));
    }
    fails_saying(
        &auditlog(
            data,
            &[
                "retention",
                "set",
                "--tenant",
                "tenant-0000",
                "--days",
                "30",
            ],
        ),
        "from 90 days to 10 years",
    );
    stdout(&auditlog(
        data,
        &[
            "retention",
            "set",
            "--tenant",
            "tenant-0000",
            "--days",
            "90",
        ],
    ));
    let shown = stdout(&auditlog(
        data,
        &["retention", "show", "--tenant", "tenant-0001"],
    ));
    assert!(shown.contains("2557 days (the default)"), "{shown}");
    // 90 days for tenant-0000; the default (7 years) keeps tenant-0001's 2020
    let out = stdout(&auditlog(data, &["retention", "apply"]));
    assert!(out.contains("of 1 tenants removed"), "{out}");
    assert!(
        !tenant_files(data, "tenant-0000")
            .iter()
            .any(|f| f.to_string_lossy().contains("dt=2020-01-01"))
    );
    assert!(
        tenant_files(data, "tenant-0001")
            .iter()
            .any(|f| f.to_string_lossy().contains("dt=2020-01-01"))
    );
    let out = stdout(&auditlog(data, &["verify", "--tenant", "tenant-0000"]));
    let removed = figure(&out, "removed by policy");
    assert!(removed > 0, "{out}");
    assert_eq!(
        figure(&out, "rows verified") + removed,
        verified[0],
        "{out}"
    );
    let out = stdout(&auditlog(data, &["verify", "--tenant", "tenant-0001"]));
    assert_eq!(figure(&out, "rows verified"), verified[1], "{out}");
}

#[test]
fn an_export_bundle_verifies_offline_and_names_what_was_changed_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    stdout(&auditlog(
        &data,
        &["demo", "--events", "600", "--tenants", "2"],
    ));
    let bundle = dir.path().join("bundle");
    let b = bundle.to_str().unwrap();
    let out = stdout(&auditlog(
        &data,
        &[
            "export",
            "--tenant",
            "tenant-0000",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--out",
            b,
        ],
    ));
    assert!(out.contains("exported"), "{out}");
    // offline: the data directory is gone, only the bundle (and a key kept apart) remain
    let key = dir.path().join("pinned.key");
    std::fs::copy(data.join("log-verifier.key"), &key).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let elsewhere = dir.path().join("nothing-here");
    let k = key.to_str().unwrap();
    let out = stdout(&auditlog(&elsewhere, &["verify", b, "--key", k]));
    assert!(out.contains("\nverified\n"), "{out}");
    let file = bundle.join("bundle.json");
    let original = std::fs::read_to_string(&file).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    let n = doc["rows"].as_array().unwrap().len();
    assert_eq!(figure(&out, "rows verified"), n);

    let fails = |changed: serde_json::Value, expected: &str| {
        std::fs::write(&file, changed.to_string()).unwrap();
        let o = auditlog(&elsewhere, &["verify", b, "--key", k]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(out.contains(expected), "{out}");
    };
    // an edited payload
    let mut edited = doc.clone();
    edited["rows"][3]["payload"] = serde_json::json!("{\"edited\":true}");
    fails(edited, "MODIFIED");
    // a row left out
    let mut fewer = doc.clone();
    fewer["rows"].as_array_mut().unwrap().remove(5);
    fails(fewer, "MISSING");
    // a checkpoint altered
    let mut altered = doc.clone();
    let cp = doc["checkpoint"].as_str().unwrap();
    let mut cp_lines: Vec<&str> = cp.split('\n').collect();
    let bumped = (cp_lines[1].parse::<u64>().unwrap() + 1).to_string();
    cp_lines[1] = &bumped;
    altered["checkpoint"] = cp_lines.join("\n").into();
    fails(altered, "BAD SIGNATURE");
    // the bundle file alone, as the audit API gives it, with the key kept apart
    std::fs::write(&file, &original).unwrap();
    let loose = dir.path().join("from-the-api.json");
    std::fs::copy(&file, &loose).unwrap();
    stdout(&auditlog(
        &elsewhere,
        &["verify", loose.to_str().unwrap(), "--key", k],
    ));
    // neither a bundle nor a tenant: a clear error
    let o = auditlog(&elsewhere, &["verify"]);
    assert!(!o.status.success());
}

/// A bundle carries only its window's entries and their range proof, not the whole
/// log; with `--consistency-from`, it also proves the log extends a pinned checkpoint.
#[test]
fn a_range_bundle_carries_only_its_window_and_proves_growth_from_a_pinned_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = |name: &str, events: String| {
        let file = dir.path().join(name);
        std::fs::write(&file, events).unwrap();
        stdout(&auditlog(&data, &["ingest", file.to_str().unwrap()]));
        stdout(&auditlog(&data, &["integrate"]));
    };
    ingest("first.jsonl", sample_events(40));
    let pinned = dir.path().join("pinned-40");
    std::fs::copy(data.join("blobs/trust/acme/checkpoint"), &pinned).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = chrono::Utc::now().to_rfc3339();
    // forty more events, of other ids
    ingest(
        "second.jsonl",
        sample_events(40)
            .replace("0192f4a0-7b3c-7d4e-8f00-", "0192f4a0-7b3c-7d4e-8f01-")
            .replace("\"bus-", "\"bus2-"),
    );
    let export = |out: &str, from: &str, extra: &[&str]| {
        let b = dir.path().join(out);
        let mut args = vec![
            "export",
            "--tenant",
            "acme",
            "--from",
            from,
            "--to",
            "2100-01-01",
            "--out",
        ];
        let path = b.to_str().unwrap().to_owned();
        args.push(&path);
        args.extend_from_slice(extra);
        stdout(&auditlog(&data, &args));
        b
    };
    // the second batch only: its 40 entries, not the log's 80
    let second = export("second", &between, &["--consistency-from", "40"]);
    let file = second.join("bundle.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["entries"].as_array().unwrap().len(), 40);
    assert_eq!(
        (doc["first_index"].as_u64(), doc["end_index"].as_u64()),
        (Some(40), Some(80))
    );
    let b = second.to_str().unwrap();
    let p = pinned.to_str().unwrap();
    let out = stdout(&auditlog(&data, &["verify", b, "--pinned", p]));
    assert!(out.contains("\nverified\n"), "{out}");
    assert_eq!(figure(&out, "rows verified"), 40, "{out}");
    // the whole log, without a consistency proof: --pinned says what to do
    let all = export("all", "2000-01-01", &[]);
    let o = auditlog(&data, &["verify", all.to_str().unwrap(), "--pinned", p]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--consistency-from 40"), "{err}");
    let out = stdout(&auditlog(&data, &["verify", all.to_str().unwrap()]));
    assert_eq!(figure(&out, "rows verified"), 80, "{out}");
    // an entry of the range rewritten: the range no longer proves into the checkpoint
    let mut forged = doc.clone();
    let entry = doc["entries"][0]
        .as_str()
        .unwrap()
        .replacen("8f01-", "8f02-", 1);
    forged["entries"][0] = entry.into();
    std::fs::write(&file, forged.to_string()).unwrap();
    let o = auditlog(&data, &["verify", b]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("HISTORY REWRITTEN"));
}
