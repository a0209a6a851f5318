-- protocol breadth, per client: where logout tokens are posted (openid connect back-channel logout
-- 1.0), the resource servers (rfc 8707) the client may ask tokens for (a json list like the other
-- lists), and whether only pushed authorization requests (rfc 9126) are accepted.
alter table clients add column backchannel_logout_uri text;
alter table clients add column resources text not null default '[]';
alter table clients add column require_par integer not null default 0 check (require_par in (0, 1));

-- what a code and a refresh-token family carry forward: the resource server named at the
-- authorization request (rfc 8707; the access tokens' aud), and the dpop key thumbprint the tokens
-- are bound to (rfc 9449 §10 for codes, §5 for a public client's refresh tokens).
alter table authorization_codes add column resource text;
alter table authorization_codes add column dpop_jkt text;
alter table refresh_families add column resource text;
alter table refresh_families add column dpop_jkt text;
