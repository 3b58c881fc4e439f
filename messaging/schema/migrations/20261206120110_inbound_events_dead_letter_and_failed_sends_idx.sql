-- migrate:up

-- The operator's lists and counts of what is stuck (GET /api/admin/queues,
-- /api/admin/events?status=dead_letter, /api/admin/sends?status=failed,
-- `messaging events`, `messaging replay --all-dead`). Dead letters and failed
-- sends are kept until an operator replays or purges them, among millions of
-- processed events and sent messages: partial, so that a count or a page of
-- them reads these few rows, never the table. On id: the lists' order.
CREATE INDEX inbound_events_dead_letter_idx ON inbound_events (id)
    WHERE status = 'dead_letter';

CREATE INDEX messages_failed_idx ON messages (id)
    WHERE status = 'failed';

-- migrate:down
DROP INDEX messages_failed_idx;
DROP INDEX inbound_events_dead_letter_idx;
