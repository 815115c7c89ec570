-- The same files as audit_records, for cross-tenant compliance scans that do not name a
-- tenant: partitions are registered in the catalog (no injected projection), so a scan
-- may cover every tenant. Same definition as AuditRecordsAllTable in template.yaml.
-- Replace <bucket>. Athena only (see audit_records.sql).
CREATE EXTERNAL TABLE IF NOT EXISTS audit_records_all (
  event_id string, event_type string, schema_version int, occurred_at timestamp, ingested_at timestamp,
  producer string, source string, actor_type string, actor_id string, actor_name string, action string,
  target_type string, target_id string, target_name string, outcome string, correlation_id string,
  request_id string, source_ip string, user_agent string, payload string, payload_sha256 string,
  bus_event_id string, account string, region string, leaf_index bigint
)
PARTITIONED BY (tenant_id string, dt string)
STORED AS PARQUET
LOCATION 's3://<bucket>/audit/';
