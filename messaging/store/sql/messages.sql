-- name: insert_inbound_messages
-- The messages of a batch of inbound events, then their conversations' counts and
-- last activity, in one statement. The conversations exist already
-- (insert_missing_conversations ran first in the same transaction); if one did
-- not, conversation_id would be NULL and the statement would fail rather than
-- lose the message.
-- A message is unique on its event: an event that already has one (replayed, or
-- processed under a claim that had timed out) inserts nothing and counts nothing,
-- so message_count counts exactly the messages that exist.
-- The conversations are locked in key order before they are updated, so that
-- concurrent workers queue on shared conversations in one order and cannot
-- deadlock. NO KEY UPDATE, the lock the UPDATE itself takes, does not conflict
-- with the KEY SHARE locks that the messages' foreign key checks take.
-- Answers one row per conversation with the number of messages it gained.
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
),
gained AS (
    SELECT conversation_id AS id, count(*) AS messages, max(sent_at) AS last_sent_at
    FROM inserted
    GROUP BY conversation_id
),
locked AS MATERIALIZED (
    SELECT c.id
    FROM conversations AS c
    JOIN gained AS g USING (id)
    ORDER BY c.kind, c.participant_a, c.participant_b
    FOR NO KEY UPDATE OF c
)
UPDATE conversations AS c
SET message_count = c.message_count + g.messages,
    last_activity_at = greatest(c.last_activity_at, g.last_sent_at)
FROM gained AS g
JOIN locked USING (id)
WHERE c.id = g.id
RETURNING c.id, g.messages;

-- name: insert_outbound_message
-- A send: the outbound message, queued and due now, then its conversation's count
-- and last activity (the later of the two: messages may arrive out of order), in
-- one statement. The conversation exists already (insert_missing_conversations ran
-- first in the same transaction); if it did not, conversation_id would be NULL and
-- the statement would fail rather than lose the message. The INSERT fires
-- messages_outbound_notify (triggers/), which wakes the delivery loops at commit.
-- $1 text kind ('sms' or 'email')   $2 text participant_a   $3 text participant_b
-- $4 text message_type   $5 text from_address   $6 text to_address   $7 text body
-- $8 text attachments (a JSON array)   $9 timestamptz sent_at (the payload's timestamp)
WITH inserted AS (
    INSERT INTO messages (conversation_id, direction, message_type, from_address,
                          to_address, body, attachments, sent_at, status, next_attempt_at)
    VALUES ((SELECT c.id
             FROM conversations AS c
             WHERE c.kind = $1 AND c.participant_a = $2 AND c.participant_b = $3),
            'outbound', $4, $5, $6, $7, $8::jsonb, $9, 'queued', now())
    RETURNING id, conversation_id, sent_at
),
counted AS (
    UPDATE conversations AS c
    SET message_count = c.message_count + 1,
        last_activity_at = greatest(c.last_activity_at, i.sent_at)
    FROM inserted AS i
    WHERE c.id = i.conversation_id
)
SELECT id, conversation_id FROM inserted;
