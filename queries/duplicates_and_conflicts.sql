-- @question Duplicates and conflicts found in storage: events stored more than once
-- (a compaction interrupted after writing, before removing what it folded: the next
-- run removes them) and, among those, copies whose payloads differ. Conflicting
-- deliveries caught at ingest are never stored here: they are kept under quarantine/
-- with reason conflict. Across all tenants.
-- @param from_dt date: first day, inclusive (YYYY-MM-DD, UTC)
-- @param to_dt date: last day, inclusive (YYYY-MM-DD, UTC)
SELECT
    tenant_id,
    event_id,
    COUNT(*) AS copies,
    COUNT(DISTINCT payload_sha256) AS payload_versions,
    CASE WHEN COUNT(DISTINCT payload_sha256) > 1 THEN 'conflict' ELSE 'duplicate' END AS kind
FROM (
    SELECT tenant_id, event_id, payload_sha256
    FROM audit_records_all
    WHERE dt BETWEEN ? /* from_dt */ AND ? /* to_dt */
    UNION ALL
    SELECT tenant_id, event_id, payload_sha256
    FROM audit_ingest
    WHERE dt BETWEEN ? /* from_dt */ AND ? /* to_dt */
) AS copies
GROUP BY tenant_id, event_id
HAVING COUNT(*) > 1
ORDER BY tenant_id, event_id
