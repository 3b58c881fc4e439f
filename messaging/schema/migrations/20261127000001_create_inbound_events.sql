-- migrate:up

-- Every provider webhook lands here first, exactly as received, before anything
-- else happens to it. The worker turns rows into messages and conversations.
CREATE TABLE inbound_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The provider's channel: 'sms' carries SMS and MMS, 'email' carries email.
    channel             text        NOT NULL CHECK (channel IN ('sms', 'email')),
    provider_message_id text        NOT NULL CHECK (length(provider_message_id) BETWEEN 1 AND 256),
    message_type        text        NOT NULL CHECK (message_type IN ('sms', 'mms', 'email')),
    from_address        text        NOT NULL,
    to_address          text        NOT NULL,
    payload             jsonb       NOT NULL,
    status              text        NOT NULL DEFAULT 'received'
                        CHECK (status IN ('received', 'processing', 'processed', 'error', 'dead_letter')),
    attempt_count       integer     NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    processor_id        text,
    claimed_at          timestamptz,
    last_error          text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    processed_at        timestamptz,
    -- A provider retrying a webhook must not create a second event.
    CONSTRAINT inbound_events_channel_provider_message_id_key UNIQUE (channel, provider_message_id),
    CONSTRAINT inbound_events_channel_matches_type CHECK (
        (channel = 'sms' AND message_type IN ('sms', 'mms'))
        OR (channel = 'email' AND message_type = 'email')),
    CONSTRAINT inbound_events_processing_has_claim CHECK (
        status <> 'processing' OR (processor_id IS NOT NULL AND claimed_at IS NOT NULL))
);

-- The claim query: due events in next_attempt_at order. Partial, so that the
-- ever-growing set of processed rows costs the claim nothing.
CREATE INDEX inbound_events_due_idx ON inbound_events (next_attempt_at)
    WHERE status IN ('received', 'error');

-- The sweep's search for claims abandoned by a crashed worker.
CREATE INDEX inbound_events_claimed_idx ON inbound_events (claimed_at)
    WHERE status = 'processing';

-- migrate:down
DROP TABLE inbound_events;
