-- per-address rate limits (password-reset requests, sign-ups) count recent audit events of one action
-- from one ip; this index keeps that count to the matching rows.
create index audit_events_ip on audit_events (ip, action, created_at);
