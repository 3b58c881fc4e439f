-- migrate:up

-- Outbound messages are their own delivery queue: a send is stored as a message
-- in status queued, and the worker's delivery loop claims it (sending), hands it
-- to the provider outside any transaction, and records the outcome: sent with
-- the provider's id, back to queued for a retry, or failed with the reason.
--
-- next_attempt_at gets now() for the rows already there without a table
-- rewrite (a stable default is evaluated once, when the column is added); it
-- only means something for outbound messages in status queued.
ALTER TABLE messages
    ADD COLUMN delivery_attempts integer     NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    ADD COLUMN next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN processor_id      text,
    ADD COLUMN claimed_at        timestamptz,
    ADD COLUMN last_error        text,
    -- When the provider accepted it (status sent); delivered_at - created_at is
    -- the time from the send's commit (its 202) to the provider's acceptance.
    ADD COLUMN delivered_at      timestamptz;

ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages
    ADD CONSTRAINT messages_status_check
        CHECK (status IN ('received', 'queued', 'sending', 'sent', 'failed')),
    -- Inbound messages arrived; only outbound ones go through delivery.
    ADD CONSTRAINT messages_status_matches_direction CHECK (
        (direction = 'inbound' AND status = 'received')
        OR (direction = 'outbound' AND status IN ('queued', 'sending', 'sent', 'failed'))),
    ADD CONSTRAINT messages_sending_has_claim CHECK (
        status <> 'sending' OR (processor_id IS NOT NULL AND claimed_at IS NOT NULL)),
    -- The provider's id is recorded in the statement that marks a message sent.
    ADD CONSTRAINT messages_sent_has_provider_id CHECK (
        status <> 'sent' OR provider_message_id IS NOT NULL);

-- The delivery loop's claim: due sends in next_attempt_at order. Partial, so that
-- the messages already delivered (and every inbound one) cost the claim nothing.
CREATE INDEX messages_outbound_due_idx ON messages (next_attempt_at)
    WHERE status = 'queued';

-- The sweep's search for sends claimed by a worker that died mid-send.
CREATE INDEX messages_outbound_claimed_idx ON messages (claimed_at)
    WHERE status = 'sending';

-- migrate:down
DROP INDEX messages_outbound_claimed_idx;
DROP INDEX messages_outbound_due_idx;
ALTER TABLE messages
    DROP CONSTRAINT messages_sent_has_provider_id,
    DROP CONSTRAINT messages_sending_has_claim,
    DROP CONSTRAINT messages_status_matches_direction,
    DROP CONSTRAINT messages_status_check;
UPDATE messages SET status = 'queued' WHERE status = 'sending';
ALTER TABLE messages
    ADD CONSTRAINT messages_status_check
        CHECK (status IN ('received', 'queued', 'sent', 'failed')),
    DROP COLUMN delivered_at,
    DROP COLUMN last_error,
    DROP COLUMN claimed_at,
    DROP COLUMN processor_id,
    DROP COLUMN next_attempt_at,
    DROP COLUMN delivery_attempts;
