-- migrate:up

-- Idempotency-Key of the sends: a key names one send for good. Stored in the
-- transaction that stores the message, so a key survives restarts and holds
-- across processes: a repeat with the same key and request answers with the
-- message the key already names; the same key with another request is refused.
CREATE TABLE idempotency_keys (
    key          text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 256),
    -- The route the key was first used on ('sms' or 'email').
    endpoint     text        NOT NULL CHECK (endpoint IN ('sms', 'email')),
    -- sha256 (hex) of the route and the validated request: what "the same
    -- request" means when the key comes again.
    request_hash text        NOT NULL,
    message_id   bigint      NOT NULL UNIQUE REFERENCES messages (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE idempotency_keys;
