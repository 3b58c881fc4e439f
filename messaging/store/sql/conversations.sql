-- name: insert_missing_conversations
-- Creates the conversations a batch of messages needs that do not exist yet, with
-- no messages counted (insert_inbound_messages counts them). Only missing keys
-- are proposed: every row proposed to an INSERT draws an identity value, even one
-- that ON CONFLICT then discards, and clients expect the first conversation of a
-- fresh database to be number 1. Keys are inserted in sorted order, so that two
-- workers creating the same new conversations wait on each other in one order
-- and cannot deadlock; ON CONFLICT covers a key that another worker created since
-- this statement's snapshot.
-- $1 text[] kind ('sms' or 'email')   $2 text[] participant_a
-- $3 text[] participant_b (participant_a <= participant_b, normalised)
-- $4 timestamptz[] latest sent_at among the batch's messages of the conversation
INSERT INTO conversations (kind, participant_a, participant_b, message_count, last_activity_at)
SELECT k.kind, k.participant_a, k.participant_b, 0, k.last_activity_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
     AS k(kind, participant_a, participant_b, last_activity_at)
WHERE NOT EXISTS (
    SELECT 1
    FROM conversations AS c
    WHERE c.kind = k.kind
      AND c.participant_a = k.participant_a
      AND c.participant_b = k.participant_b
)
ORDER BY k.kind, k.participant_a, k.participant_b
ON CONFLICT (kind, participant_a, participant_b) DO NOTHING;
