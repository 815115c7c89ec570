-- Deduplicated audit events of one tenant at a time (filter on tenant_id: audit_records needs it).
-- One row per (tenant_id, event_id) over both tiers: an event may sit in the ingest tier
-- until compaction and, after a crash during compaction, in both. The copy kept is the
-- first ingested (then the lowest bus_event_id), the rule the compactor applies. dt is
-- in the window's partition (every copy of an event has the same dt: the date of its
-- occurred_at) so that tenant_id and dt filters reach the tables and prune partitions.
-- Runs as is on Athena (engine v3) and on the local engine.
CREATE OR REPLACE VIEW audit_events AS
SELECT
    event_id,
    event_type,
    schema_version,
    occurred_at,
    ingested_at,
    producer,
    source,
    actor_type,
    actor_id,
    actor_name,
    action,
    target_type,
    target_id,
    target_name,
    outcome,
    correlation_id,
    request_id,
    source_ip,
    user_agent,
    payload,
    payload_sha256,
    bus_event_id,
    account,
    region,
    known_leaf_index AS leaf_index,
    tenant_id,
    dt
FROM (
    SELECT
        copies.*,
        -- compaction writes the index: any copy that has it gives it
        MAX(leaf_index) OVER (PARTITION BY tenant_id, dt, event_id) AS known_leaf_index,
        ROW_NUMBER() OVER (
            PARTITION BY tenant_id, dt, event_id
            ORDER BY ingested_at, bus_event_id
        ) AS copy_rank
    FROM (
        SELECT
            event_id,
            event_type,
            schema_version,
            occurred_at,
            ingested_at,
            producer,
            source,
            actor_type,
            actor_id,
            actor_name,
            action,
            target_type,
            target_id,
            target_name,
            outcome,
            correlation_id,
            request_id,
            source_ip,
            user_agent,
            payload,
            payload_sha256,
            bus_event_id,
            account,
            region,
            leaf_index,
            tenant_id,
            dt
        FROM audit_records
        UNION ALL
        SELECT
            event_id,
            event_type,
            schema_version,
            occurred_at,
            ingested_at,
            producer,
            source,
            actor_type,
            actor_id,
            actor_name,
            action,
            target_type,
            target_id,
            target_name,
            outcome,
            correlation_id,
            request_id,
            source_ip,
            user_agent,
            payload,
            payload_sha256,
            bus_event_id,
            account,
            region,
            leaf_index,
            tenant_id,
            dt
        FROM audit_ingest
    ) AS copies
) AS ranked
WHERE copy_rank = 1
