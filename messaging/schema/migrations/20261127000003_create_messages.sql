-- migrate:up

CREATE TABLE messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id  bigint      NOT NULL REFERENCES conversations (id),
    -- The inbound event a message came from; unique, so that no retry, replay or
    -- second worker can ever create a message twice from one event.
    inbound_event_id bigint      UNIQUE REFERENCES inbound_events (id),
    direction        text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    message_type     text        NOT NULL CHECK (message_type IN ('sms', 'mms', 'email')),
    from_address     text        NOT NULL,
    to_address       text        NOT NULL,
    body             text        NOT NULL,
    attachments      jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attachments) = 'array'),
    -- The message's own timestamp, as the client or provider gave it.
    sent_at          timestamptz NOT NULL,
    status           text        NOT NULL
                     CHECK (status IN ('received', 'queued', 'sent', 'failed')),
    provider_message_id text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_inbound_has_event CHECK (
        direction <> 'inbound' OR inbound_event_id IS NOT NULL)
);

-- A conversation's messages, oldest first, stable by id.
CREATE INDEX messages_conversation_sent_at_idx ON messages (conversation_id, sent_at, id);

-- migrate:down
DROP TABLE messages;
