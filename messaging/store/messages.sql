-- name: insert_inbound_messages
-- The messages of a batch of inbound events. The conversations exist already
-- (insert_missing_conversations ran first in the same transaction); if one did
-- not, conversation_id would be NULL and the statement would fail rather than
-- lose the message.
-- An inbound message is unique on its provider's key, (channel, provider message
-- id): an event whose message exists already (replayed, processed under a claim
-- that had timed out, or a provider's retry that came after retention pruned the
-- first event) inserts nothing and counts nothing, by ON CONFLICT on
-- messages_inbound_provider_key, which probes that index row by row whatever the
-- plan. (A NOT EXISTS probe of messages here was planned, on a young database
-- whose statistics lagged the table, as a hash anti-join over every inbound
-- message: 300-450 ms a batch at 50,000 messages, and the worker fell 48,000
-- events behind ingest; custom plans did no better, at 31 ms a batch against
-- 6 ms at 100,000.)
-- Answers one row per conversation with the messages it gained and the latest
-- of their sent_at, for conversations.sql:add_messages to add to the conversation. The
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
    ORDER BY i.inbound_event_id
    ON CONFLICT ((CASE WHEN message_type = 'email' THEN 'email' ELSE 'sms' END),
                 provider_message_id) WHERE direction = 'inbound' DO NOTHING
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
-- processor $1, counting the attempt: the shape of inbound_events.sql's
-- claim_events (the locked ids handed to the UPDATE as one array). The claim
-- commits on its own: the provider is called outside any transaction, and a
-- worker that dies mid-send leaves a visible claim (sending, claimed_at) that the
-- sweep returns once it times out. SKIP LOCKED lets any number of workers claim
-- at once; a row another worker claimed since this statement's snapshot fails
-- the status recheck, so no send is claimed twice. The WHERE clause repeats
-- messages_outbound_due_idx's predicate so the index is used.
-- $1 text processor_id   $2 int at most this many
UPDATE messages AS m
SET status = 'sending',
    processor_id = $1,
    claimed_at = now(),
    delivery_attempts = m.delivery_attempts + 1
WHERE m.id = ANY(ARRAY(
    SELECT id
    FROM messages
    WHERE status = 'queued' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)) AND m.status = 'queued'
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

-- name: select_stale_sends
-- Claims older than the claim timeout: their worker died or hung mid-send. The
-- sweep fails them with fail_stale_sends in the same transaction. The claim
-- itself holds no row lock (it committed), so SKIP LOCKED only passes over rows
-- being updated right now. Uses messages_outbound_claimed_idx. Answers the
-- columns of store/claims.py:StaleClaim.
-- $1 float8 claim timeout in seconds   $2 int at most this many rows
SELECT id, CASE WHEN message_type = 'email' THEN 'email' ELSE 'sms' END AS channel,
       processor_id, delivery_attempts AS attempt_count, claimed_at
FROM messages
WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => $1)
ORDER BY claimed_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: fail_stale_sends
-- Stale claims, taken back: queued again after the given delay (sending again is
-- safe: the provider answers a repeated idempotency key with the id it gave,
-- without a second delivery), or failed once the claim was the last attempt of
-- the $5 allowed, so that a send that kills its worker cannot do so forever;
-- then the reason says the provider may have it. Only rows still claimed by the
-- given processor change. The twin of inbound_events.sql's record_failures.
-- Answers the columns of store/claims.py:Outcome.
-- $1 bigint[] message ids   $2 text[] processor_id that holds each claim
-- $3 text[] last_error      $4 float8[] seconds until the next attempt
-- $5 int attempts allowed (MESSAGING_MAX_RETRIES)
WITH failed AS (
    SELECT *
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[])
         AS f(id, processor_id, error, delay_s)
)
UPDATE messages AS m
SET status = CASE WHEN m.delivery_attempts >= $5 THEN 'failed' ELSE 'queued' END,
    last_error = f.error || CASE WHEN m.delivery_attempts >= $5
                                 THEN '; that was the last attempt (the provider may or may not have it)'
                                 ELSE '' END,
    next_attempt_at = now() + make_interval(secs => f.delay_s)
FROM failed AS f
WHERE m.id = f.id AND m.status = 'sending' AND m.processor_id = f.processor_id
RETURNING m.id, CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END AS channel,
          m.status, m.delivery_attempts AS attempt_count, m.status = 'failed' AS gave_up;

-- name: send_queue_stats
-- For the gauge: how many sends are due now (answered from the claim's partial index).
SELECT count(*) AS due
FROM messages
WHERE status = 'queued' AND next_attempt_at <= now();

-- name: list_messages
-- One page of a conversation's messages, oldest first (ties: the lower id first),
-- with the conversation's message count as the total. No row at all when the
-- conversation does not exist; a single row of NULL message columns when it has
-- no message on this page. The page walks messages_conversation_sent_at_idx.
-- The total is conversations.message_count, kept in the same transaction as every
-- message insert, so that no request counts a conversation's messages.
-- Bodies are cut to their first $4 characters (body_truncated says so), so that
-- a page of long messages stays small on the wire and in memory; get_message
-- answers a whole one.
-- $1 bigint conversation id   $2 bigint page size   $3 bigint rows to skip (offset)
-- $4 int characters of a body at most
SELECT c.message_count AS total, c.id AS conversation_id,
       m.id, m.direction, m.message_type, m.from_address, m.to_address,
       m.body, m.body_truncated, m.attachments::text AS attachments, m.sent_at, m.status
FROM conversations AS c
LEFT JOIN LATERAL (
    SELECT id, direction, message_type, from_address, to_address,
           left(body, $4) AS body, length(body) > $4 AS body_truncated,
           attachments, sent_at, status
    FROM messages
    WHERE conversation_id = c.id
    ORDER BY sent_at, id
    LIMIT $2 OFFSET $3
) AS m ON true
WHERE c.id = $1
ORDER BY m.sent_at, m.id;

-- name: get_message
-- One message, whole, by id; no row when there is none.
-- $1 bigint message id
SELECT id, conversation_id, direction, message_type, from_address, to_address,
       body, false AS body_truncated, attachments::text AS attachments, sent_at, status
FROM messages
WHERE id = $1;

-- name: send_counts
-- The operator's view: sends by status. Exact for the statuses that stay few,
-- each counted from its partial index (messages_outbound_due_idx for queued,
-- _claimed_idx for sending, messages_failed_idx); the sent ones are most of a
-- table that may hold tens of millions of messages, inbound ones among them, so
-- they are estimated instead of counted: the live rows the statistics know of
-- (pg_stat_user_tables; the planner's reltuples when there is none) times the
-- share of 'sent' the last ANALYZE saw (pg_stats). NULL until the table has been
-- analyzed.
SELECT (SELECT count(*) FROM messages WHERE status = 'queued') AS queued,
       (SELECT count(*) FROM messages WHERE status = 'sending') AS sending,
       (SELECT count(*) FROM messages WHERE status = 'failed') AS failed,
       (SELECT round(s.most_common_freqs[array_position(s.most_common_vals::text::text[], 'sent')]
                     * coalesce(t.n_live_tup, nullif(c.reltuples, -1)))::bigint
        FROM pg_class AS c
        JOIN pg_stats AS s
          ON s.schemaname = c.relnamespace::regnamespace::text
         AND s.tablename = c.relname
         AND s.attname = 'status'
        LEFT JOIN pg_stat_user_tables AS t ON t.relid = c.oid
        WHERE c.oid = 'messages'::regclass) AS sent_estimate;

-- name: list_failed_sends
-- A page of the failed sends, oldest first, for GET /api/admin/sends, with how
-- many there are: both from messages_failed_idx, never the table. Always answers
-- at least one row, so that a page past the end still carries the total: then a
-- single row whose send columns are NULL.
-- $1 bigint page size   $2 bigint rows to skip (offset)
SELECT total.n AS total, page.*
FROM (SELECT count(*) AS n FROM messages WHERE status = 'failed') AS total
LEFT JOIN LATERAL (
    SELECT id, conversation_id, message_type, from_address, to_address, status,
           delivery_attempts, last_error, provider_message_id, created_at, next_attempt_at
    FROM messages
    WHERE status = 'failed'
    ORDER BY id
    LIMIT $1 OFFSET $2
) AS page ON true
ORDER BY page.id;

-- name: retry_failed_send
-- POST /api/admin/sends/{id}/retry: a failed send queued again, due now, its
-- attempts reset, as if it had just been sent. Its provider idempotency key is
-- msg-<id> (providers/client.py), so it does not change: a provider that took
-- the send before the failure was recorded (an answer that never came) answers
-- the retry with the id it gave, and delivers nothing twice. last_error stays
-- until the next attempt's outcome replaces it. Only a failed outbound message
-- changes; the UPDATE rechecks that on a row changed meanwhile. The messages
-- trigger writes the change to the stream's log (message.updated, queued);
-- the caller wakes the delivery loops.
-- Answers the status the message had (NULL: no such message), its direction,
-- and the send's columns as list_failed_sends has them (NULL unless retried).
-- $1 bigint message id
WITH retried AS (
    UPDATE messages
    SET status = 'queued',
        delivery_attempts = 0,
        next_attempt_at = now(),
        processor_id = NULL,
        claimed_at = NULL
    WHERE id = $1 AND status = 'failed' AND direction = 'outbound'
    RETURNING id, conversation_id, message_type, from_address, to_address, status,
              delivery_attempts, last_error, provider_message_id, created_at, next_attempt_at
)
SELECT before.status AS status_before, before.direction, retried.*
FROM (SELECT 1) AS one
LEFT JOIN messages AS before ON before.id = $1
LEFT JOIN retried ON true;
