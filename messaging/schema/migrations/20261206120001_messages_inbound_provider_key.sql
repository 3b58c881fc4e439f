-- migrate:up transaction:false

-- An inbound message is unique on its provider's key (20261206120000 says why).
-- The channel is implied by the message type ('sms' carries SMS and MMS), as in
-- inbound_events_channel_matches_type. Built CONCURRENTLY: webhooks and the
-- worker go on writing meanwhile. Should the build fail, it leaves an INVALID
-- index: DROP INDEX messages_inbound_provider_key, then migrate again.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS messages_inbound_provider_key ON messages (
    (CASE WHEN message_type = 'email' THEN 'email' ELSE 'sms' END), provider_message_id)
    WHERE direction = 'inbound';

-- migrate:down
DROP INDEX messages_inbound_provider_key;
