-- migrate:up

-- Retention (worker/retention.py) deletes processed inbound events after
-- MESSAGING_EVENT_RETENTION_SECS. Until now a message's exactly-once rested on
-- its event: inbound_event_id was unique and referenced inbound_events. Once an
-- event is deleted, a provider's late retry of it is stored as a new event,
-- and that event must still not make a second message. So the guarantee moves
-- to the message itself: an inbound message is unique on its provider's key,
-- (channel, provider message id), the same key that makes events unique. A
-- replayed, re-claimed or re-delivered event, pruned or not, finds its message
-- there and inserts nothing. The key is kept with the message for good, in the
-- product's own data, so it costs no second table and no second row per event.

-- The channel is implied by the message type ('sms' carries SMS and MMS), as in
-- inbound_events_channel_matches_type.
CREATE UNIQUE INDEX messages_inbound_provider_key ON messages (
    (CASE WHEN message_type = 'email' THEN 'email' ELSE 'sms' END), provider_message_id)
    WHERE direction = 'inbound';

ALTER TABLE messages
    ADD CONSTRAINT messages_inbound_has_provider_id CHECK (
        direction <> 'inbound' OR provider_message_id IS NOT NULL);

-- The event a message came from stays as a plain column, for tracing: the row
-- it names may have been pruned. Its uniqueness is implied by the key above
-- (an event's key is unique), so its index would only cost every insert.
ALTER TABLE messages DROP CONSTRAINT messages_inbound_event_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_inbound_event_id_key;

-- The prune's walk: processed events, oldest received first. Partial, so that
-- the queue's live rows are not in it; an entry is added when an event is
-- marked processed (an update that is never HOT: status is in the partial
-- indexes' predicates), and taken out by the prune.
CREATE INDEX inbound_events_processed_idx ON inbound_events (received_at)
    WHERE status = 'processed';

-- The prune's walk of the idempotency keys, oldest first.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- migrate:down
DROP INDEX idempotency_keys_created_at_idx;
DROP INDEX inbound_events_processed_idx;
ALTER TABLE messages ADD CONSTRAINT messages_inbound_event_id_key UNIQUE (inbound_event_id);
ALTER TABLE messages ADD CONSTRAINT messages_inbound_event_id_fkey
    FOREIGN KEY (inbound_event_id) REFERENCES inbound_events (id);
ALTER TABLE messages DROP CONSTRAINT messages_inbound_has_provider_id;
DROP INDEX messages_inbound_provider_key;
