-- Wakes the workers when events arrive.
--
-- A statement-level trigger, so that one multi-row INSERT (the group commit of
-- many webhooks) sends one notification, not one per row. The payload is empty:
-- the notification only says "look", the rows themselves are the queue, and a
-- listener that misses a notification loses nothing (the sweep finds the rows).
-- The transition table lets an INSERT ... ON CONFLICT DO NOTHING that inserted
-- nothing (a provider's retry) stay silent.
--
-- Versioned name (_v1) so that a new definition can be installed beside the old
-- one while old processes still run.

CREATE OR REPLACE FUNCTION inbound_events_notify_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_rows) THEN
        PERFORM pg_notify('inbound_events', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER inbound_events_notify
    AFTER INSERT ON inbound_events
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION inbound_events_notify_v1();
