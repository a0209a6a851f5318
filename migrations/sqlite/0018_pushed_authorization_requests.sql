-- pushed authorization requests (rfc 9126): a client posts its authorization request to /par and
-- gets a request_uri back, which the browser then carries to /authorize. only the sha-256 of the
-- request_uri is kept (it is a bearer value for as long as it lives); params holds the pushed
-- parameters (json array of [name, value] pairs, never the client secret). used_at is set by the
-- conditional update that claims the request on its first use (§4: single use).
create table pushed_authorization_requests (
    request_uri_hash text primary key,
    client_id        text not null references clients (id) on delete cascade,
    params           text not null,
    created_at       integer not null,
    expires_at       integer not null,
    used_at          integer
);
create index pushed_authorization_requests_expires_at on pushed_authorization_requests (expires_at);
