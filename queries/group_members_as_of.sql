-- @question Membership of a group as of a point in time, rebuilt from the events: each
-- member whose last membership event up to that instant added them, unless the member
-- or the group was deleted after it (deletion removes memberships without a
-- member_removed event).
-- @param tenant_id string: the tenant
-- @param group_id string: the group's id
-- @param as_of timestamp: the instant (YYYY-MM-DD[ HH:MM:SS], UTC), inclusive
WITH changes AS (
    SELECT
        target_id AS member_id,
        target_type AS member_type,
        target_name AS member_name,
        action,
        occurred_at,
        ROW_NUMBER() OVER (
            PARTITION BY target_id
            ORDER BY occurred_at DESC, event_id DESC
        ) AS latest
    FROM audit_events
    WHERE tenant_id = ? /* tenant_id */
        AND dt <= substr(? /* as_of */, 1, 10)
        AND event_type IN ('scim.group.member_added', 'scim.group.member_removed')
        AND json_extract_scalar(payload, '$.group.id') = ? /* group_id */
        AND occurred_at <= CAST(? /* as_of */ AS TIMESTAMP)
),
deleted AS (
    SELECT target_id AS id, MAX(occurred_at) AS deleted_at
    FROM audit_events
    WHERE tenant_id = ? /* tenant_id */
        AND dt <= substr(? /* as_of */, 1, 10)
        AND event_type IN ('scim.user.deleted', 'scim.group.deleted')
        AND occurred_at <= CAST(? /* as_of */ AS TIMESTAMP)
    GROUP BY target_id
)
SELECT
    c.member_id,
    c.member_type,
    c.member_name,
    c.occurred_at AS member_since
FROM changes AS c
LEFT JOIN deleted AS dm ON dm.id = c.member_id
LEFT JOIN deleted AS dg ON dg.id = ? /* group_id */
WHERE c.latest = 1
    AND c.action = 'member_added'
    AND (dm.deleted_at IS NULL OR dm.deleted_at < c.occurred_at)
    AND (dg.deleted_at IS NULL OR dg.deleted_at < c.occurred_at)
ORDER BY c.member_id
