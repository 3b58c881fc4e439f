-- migrate:up

-- The stream's log (GET /api/events): one row per change a consumer is told of,
-- written by the triggers on messages (triggers/messages_stream.sql) in the
-- transaction that makes the change, so that a change and its event commit or
-- roll back together, whoever writes (the worker's batches, a send, a delivery
-- outcome, an operator in psql).
--
-- A row's position in the stream is (xid, id): the writing transaction's id,
-- then the row's identity within it. Neither alone is commit order: a
-- transaction that drew id 10 (or xid 10) can commit after one that drew 11.
-- Readers therefore read only rows whose transaction is older than the oldest
-- one still in flight (xid < pg_snapshot_xmin(pg_current_snapshot())): every
-- such transaction has ended, so no row can ever appear behind a position a
-- reader has passed. store/stream_events.sql says how; the README why.
CREATE TABLE stream_events (
    xid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    type            text        NOT NULL CHECK (type IN ('message.created', 'message.updated')),
    conversation_id bigint      NOT NULL,
    -- No foreign key: messages are never deleted, and the check would cost
    -- every insert a probe of messages' primary key.
    message_id      bigint      NOT NULL,
    -- The message's status as this change left it; the message's other fields
    -- never change, so they are read from messages.
    status          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (xid, id)
);

-- The newest position pruned from the log (retention): a consumer resuming from
-- an older one has missed events that are gone, and is answered 410. One row.
CREATE TABLE stream_horizon (
    one bool PRIMARY KEY DEFAULT true CHECK (one),
    xid xid8   NOT NULL,
    id  bigint NOT NULL
);
INSERT INTO stream_horizon (xid, id) VALUES ('0', 0);

-- migrate:down
DROP TABLE stream_horizon;
DROP TABLE stream_events;
