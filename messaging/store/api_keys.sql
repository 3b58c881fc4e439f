-- name: insert_api_key
-- A new key, unless its name is taken (revoked keys keep theirs): no row then.
-- $1 text name   $2 text[] scopes   $3 bytea sha256 of the key
INSERT INTO api_keys (name, scopes, secret_sha256)
VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
RETURNING id, created_at;

-- name: list_api_keys
-- Every key for the operator, oldest first; never the hash (it is of no use to
-- anyone reading a list).
SELECT name, scopes, created_at, last_used_at, revoked_at
FROM api_keys
ORDER BY created_at, id;

-- name: load_api_keys
-- What a serving process checks requests against (apikeys.KeyCache), revoked
-- keys included, so that a client using one is told it was revoked. The table
-- holds one row per consumer the operator made: small enough to read whole
-- every few seconds.
SELECT id, name, scopes, secret_sha256, revoked_at IS NOT NULL AS revoked
FROM api_keys;

-- name: revoke_api_key
-- Revokes a key by name; the trigger (triggers/api_keys_notify.sql) tells every
-- serving process at commit. One row if the name exists: revoked_at and whether
-- this statement revoked it (false: it already was). No row: no such key.
-- The second branch reads the snapshot from before the UPDATE, so it finds the
-- key only when the UPDATE did not change it.
-- $1 text name
WITH revoked AS (
    UPDATE api_keys SET revoked_at = now()
    WHERE name = $1 AND revoked_at IS NULL
    RETURNING revoked_at
)
SELECT revoked_at, true AS now_revoked FROM revoked
UNION ALL
SELECT revoked_at, false AS now_revoked FROM api_keys
WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM revoked);

-- name: record_last_used
-- When keys were last used, as one serving process saw them. A key's row is
-- written only when the time moves on by a minute or more, so that however many
-- processes serve one key, it is written at most about once a minute; the
-- column may lag by up to that minute.
-- $1 bigint[] key ids   $2 timestamptz[] last use of each, in the same order
UPDATE api_keys AS k
SET last_used_at = u.used_at
FROM unnest($1::bigint[], $2::timestamptz[]) AS u (id, used_at)
WHERE k.id = u.id
  AND (k.last_used_at IS NULL OR k.last_used_at <= u.used_at - interval '1 minute');
