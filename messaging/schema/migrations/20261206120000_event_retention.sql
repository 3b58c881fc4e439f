-- migrate:up

-- Retention (worker/retention.py) deletes processed inbound events after
-- MESSAGING_EVENT_RETENTION_SECS. Until now a message's exactly-once rested on
-- its event: inbound_event_id was unique and referenced inbound_events. Once an
-- event is deleted, a provider's late retry of it is stored as a new event,
-- and that event must still not make a second message. So the guarantee moves
-- to the message itself: an inbound message is unique on its provider's key,
-- (channel, provider message id), the same key that makes events unique
-- (20261206120001). A replayed, re-claimed or re-delivered event, pruned or not,
-- finds its message there and inserts nothing. The key is kept with the message
-- for good, in the product's own data: no second table, no second row per event.
--
-- This release's migrations are written for a table of millions of rows that
-- is being written to: each statement here takes its lock for an instant and
-- scans nothing; the indexes are built CONCURRENTLY, one per migration (dbmate
-- runs a transaction:false migration as one statement string, and PostgreSQL
-- refuses CONCURRENTLY in a string of several), and the new CHECK is validated
-- in a migration of its own, under a lock that lets writes go on.

-- The event a message came from stays as a plain column, for tracing: the row
-- it names may have been pruned. Its unique constraint stays too, so that the
-- workers of the previous release (whose insert names it in ON CONFLICT) keep
-- working while a rolling upgrade replaces them; it can go in a later release.
ALTER TABLE messages DROP CONSTRAINT messages_inbound_event_id_fkey;

-- Checked for new rows now, for the rows there are by 20261206120002.
ALTER TABLE messages
    ADD CONSTRAINT messages_inbound_has_provider_id CHECK (
        direction <> 'inbound' OR provider_message_id IS NOT NULL) NOT VALID;

-- Retention's pace across processes: when any process last ended a batch that
-- deleted rows. A batch waits for MESSAGING_PRUNE_PAUSE_MS after it, whichever
-- process runs it (store/retention_state.sql). One row.
CREATE TABLE retention_state (
    one           bool        PRIMARY KEY DEFAULT true CHECK (one),
    last_batch_at timestamptz NOT NULL
);
INSERT INTO retention_state (last_batch_at) VALUES ('-infinity');

-- migrate:down
DROP TABLE retention_state;
ALTER TABLE messages DROP CONSTRAINT messages_inbound_has_provider_id;
-- NOT VALID: events may have been pruned since, leaving messages that name them.
ALTER TABLE messages ADD CONSTRAINT messages_inbound_event_id_fkey
    FOREIGN KEY (inbound_event_id) REFERENCES inbound_events (id) NOT VALID;
