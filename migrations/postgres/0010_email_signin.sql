-- email sign-in: a mailed single-use link and 6-digit code instead of a password.
--
-- one row per request of the "email me a sign-in link" form, for known and unknown addresses alike
-- (the page and the work are the same; only a usable account's row has a user_id and gets a mail).
-- the link token is stored as its sha-256, the code as an hmac-sha256 under a key derived from the
-- key-encryption key (10^6 codes are trivially brute-forced from a plain hash). `authz` and `next_path`
-- are where the sign-in continues. `attempts` counts the codes typed; the fifth wrong one ends the
-- request. the address and creation time back the per-account and per-address limits.
create table email_signin_requests (
    id            text primary key,
    user_id       text references users (id) on delete cascade,
    email         text not null,
    token_hash    text not null unique,
    code_hash     text not null,
    authz         text not null default '',
    next_path     text not null default '',
    requested_ip  text,
    attempts      bigint not null default 0,
    created_at    bigint not null,
    expires_at    bigint not null,
    used_at       bigint
);
create index email_signin_requests_user on email_signin_requests (user_id, created_at);
create index email_signin_requests_ip on email_signin_requests (requested_ip, created_at);
create index email_signin_requests_expiry on email_signin_requests (expires_at);
