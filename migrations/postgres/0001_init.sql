-- latchkey schema, postgresql flavour (migrations/sqlite/0001_init.sql is the same schema for sqlite).
-- conventions: ids are random text (uuid v7 or 256-bit tokens' sha-256 hex), never sequential integers;
-- times are unix seconds (utc) in integer columns; booleans are 0/1 integers with a check; lists are json
-- text. only hashes of codes, tokens and client secrets are stored.

-- people. email is unique without regard to case: email_lower holds the lower-cased address.
create table users (
    id              text primary key,
    email           text not null,
    email_lower     text not null unique,
    name            text not null default '',
    password_hash   text,                         -- argon2id phc string; null for accounts without a password
    email_verified  bigint not null default 0 check (email_verified in (0, 1)),
    disabled        bigint not null default 0 check (disabled in (0, 1)),
    created_at      bigint not null,
    updated_at      bigint not null
);

create table organizations (
    id          text primary key,
    slug        text not null unique,
    name        text not null,
    created_at  bigint not null,
    updated_at  bigint not null
);

-- one role per person and organization.
create table memberships (
    org_id            text not null references organizations (id) on delete cascade,
    user_id           text not null references users (id) on delete cascade,
    role              text not null check (role in ('owner', 'admin', 'member', 'viewer')),
    joined_at         bigint not null,
    last_selected_at  bigint,                   -- last time the user picked this organization at login
    primary key (org_id, user_id)
);
create index memberships_user on memberships (user_id);

-- oauth clients. secret_hash is the sha-256 hex of a 256-bit random secret; null for public clients.
create table clients (
    id                         text primary key,
    secret_hash                text,
    name                       text not null,
    redirect_uris              text not null default '[]',
    post_logout_redirect_uris  text not null default '[]',
    grant_types                text not null default '[]',
    scopes                     text not null default '[]',
    public                     bigint not null default 0 check (public in (0, 1)),
    first_party                bigint not null default 0 check (first_party in (0, 1)),
    require_org                bigint not null default 0 check (require_org in (0, 1)),
    id_token_alg               text,
    created_at                 bigint not null,
    updated_at                 bigint not null
);

-- signing keys: next (published, not yet signing) -> active (signing) -> retired (verifying only until
-- retire_after, then deleted).
create table signing_keys (
    kid           text primary key,
    alg           text not null check (alg in ('RS256', 'ES256', 'EdDSA')),
    private_key   text not null,                 -- pkcs#8 pem
    public_jwk    text not null,                 -- json, public members only
    state         text not null check (state in ('next', 'active', 'retired')),
    created_at    bigint not null,
    activated_at  bigint,
    retired_at    bigint,
    retire_after  bigint  -- when a retired key may leave the jwks
);
create index signing_keys_state on signing_keys (state, alg);

-- browser sessions (tower-sessions records); user_id is copied out of the record so that all sessions of
-- a user can be ended at once (password reset, logout everywhere).
create table sessions (
    id          text primary key,
    user_id     text references users (id) on delete cascade,
    data        text not null,
    created_at  bigint not null,
    expires_at  bigint not null
);
create index sessions_user on sessions (user_id);
create index sessions_expiry on sessions (expires_at);

-- refresh-token families: one per grant; every rotation stays in the family (rfc 9700 §4.14).
create table refresh_families (
    id              text primary key,
    client_id       text not null references clients (id) on delete cascade,
    user_id         text not null references users (id) on delete cascade,
    org_id          text references organizations (id) on delete cascade,
    scope           text not null,
    session_id      text,                        -- browser session (sid) the family was born in
    offline         bigint not null default 0 check (offline in (0, 1)),  -- offline_access: survives logout
    auth_time       bigint not null,
    created_at      bigint not null,
    last_used_at    bigint not null,
    expires_at      bigint not null,            -- absolute lifetime
    revoked_at      bigint,
    revoked_reason  text
);
create index refresh_families_user on refresh_families (user_id);
create index refresh_families_expiry on refresh_families (expires_at);

create table refresh_tokens (
    token_hash        text primary key,
    family_id         text not null references refresh_families (id) on delete cascade,
    generation        bigint not null,
    created_at        bigint not null,
    rotated_at        bigint,                   -- set when exchanged for its successor
    successor_sealed  text                       -- successor token, encrypted under this token (grace window)
);
create index refresh_tokens_family on refresh_tokens (family_id);

-- authorization codes: single use, short-lived; what a redemption issued is remembered so that a replay
-- can revoke it (rfc 6749 §4.1.2).
create table authorization_codes (
    code_hash              text primary key,
    client_id              text not null references clients (id) on delete cascade,
    user_id                text not null references users (id) on delete cascade,
    org_id                 text references organizations (id) on delete cascade,
    redirect_uri           text not null,
    scope                  text not null,
    nonce                  text,
    code_challenge         text,
    code_challenge_method  text,
    session_id             text,
    auth_time              bigint not null,
    amr                    text not null default '[]',
    created_at             bigint not null,
    expires_at             bigint not null,
    redeemed_at            bigint,
    issued_family_id       text,
    issued_jti             text
);
create index authorization_codes_expiry on authorization_codes (expires_at);

-- revoked access tokens (rfc 7009), kept until the token would have expired anyway.
create table revoked_access_tokens (
    jti         text primary key,
    expires_at  bigint not null
);

-- consents, per user, client and scope set (space-separated, sorted).
create table consents (
    user_id     text not null references users (id) on delete cascade,
    client_id   text not null references clients (id) on delete cascade,
    scopes      text not null,
    granted_at  bigint not null,
    primary key (user_id, client_id)
);

create table invitations (
    id           text primary key,
    org_id       text not null references organizations (id) on delete cascade,
    email        text not null,
    email_lower  text not null,
    role         text not null check (role in ('owner', 'admin', 'member', 'viewer')),
    token_hash   text not null unique,
    state        text not null check (state in ('pending', 'accepted', 'revoked')),
    invited_by   text references users (id) on delete set null,
    created_at   bigint not null,
    expires_at   bigint not null,
    accepted_at  bigint,
    accepted_by  text references users (id) on delete set null
);
-- one pending invitation per organization and address; inviting again renews it.
create unique index invitations_pending on invitations (org_id, email_lower) where state = 'pending';

create table password_reset_tokens (
    token_hash    text primary key,
    user_id       text not null references users (id) on delete cascade,
    requested_ip  text,
    created_at    bigint not null,
    expires_at    bigint not null,
    used_at       bigint
);
create index password_reset_tokens_user on password_reset_tokens (user_id);

create table email_verification_tokens (
    token_hash  text primary key,
    user_id     text not null references users (id) on delete cascade,
    created_at  bigint not null,
    expires_at  bigint not null,
    used_at     bigint
);

-- outgoing mail, sent by a job with retries so a slow smtp server never blocks a request.
create table mail_outbox (
    id               text primary key,
    to_address       text not null,
    subject          text not null,
    text_body        text not null,
    html_body        text,
    created_at       bigint not null,
    attempts         bigint not null default 0,
    next_attempt_at  bigint not null,
    locked_until     bigint,
    sent_at          bigint,
    last_error       text
);
create index mail_outbox_due on mail_outbox (sent_at, next_attempt_at);

-- audit trail of every write; no foreign keys, so entries outlive what they describe.
create table audit_events (
    id               text primary key,
    org_id           text,
    actor_user_id    text,
    actor_client_id  text,
    action           text not null,
    target_type      text,
    target_id        text,
    ip               text,
    user_agent       text,
    details          text not null default '{}',
    created_at       bigint not null
);
create index audit_events_org on audit_events (org_id, created_at);
create index audit_events_time on audit_events (created_at);

create table login_events (
    id          text primary key,
    user_id     text references users (id) on delete cascade,
    email       text not null,
    success     bigint not null check (success in (0, 1)),
    ip          text,
    user_agent  text,
    created_at  bigint not null
);
create index login_events_user on login_events (user_id, created_at);

-- browsers a user has signed in from (new-device alert).
create table known_devices (
    user_id        text not null references users (id) on delete cascade,
    device_hash    text not null,
    first_seen_at  bigint not null,
    last_seen_at   bigint not null,
    primary key (user_id, device_hash)
);

-- leases for background jobs, so that each job runs once across processes.
create table job_leases (
    name          text primary key,
    holder        text not null,
    leased_until  bigint not null
);

-- at most one active key per algorithm, whatever several processes do at once.
create unique index signing_keys_one_active on signing_keys (alg) where state = 'active';
