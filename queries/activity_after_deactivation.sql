-- @question Activity by a user after their deactivation: every event a user caused
-- after the IdP deactivated or deleted them. Should be empty; each row is a finding.
-- (A user reactivated later shows up too: check scim.user.updated for them.)
-- @param tenant_id string: the tenant
-- @param from timestamp: activity from, inclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
-- @param to timestamp: activity until, exclusive
WITH deactivations AS (
    SELECT target_id AS user_id, MIN(occurred_at) AS deactivated_at
    FROM audit_events
    WHERE tenant_id = ? /* tenant_id */
        AND event_type IN ('scim.user.deactivated', 'scim.user.deleted')
    GROUP BY target_id
)
SELECT
    e.occurred_at,
    e.actor_id AS user_id,
    d.deactivated_at,
    e.event_type,
    e.action,
    e.target_type,
    e.target_id,
    e.event_id
FROM audit_events AS e
JOIN deactivations AS d ON e.actor_id = d.user_id
WHERE e.tenant_id = ? /* tenant_id */
    AND e.dt BETWEEN substr(? /* from */, 1, 10) AND substr(? /* to */, 1, 10)
    AND e.actor_type = 'user'
    AND e.occurred_at > d.deactivated_at
    AND e.occurred_at >= CAST(? /* from */ AS TIMESTAMP)
    AND e.occurred_at < CAST(? /* to */ AS TIMESTAMP)
ORDER BY e.occurred_at, e.event_id
