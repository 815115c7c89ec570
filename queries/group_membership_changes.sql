-- @question Group membership changes: who was added to or removed from one group in a
-- period, by whom, in time order (one row per membership change).
-- @param tenant_id string: the tenant
-- @param group_id string: the group's id
-- @param from timestamp: start of the period, inclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
-- @param to timestamp: end of the period, exclusive
SELECT
    occurred_at,
    action,
    target_id AS member_id,
    target_type AS member_type,
    target_name AS member_name,
    actor_id,
    event_id
FROM audit_events
WHERE tenant_id = ? /* tenant_id */
    AND dt BETWEEN substr(? /* from */, 1, 10) AND substr(? /* to */, 1, 10)
    AND event_type IN ('scim.group.member_added', 'scim.group.member_removed')
    AND json_extract_scalar(payload, '$.group.id') = ? /* group_id */
    AND occurred_at >= CAST(? /* from */ AS TIMESTAMP)
    AND occurred_at < CAST(? /* to */ AS TIMESTAMP)
ORDER BY occurred_at, event_id
