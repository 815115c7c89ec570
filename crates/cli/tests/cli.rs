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

#[test]
fn bad_arguments_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = auditlog(dir.path(), &["show", "--tenant", "../etc"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--tenant"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = auditlog(dir.path(), &["show", "--tenant", "acme"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no audit data"));
    let o = auditlog(
        dir.path(),
        &["show", "--tenant", "acme", "--from", "yesterday"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("yesterday"));
    let o = auditlog(dir.path(), &["ingest", "/nonexistent/file.jsonl"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/file.jsonl"));
}
