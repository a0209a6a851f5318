-- enterprise sso: upstream openid connect providers ("connections"), the upstream identities linked
-- to accounts, the email domains organizations proved they own, and the organization policy that
-- sends its people to its provider.
--
-- a connection belongs to one organization (`org_id`), or to the whole instance (null: operators'
-- social or workforce sign-in, shown as "continue with name" on the login page). the client secret
-- is sealed under the key-encryption key (aad: the connection id) and never returned.
-- `role_mapping` is json `{claim, map, default_role}` or null.
create table connections (
    id                    text primary key,
    org_id                text references organizations (id) on delete cascade,
    name                  text not null,
    issuer                text not null,
    client_id             text not null,
    client_secret_sealed  text not null,
    scopes                text not null,
    role_mapping          text,
    created_at            bigint not null,
    updated_at            bigint not null
);
create index connections_org on connections (org_id);

-- an upstream identity linked to an account: by (connection, iss, sub), never by email (the email
-- is kept only to show on the account page).
create table federated_identities (
    id             text primary key,
    user_id        text not null references users (id) on delete cascade,
    connection_id  text not null references connections (id) on delete cascade,
    issuer         text not null,
    subject        text not null,
    email          text,
    created_at     bigint not null,
    last_used_at   bigint,
    unique (connection_id, issuer, subject)
);
create index federated_identities_user on federated_identities (user_id);

-- email domains claimed by organizations. the challenge is published as a dns txt record (it is not a
-- secret); a domain may be claimed by several organizations but verified by one only.
create table org_domains (
    org_id       text not null references organizations (id) on delete cascade,
    domain       text not null,
    challenge    text not null,
    created_at   bigint not null,
    verified_at  bigint,
    primary key (org_id, domain)
);
create unique index org_domains_verified on org_domains (domain) where verified_at is not null;

-- an organization whose verified-domain members must sign in to it through its connection.
alter table organizations add column sso_required bigint not null default 0 check (sso_required in (0, 1));
