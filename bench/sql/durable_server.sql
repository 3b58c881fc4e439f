-- name: insert_events
-- Baseline (b), bench/durable_server.py: one multi-row INSERT per group commit,
-- the service's table, unique index and NOTIFY trigger; a provider's retry
-- inserts nothing (ON CONFLICT DO NOTHING) and answers no id.
-- $1 text[] provider_message_id  $2 text[] message_type
-- $3 text[] from_address         $4 text[] to_address   $5 text[] payload
INSERT INTO inbound_events
    (channel, provider_message_id, message_type, from_address, to_address, payload)
SELECT 'sms', t.provider_message_id, t.message_type, t.from_address, t.to_address,
       t.payload::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS t(provider_message_id, message_type, from_address, to_address, payload)
ON CONFLICT (channel, provider_message_id) DO NOTHING
RETURNING id;
