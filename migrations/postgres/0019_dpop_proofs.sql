-- dpop proofs seen (rfc 9449 §11.1: a proof is accepted once). one row per accepted proof: the
-- sha-256 of its key thumbprint and `jti` (so two keys cannot collide on a jti, and no proof can be
-- read back), kept until its `iat` falls out of the acceptance window. the primary key decides a
-- race between processes: the second insert of the same proof finds the row and is refused.
create table dpop_proofs (
    jti_hash    text primary key,
    -- unix seconds after which the proof is too old to be accepted anyway (then purged).
    expires_at  bigint not null
);
create index dpop_proofs_expires_at on dpop_proofs (expires_at);
