//! Test harness for the workspace integration tests: a `moto_server` started on a free
//! 127.0.0.1 port (and stopped when the test process exits), AWS SDK clients pointed at
//! it, and the conformance suites that every adapter of a port must pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod audit_http;
pub mod conformance;
pub mod idp_replay;
pub mod scim_http;
pub mod scim_schema;
pub mod scim_suite;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub struct MotoServer {
    pub endpoint: String,
    _child: Child,
}

static MOTO: OnceLock<MotoServer> = OnceLock::new();

/// The moto_server shared by the tests of this process, started on first use.
pub fn moto() -> &'static MotoServer {
    MOTO.get_or_init(MotoServer::start)
}

impl MotoServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        // The shell wrapper stops moto when our stdin pipe closes, i.e. when this test
        // process exits however it exits; a static's destructor would never run.
        // MOTO_LOG=<file> keeps moto's own log (tracebacks of its 500s) for debugging.
        let log = std::env::var("MOTO_LOG").unwrap_or_else(|_| "/dev/null".to_owned());
        let script =
            format!("{bin} -H 127.0.0.1 -p {port} >{log} 2>&1 & pid=$!; read _; kill $pid");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawning sh for moto_server");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "moto_server exited ({status}); install it with: pip install 'moto[server]>=5.2.5'"
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server did not listen on 127.0.0.1:{port} within 60 s; is moto[server]>=5.2.5 installed?"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }
}

/// POSTs JSON to moto's own API (`/moto-api/...`): its configuration, and the answers
/// it is to give where it does not run the real thing (Athena's rows, a Lambda's answer).
pub fn moto_api(path: &str, body: &serde_json::Value) {
    use std::io::Read;
    let addr = moto().endpoint.trim_start_matches("http://").to_owned();
    let body = body.to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    assert!(status.starts_with('2'), "moto-api {path}: {answer}");
}

/// The `auditlog` binary, for tests of the command against a real wire protocol. The
/// workspace's test run (`bash scripts/test`, `cargo test --workspace`) builds it beside
/// the test binaries; a run of this package alone needs `cargo build -p auditlog-cli`.
pub fn cli_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary> -> target/<profile>/auditlog
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| d.join("auditlog"))
        .expect("a target directory");
    assert!(
        bin.exists(),
        "{} is not built: run `bash scripts/test`, or `cargo build -p auditlog-cli` first",
        bin.display()
    );
    bin
}

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

pub fn s3_client(c: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(c)
            .force_path_style(true)
            .build(),
    )
}

/// An HTTP client for the SDK that answers the first `n` requests of one DynamoDB
/// operation as DynamoDB does when a partition is over its throughput (HTTP 400,
/// `ProvisionedThroughputExceededException`), before they reach the server, and passes
/// everything else to the real client: throttling in the wire path, so the SDK's own
/// retries, its error parsing and the adapter's classification are all exercised.
#[derive(Debug, Clone)]
pub struct ThrottlingHttpClient {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    operation: &'static str,
    left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    unprocessed: bool,
}

impl ThrottlingHttpClient {
    /// Throttles the next `n` calls of `operation` (`PutItem`, `GetItem`, ...).
    pub fn new(operation: &'static str, n: usize) -> Self {
        Self {
            // moto_server speaks plain HTTP on 127.0.0.1
            inner: aws_smithy_http_client::Builder::new().build_http(),
            operation,
            left: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(n)),
            unprocessed: false,
        }
    }

    /// Answers the next `n` `BatchWriteItem` calls as DynamoDB does under throttling
    /// of a batch: HTTP 200 with every item of the request back as `UnprocessedItems`.
    pub fn unprocessed_batch_writes(n: usize) -> Self {
        Self {
            unprocessed: true,
            ..Self::new("BatchWriteItem", n)
        }
    }

    /// Throttled answers still to give.
    pub fn left(&self) -> usize {
        self.left.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct ThrottlingConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    target: String,
    left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    unprocessed: bool,
}

impl aws_smithy_runtime_api::client::http::HttpClient for ThrottlingHttpClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(ThrottlingConnector {
            inner: self.inner.http_connector(settings, components),
            target: format!("DynamoDB_20120810.{}", self.operation),
            left: self.left.clone(),
            unprocessed: self.unprocessed,
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for ThrottlingConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use std::sync::atomic::Ordering;
        let ours = request.headers().get("x-amz-target") == Some(self.target.as_str());
        if ours
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            let (status, body) = if self.unprocessed {
                let sent: serde_json::Value = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default();
                let items = sent["RequestItems"].clone();
                (
                    200,
                    serde_json::json!({"UnprocessedItems": items}).to_string(),
                )
            } else {
                (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded (injected)"}"#.to_owned())
            };
            let mut response = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
                aws_smithy_types::body::SdkBody::from(body),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            return aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(response));
        }
        self.inner.call(request)
    }
}

/// A DynamoDB client whose requests go through `http`, with the SDK's standard retries
/// (a few attempts, short backoff so tests stay quick).
pub fn dynamodb_client_with(c: &SdkConfig, http: ThrottlingHttpClient) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(c)
            .http_client(http)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(5))
                    .with_max_backoff(std::time::Duration::from_millis(20)),
            )
            .build(),
    )
}

/// A name no other test uses: lowercase, valid for buckets, tables, queues and buses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

pub async fn new_bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique("audit");
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

pub async fn new_dedupe_table(ddb: &aws_sdk_dynamodb::Client) -> String {
    let name = unique("dedupe");
    adapters_aws::DynamoDbDedupeStore::create_table(ddb, &name)
        .await
        .unwrap();
    name
}

/// A fresh SCIM table (users, groups, memberships, outbox) on moto.
pub async fn new_scim_table(ddb: &aws_sdk_dynamodb::Client) -> String {
    let name = unique("scim");
    adapters_aws::DynamoDbScimStore::create_table(ddb, &name)
        .await
        .unwrap();
    name
}

/// The audit rule's event pattern as template.yaml deploys it, as JSON text.
pub fn template_audit_pattern() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pattern = &doc["Resources"]["AuditRule"]["Properties"]["EventPattern"];
    let json: serde_json::Value = serde_yaml::from_value(pattern.clone()).unwrap();
    json.to_string()
}

/// A fresh event bus whose one rule (template.yaml's audit rule, read from the template)
/// targets a fresh SQS queue. Returns (bus name, queue URL).
pub async fn bus_with_audit_queue(c: &SdkConfig) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(c);
    let eb = aws_sdk_eventbridge::Client::new(c);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("audit"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let bus = unique("bus");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    eb.put_rule()
        .name("audit-all")
        .event_bus_name(&bus)
        .event_pattern(template_audit_pattern())
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("audit-all")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("audit-queue")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (bus, queue_url)
}

/// KMS as far as an Ed25519 signing key goes, which moto cannot offer (its `KeySpec`s
/// stop at the NIST and secp256k1 curves): answers `GetPublicKey` and `Sign` as the KMS
/// API reference documents them, signing with a local Ed25519 key, and keeps every
/// request body so a test can check what the client sent.
#[derive(Debug, Clone)]
pub struct KmsEd25519 {
    pub key: ed25519_dalek::SigningKey,
    /// The `KeySpec` `GetPublicKey` reports (`ECC_NIST_EDWARDS25519` for a right key).
    pub key_spec: &'static str,
    /// Bytes cut from each signature (0 for a right one).
    pub truncate: usize,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl KmsEd25519 {
    pub fn new() -> Self {
        KmsEd25519 {
            key: ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
            key_spec: "ECC_NIST_EDWARDS25519",
            truncate: 0,
            requests: Default::default(),
        }
    }

    pub fn client(&self, c: &SdkConfig) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(c)
                .http_client(self.clone())
                .build(),
        )
    }
}

impl Default for KmsEd25519 {
    fn default() -> Self {
        Self::new()
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for KmsEd25519 {
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(self.clone())
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for KmsEd25519 {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let sent: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        self.requests
            .lock()
            .unwrap()
            .push((target.clone(), sent.clone()));
        let (status, body) = match target.as_str() {
            "TrentService.GetPublicKey" => {
                let mut der = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                der.extend_from_slice(self.key.verifying_key().as_bytes());
                (
                    200,
                    serde_json::json!({
                        "KeyId": sent["KeyId"],
                        "PublicKey": b64.encode(der),
                        "KeySpec": self.key_spec,
                        "KeyUsage": "SIGN_VERIFY",
                        "SigningAlgorithms": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
                    }),
                )
            }
            "TrentService.Sign" => {
                let message = b64
                    .decode(sent["Message"].as_str().unwrap_or_default())
                    .unwrap_or_default();
                let sig = self.key.sign(&message).to_bytes();
                let sig = &sig[..sig.len() - self.truncate];
                (
                    200,
                    serde_json::json!({
                        "KeyId": sent["KeyId"],
                        "Signature": b64.encode(sig),
                        "SigningAlgorithm": sent["SigningAlgorithm"],
                    }),
                )
            }
            _ => (
                400,
                serde_json::json!({"__type": "UnsupportedOperationException"}),
            ),
        };
        let mut response = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(body.to_string()),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(response))
    }
}
