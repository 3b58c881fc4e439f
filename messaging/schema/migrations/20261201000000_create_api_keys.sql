-- migrate:up

-- The API's consumers: one row per key, made by `messaging keys create`. Only a
-- SHA-256 of the secret is kept: the key is shown once, to its creator, and a
-- copy of this table (a backup, a replica, a dump) lets nobody call the API.
-- A key is revoked, never deleted, so that its name, its scopes and when it was
-- last used stay readable; a name is taken for good, revoked or not, so that
-- `keys revoke NAME` and the logs always mean one key.
CREATE TABLE api_keys (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What the operator calls the consumer; also the NOTIFY payload when the key
    -- changes (triggers/api_keys_notify.sql), hence the short, plain alphabet.
    name          text        NOT NULL UNIQUE
                              CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    scopes        text[]      NOT NULL
                              CHECK (cardinality(scopes) > 0
                                     AND scopes <@ ARRAY['send', 'read', 'admin']),
    -- sha256 of the whole key (prefix included). A key is 32 random bytes or
    -- more, so an unsalted hash is enough: nothing can be guessed from it.
    secret_sha256 bytea       NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    -- Written by the serving processes at most once a minute per key, off the
    -- requests' path: a hint for the operator, up to a minute behind.
    last_used_at  timestamptz
);

-- migrate:down
DROP TABLE api_keys;
