-- client secret rotation with a grace period: `client rotate-secret` (and the operator api) gives a
-- confidential client a new secret and keeps the sha-256 hex of the old one, accepted at client
-- authentication until previous_secret_expires_at (unix seconds), so that the relying party can deploy
-- the new secret without an outage. both null when there is no previous secret (or a grace of 0).
alter table clients add column previous_secret_hash text;
alter table clients add column previous_secret_expires_at bigint;
