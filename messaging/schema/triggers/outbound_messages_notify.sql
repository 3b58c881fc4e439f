-- Wakes the delivery loops when sends are stored.
--
-- Like inbound_events_notify.sql: statement-level with a transition table, one
-- notification per INSERT however many rows, an empty payload (the rows are the
-- queue; a missed notification loses nothing, the sweep finds the rows). The
-- worker's INSERTs of inbound messages stay silent: only queued outbound rows
-- notify. Retries are not notified: the loop that requeues a send wakes itself
-- when it is due, and the sweep covers every other worker.
--
-- Versioned name (_v1) so that a new definition can be installed beside the old
-- one while old processes still run.

CREATE OR REPLACE FUNCTION outbound_messages_notify_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM inserted_rows WHERE direction = 'outbound' AND status = 'queued'
    ) THEN
        PERFORM pg_notify('outbound_messages', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER messages_outbound_notify
    AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION outbound_messages_notify_v1();
