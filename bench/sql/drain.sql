-- name: seed_events
-- Pre-inserts webhook events as the API stores them (status received), in one
-- statement: SMS from 1,000 different senders to one number, so that the
-- worker creates and updates conversations as well as messages.
-- $1 int    how many
-- $2 text   provider id prefix (unique to the measurement)
INSERT INTO inbound_events
    (channel, provider_message_id, message_type, from_address, to_address, payload)
SELECT 'sms', $2 || '-' || i, 'sms', sender, '+12016661234',
       jsonb_build_object(
           'from', sender, 'to', '+12016661234', 'type', 'sms',
           'messaging_provider_id', $2 || '-' || i, 'body', 'benchmark message ' || i,
           'attachments', NULL, 'timestamp', '2024-11-01T14:00:00Z')
FROM generate_series(1, $1) AS i,
     LATERAL (SELECT '+1804555' || lpad((i % 1000)::text, 4, '0') AS sender) AS s;

-- name: remaining_events
-- Events not yet processed (received, error or claimed), by the two partial
-- indexes of the claim and the sweep rather than a scan of the whole table.
SELECT (SELECT count(*) FROM inbound_events WHERE status IN ('received', 'error'))
     + (SELECT count(*) FROM inbound_events WHERE status = 'processing');

-- name: drain_outcome
-- What the drain left: every event processed once, one message each (the
-- template's history events are processed already and have no message), each
-- counted once by its conversation (counted: the sum of the counts).
SELECT (SELECT count(*) FROM inbound_events WHERE status <> 'processed') AS not_processed,
       (SELECT count(*) FROM messages) AS messages,
       (SELECT count(*) FROM conversations) AS conversations,
       (SELECT coalesce(sum(message_count), 0) FROM conversations)::bigint AS counted;

-- name: vacuum_events
-- A queue at rest before the drain (visibility map and statistics up to date);
-- the peers' tables get the same.
VACUUM (ANALYZE) inbound_events;

-- name: disable_stream_log
-- The variant without the stream's log (issue 12): inserted messages write no
-- log row and send no stream notification, as before the log existed.
ALTER TABLE messages DISABLE TRIGGER messages_stream_created;
