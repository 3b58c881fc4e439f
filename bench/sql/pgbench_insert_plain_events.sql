-- pgbench script: one webhook-like row per transaction into plain_events, the same table
-- without the NOTIFY trigger (bench/sql/pgbench_setup.sql).
-- The same statement shape as the service's insert (ON CONFLICT DO NOTHING).
-- (A space follows every colon of the JSON that precedes a letter: pgbench
-- would read ":null" as a variable.)
-- Provider ids: random 63-bit numbers, unique in practice; a repeat would
-- insert nothing rather than fail.
\set r random(1, 9000000000000000000)
INSERT INTO plain_events
    (channel, provider_message_id, message_type, from_address, to_address, payload)
VALUES ('sms', 'pgb-' || :r, 'sms', '+18045551234', '+12016661234',
        '{"from":"+18045551234","to":"+12016661234","type":"sms","messaging_provider_id":"pgb","body":"benchmark message","attachments": null,"timestamp":"2024-11-01T14:00:00Z"}')
ON CONFLICT (channel, provider_message_id) DO NOTHING;
