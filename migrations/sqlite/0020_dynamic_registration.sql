-- dynamic client registration (rfc 7591 / rfc 7592).
--
-- initial access tokens (rfc 7591 §3), issued by `latchkey client registration-token`: only the
-- sha-256 of each is kept. a token registers any number of clients until it expires.
create table registration_initial_tokens (
    id          text primary key,
    token_hash  text not null unique,
    created_at  integer not null,
    expires_at  integer not null
);
create index registration_initial_tokens_expires_at on registration_initial_tokens (expires_at);

-- one row per dynamically registered client: the sha-256 of its registration access token (rfc 7592
-- §3, the bearer credential of /register/{client_id}), the token endpoint authentication method it
-- registered (the client registry knows only public or confidential), and the initial access token
-- it was registered with. operator-registered clients have no row, so rfc 7592 refuses them.
create table client_registrations (
    client_id                  text primary key references clients (id) on delete cascade,
    token_hash                 text not null unique,
    token_endpoint_auth_method text not null,
    initial_token_id           text,
    created_at                 integer not null
);
