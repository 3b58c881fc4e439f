-- migrate:up transaction:false

-- Retention's walk: processed events, oldest received first. Partial, so that
-- the queue's live rows are not in it; an entry is added when an event is
-- marked processed (an update that is never HOT: status is in the partial
-- indexes' predicates anyway) and goes with the prune. Built CONCURRENTLY (see
-- 20261206120001).
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbound_events_processed_idx
    ON inbound_events (received_at) WHERE status = 'processed';

-- migrate:down
DROP INDEX inbound_events_processed_idx;
