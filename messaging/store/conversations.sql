-- name: list_conversations
-- One page of conversations, newest activity first (ties: the higher id first),
-- with the number of conversations (summed from conversation_counts, a few rows,
-- instead of counting the table) and each one's last message (for its preview).
-- The page walks conversations_last_activity_idx and stops after $1 + $2 rows;
-- each last message is one backward step on messages_conversation_sent_at_idx.
-- Always answers at least one row, so that a page past the end still carries the
-- total: then a single row whose conversation columns are NULL.
-- $1 bigint page size   $2 bigint rows to skip (offset)
WITH page AS (
    SELECT id, kind, participant_a, participant_b, message_count, last_activity_at
    FROM conversations
    ORDER BY last_activity_at DESC, id DESC
    LIMIT $1 OFFSET $2
)
SELECT total.n AS total,
       page.id, page.kind, page.participant_a, page.participant_b,
       page.message_count, page.last_activity_at,
       last.id AS last_id, last.direction AS last_direction,
       last.message_type AS last_message_type, last.from_address AS last_from_address,
       last.to_address AS last_to_address, last.body AS last_body, last.sent_at AS last_sent_at
FROM (SELECT coalesce(sum(n), 0)::bigint AS n FROM conversation_counts) AS total
LEFT JOIN page ON true
LEFT JOIN LATERAL (
    -- A preview needs the start of the body only; bodies may be 100k characters.
    SELECT m.id, m.direction, m.message_type, m.from_address, m.to_address,
           left(m.body, 2000) AS body, m.sent_at
    FROM messages AS m
    WHERE m.conversation_id = page.id
    ORDER BY m.sent_at DESC, m.id DESC
    LIMIT 1
) AS last ON true
ORDER BY page.last_activity_at DESC, page.id DESC;

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

-- name: add_messages
-- Last statement of a batch's transaction (worker/batch.py): adds the messages
-- that insert_inbound_messages inserted to their conversations' counts and last
-- activity. Conversations are the only rows that concurrent batches (other
-- workers, or this worker's other batch in flight) share, and a conversation
-- locked here stays locked until the commit. So they are locked last, after the
-- events are marked, and in key order, so that batches queue on shared
-- conversations for this statement and the commit only, always in one order,
-- and cannot deadlock. NO KEY UPDATE, the lock the UPDATE itself takes, does not
-- conflict with the KEY SHARE locks of the messages' foreign key checks.
-- $1 bigint[] conversation ids   $2 int[] messages each gained
-- $3 timestamptz[] latest sent_at of each one's new messages
WITH gained AS (
    SELECT *
    FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) AS g(id, messages, last_sent_at)
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
WHERE c.id = g.id;

-- name: conversation_exists
-- Whether a conversation exists (a stream narrowed to it answers 404 if not).
-- $1 bigint conversation id
SELECT EXISTS (SELECT 1 FROM conversations WHERE id = $1);

-- name: compact_conversation_counts
-- The sweep: folds conversation_counts into one row, so that a page's total
-- sums a few rows at most. The rows this statement's snapshot sees are deleted
-- and their sum inserted in one statement, so a reader sees the total before
-- or after, never a part; a row committed meanwhile is left for the next time.
-- SKIP LOCKED leaves the rows another worker is folding to it. Runs only when
-- there is something to fold. Answers how many rows were folded.
WITH folded AS (
    DELETE FROM conversation_counts
    WHERE id = ANY(ARRAY(
        SELECT id FROM conversation_counts ORDER BY id FOR UPDATE SKIP LOCKED
    ))
      AND (SELECT count(*) FROM conversation_counts) > 1
    RETURNING n
),
kept AS (
    INSERT INTO conversation_counts (n)
    SELECT sum(n) FROM folded HAVING count(*) > 0
)
SELECT count(*)::int FROM folded;
