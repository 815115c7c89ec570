//! `auditlog --stack NAME ...` against moto_server: the built binary finds everything
//! from a CloudFormation stack's outputs (a stack of the same output names as
//! template.yaml, over real moto resources), and each operator command acts on them:
//! tokens and policies in the SCIM table, the token events on the bus, quarantine in the
//! bucket, dead-letter queues, health, the compaction's state machine, and queries
//! through Athena. Where moto runs nothing (a Lambda's code, Athena's engine, a state
//! machine's tasks), the tests check the request the CLI sends and its handling of the
//! answers the services document, queued through moto's own API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Output;
use std::sync::Arc;

use adapters_aws::{DynamoDbDedupeStore, DynamoDbScimStore, S3BlobStore};
use auditlog::{FixedClock, InboundMessage, Subscriber, SubscriberConfig};
use auditlog_tests::{
    bus_with_audit_queue, cli_binary, moto, moto_api, new_dedupe_table, s3_client, sdk_config,
    unique,
};
use chrono::Utc;
use envelope::{SchemaRegistry, TenantId};
use scim::{PolicyStore, TenantDirectory};
use serde_json::json;

/// The resources moto's CloudFormation can make, with the outputs the CLI reads;
/// what it cannot (the bus's name, the Glue database, the Athena workgroup) comes in as
/// parameters, made beforehand through their own APIs.
const STACK: &str = r#"
Parameters:
  BusName: {Type: String}
  DatabaseName: {Type: String}
  WorkGroupName: {Type: String}
Resources:
  AuditBucket: {Type: AWS::S3::Bucket}
  AuditQueue: {Type: AWS::SQS::Queue}
  AuditDeadLetterQueue: {Type: AWS::SQS::Queue}
  RuleDeadLetterQueue: {Type: AWS::SQS::Queue}
  ScimTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]}
  RedriveFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code: {ZipFile: "def handler(e, c): return e"}
  IntegratorFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code: {ZipFile: "def handler(e, c): return e"}
  CompactionStateMachine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: !GetAtt Role.Arn
      DefinitionString: '{"StartAt": "Days", "States": {"Days": {"Type": "Pass", "End": true}}}'
Outputs:
  AuditBucketName: {Value: !Ref AuditBucket}
  ScimTableName: {Value: !Ref ScimTable}
  LeafIndexTableName: {Value: unused}
  EventBusName: {Value: !Ref BusName}
  ScimEndpoint: {Value: "https://scim.example.test/scim/v2"}
  AuditQueueUrl: {Value: !Ref AuditQueue}
  AuditDeadLetterQueueUrl: {Value: !Ref AuditDeadLetterQueue}
  RuleDeadLetterQueueUrl: {Value: !Ref RuleDeadLetterQueue}
  CompactionStateMachineArn: {Value: !Ref CompactionStateMachine}
  RedriveFunctionName: {Value: !Ref RedriveFunction}
  IntegratorFunctionName: {Value: !Ref IntegratorFunction}
  AthenaWorkGroupName: {Value: !Ref WorkGroupName}
  GlueDatabaseName: {Value: !Ref DatabaseName}
  LogName: {Value: audit.example}
"#;

/// moto's queue of Lambda answers is one for every function: the tests that queue
/// answers take turns.
static LAMBDA_ANSWERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Deployed {
    name: String,
    outputs: std::collections::BTreeMap<String, String>,
    /// Given as --data: nothing may be written there.
    data: tempfile::TempDir,
    /// The queue the bus's audit rule feeds (the template's rule, to see the CLI's events).
    audit_rule_queue: String,
    aws: aws_config::SdkConfig,
}

async fn deploy() -> Deployed {
    let aws = sdk_config().await;
    let (bus, audit_rule_queue) = bus_with_audit_queue(&aws).await;
    let database = unique("auditdb").replace('-', "_");
    aws_sdk_glue::Client::new(&aws)
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&database)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let workgroup = unique("wg");
    aws_sdk_athena::Client::new(&aws)
        .create_work_group()
        .name(&workgroup)
        .configuration(
            aws_sdk_athena::types::WorkGroupConfiguration::builder()
                .result_configuration(
                    aws_sdk_athena::types::ResultConfiguration::builder()
                        .output_location("s3://athena-results/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let name = unique("auditlog");
    let cf = aws_sdk_cloudformation::Client::new(&aws);
    let param = |k: &str, v: &str| {
        aws_sdk_cloudformation::types::Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    };
    cf.create_stack()
        .stack_name(&name)
        .template_body(STACK)
        .parameters(param("BusName", &bus))
        .parameters(param("DatabaseName", &database))
        .parameters(param("WorkGroupName", &workgroup))
        .send()
        .await
        .unwrap();
    let stack = cf.describe_stacks().stack_name(&name).send().await.unwrap();
    let stack = &stack.stacks()[0];
    assert_eq!(
        stack.stack_status().map(|s| s.as_str()),
        Some("CREATE_COMPLETE")
    );
    let outputs = stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().to_owned(),
                o.output_value().unwrap().to_owned(),
            )
        })
        .collect();
    Deployed {
        name,
        outputs,
        data: tempfile::tempdir().unwrap(),
        audit_rule_queue,
        aws,
    }
}

struct Run {
    ok: bool,
    code: Option<i32>,
    out: String,
    err: String,
}

fn run(args: &[&str], data: &std::path::Path) -> Run {
    let o: Output = std::process::Command::new(cli_binary())
        .arg("--data")
        .arg(data.join("unused"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AUDITLOG_STACK")
        .env_remove("AUDITLOG_STACK_OUTPUTS")
        .output()
        .unwrap();
    Run {
        ok: o.status.success(),
        code: o.status.code(),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl Deployed {
    fn cli(&self, args: &[&str]) -> Run {
        let mut all = vec!["--stack", &self.name];
        all.extend_from_slice(args);
        run(&all, self.data.path())
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.cli(args);
        assert!(r.ok, "auditlog {args:?} failed:\n{}{}", r.out, r.err);
        r
    }

    fn output(&self, key: &str) -> &str {
        &self.outputs[key]
    }

    fn scim(&self) -> DynamoDbScimStore {
        DynamoDbScimStore::new(
            aws_sdk_dynamodb::Client::new(&self.aws),
            self.output("ScimTableName"),
        )
    }

    fn blobs(&self) -> S3BlobStore {
        S3BlobStore::new(s3_client(&self.aws), self.output("AuditBucketName"))
    }

    fn nothing_written_locally(&self) {
        assert!(
            !self.data.path().join("unused").exists(),
            "a --stack command wrote to the data directory"
        );
    }

    /// The CLI's own audit events that reached the bus's audit rule.
    async fn events_on_the_bus(&self) -> Vec<serde_json::Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let mut out = Vec::new();
        loop {
            let r = sqs
                .receive_message()
                .queue_url(&self.audit_rule_queue)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if r.messages().is_empty() {
                return out;
            }
            for m in r.messages() {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(&self.audit_rule_queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// Onboarding on a deployed stack: a token for an IdP, in the records the SCIM Lambda
/// reads, with what to paste into the IdP's console; listing and revoking within the
/// tenant only; the compatibility policy; each change an audit event on the bus.
#[tokio::test]
async fn an_operator_onboards_a_tenant_and_its_idp_on_a_deployed_stack() {
    let d = deploy().await;
    let issued = d.ok(&["tokens", "issue", "--tenant", "acme", "--idp", "entra"]);
    let token = issued.out.trim().to_owned();
    assert!(token.starts_with("scim_"), "{}", issued.out);
    // what to paste into Entra's console: the stack's SCIM endpoint and the token
    assert!(issued.err.contains("Microsoft Entra ID"), "{}", issued.err);
    assert!(
        issued
            .err
            .contains("Tenant URL:    https://scim.example.test/scim/v2"),
        "{}",
        issued.err
    );
    assert!(issued.err.contains(&format!("Secret Token:  {token}")));
    // the SCIM Lambda's directory authenticates it, for acme
    let hash = scim::tenants::token_hash(&token);
    let c = d.scim().credential(&hash).await.unwrap().unwrap();
    assert_eq!(c.tenant.as_str(), "acme");
    assert_eq!(c.idp, "entra");
    let okta = d.ok(&[
        "tokens",
        "issue",
        "--tenant",
        "globex",
        "--idp",
        "okta",
        "--expires-days",
        "30",
    ]);
    assert!(okta.err.contains("SCIM connector base URL"), "{}", okta.err);
    // each tenant lists its own tokens only
    let acme = d.ok(&["tokens", "list", "--tenant", "acme"]);
    assert!(acme.out.contains(&hash), "{}", acme.out);
    assert_eq!(acme.out.lines().count(), 1, "{}", acme.out);
    let globex = d.ok(&["tokens", "list", "--tenant", "globex"]);
    assert!(!globex.out.contains(&hash), "{}", globex.out);
    assert!(!globex.out.contains("expires=never"), "{}", globex.out);
    // another tenant cannot revoke it
    let wrong = d.cli(&["tokens", "revoke", "--tenant", "globex", &token]);
    assert!(!wrong.ok);
    assert!(
        wrong.err.contains("tenant globex has no token"),
        "{}",
        wrong.err
    );
    assert!(d.scim().credential(&hash).await.unwrap().is_some());
    d.ok(&["tokens", "revoke", "--tenant", "acme", &token]);
    assert!(d.scim().credential(&hash).await.unwrap().is_none());
    // the policy, as the SCIM Lambda reads it
    d.ok(&[
        "policy",
        "set",
        "--tenant",
        "acme",
        r#"{"unknown_members": "skip"}"#,
    ]);
    let acme_id = TenantId::parse("acme").unwrap();
    let p = d.scim().policy(&acme_id).await.unwrap();
    assert_eq!(serde_json::to_value(p).unwrap()["unknown_members"], "skip");
    let shown = d.ok(&["policy", "show", "--tenant", "acme"]);
    assert!(
        shown.out.contains(r#""unknown_members": "skip""#),
        "{}",
        shown.out
    );
    let bad = d.cli(&["policy", "set", "--tenant", "acme", "{not json"]);
    assert!(!bad.ok && bad.err.contains("policy JSON"), "{}", bad.err);
    // retention, where the integrator reads it; applying it is the integrator's run
    d.ok(&["retention", "set", "--tenant", "acme", "--days", "400"]);
    let dir = adapters_aws::DynamoDbTenantDirectory::new(
        aws_sdk_dynamodb::Client::new(&d.aws),
        d.output("ScimTableName"),
    );
    let r = tenants::RetentionSettings::retention(&dir, &acme_id)
        .await
        .unwrap();
    assert_eq!(r.map(|r| r.get()), Some(400));
    let short = d.cli(&["retention", "set", "--tenant", "acme", "--days", "30"]);
    assert!(!short.ok, "under 90 days is refused");
    let globex_retention = d.ok(&["retention", "show", "--tenant", "globex"]);
    assert!(
        globex_retention.out.contains("AuditRetentionDays"),
        "{}",
        globex_retention.out
    );
    let lambda = LAMBDA_ANSWERS.lock().await;
    moto_api(
        "/moto-api/config",
        &json!({"lambda": {"use_docker": false}}),
    );
    let echoed = d.cli(&["retention", "apply"]);
    assert!(
        !echoed.ok
            && echoed
                .err
                .contains(r#"the integrator answered {"task":"retention"}"#),
        "the request the integrator got: {}",
        echoed.err
    );
    // the integrator's answer (a RetentionReport)
    moto_api(
        "/moto-api/static/lambda-simple/response",
        &json!({"results": [json!({"tenants": 2, "expired_tenants": 1, "files": 3, "rows": 40, "ranges": 1}).to_string()]}),
    );
    let applied = d.ok(&["retention", "apply"]);
    assert!(
        applied
            .out
            .contains("retention over 2 tenants: 3 files (40 rows) of 1 tenants removed"),
        "{}",
        applied.out
    );
    // an integration run now, by the integrator (the logs' one writer)
    moto_api(
        "/moto-api/static/lambda-simple/response",
        &json!({"results": [json!({"files": 4, "added": 120, "duplicates": 0, "conflicts": 0,
            "tenants": 2, "checkpoints": 2, "backfilled": 0}).to_string()]}),
    );
    let integrated = d.ok(&["integrate"]);
    assert!(
        integrated
            .out
            .contains("integrated 4 ingest files: 120 new leaves"),
        "{}",
        integrated.out
    );
    drop(lambda);
    // the three token changes are audit events on the stack's bus, for their tenants
    let events = d.events_on_the_bus().await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["detail"]["metadata"]["event_type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                e["detail"]["metadata"]["tenant_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    for want in [
        ("audit.token.created", "acme"),
        ("audit.token.created", "globex"),
        ("audit.token.revoked", "acme"),
    ] {
        assert!(
            seen.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {seen:?}"
        );
    }
    // what makes no sense on a stack says so, and what to do instead
    let viewer = d.cli(&["tokens", "viewer", "--tenant", "acme", "--user", "u1"]);
    assert!(
        !viewer.ok && viewer.err.contains("ViewerTokenSecretArn"),
        "{}",
        viewer.err
    );
    let demo = d.cli(&["demo"]);
    assert!(
        !demo.ok && demo.err.contains("embedded default only"),
        "{}",
        demo.err
    );
    // the same outputs from a file, for a deployment without CloudFormation
    let file = d.data.path().join("outputs.json");
    std::fs::write(&file, serde_json::to_string(&d.outputs).unwrap()).unwrap();
    let from_file = run(
        &[
            "--stack-outputs",
            file.to_str().unwrap(),
            "policy",
            "show",
            "--tenant",
            "acme",
        ],
        d.data.path(),
    );
    assert!(from_file.ok, "{}", from_file.err);
    assert!(from_file.out.contains(r#""unknown_members": "skip""#));
    // a stack that is not there is a clear error
    let missing = run(
        &[
            "--stack",
            "no-such-stack",
            "tokens",
            "list",
            "--tenant",
            "acme",
        ],
        d.data.path(),
    );
    assert!(!missing.ok);
    assert!(
        missing.err.contains("describing stack no-such-stack"),
        "{}",
        missing.err
    );
    d.nothing_written_locally();
}

/// What the subscriber quarantines and what waits in the ingest tier, as the deployed
/// subscriber leaves them in the stack's bucket.
async fn traffic(d: &Deployed) {
    let ddb = aws_sdk_dynamodb::Client::new(&d.aws);
    let sub = Subscriber::new(
        DynamoDbDedupeStore::new(ddb.clone(), new_dedupe_table(&ddb).await),
        d.blobs(),
        FixedClock::new(Utc::now()),
        Arc::new(SchemaRegistry::builtin().unwrap()),
        SubscriberConfig::default(),
    );
    let three_days_ago = (Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let event = |n: usize, event_type: &str| {
        json!({
            "version": "0", "id": format!("bus-{n}"), "detail-type": event_type, "source": "billing",
            "account": "111122223333", "time": three_days_ago, "region": "us-east-1", "resources": [],
            "detail": {"metadata": {
                "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{n:012}"), "tenant_id": "acme",
                "event_type": event_type, "schema_version": 1,
                "occurred_at": three_days_ago, "producer": "billing",
                "actor": {"type": "service", "id": "billing"}},
                "payload": {"action": "view", "amount": n}}
        })
        .to_string()
    };
    let mut messages: Vec<InboundMessage> = (0..2)
        .map(|n| InboundMessage {
            message_id: format!("q{n}"),
            body: event(n, "billing.invoice.paid"),
        })
        .collect();
    messages.push(InboundMessage {
        message_id: "bad".into(),
        body: "{not json".into(),
    });
    for n in 10..14 {
        messages.push(InboundMessage {
            message_id: format!("ok{n}"),
            body: event(n, "app.invoice.viewed"),
        });
    }
    let out = sub.handle(&messages).await;
    assert_eq!(out.stats.quarantined, 3, "{:?}", out.stats);
}

/// Health, quarantine and dead letters on a deployed stack: `status` reads the queues,
/// the bucket and the compaction's executions, and says what needs
/// attention; `dlq redrive` moves dead letters back with the depths before and after;
/// `quarantine` lists from the bucket and redrives through the stack's function.
#[tokio::test]
async fn an_operator_sees_the_pipelines_health_and_redrives_on_a_deployed_stack() {
    let d = deploy().await;
    traffic(&d).await;
    let sqs = aws_sdk_sqs::Client::new(&d.aws);
    for (queue, n) in [("AuditDeadLetterQueueUrl", 3), ("AuditQueueUrl", 2)] {
        for i in 0..n {
            sqs.send_message()
                .queue_url(d.output(queue))
                .message_body(format!("{{\"n\": {i}}}"))
                .send()
                .await
                .unwrap();
        }
    }
    let s = d.cli(&["status"]);
    assert!(s.ok, "{}{}", s.out, s.err);
    let line = |prefix: &str| {
        s.out
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in\n{}", s.out))
            .to_owned()
    };
    assert!(line("audit queue").contains("2 messages"), "{}", s.out);
    // the oldest message's age is CloudWatch's, whose protocol (RPCv2 CBOR) moto does not
    // speak: the depths still show, with why the age is unknown
    assert!(
        line("audit queue").contains("oldest: unknown (CloudWatch, queue "),
        "{}",
        s.out
    );
    assert!(
        line("audit dead letters").contains("3 messages"),
        "{}",
        s.out
    );
    assert!(
        line("rule dead letters").contains("0 messages"),
        "{}",
        s.out
    );
    assert!(
        line("quarantine, last 7 days: 3").contains("unknown_schema 2"),
        "{}",
        s.out
    );
    let oldest = (Utc::now() - chrono::Duration::days(3)).date_naive();
    assert!(
        line("ingest tier").contains(&format!("oldest day {oldest}")),
        "{}",
        s.out
    );
    assert!(line("last compaction").contains("none yet"), "{}", s.out);
    for attention in [
        "the audit dead-letter queue holds 3 messages",
        "3 messages quarantined",
        &format!("the ingest tier still holds {oldest}, a closed day"),
        "the compaction has never run",
    ] {
        assert!(s.out.contains(attention), "{attention:?} in\n{}", s.out);
    }
    assert_eq!(d.cli(&["status", "--check"]).code, Some(1));

    // dead letters back onto the audit queue, with the counts
    let moved = d.ok(&["dlq", "redrive", "--queue", "audit"]);
    assert!(
        moved
            .out
            .contains("moved 3 messages from the audit dead-letter queue")
            && moved
                .out
                .contains("dead-letter queue 3 -> 0, audit queue 2 -> 5"),
        "{}",
        moved.out
    );
    let list = d.ok(&["dlq", "list"]);
    assert!(
        list.out.contains("audit dead letters         0"),
        "{}",
        list.out
    );
    assert!(
        list.out.contains("audit queue                5"),
        "{}",
        list.out
    );
    let none = d.ok(&["dlq", "redrive", "--queue", "rule"]);
    assert!(none.out.contains("moved 0 messages"), "{}", none.out);

    // quarantine, from the bucket
    let q = d.ok(&["quarantine", "list", "--reason", "unknown_schema"]);
    assert!(
        q.out.contains("2 quarantined (unknown_schema 2)"),
        "{}",
        q.out
    );
    let key = q
        .out
        .split_whitespace()
        .find(|w| w.starts_with("quarantine/"))
        .unwrap();
    let shown = d.ok(&["quarantine", "show", key]);
    assert!(shown.out.contains("billing.invoice.paid"), "{}", shown.out);
    // the redrive is the stack's function: moto runs no code, it answers with the
    // request, which is not a report; the CLI names what it got
    let lambda = LAMBDA_ANSWERS.lock().await;
    moto_api(
        "/moto-api/config",
        &json!({"lambda": {"use_docker": false}}),
    );
    let echoed = d.cli(&["quarantine", "redrive", "--reason", "unknown_schema"]);
    assert!(!echoed.ok);
    assert!(
        echoed.err.contains(r#""source":"quarantine""#)
            && echoed.err.contains(r#""reason":"unknown_schema""#),
        "the request the function got: {}",
        echoed.err
    );
    // the function's documented answer (functions/redrive: a RedriveReport)
    let report = json!({"selected": 2, "accepted": 2, "duplicates": 0,
        "still_quarantined": {}, "retry_later": 0, "removed": 2});
    moto_api(
        "/moto-api/static/lambda-simple/response",
        &json!({"results": [report.to_string()]}),
    );
    let redriven = d.ok(&["quarantine", "redrive", "--reason", "unknown_schema"]);
    assert!(
        redriven
            .out
            .contains("redrove 2 quarantined messages: 2 accepted, 0 already stored"),
        "{}",
        redriven.out
    );
    let transient = json!({"selected": 2, "accepted": 1, "duplicates": 0,
        "still_quarantined": {}, "retry_later": 1, "removed": 1});
    moto_api(
        "/moto-api/static/lambda-simple/response",
        &json!({"results": [transient.to_string()]}),
    );
    let again = d.cli(&["quarantine", "redrive"]);
    assert!(
        !again.ok && again.err.contains("run the redrive again"),
        "{}",
        again.err
    );
    drop(lambda);

    // compaction: started on the state machine; moto's executions stay RUNNING, so the
    // CLI's wait gives up with where to look, and a second run joins the first
    let started = d.ok(&["compact", "--no-wait"]);
    let arn = started.out.trim().to_owned();
    assert!(arn.contains(":execution:"), "{}", started.out);
    let joined = d.cli(&["compact", "--timeout-secs", "1", "--poll-secs", "1"]);
    assert!(!joined.ok);
    assert!(joined.err.contains("already running"), "{}", joined.err);
    assert!(
        joined.err.contains("is still running after 1 s"),
        "{}",
        joined.err
    );
    let sfn = aws_sdk_sfn::Client::new(&d.aws);
    let executions = sfn
        .list_executions()
        .state_machine_arn(d.output("CompactionStateMachineArn"))
        .send()
        .await
        .unwrap();
    assert_eq!(executions.executions().len(), 1, "one compaction at a time");
    let running = d.ok(&["status"]);
    assert!(
        running.out.contains("last compaction: RUNNING"),
        "{}",
        running.out
    );
    sfn.stop_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let stopped = d.ok(&["status"]);
    assert!(
        stopped.out.contains("the last compaction ABORTED"),
        "{}",
        stopped.out
    );
    d.nothing_written_locally();
}

/// A compliance query through the stack's Athena workgroup: the SQL is what
/// `--show-sql` prints, the view it reads is created first when the catalog lacks it
/// (and only then), and the rows Athena answers print as the local runner prints them.
#[tokio::test]
async fn an_operator_runs_a_compliance_query_through_athena() {
    let d = deploy().await;
    let params = [
        "-p",
        "tenant_id=acme",
        "-p",
        "from=2026-11-01",
        "-p",
        "to=2026-11-23",
    ];
    let mut show = vec!["query", "who_did_what"];
    show.extend(params);
    show.push("--show-sql");
    let sql = d.ok(&show).out;
    assert!(sql.contains("'acme'"), "{sql}");
    // Athena's answer: a header row, then the rows (a null has no VarCharValue)
    let cell = |v: Option<&str>| v.map_or(json!({}), |v| json!({"VarCharValue": v}));
    let header = ["occurred_at", "actor_id", "action"];
    let rows = [
        [
            Some("2026-11-02 10:00:00.000"),
            Some("okta"),
            Some("created"),
        ],
        [Some("2026-11-03 11:00:00.000"), Some("a,b"), None],
    ];
    let mut athena_rows = vec![json!({"Data": header.map(|h| cell(Some(h)))})];
    athena_rows.extend(rows.iter().map(|r| json!({"Data": r.map(cell)})));
    let column_info: Vec<_> = header
        .iter()
        .map(|h| json!({"Name": h, "Type": "varchar"}))
        .collect();
    // moto hands queued answers out as executions start, one each
    let answer = json!({"rows": athena_rows, "column_info": column_info});
    let ddl_answer = json!({"rows": [], "column_info": []});
    moto_api(
        "/moto-api/static/athena/query-results",
        &json!({"results": [ddl_answer, answer]}),
    );
    let mut csv = vec!["query", "who_did_what"];
    csv.extend(params);
    csv.extend(["--format", "csv"]);
    let r = d.ok(&csv);
    assert_eq!(
        r.out,
        "occurred_at,actor_id,action\n2026-11-02 10:00:00.000,okta,created\n2026-11-03 11:00:00.000,\"a,b\",NULL\n"
    );
    assert!(
        r.err.contains("creating it (queries/ddl/audit_events.sql)"),
        "{}",
        r.err
    );
    assert!(r.err.contains("query: done in"), "{}", r.err);
    // what the workgroup ran: the view's DDL, then the bound query itself
    let athena = aws_sdk_athena::Client::new(&d.aws);
    let ran = |athena: aws_sdk_athena::Client, wg: String| async move {
        let ids = athena
            .list_query_executions()
            .work_group(wg)
            .send()
            .await
            .unwrap()
            .query_execution_ids()
            .to_vec();
        let mut queries = Vec::new();
        for id in ids {
            let q = athena
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .unwrap();
            queries.push(q.query_execution().unwrap().query().unwrap().to_owned());
        }
        queries
    };
    let wg = d.output("AthenaWorkGroupName").to_owned();
    let queries = ran(athena.clone(), wg.clone()).await;
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert!(
        queries
            .iter()
            .any(|q| q.contains("CREATE OR REPLACE VIEW audit_events AS")),
        "{queries:?}"
    );
    assert!(queries.iter().any(|q| q == sql.trim()), "{queries:?}");
    // once the view is in the catalog, a query runs alone
    aws_sdk_glue::Client::new(&d.aws)
        .create_table()
        .database_name(d.output("GlueDatabaseName"))
        .table_input(
            aws_sdk_glue::types::TableInput::builder()
                .name("audit_events")
                .table_type("VIRTUAL_VIEW")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    moto_api(
        "/moto-api/static/athena/query-results",
        &json!({"results": [answer]}),
    );
    let mut json_args = vec!["query", "who_did_what"];
    json_args.extend(params);
    json_args.extend(["--format", "json"]);
    let j = d.ok(&json_args);
    let lines: Vec<serde_json::Value> = j
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["actor_id"], "a,b");
    assert!(lines[1]["action"].is_null());
    assert!(!j.err.contains("creating it"), "{}", j.err);
    assert_eq!(ran(athena, wg).await.len(), 3);
    // a parameter the query does not declare is refused before anything runs
    let bad = d.cli(&["query", "who_did_what", "-p", "tenant=acme"]);
    assert!(!bad.ok && bad.err.contains("tenant"), "{}", bad.err);
    d.nothing_written_locally();
}
