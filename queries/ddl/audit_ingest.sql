-- The ingest tier: files written by the audit subscriber, many tenants each (tenant_id is
-- a column here), one partition per day, folded into audit_records by the compactor.
-- Same definition as AuditIngestTable in template.yaml. Replace <bucket>. Athena only.
CREATE EXTERNAL TABLE IF NOT EXISTS audit_ingest (
  tenant_id string,
  event_id string, event_type string, schema_version int, occurred_at timestamp, ingested_at timestamp,
  producer string, source string, actor_type string, actor_id string, actor_name string, action string,
  target_type string, target_id string, target_name string, outcome string, correlation_id string,
  request_id string, source_ip string, user_agent string, payload string, payload_sha256 string,
  bus_event_id string, account string, region string, leaf_index bigint
)
PARTITIONED BY (dt string)
STORED AS PARQUET
LOCATION 's3://<bucket>/ingest/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2000-01-01,NOW+1DAYS',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/ingest/dt=${dt}/'
);
