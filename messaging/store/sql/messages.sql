-- name: insert_inbound_messages
-- The messages of a batch of inbound events. The conversations exist already
-- (insert_missing_conversations ran first in the same transaction); if one did
-- not, conversation_id would be NULL and the statement would fail rather than
-- lose the message.
-- A message is unique on its event: an event that already has one (replayed, or
-- processed under a claim that had timed out) inserts nothing and counts nothing.
-- Answers one row per conversation with the messages it gained and the latest
-- of their sent_at, for finish_batch to add to the conversation. The
-- conversations are not updated here: the foreign key checks of this statement
-- take only KEY SHARE locks on them, which no concurrent batch waits for.
-- $1 bigint[] inbound_event_id   $2 text[] kind   $3 text[] participant_a
-- $4 text[] participant_b        $5 text[] message_type ('sms', 'mms', 'email')
-- $6 text[] from_address         $7 text[] to_address
-- $8 text[] body                 $9 text[] attachments (each a JSON array)
-- $10 timestamptz[] sent_at (the payload's timestamp)
-- $11 text[] provider_message_id
WITH input AS (
    SELECT *
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[])
         AS t(inbound_event_id, kind, participant_a, participant_b, message_type,
              from_address, to_address, body, attachments, sent_at, provider_message_id)
),
inserted AS (
    INSERT INTO messages (conversation_id, inbound_event_id, direction, message_type,
                          from_address, to_address, body, attachments, sent_at, status,
                          provider_message_id)
    SELECT c.id, i.inbound_event_id, 'inbound', i.message_type, i.from_address,
           i.to_address, i.body, i.attachments::jsonb, i.sent_at, 'received',
           i.provider_message_id
    FROM input AS i
    LEFT JOIN conversations AS c
           ON c.kind = i.kind
          AND c.participant_a = i.participant_a
          AND c.participant_b = i.participant_b
    WHERE NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.inbound_event_id = i.inbound_event_id)
    ORDER BY i.inbound_event_id
    ON CONFLICT (inbound_event_id) DO NOTHING
    RETURNING conversation_id, sent_at
)
SELECT conversation_id AS id, count(*)::int AS messages, max(sent_at) AS last_sent_at
FROM inserted
GROUP BY conversation_id;
