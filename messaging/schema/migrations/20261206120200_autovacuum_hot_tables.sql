-- migrate:up

-- Autovacuum of the tables whose rows die young. PostgreSQL vacuums a table once
-- its dead rows pass autovacuum_vacuum_threshold (50) plus
-- autovacuum_vacuum_scale_factor (0.2) times its rows: a fifth of the table.
-- That suits tables whose rows live on. These four hold a small live part (a
-- queue, or the last day) beside many rows that retention keeps for a while,
-- and their hot statements walk the part where rows die:
--
-- - inbound_events is a queue: each row is inserted, updated twice (claimed,
--   processed) and, after retention, deleted. No update is HOT (status is in
--   the partial indexes' predicates), so each leaves an entry behind in every
--   index; the claim walks inbound_events_due_idx, and the sweep
--   inbound_events_claimed_idx, from their oldest end, past every dead entry
--   left since the last vacuum.
-- - messages: each send is updated twice (sending, then sent or queued again),
--   never HOT, and the send claim walks messages_outbound_due_idx the same way.
-- - stream_events and idempotency_keys are inserted and, after their retention,
--   deleted from their old end, where each prune starts its walk.
--
-- Measured on 10,000,000 events (bench/scenarios/growth.py): an empty claim
-- reads about 80 more buffers for each 100,000 events processed since the last
-- vacuum. The default lets 2,000,000 dead rows (1,000,000 events) pass before
-- vacuuming, a fifth of the table kept as bloat and claims and sweeps ten
-- times dearer than after a vacuum. Nor is a fixed threshold the answer: a
-- vacuum that removes index entries reads every index of the table in full
-- (1.1 GB there; 40-50 s throttled, 650-830 MB of WAL, the drain at half speed
-- while it ran on 2 cores), and a fixed threshold would pay that at every
-- naptime on a large table. A smaller scale factor keeps the cost of a vacuum
-- in proportion to what it clears.

-- 0.02: a vacuum once 2% of the rows are dead (200,000 at 10,000,000 events,
-- about 100,000 webhooks), ten times as often as the default; claims then walk
-- at most a tenth of the dead entries. The threshold keeps its default (50):
-- on a small table a vacuum is cheap.
ALTER TABLE inbound_events SET (autovacuum_vacuum_scale_factor = 0.02);

-- 0.02: the sends' dead rows, against a table of mostly inbound messages that
-- are never updated: a vacuum after 1% of the table's rows in sends, not 10%.
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.02);

-- 0.02: the rows retention deleted are vacuumed away after 2% of the table,
-- not a fifth of a day's, so that each prune batch starts near its work.
ALTER TABLE stream_events SET (autovacuum_vacuum_scale_factor = 0.02);

ALTER TABLE idempotency_keys SET (autovacuum_vacuum_scale_factor = 0.02);

-- conversations keeps the defaults: each message updates its conversation (not
-- HOT: last_activity_at is indexed), but with one row per pair of participants
-- a fifth of the table is little, and its reads go by id or by the newest.

-- migrate:down
ALTER TABLE idempotency_keys RESET (autovacuum_vacuum_scale_factor);
ALTER TABLE stream_events RESET (autovacuum_vacuum_scale_factor);
ALTER TABLE messages RESET (autovacuum_vacuum_scale_factor);
ALTER TABLE inbound_events RESET (autovacuum_vacuum_scale_factor);
