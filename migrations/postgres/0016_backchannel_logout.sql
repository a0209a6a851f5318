-- openid connect back-channel logout 1.0: which clients got tokens in which browser session (one row
-- per session and client, recorded when a code is issued, for clients with a back-channel logout
-- uri), so that the end of the session reaches each of them. no foreign key to users: a deleted
-- account's sessions are still announced; rows of sessions gone without a logout are purged.
create table backchannel_sessions (
    sid         text not null,
    client_id   text not null references clients (id) on delete cascade,
    user_id     text not null,
    created_at  bigint not null,
    primary key (sid, client_id)
);
create index backchannel_sessions_user on backchannel_sessions (user_id);

-- logout tokens to post (§2.5), queued in the transaction that ends the session and retried with
-- backoff like mail; the token itself is signed at each attempt (it lives two minutes).
create table backchannel_logouts (
    id               text primary key,
    client_id        text not null references clients (id) on delete cascade,
    sub              text not null,
    sid              text not null,
    created_at       bigint not null,
    attempts         bigint not null default 0,
    next_attempt_at  bigint not null,
    locked_until     bigint,
    delivered_at     bigint,
    given_up_at      bigint,
    last_error       text
);
create index backchannel_logouts_due on backchannel_logouts (delivered_at, next_attempt_at);
