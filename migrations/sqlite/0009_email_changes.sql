-- a change of a user's sign-in address waiting for its confirmation link (mailed to the new address).
-- only the sha-256 of the link's token is stored, like reset tokens. the address in use stays
-- users.email until the link is confirmed; a confirmed or replaced request gets used_at.
create table email_changes (
    token_hash  text primary key,
    user_id     text not null references users (id) on delete cascade,
    new_email   text not null,
    created_at  integer not null,
    expires_at  integer not null,
    used_at     integer
);
create index email_changes_user on email_changes (user_id);
