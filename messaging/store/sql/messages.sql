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

-- name: claim_sends
-- Claims up to $2 due sends (queued, next attempt due), oldest due first, for
-- processor $1, counting the attempt. The claim commits on its own: the provider
-- is called outside any transaction, and a worker that dies mid-send leaves a
-- visible claim (sending, claimed_at) that the sweep returns once it times out.
-- SKIP LOCKED lets any number of workers claim at once; a row another worker
-- claimed since this statement's snapshot fails the status recheck, so no send is
-- claimed twice. The WHERE clause repeats messages_outbound_due_idx's predicate
-- so the index is used.
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

-- name: mark_sent
-- The provider accepted the send: status sent and the provider's id, in one
-- statement. Only while processor $2 still holds the claim: a worker whose claim
-- timed out (and was returned by the sweep, maybe re-sent by another) changes
-- nothing; the provider's idempotency key made any re-send the same delivery.
-- delivered_at is the clock at this statement, so that delivered_at - created_at
-- is the time from the send's commit to its acceptance.
-- Answers that time in seconds, or no row when the claim was lost.
-- $1 bigint message id   $2 text processor_id   $3 text the provider's message id
UPDATE messages
SET status = 'sent',
    provider_message_id = $3,
    delivered_at = clock_timestamp()
WHERE id = $1 AND status = 'sending' AND processor_id = $2
RETURNING extract(epoch FROM delivered_at - created_at)::float8 AS latency_s;

-- name: retry_send
-- The provider did not take the send this time (429, 5xx, a timeout): back to
-- queued, due after the backoff delay or the provider's Retry-After, whichever is
-- later (greatest() ignores a NULL Retry-After). Only while processor $2 holds the
-- claim. Answers the time of the next attempt, or no row when the claim was lost.
-- $1 bigint message id   $2 text processor_id   $3 text why (last_error)
-- $4 float8 backoff delay in seconds   $5 timestamptz Retry-After, or NULL
UPDATE messages
SET status = 'queued',
    last_error = $3,
    next_attempt_at = greatest(clock_timestamp() + make_interval(secs => $4), $5)
WHERE id = $1 AND status = 'sending' AND processor_id = $2
RETURNING next_attempt_at;

-- name: fail_send
-- The send has failed for good: the provider refused it (a 4xx other than 429),
-- or it used its last attempt. Only while processor $2 holds the claim. Answers
-- the id, or no row when the claim was lost.
-- $1 bigint message id   $2 text processor_id   $3 text why (last_error)
UPDATE messages
SET status = 'failed',
    last_error = $3
WHERE id = $1 AND status = 'sending' AND processor_id = $2
RETURNING id;

-- name: requeue_stale_sends
-- Claims older than the claim timeout: their worker died or hung mid-send. Back
-- to queued and due now (sending again is safe: the provider answers a repeated
-- idempotency key with the id it gave, without a second delivery), or failed when
-- the claim was the last attempt allowed, so that a send that kills its worker
-- cannot do so forever. The claim itself holds no row lock (it committed), so
-- SKIP LOCKED only passes over rows being updated right now. Uses
-- messages_outbound_claimed_idx. Answers each row changed.
-- $1 float8 claim timeout in seconds   $2 int attempts allowed (MESSAGING_MAX_RETRIES)
-- $3 int at most this many rows
WITH stale AS (
    SELECT id
    FROM messages
    WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => $1)
    ORDER BY claimed_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE messages AS m
SET status = CASE WHEN m.delivery_attempts >= $2 THEN 'failed' ELSE 'queued' END,
    next_attempt_at = now(),
    last_error = format(
        'claim by %s timed out: not finished within %s s of %s%s',
        m.processor_id, $1, m.claimed_at,
        CASE WHEN m.delivery_attempts >= $2
             THEN '; that was the last attempt (the provider may or may not have it)'
             ELSE '' END)
FROM stale
WHERE m.id = stale.id
RETURNING m.id, m.message_type, m.status, m.delivery_attempts, m.processor_id;

-- name: send_queue_stats
-- For the gauge: how many sends are due now (answered from the claim's partial index).
SELECT count(*) AS due
FROM messages
WHERE status = 'queued' AND next_attempt_at <= now();
