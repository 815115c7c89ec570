-- The tenant-partitioned tier (compacted files), one partition per tenant and day.
-- Same definition as the Glue table AuditRecordsTable in template.yaml. Partition
-- projection: tenant_id is injected (every query names its tenant, which is what keeps a
-- customer's query inside its own partitions), dt is a date range. Replace <bucket>.
-- Athena only: the local engine (auditlog query) registers the same layout in code and a
-- test checks that the column lists agree.
CREATE EXTERNAL TABLE IF NOT EXISTS audit_records (
  event_id string, event_type string, schema_version int, occurred_at timestamp, ingested_at timestamp,
  producer string, source string, actor_type string, actor_id string, actor_name string, action string,
  target_type string, target_id string, target_name string, outcome string, correlation_id string,
  request_id string, source_ip string, user_agent string, payload string, payload_sha256 string,
  bus_event_id string, account string, region string, leaf_index bigint
)
PARTITIONED BY (tenant_id string, dt string)
STORED AS PARQUET
LOCATION 's3://<bucket>/audit/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2000-01-01,NOW+1DAYS',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://<bucket>/audit/tenant_id=${tenant_id}/dt=${dt}/'
);
