-- migrate:up transaction:false

-- Retention's walk of the Idempotency-Keys, oldest first. Built CONCURRENTLY
-- (see 20261206120001).
CREATE INDEX CONCURRENTLY IF NOT EXISTS idempotency_keys_created_at_idx
    ON idempotency_keys (created_at);

-- migrate:down
DROP INDEX idempotency_keys_created_at_idx;
