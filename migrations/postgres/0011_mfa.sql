-- multi-factor authentication: totp authenticators, recovery codes, passkeys, and the organization
-- policy that requires a second factor.
--
-- one totp authenticator per account. the secret is sealed under the key-encryption key (aad: the
-- user id), never stored in clear. `confirmed_at` is null while enrolment waits for its first code;
-- `last_step` is the rfc 6238 time step of the last accepted code, so a code is accepted once.
create table totp_factors (
    user_id       text primary key references users (id) on delete cascade,
    secret_sealed text not null,
    last_step     bigint not null default 0,
    created_at    bigint not null,
    confirmed_at  bigint
);

-- single-use recovery codes, stored as an hmac-sha256 under a key derived from the key-encryption
-- key (a plain hash of a short code reverses quickly); regenerating replaces every row of the account.
create table recovery_codes (
    id          text primary key,
    user_id     text not null references users (id) on delete cascade,
    code_hash   text not null,
    created_at  bigint not null,
    used_at     bigint
);
create index recovery_codes_user on recovery_codes (user_id);

-- webauthn passkeys: the credential id (base64url) and the serialised webauthn-rs credential (public
-- key, counter, flags; no secret), with the name the person gave it and its last use.
create table passkeys (
    id             text primary key,
    user_id        text not null references users (id) on delete cascade,
    credential_id  text not null unique,
    name           text not null,
    credential     text not null,
    created_at     bigint not null,
    last_used_at   bigint
);
create index passkeys_user on passkeys (user_id);

-- an organization whose members must use a second factor to sign in to it.
alter table organizations add column require_mfa bigint not null default 0 check (require_mfa in (0, 1));
