//! `--stack NAME`: the operator commands against a deployed stack. Where everything is
//! (bucket, tables, queues, state machine, functions, workgroup) comes from the
//! CloudFormation stack's outputs, or from a file of the same outputs for a deployment
//! without CloudFormation; credentials and region the usual AWS way.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;

/// The outputs of template.yaml the CLI reads (a template test holds them to it).
pub mod outputs {
    pub const BUCKET: &str = "AuditBucketName";
    pub const SCIM_TABLE: &str = "ScimTableName";
    pub const LEAF_INDEX_TABLE: &str = "LeafIndexTableName";
    pub const EVENT_BUS: &str = "EventBusName";
    pub const SCIM_ENDPOINT: &str = "ScimEndpoint";
    pub const AUDIT_QUEUE: &str = "AuditQueueUrl";
    pub const AUDIT_DLQ: &str = "AuditDeadLetterQueueUrl";
    pub const RULE_DLQ: &str = "RuleDeadLetterQueueUrl";
    pub const COMPACTION: &str = "CompactionStateMachineArn";
    pub const REDRIVE_FUNCTION: &str = "RedriveFunctionName";
    pub const INTEGRATOR_FUNCTION: &str = "IntegratorFunctionName";
    pub const WORKGROUP: &str = "AthenaWorkGroupName";
    pub const DATABASE: &str = "GlueDatabaseName";
    pub const LOG_NAME: &str = "LogName";

    #[cfg(test)]
    pub const ALL: &[&str] = &[
        BUCKET,
        SCIM_TABLE,
        LEAF_INDEX_TABLE,
        EVENT_BUS,
        SCIM_ENDPOINT,
        AUDIT_QUEUE,
        AUDIT_DLQ,
        RULE_DLQ,
        COMPACTION,
        REDRIVE_FUNCTION,
        INTEGRATOR_FUNCTION,
        WORKGROUP,
        DATABASE,
        LOG_NAME,
    ];
}

/// A deployed stack: its outputs and the SDK configuration to reach it.
pub struct Stack {
    /// The stack's name, or the outputs file's path.
    pub name: String,
    outputs: BTreeMap<String, String>,
    pub aws: SdkConfig,
}

impl Stack {
    /// `--stack NAME` (CloudFormation) or `--stack-outputs FILE`; `None` for the
    /// embedded default.
    pub async fn open(name: Option<&str>, file: Option<&Path>) -> Result<Option<Self>> {
        let aws = || aws_config::load_from_env();
        let (name, outputs, aws) = match (name, file) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => bail!("give --stack or --stack-outputs, not both"),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading --stack-outputs {}", f.display()))?;
                (
                    f.display().to_string(),
                    parse_outputs(&text)
                        .with_context(|| format!("--stack-outputs {}", f.display()))?,
                    aws().await,
                )
            }
            (Some(n), None) => {
                let aws = aws().await;
                (n.to_owned(), describe(&aws, n).await?, aws)
            }
        };
        Ok(Some(Self { name, outputs, aws }))
    }

    pub fn output(&self, key: &str) -> Result<&str> {
        self.outputs.get(key).map(String::as_str).with_context(|| {
            format!(
                "stack {} has no output {key}: deployed from an older template.yaml? (`sam deploy` again), or add it to the outputs file",
                self.name
            )
        })
    }

    /// Path-style addressing where an endpoint is overridden (moto, MinIO, LocalStack).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.aws);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        {
            b = b.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    pub fn blobs(&self) -> Result<adapters_aws::S3BlobStore> {
        Ok(adapters_aws::S3BlobStore::new(
            self.s3(),
            self.output(outputs::BUCKET)?,
        ))
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.aws)
    }

    pub fn scim_store(&self) -> Result<adapters_aws::DynamoDbScimStore> {
        Ok(adapters_aws::DynamoDbScimStore::new(
            self.dynamodb(),
            self.output(outputs::SCIM_TABLE)?,
        ))
    }

    pub fn directory(&self) -> Result<adapters_aws::DynamoDbTenantDirectory> {
        Ok(adapters_aws::DynamoDbTenantDirectory::new(
            self.dynamodb(),
            self.output(outputs::SCIM_TABLE)?,
        ))
    }
}

impl Stack {
    /// Invokes one of the stack's functions (`who` in messages) and waits for its
    /// answer, read as `T`; an answer that is not a `T` is quoted in the error.
    pub async fn invoke<T: serde::de::DeserializeOwned>(
        &self,
        function: &str,
        who: &str,
        payload: &serde_json::Value,
    ) -> Result<T> {
        let name = self.output(function)?;
        let out = aws_sdk_lambda::Client::new(&self.aws)
            .invoke()
            .function_name(name)
            .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(
                payload,
            )?))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_too_many_requests_exception())
                {
                    // a function of reserved concurrency 1 (the integrator) at work
                    return anyhow::anyhow!(
                        "{name} is busy (all its reserved concurrency is running): try again in a minute"
                    );
                }
                anyhow::anyhow!(
                    "invoking {name}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                )
            })?;
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            bail!("{name} failed ({kind}): {}", String::from_utf8_lossy(body));
        }
        let answer: serde_json::Value = serde_json::from_slice(body).with_context(|| {
            format!(
                "{name} answered what is not JSON: {}",
                String::from_utf8_lossy(body)
            )
        })?;
        serde_json::from_value(answer.clone())
            .with_context(|| format!("the {who} answered {answer}"))
    }
}

async fn describe(aws: &SdkConfig, name: &str) -> Result<BTreeMap<String, String>> {
    let cf = aws_sdk_cloudformation::Client::new(aws);
    let out = cf
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "describing stack {name} in {}: {}",
                aws.region().map_or("no region", |r| r.as_ref()),
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            )
        })?;
    let stack = out
        .stacks()
        .first()
        .with_context(|| format!("no stack {name}"))?;
    let status = stack.stack_status().map(|s| s.as_str()).unwrap_or("");
    // a stack being updated keeps its outputs; one never created, or going, has none
    if status.starts_with("CREATE_") && status != "CREATE_COMPLETE"
        || status.starts_with("DELETE_")
        || status.starts_with("ROLLBACK_")
    {
        bail!("stack {name} is {status}: it has no resources to operate until it is deployed");
    }
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// A stack's outputs as a JSON object (`{"AuditBucketName": "..."}`), as the `Outputs`
/// array of `aws cloudformation describe-stacks`, or as that command's whole answer.
pub fn parse_outputs(text: &str) -> Result<BTreeMap<String, String>> {
    let v: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let v = match v.pointer("/Stacks/0/Outputs") {
        Some(o) => o.clone(),
        None => v,
    };
    match v {
        serde_json::Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => bail!("output {k}: a string, not {other}"),
            })
            .collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|o| {
                let get = |f: &str| o.get(f).and_then(|v| v.as_str()).map(str::to_owned);
                get("OutputKey")
                    .zip(get("OutputValue"))
                    .with_context(|| format!("{o}: no OutputKey and OutputValue"))
            })
            .collect(),
        other => bail!("expected an object of outputs, or an Outputs array; got {other}"),
    }
}

/// Where an operator command acts: the embedded default's data directory, or a stack.
pub enum Target<'a> {
    Embedded {
        data: &'a Path,
        schemas: Option<&'a Path>,
    },
    Stack {
        stack: &'a Stack,
        schemas: Option<&'a Path>,
    },
}

impl Target<'_> {
    /// The SCIM base URL an IdP is given.
    pub fn scim_url(&self) -> Result<String> {
        Ok(match self {
            Target::Embedded { .. } => format!(
                "http://{}/scim/v2 (where `auditlog serve` listens; an IdP in the cloud needs it reachable over HTTPS)",
                crate::serve::DEFAULT_LISTEN
            ),
            Target::Stack { stack, .. } => stack.output(outputs::SCIM_ENDPOINT)?.to_owned(),
        })
    }
}

/// A command the embedded default has no counterpart of, or the other way round.
pub fn only_embedded(command: &str, instead: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`auditlog {command}` works on the embedded default only (drop --stack); on a deployed stack, {instead}"
    )
}

pub fn only_stack(command: &str, instead: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`auditlog {command}` works on a deployed stack only (--stack NAME); on the embedded default, {instead}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output the CLI reads is one the template declares.
    #[test]
    fn the_template_declares_every_output_the_cli_reads() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .unwrap();
        let (_, declared) = template.split_once("\nOutputs:\n").unwrap();
        for key in outputs::ALL {
            assert!(
                declared.contains(&format!("\n  {key}:\n")),
                "template.yaml has no output {key}"
            );
        }
    }

    #[test]
    fn outputs_parse_from_an_object_an_outputs_array_and_describe_stacks() {
        let object = parse_outputs(r#"{"AuditBucketName": "b1", "ScimTableName": "t"}"#).unwrap();
        assert_eq!(object["AuditBucketName"], "b1");
        let array = parse_outputs(
            r#"[{"OutputKey": "AuditBucketName", "OutputValue": "b2", "Description": "x"}]"#,
        )
        .unwrap();
        assert_eq!(array["AuditBucketName"], "b2");
        let whole = parse_outputs(
            r#"{"Stacks": [{"StackName": "s", "Outputs": [{"OutputKey": "K", "OutputValue": "v"}]}]}"#,
        )
        .unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole["K"], "v");
        for bad in ["[1]", r#"{"K": 3}"#, "\"x\"", "not json"] {
            assert!(parse_outputs(bad).is_err(), "{bad}");
        }
    }
}
