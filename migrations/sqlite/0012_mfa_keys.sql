-- keys of the second factors that must outlive a change of the key-encryption key. the hmac key of
-- the recovery codes (migration 0011 stores only hmacs of the codes) is random and sealed under the
-- kek (aad: its name), not derived from the kek: `keys rewrap` re-seals it, so moving to a new kek
-- does not void every recovery code.
create table mfa_keys (
    name       text primary key,
    key_sealed text not null,
    created_at integer not null
);
