-- migrate:up transaction:false

-- The same for failed sends (GET /api/admin/queues, /api/admin/sends?status=failed),
-- kept until an operator retries them, among millions of messages. Built
-- CONCURRENTLY (see 20261206120001).
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_failed_idx
    ON messages (id) WHERE status = 'failed';

-- migrate:down
DROP INDEX messages_failed_idx;
