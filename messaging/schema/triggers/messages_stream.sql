-- Writes the stream's log (the table stream_events) for every change of a
-- message, in the changing transaction, and wakes the streams.
--
-- message.created for each inserted message (an inbound message the worker
-- stored, a send queued by the API); message.updated for each message whose
-- status an UPDATE changed (a send claimed, sent, retried or failed). The row
-- takes its position from the transaction (stream_events.xid defaults to
-- pg_current_xact_id()) and its identity, in message id order within one
-- statement.
--
-- Statement-level with transition tables, like the queues' notify triggers: a
-- worker's batch of 500 messages is one INSERT ... SELECT and one notification.
-- (A transition table rules out a column list such as UPDATE OF status, so the
-- update trigger compares the old and new rows itself.) The payload is empty:
-- the notification says "read", the log is what is read, and a stream that
-- misses a notification loses nothing (its fallback read finds the rows).
--
-- Versioned names (_v1) so that a new definition can be installed beside the
-- old one while old processes still run.

CREATE OR REPLACE FUNCTION messages_stream_created_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_events (type, conversation_id, message_id, status)
    SELECT 'message.created', n.conversation_id, n.id, n.status
    FROM inserted_rows AS n
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('stream_events', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION messages_stream_updated_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_events (type, conversation_id, message_id, status)
    SELECT 'message.updated', n.conversation_id, n.id, n.status
    FROM updated_rows AS n
    JOIN previous_rows AS o ON o.id = n.id
    WHERE o.status IS DISTINCT FROM n.status
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('stream_events', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER messages_stream_created
    AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION messages_stream_created_v1();

CREATE OR REPLACE TRIGGER messages_stream_updated
    AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION messages_stream_updated_v1();
