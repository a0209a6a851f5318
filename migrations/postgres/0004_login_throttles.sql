-- failed-attempt counters behind login and client-authentication throttling (owasp authentication
-- cheat sheet, "login throttling"; nist sp 800-63b §5.2.2). one row per key: an account, an unknown
-- typed email, a known browser of an account, a client id, or a client address (ipv6 per /64).
-- kept in the database so that every process agrees and a restart forgets nothing.
create table login_throttles (
    key             text primary key,
    -- failed attempts counted since the count was last forgotten.
    failures        bigint not null,
    -- the count is forgotten at this time (unix seconds) unless another failure extends it.
    window_ends_at  bigint not null,
    -- attempts before this time (unix seconds) are refused with 429 without checking a password.
    blocked_until   bigint not null
);
-- how a sign-in attempt ended: succeeded, failed, or throttled (refused before any password check).
-- null for rows written before this column existed; `success` stays as it was.
alter table login_events add column outcome text
    check (outcome is null or outcome in ('succeeded', 'failed', 'throttled'));
