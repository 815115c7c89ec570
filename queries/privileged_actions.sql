-- @question Privileged actions in a period: changes that grant or remove access (group
-- membership, group deletion, user deactivation and deletion) and application actions
-- on rights, keys, exports and impersonation, and any application event its producer
-- marked privileged.
-- @param tenant_id string: the tenant
-- @param from timestamp: start of the period, inclusive (YYYY-MM-DD[ HH:MM:SS], UTC)
-- @param to timestamp: end of the period, exclusive
SELECT
    occurred_at,
    actor_type,
    actor_id,
    actor_name,
    event_type,
    action,
    target_type,
    target_id,
    target_name,
    outcome,
    event_id
FROM audit_events
WHERE tenant_id = ? /* tenant_id */
    AND dt BETWEEN substr(? /* from */, 1, 10) AND substr(? /* to */, 1, 10)
    AND occurred_at >= CAST(? /* from */ AS TIMESTAMP)
    AND occurred_at < CAST(? /* to */ AS TIMESTAMP)
    AND (
        event_type IN (
            'scim.group.member_added', 'scim.group.member_removed', 'scim.group.deleted',
            'scim.user.deactivated', 'scim.user.deleted'
        )
        OR (event_type LIKE 'app.%' AND action IN (
            'grant', 'revoke', 'role_change', 'impersonate', 'export',
            'create_api_key', 'delete_api_key', 'change_settings'
        ))
        OR json_extract_scalar(payload, '$.privileged') = 'true'
    )
ORDER BY occurred_at, event_id
