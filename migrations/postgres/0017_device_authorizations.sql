-- the device authorization grant (rfc 8628): one row per device_code, found by the device through
-- the sha-256 of its device_code and by the person through the sha-256 of the normalised user_code.
-- the person's approval fills user_id, org_id, auth_time and amr; the token endpoint redeems an
-- approved row once (status 'redeemed', a conditional update). poll_interval grows by 5 seconds
-- at each slow_down (§3.5); last_polled_at is when the device last polled.
create table device_authorizations (
    device_code_hash  text primary key,
    user_code_hash    text not null unique,
    client_id         text not null references clients (id) on delete cascade,
    scope             text not null,
    org_hint          text,
    status            text not null default 'pending'
                      check (status in ('pending', 'approved', 'denied', 'redeemed')),
    user_id           text references users (id) on delete cascade,
    org_id            text references organizations (id) on delete cascade,
    auth_time         bigint,
    amr               text,
    poll_interval     bigint not null,
    last_polled_at    bigint,
    created_at        bigint not null,
    expires_at        bigint not null
);
create index device_authorizations_expiry on device_authorizations (expires_at);
