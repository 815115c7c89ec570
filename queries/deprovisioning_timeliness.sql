-- @question Deprovisioning timeliness: for each user the IdP deactivated (or deleted) in
-- a period, the user's last activity, how long it went on after the deactivation, and
-- whether that stayed within the SLA. Activity is any event whose actor is the user
-- (actor_type 'user', actor_id the user's SCIM id).
-- @param tenant_id string: the tenant
-- @param from timestamp: deactivations from, inclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
-- @param to timestamp: deactivations until, exclusive
-- @param sla_seconds integer: activity allowed after the deactivation, in seconds
WITH deactivations AS (
    SELECT
        target_id AS user_id,
        MIN(target_name) AS user_name,
        MIN(occurred_at) AS deactivated_at
    FROM audit_events
    WHERE tenant_id = ? /* tenant_id */
        AND dt BETWEEN substr(? /* from */, 1, 10) AND substr(? /* to */, 1, 10)
        AND event_type IN ('scim.user.deactivated', 'scim.user.deleted')
        AND occurred_at >= CAST(? /* from */ AS TIMESTAMP)
        AND occurred_at < CAST(? /* to */ AS TIMESTAMP)
    GROUP BY target_id
),
activity AS (
    SELECT actor_id, MAX(occurred_at) AS last_activity_at
    FROM audit_events
    WHERE tenant_id = ? /* tenant_id */
        AND actor_type = 'user'
    GROUP BY actor_id
)
SELECT
    d.user_id,
    d.user_name,
    d.deactivated_at,
    a.last_activity_at,
    CASE
        WHEN a.last_activity_at > d.deactivated_at
            THEN CAST(to_unixtime(a.last_activity_at) - to_unixtime(d.deactivated_at) AS BIGINT)
        ELSE 0
    END AS seconds_active_after,
    CASE
        WHEN a.last_activity_at > d.deactivated_at
            AND to_unixtime(a.last_activity_at) - to_unixtime(d.deactivated_at) > ? /* sla_seconds */
            THEN 'violated'
        ELSE 'met'
    END AS sla
FROM deactivations AS d
LEFT JOIN activity AS a ON a.actor_id = d.user_id
ORDER BY d.deactivated_at, d.user_id
