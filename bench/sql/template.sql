-- name: add_history
-- Earlier traffic in the template every service database is copied from:
-- processed events, as in a service that has been running. With statistics on
-- a table of this size the planner looks existing rows up by index; on an
-- empty, never-analyzed table it plans the ingest statement's lookup of
-- existing rows (store/sql/inbound_events.sql) as a sequential scan, and keeps
-- that plan until autovacuum analyzes the table (up to a minute).
-- $1 int    how many
INSERT INTO inbound_events
    (channel, provider_message_id, message_type, from_address, to_address, payload,
     status, attempt_count, processed_at)
SELECT 'sms', 'history-' || i, 'sms', '+18045559999', '+12016661234',
       jsonb_build_object(
           'from', '+18045559999', 'to', '+12016661234', 'type', 'sms',
           'messaging_provider_id', 'history-' || i, 'body', 'earlier message',
           'attachments', NULL, 'timestamp', '2024-10-01T14:00:00Z'),
       'processed', 1, now()
FROM generate_series(1, $1) AS i;

-- name: vacuum_analyze
-- Statistics and visibility map for the template's tables.
VACUUM (ANALYZE);
