//! Generated SQS batches of realistic bus events, shared by the benchmarks and the
//! memory probe so that they measure the same input.

use serde_json::json;

/// One ~`target` byte EventBridge event (the SQS message body), tenant `t<k>`.
pub fn bus_event_body(n: usize, tenants: usize, target: usize) -> String {
    let tenant = format!("tenant-{:04}", n % tenants.max(1));
    let mut v = json!({
        "version": "0",
        "id": format!("6a7e8feb-b491-4cf7-a9f1-{n:012}"),
        "detail-type": "app.document.shared",
        "source": "app.documents",
        "account": "111122223333",
        "time": "2026-11-21T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "metadata": {
                "event_id": format!("0192f4a0-7b3c-7d4e-8f00-{n:012}"),
                "tenant_id": tenant,
                "event_type": "app.document.shared",
                "schema_version": 1,
                "occurred_at": format!("2026-11-21T10:{:02}:{:02}.{:03}Z", (n / 60) % 60, n % 60, n % 1000),
                "producer": "documents",
                "actor": {"type": "user", "id": format!("u-{}", n % 5000), "name": format!("user{}@example.com", n % 5000)},
                "correlation_id": format!("c-{n:016x}"),
                "request_id": format!("r-{n:016x}"),
                "source_ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"
            },
            "payload": {
                "action": "share",
                "target": {"type": "document", "id": format!("doc-{}", n % 100_000), "name": "Quarterly plan"},
                "outcome": "success",
                "details": {"with": format!("user{}@example.com", (n * 7) % 5000), "role": "editor", "note": ""}
            }
        }
    });
    let len = v.to_string().len();
    v["detail"]["payload"]["details"]["note"] = json!("x".repeat(target.saturating_sub(len)));
    v.to_string()
}

/// An SQS event as Lambda delivers it, holding messages until `max_bytes` of bodies
/// plus per-record overhead (Lambda's 6 MB payload bounds a batch).
pub fn sqs_event_json(tenants: usize, event_bytes: usize, max_bytes: usize) -> (String, usize) {
    let mut records = Vec::new();
    let mut total = 0;
    let mut n = 0;
    loop {
        let body = bus_event_body(n, tenants, event_bytes);
        let record = json!({
            "messageId": format!("059f36b4-87a3-44ab-83d2-{n:012}"),
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185"
            },
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:audit-queue",
            "awsRegion": "us-east-1"
        });
        let size = record.to_string().len() + 1;
        if total + size > max_bytes {
            break;
        }
        total += size;
        records.push(record);
        n += 1;
    }
    let count = records.len();
    (json!({ "Records": records }).to_string(), count)
}
