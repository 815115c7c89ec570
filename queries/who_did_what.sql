-- @question Who did what to whom in a period: every action recorded for one tenant,
-- in time order, with the actor, the action, its target and the outcome.
-- @param tenant_id string: the tenant
-- @param from timestamp: start of the period, inclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
-- @param to timestamp: end of the period, exclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
SELECT
    occurred_at,
    actor_type,
    actor_id,
    actor_name,
    action,
    target_type,
    target_id,
    target_name,
    outcome,
    event_type,
    event_id
FROM audit_events
WHERE tenant_id = ? /* tenant_id */
    AND dt BETWEEN substr(? /* from */, 1, 10) AND substr(? /* to */, 1, 10)
    AND occurred_at >= CAST(? /* from */ AS TIMESTAMP)
    AND occurred_at < CAST(? /* to */ AS TIMESTAMP)
ORDER BY occurred_at, event_id
