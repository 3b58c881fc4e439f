-- name: claim_sends_cte
-- The send claim's former shape, for bench/claim_shapes.py: the locked ids as a
-- CTE joined to the UPDATE (messages.sql:claim_sends now hands them over as one
-- array, the shape of claim_events).
-- $1 text processor_id   $2 int at most this many
WITH due AS (
    SELECT id
    FROM messages
    WHERE status = 'queued' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE messages AS m
SET status = 'sending',
    processor_id = $1,
    claimed_at = now(),
    delivery_attempts = m.delivery_attempts + 1
FROM due
WHERE m.id = due.id
RETURNING m.id, m.message_type, m.from_address, m.to_address, m.body,
          m.attachments::text AS attachments, m.sent_at, m.delivery_attempts, m.created_at;

-- name: seed_sends
-- $1 int how many queued sends, in one conversation
WITH c AS (
    INSERT INTO conversations (kind, participant_a, participant_b, message_count, last_activity_at)
    VALUES ('sms', '+12016661234', '+18045551234', 0, now())
    RETURNING id
)
INSERT INTO messages (conversation_id, direction, message_type, from_address, to_address,
                      body, sent_at, status, next_attempt_at)
SELECT c.id, 'outbound', 'sms', '+12016661234', '+18045551234', 'hello ' || i, now(),
       'queued', now()
FROM c, generate_series(1, $1) AS i;

-- name: requeue_sends
UPDATE messages
SET status = 'queued', processor_id = NULL, claimed_at = NULL, next_attempt_at = now()
WHERE direction = 'outbound';
