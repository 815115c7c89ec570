//! template.yaml against the code: the audit rule routes a sample of every event type
//! the producers emit (nothing is silently unrouted), and the Athena named queries are
//! exactly the files in queries/ that the local engine runs in its tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

use auditlog_tests::template_audit_pattern;
use envelope::SchemaRegistry;
use envelope::pattern::EventPattern;
use serde_json::json;

fn template() -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A bus event as EventBridge delivers it to a rule, for one event type.
fn sample(event_type: &str, source: &str) -> serde_json::Value {
    json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event_type, "source": source, "account": "111122223333",
        "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": {"metadata": {"event_type": event_type, "tenant_id": "acme"}, "payload": {}}
    })
}

#[test]
fn the_audit_rule_routes_every_event_type_the_producers_emit() {
    let pattern = EventPattern::parse(&template_audit_pattern()).unwrap();
    let registry = SchemaRegistry::builtin().unwrap();
    let mut checked = 0;
    for (event_type, _) in registry.entries() {
        // app.generic stands for every app.<domain>.<verb>
        let types = if event_type == "app.generic" {
            vec![
                "app.document.shared",
                "app.session.login",
                "app.apikey.created",
            ]
        } else {
            vec![event_type]
        };
        for t in types {
            for source in [
                scim::relay::SCIM_SOURCE,
                audit_api::trail::AUDIT_API_SOURCE,
                "app.documents",
                "billing",
            ] {
                assert!(
                    pattern.matches(&sample(t, source)),
                    "{t} from {source} is not routed"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "{checked}");
    // including events of an account or region other than the stack's, and odd sources
    let mut other = sample("app.x.y", "");
    other["account"] = json!("999999999999");
    assert!(pattern.matches(&other));
}

#[test]
fn every_query_file_is_deployed_as_a_named_query_verbatim() {
    let doc = template();
    let resources = doc["Resources"].as_mapping().unwrap();
    let named: Vec<(String, String)> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Athena::NamedQuery"))
        .map(|r| {
            (
                r["Properties"]["Name"].as_str().unwrap().to_owned(),
                r["Properties"]["QueryString"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(root.join("queries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    for view in ["audit_events", "audit_events_all"] {
        files.push((
            format!("create_view_{view}"),
            root.join(format!("queries/ddl/{view}.sql")),
        ));
    }
    assert_eq!(named.len(), files.len(), "one named query per file");
    for (name, path) in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let deployed = named
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not a named query in template.yaml"));
        assert_eq!(
            deployed.1.trim_end(),
            text.trim_end(),
            "{name} differs from {}: run scripts/sync-named-queries.py",
            path.display()
        );
    }
}

#[test]
fn the_glue_tables_match_the_ddl_in_queries() {
    let doc = template();
    for (resource, ddl) in [
        ("AuditRecordsTable", "audit_records"),
        ("AuditRecordsAllTable", "audit_records_all"),
        ("AuditIngestTable", "audit_ingest"),
    ] {
        let input = &doc["Resources"][resource]["Properties"]["TableInput"];
        assert_eq!(input["Name"].as_str(), Some(ddl));
        let cols = |v: &serde_yaml::Value| -> Vec<String> {
            v.as_sequence()
                .unwrap()
                .iter()
                .map(|c| {
                    format!(
                        "{} {}",
                        c["Name"].as_str().unwrap(),
                        c["Type"].as_str().unwrap()
                    )
                })
                .collect()
        };
        let columns = cols(&input["StorageDescriptor"]["Columns"]);
        let partitions = cols(&input["PartitionKeys"]);
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../queries/ddl/{ddl}.sql")),
        )
        .unwrap();
        let sql = &text[text.find("CREATE").unwrap()..];
        let body = sql.split_once('(').unwrap().1.split_once(')').unwrap().0;
        let ddl_cols: Vec<String> = body
            .split(',')
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(columns, ddl_cols, "{resource}");
        let parts = sql
            .split_once("PARTITIONED BY (")
            .unwrap()
            .1
            .split_once(')')
            .unwrap()
            .0;
        let ddl_parts: Vec<String> = parts
            .split(',')
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(partitions, ddl_parts, "{resource}");
        let projected = input["Parameters"]["projection.enabled"].as_str() == Some("true");
        assert_eq!(
            projected,
            text.contains("'projection.enabled' = 'true'"),
            "{resource}"
        );
    }
}

/// The `!Sub` text of a CloudFormation value, with `${Param}` replaced by the
/// parameter's default (serde_yaml reads `!Sub "x"` as a tagged value).
fn resolve_sub(doc: &serde_yaml::Value, v: &serde_yaml::Value) -> String {
    let text = match v {
        serde_yaml::Value::Tagged(t) if t.tag == "!Sub" => t.value.as_str().unwrap().to_owned(),
        serde_yaml::Value::Tagged(t) if t.tag == "!Ref" => {
            format!("${{{}}}", t.value.as_str().unwrap())
        }
        other => other.as_str().unwrap().to_owned(),
    };
    let mut out = text.clone();
    for (name, p) in doc["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if let Some(d) = p["Default"].as_str() {
            out = out.replace(&format!("${{{name}}}"), d);
        }
    }
    out
}

/// Every event the subscriber accepts is visible to Athena: the projection range of
/// the Glue tables and of the DDL in queries/ is the subscriber's accepted window, and
/// the deployed subscriber is given the same first day.
#[test]
fn the_projection_range_shows_every_day_the_subscriber_accepts() {
    let doc = template();
    let window = auditlog::AcceptedWindow::default();
    let expected = window.projection_range();
    assert_eq!(expected, "2000-01-01,NOW+1DAYS");
    assert!(window.future_skew <= auditlog::MAX_FUTURE_SKEW);
    let mut tables = 0;
    for (resource, ddl) in [
        ("AuditRecordsTable", "audit_records"),
        ("AuditIngestTable", "audit_ingest"),
    ] {
        let params = &doc["Resources"][resource]["Properties"]["TableInput"]["Parameters"];
        assert_eq!(
            resolve_sub(&doc, &params["projection.dt.range"]),
            expected,
            "{resource}"
        );
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../queries/ddl/{ddl}.sql")),
        )
        .unwrap();
        assert!(
            text.contains(&format!("'projection.dt.range' = '{expected}'")),
            "{ddl}.sql"
        );
        tables += 1;
    }
    assert_eq!(tables, 2);
    let env =
        &doc["Resources"]["AuditSubscriberFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        resolve_sub(&doc, &env["ACCEPT_EARLIEST_DAY"]),
        window.earliest.to_string(),
        "the subscriber's first day is the projection's"
    );
    assert_eq!(
        doc["Parameters"]["EarliestEventDay"]["Default"].as_str(),
        Some(auditlog::DEFAULT_EARLIEST.to_string().as_str())
    );
}

/// Checks that a payload the state machine sends (its `.$` paths filled with sample
/// values) is a step the compactor's handler knows, and returns the step's name.
fn step_of(state: &str, payload: &serde_yaml::Value) -> Option<String> {
    let step = payload["step"].as_str()?.to_owned();
    let mut v: serde_json::Value = serde_yaml::from_value(payload.clone()).unwrap();
    let fill = serde_json::json!({
        "day": "2026-11-20", "attempt": {"prefix": "compaction/dt=2026-11-20/x/"},
        "task": 0, "unit": 0, "days": []
    });
    let obj = v.as_object_mut().unwrap();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        if let Some(field) = k.strip_suffix(".$") {
            obj.remove(&k);
            obj.insert(field.to_owned(), fill[field].clone());
        }
    }
    serde_json::from_value::<compactor::Step>(v.clone())
        .unwrap_or_else(|e| panic!("state {state}: {v} is not a compactor step: {e}"));
    Some(step)
}

/// The steps the states' Lambda payloads name, following `Next` from `start`.
fn walk(states: &serde_yaml::Value, start: &str, out: &mut Vec<String>) {
    let mut at = Some(start.to_owned());
    while let Some(name) = at {
        let state = &states[name.as_str()];
        assert!(!state.is_null(), "state {name} is missing");
        if state["Type"] == "Map" {
            let p = &state["ItemProcessor"];
            walk(&p["States"], p["StartAt"].as_str().unwrap(), out);
            if let Some(step) = step_of(&name, &state["ItemSelector"]) {
                out.push(format!("each {step}"));
            }
        }
        if state["Type"] == "Task" {
            if let Some(step) = step_of(&name, &state["Parameters"]["Payload"]) {
                out.push(step);
            }
            assert!(
                state["Retry"].as_sequence().is_some_and(|r| !r.is_empty()),
                "state {name} retries Lambda's transient errors"
            );
        }
        at = state["Next"].as_str().map(str::to_owned);
    }
}

/// Compaction fans out through Step Functions in the order the handler expects, each
/// day in its own child execution, every step of a day caught so one day's failure
/// never stops the others, and the summary last.
#[test]
fn the_compaction_state_machine_runs_the_steps_in_order() {
    let doc = template();
    let sm = &doc["Resources"]["CompactionStateMachine"]["Properties"];
    let def = &sm["Definition"];
    let mut steps = Vec::new();
    walk(&def["States"], def["StartAt"].as_str().unwrap(), &mut steps);
    assert_eq!(
        steps,
        [
            "days",
            "plan",
            "each count",
            "plan_fold",
            "each route",
            "each fold",
            "finish",
            "summary"
        ]
    );
    let days = &def["States"]["EachDay"];
    assert_eq!(
        days["ItemProcessor"]["ProcessorConfig"]["Mode"].as_str(),
        Some("DISTRIBUTED"),
        "one child execution per day: its history stays within the limit"
    );
    let inner = &days["ItemProcessor"]["States"];
    for (name, state) in inner.as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if ["Task", "Map"].contains(&state["Type"].as_str().unwrap()) {
            assert_eq!(
                state["Catch"][0]["Next"].as_str(),
                Some("DayFailed"),
                "{name} is caught per day"
            );
        }
    }
    assert_eq!(
        sm["Events"]["Hourly"]["Properties"]["Schedule"].as_str(),
        Some("rate(1 hour)")
    );
    // the function has no schedule of its own any more: the state machine drives it
    assert!(doc["Resources"]["CompactorFunction"]["Properties"]["Events"].is_null());
}

/// Least privilege for the customer-facing functions: they read the history prefixes,
/// write only exports, touch only the tenant directory's items of the SCIM table, and
/// never delete anything.
#[test]
fn the_audit_api_reads_the_history_and_writes_only_exports() {
    let doc = template();
    for function in ["AuditApiFunction", "AuditExportFunction"] {
        let f = &doc["Resources"][function]["Properties"];
        let text = serde_yaml::to_string(&f["Policies"]).unwrap();
        for forbidden in [
            "Delete",
            "s3:*",
            "dynamodb:*",
            "quarantine/",
            "DynamoDBCrudPolicy",
            "S3CrudPolicy",
        ] {
            assert!(
                !text.contains(forbidden),
                "{function} grants {forbidden}: {text}"
            );
        }
        let statements = f["Policies"][0]["Statement"].as_sequence().unwrap();
        for st in statements {
            let actions = serde_yaml::to_string(&st["Action"]).unwrap();
            let resources = serde_yaml::to_string(&st["Resource"]).unwrap();
            if actions.contains("s3:PutObject") {
                assert!(
                    resources.contains("/exports/*"),
                    "{function} writes outside exports/: {resources}"
                );
                assert!(!resources.contains("/audit/") && !resources.contains("/ingest/"));
            }
            if resources.contains("LeafIndexTable") {
                // proofs: which leaf an event is; every tenant's, so no key condition,
                // and read only
                assert_eq!(actions.trim(), "- dynamodb:BatchGetItem", "{function}");
                continue;
            }
            if actions.contains("dynamodb:") {
                let cond = serde_yaml::to_string(&st["Condition"]).unwrap();
                assert!(cond.contains("dynamodb:LeadingKeys"), "{function}: {cond}");
                assert!(!cond.contains("#User") && !cond.contains("#Group"));
            }
        }
        let env = &f["Environment"]["Variables"];
        for var in [
            "AUDIT_BUCKET",
            "DIRECTORY_TABLE",
            "EVENT_BUS_NAME",
            "AUDIT_SEAL_KEY",
        ] {
            assert!(!env[var].is_null(), "{function} lacks {var}");
        }
    }
    // the stream's lag is more than the subscriber's timeout
    let lag_min = doc["Parameters"]["PollLagSeconds"]["MinValue"]
        .as_u64()
        .unwrap();
    let timeout = doc["Resources"]["AuditSubscriberFunction"]["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    assert!(lag_min > timeout, "{lag_min} <= {timeout}");
    let default_lag = doc["Parameters"]["PollLagSeconds"]["Default"]
        .as_u64()
        .unwrap();
    assert_eq!(
        std::time::Duration::from_secs(default_lag),
        history::HistoryConfig::default().poll_lag
    );
}

/// One writer per tenant log: the integrator never runs twice at once and a dropped
/// scheduled run is not retried into an overlap; it writes only under trust/, signs
/// only with its key; the compactor folds only what it integrated.
#[test]
fn the_integrator_is_the_one_writer_of_the_tenant_logs() {
    let doc = template();
    let f = &doc["Resources"]["IntegratorFunction"]["Properties"];
    assert_eq!(f["ReservedConcurrentExecutions"].as_u64(), Some(1));
    assert_eq!(
        f["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64(),
        Some(0)
    );
    let timeout = f["Timeout"].as_u64().unwrap();
    assert!(timeout <= 900, "{timeout}");
    for var in [
        "AUDIT_BUCKET",
        "LEAF_INDEX_TABLE",
        "LOG_SIGNING_KEY_ID",
        "LOG_NAME",
        "CHECKPOINT_EVERY_SECONDS",
    ] {
        assert!(
            !f["Environment"]["Variables"][var].is_null(),
            "integrator lacks {var}"
        );
    }
    for st in f["Policies"][0]["Statement"].as_sequence().unwrap() {
        let actions = serde_yaml::to_string(&st["Action"]).unwrap();
        let resources = serde_yaml::to_string(&st["Resource"]).unwrap();
        if actions.contains("s3:PutObject") {
            assert!(
                resources.contains("/trust/*") && !resources.contains("/audit/"),
                "the integrator writes outside trust/: {resources}"
            );
        }
        if actions.contains("s3:DeleteObject") {
            // its log, and parts past their retention (after the log records it)
            assert!(
                resources.contains("/trust/*") || resources.contains("/audit/*"),
                "{resources}"
            );
            assert!(!resources.contains("/ingest/") && !resources.contains("quarantine/"));
        }
        if actions.contains("dynamodb:GetItem") {
            let cond = serde_yaml::to_string(&st["Condition"]).unwrap();
            assert!(
                cond.contains("T#*#RETENTION"),
                "only retention settings: {cond}"
            );
        }
        if actions.contains("kms:") {
            assert!(resources.contains("LogSigningKey"), "{resources}");
            assert!(!actions.contains("kms:*") && !actions.contains("Decrypt"));
        }
    }
    let key = &doc["Resources"]["LogSigningKey"]["Properties"];
    assert_eq!(key["KeySpec"].as_str(), Some("ECC_NIST_EDWARDS25519"));
    assert_eq!(key["KeyUsage"].as_str(), Some("SIGN_VERIFY"));
    for retained in ["LogSigningKey", "LeafIndexTable"] {
        assert_eq!(
            doc["Resources"][retained]["DeletionPolicy"].as_str(),
            Some("Retain"),
            "{retained}"
        );
    }
    let compactor = &doc["Resources"]["CompactorFunction"]["Properties"];
    assert_eq!(
        compactor["Environment"]["Variables"]["COMPACT_INTEGRATED_ONLY"].as_str(),
        Some("true")
    );
    // the trust prefix never expires (only old versions of rewritten objects)
    let rules = doc["Resources"]["AuditBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    let trust = rules
        .iter()
        .find(|r| r["Prefix"].as_str() == Some("trust/"))
        .expect("a lifecycle rule for trust/");
    assert!(trust["ExpirationInDays"].is_null());
    // retention is per tenant and recorded in its log: no lifecycle rule expires parts
    // (which would read as missing), and the schedule applies it daily
    let audit = rules
        .iter()
        .find(|r| r["Prefix"].as_str() == Some("audit/"))
        .expect("a lifecycle rule for audit/");
    assert!(audit["ExpirationInDays"].is_null(), "{audit:?}");
    let events = serde_yaml::to_string(&f["Events"]).unwrap();
    assert!(events.contains(r#"{"task": "retention"}"#), "{events}");
    let days = &doc["Parameters"]["AuditRetentionDays"];
    assert_eq!(
        (days["MinValue"].as_u64(), days["MaxValue"].as_u64()),
        (
            Some(u64::from(tenants::Retention::MIN_DAYS)),
            Some(u64::from(tenants::Retention::MAX_DAYS))
        )
    );
}
