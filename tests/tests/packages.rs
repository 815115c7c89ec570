//! Each Lambda function compiles only what it uses: the SCIM functions never compile
//! Parquet or the audit stores, the audit functions never compile the SCIM stack, only
//! the redrive function compiles the SQS SDK, and only the integrator the KMS SDK. Read from `cargo tree` (the lock
//! file's resolution, per package, as `cargo lambda build` builds each function).

use std::process::Command;

fn dependencies(package: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
        ])
        .arg(package)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn has(tree: &str, krate: &str) -> bool {
    tree.lines().any(|l| l.starts_with(&format!("{krate} v")))
}

#[test]
fn each_function_compiles_only_what_it_uses() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "scim-api",
            &["auditlog-scim", "aws-sdk-dynamodb", "aws-sdk-eventbridge"],
            &[
                "parquet",
                "arrow-array",
                "auditlog-core",
                "aws-sdk-s3",
                "aws-sdk-glue",
                "aws-sdk-sqs",
            ],
        ),
        (
            "outbox-relay",
            &["auditlog-scim", "aws-sdk-eventbridge"],
            &["parquet", "auditlog-core", "aws-sdk-s3", "aws-sdk-sqs"],
        ),
        (
            "audit-subscriber",
            &["auditlog-core", "parquet", "aws-sdk-s3", "aws-sdk-dynamodb"],
            &[
                "auditlog-scim",
                "axum",
                "aws-sdk-glue",
                "aws-sdk-eventbridge",
                "aws-sdk-sqs",
                "datafusion",
                "auditlog-transparency",
            ],
        ),
        (
            "compactor",
            &["auditlog-core", "aws-sdk-s3", "aws-sdk-glue"],
            &[
                "auditlog-scim",
                "axum",
                "aws-sdk-dynamodb",
                "aws-sdk-sqs",
                "datafusion",
            ],
        ),
        (
            "integrator",
            &[
                "auditlog-core",
                "auditlog-transparency",
                "aws-sdk-s3",
                "aws-sdk-dynamodb",
                "aws-sdk-kms",
            ],
            &[
                "auditlog-scim",
                "axum",
                "aws-sdk-glue",
                "aws-sdk-sqs",
                "aws-sdk-eventbridge",
                "datafusion",
            ],
        ),
        (
            "audit-api",
            &[
                "auditlog-audit-api",
                "auditlog-history",
                "parquet",
                "aws-sdk-s3",
                "aws-sdk-dynamodb",
                "aws-sdk-eventbridge",
                "aws-sdk-sqs",
            ],
            &["auditlog-scim", "aws-sdk-glue", "aws-sdk-kms", "datafusion"],
        ),
        (
            "redrive",
            &["auditlog-core", "aws-sdk-s3", "aws-sdk-sqs"],
            &["auditlog-scim", "axum", "aws-sdk-glue", "datafusion"],
        ),
    ];
    for (package, wanted, unwanted) in cases {
        let tree = dependencies(package);
        for k in *wanted {
            assert!(has(&tree, k), "{package} should use {k}");
        }
        for k in *unwanted {
            assert!(
                !has(&tree, k),
                "{package} compiles {k}, which it does not use"
            );
        }
    }
}
