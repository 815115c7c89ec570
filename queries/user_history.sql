-- @question Everything that happened to one user: every event of the tenant whose
-- target is the user (its creation, updates, deactivation, deletion, each group it
-- joined or left), oldest first.
-- @param tenant_id string: the tenant
-- @param user_id string: the user's id (the SCIM id, as in target_id)
SELECT
    occurred_at,
    event_type,
    action,
    actor_type,
    actor_id,
    json_extract_scalar(payload, '$.group.id') AS group_id,
    json_extract_scalar(payload, '$.group.displayName') AS group_name,
    outcome,
    event_id
FROM audit_events
WHERE tenant_id = ? /* tenant_id */
    AND target_id = ? /* user_id */
ORDER BY occurred_at, event_id
