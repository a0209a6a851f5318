-- the retention purge (LATCHKEY_AUDIT_RETENTION) deletes login events by age; this index keeps each
-- delete to the rows it removes (audit_events already has audit_events_time).
create index login_events_time on login_events (created_at);
