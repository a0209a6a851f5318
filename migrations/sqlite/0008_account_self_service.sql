-- self-service account pages ("your account").
--
-- a browser session shows its owner where and when it is used: the sid (the id clients see in id
-- tokens, stable across id renewal, and the handle by which one session is ended), the browser, the
-- client address, when it signed in and when it was last renewed by use. copied out of the session
-- record by the session store, like user_id; null for anonymous sessions.
alter table sessions add column sid text;
alter table sessions add column user_agent text;
alter table sessions add column ip text;
alter table sessions add column signed_in_at integer;
alter table sessions add column last_seen_at integer;
create index sessions_sid on sessions (sid);
-- sessions signed in before this migration: their sid and times come out of the record's data.
update sessions set sid = json_extract(data, '$.sid'),
    signed_in_at = json_extract(data, '$.auth_time'),
    last_seen_at = json_extract(data, '$.seen')
    where user_id is not null;

-- how a sign-in attempt authenticated (rfc 8176 amr value: pwd, email, ...); null for older rows.
alter table login_events add column method text;

-- the refresh families of one client and user, for "remove access" of connected apps.
create index refresh_families_user_client on refresh_families (user_id, client_id);
