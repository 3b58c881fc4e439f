-- name: lock_idempotency_key
-- First statement of a send that carries an Idempotency-Key: serialises the
-- transactions that use one key, so that of two identical requests racing, the
-- second waits for the first to commit and then finds its key (find runs as a
-- statement of its own, with a snapshot taken after the wait). The lock is
-- released at commit or rollback. Unrelated keys whose hashes collide only wait
-- for each other briefly.
-- $1 text the key
SELECT pg_advisory_xact_lock(hashtextextended($1, 0));

-- name: find_idempotency_key
-- The send a key already names, if any: the request it was used with and the
-- message (and its conversation) that request stored.
-- $1 text the key
SELECT k.request_hash, k.message_id, m.conversation_id
FROM idempotency_keys AS k
JOIN messages AS m ON m.id = k.message_id
WHERE k.key = $1;

-- name: insert_idempotency_key
-- Records the key in the transaction that stored its message.
-- $1 text the key   $2 text endpoint ('sms' or 'email')
-- $3 text request hash   $4 bigint message id
INSERT INTO idempotency_keys (key, endpoint, request_hash, message_id)
VALUES ($1, $2, $3, $4);

-- name: prune_idempotency_keys
-- Retention: deletes up to $2 keys used more than $1 seconds ago, oldest first
-- (idempotency_keys_created_at_idx). After that a repeat of the request with
-- the same key is a new send: clients retry within minutes, and the README
-- says how long a key is kept. The messages they named are kept. Keys are
-- never updated, so they are not locked first (a WAL record per row saved);
-- one batch runs at a time (retention_state.sql). Answers how many went.
-- $1 float8 retention in seconds   $2 int at most this many rows
WITH deleted AS (
    DELETE FROM idempotency_keys
    WHERE key = ANY(ARRAY(
        SELECT key
        FROM idempotency_keys
        WHERE created_at < now() - make_interval(secs => $1)
        ORDER BY created_at
        LIMIT $2
    ))
    RETURNING 1
)
SELECT count(*)::int FROM deleted;
