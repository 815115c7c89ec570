-- @question Failed actions in a period: every event whose outcome is not success
-- (denied, failed, ...), with who tried what on which target.
-- @param tenant_id string: the tenant
-- @param from timestamp: start of the period, inclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
-- @param to timestamp: end of the period, exclusive
SELECT
    occurred_at,
    outcome,
    actor_type,
    actor_id,
    event_type,
    action,
    target_type,
    target_id,
    source_ip,
    event_id
FROM audit_events
WHERE tenant_id = ? /* tenant_id */
    AND dt BETWEEN substr(? /* from */, 1, 10) AND substr(? /* to */, 1, 10)
    AND occurred_at >= CAST(? /* from */ AS TIMESTAMP)
    AND occurred_at < CAST(? /* to */ AS TIMESTAMP)
    AND outcome <> 'success'
ORDER BY occurred_at, event_id
