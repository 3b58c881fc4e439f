-- migrate:up transaction:false

-- The operator's lists and counts of what is stuck (GET /api/admin/queues,
-- /api/admin/events?status=dead_letter, `messaging events`, `messaging replay
-- --all-dead`). Dead letters are kept until an operator replays or purges them,
-- among millions of processed events: partial, so that a count or a page of
-- them reads these few rows, never the table. On id: the lists' order. Built
-- CONCURRENTLY (see 20261206120001).
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbound_events_dead_letter_idx
    ON inbound_events (id) WHERE status = 'dead_letter';

-- migrate:down
DROP INDEX inbound_events_dead_letter_idx;
