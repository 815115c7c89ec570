-- @question Event volume per tenant and event type per day, across all tenants (a
-- cross-tenant compliance scan: no tenant in the WHERE clause).
-- @param from_dt date: first day, inclusive (YYYY-MM-DD, UTC)
-- @param to_dt date: last day, inclusive (YYYY-MM-DD, UTC)
SELECT
    tenant_id,
    dt,
    event_type,
    COUNT(*) AS events
FROM audit_events_all
WHERE dt BETWEEN ? /* from_dt */ AND ? /* to_dt */
GROUP BY tenant_id, dt, event_type
ORDER BY tenant_id, dt, event_type
