-- protocol hardening.
--
-- per-client permissions. allow_no_pkce: the client may send an authorization request without a
-- pkce challenge (rfc 9700 §2.1.1 wants pkce from every client); clients registered before this
-- migration that are confidential keep working as they did, so they get it; new rows default to
-- pkce required. introspect: the client may introspect tokens issued to other clients (rfc 7662 §4).
alter table clients add column allow_no_pkce integer not null default 0 check (allow_no_pkce in (0, 1));
alter table clients add column introspect integer not null default 0 check (introspect in (0, 1));
update clients set allow_no_pkce = 1 where public = 0;

-- consents are remembered per user, client and organization ('' = no organization): agreeing that an
-- application acts for one organization says nothing about another. existing consents were given
-- before organizations were part of the key; they stay valid for "no organization" only, so a user
-- signing in for an organization is asked once more.
create table consents_by_org (
    user_id     text not null references users (id) on delete cascade,
    client_id   text not null references clients (id) on delete cascade,
    org_id      text not null default '',
    scopes      text not null,
    granted_at  integer not null,
    primary key (user_id, client_id, org_id)
);
insert into consents_by_org (user_id, client_id, org_id, scopes, granted_at)
    select user_id, client_id, '', scopes, granted_at from consents;
drop table consents;
alter table consents_by_org rename to consents;
