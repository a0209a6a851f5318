-- authentication methods (amr, json array) of the login a refresh-token family was born from, so that
-- refreshed id tokens repeat them (oidc core §12.2: the new id token describes the original login).
alter table refresh_families add column amr text not null default '[]';
-- refresh_families.last_used_at is no longer updated on every rotation: the idle limit counts from
-- the newest token's refresh_tokens.created_at (one statement fewer on the hot path).
