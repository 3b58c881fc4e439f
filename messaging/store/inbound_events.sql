-- name: insert_events
-- Stores a batch of validated webhooks in one statement (one commit): the group
-- commit of store/ingest.py. A webhook whose (channel, provider_message_id) is
-- already stored inserts nothing and answers with the existing row's id, so a
-- provider's retry is idempotent without an exception path.
-- Duplicates inside the batch are inserted once and all answer with that id;
-- only the first of them (the lowest ord) is told it created the row.
-- Rows answer in input order (ord). An id can come back NULL only when a
-- concurrent transaction inserted the same key after this statement's snapshot:
-- the caller looks those up again with find_event_ids.
-- $1 text[]  channel            $2 text[] provider_message_id
-- $3 text[]  message_type       $4 text[] from_address (normalised)
-- $5 text[]  to_address         $6 text[] payload (JSON text)
WITH input AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS t(channel, provider_message_id, message_type,
                              from_address, to_address, payload, ord)
),
inserted AS (
    INSERT INTO inbound_events
        (channel, provider_message_id, message_type, from_address, to_address, payload)
    SELECT channel, provider_message_id, message_type, from_address, to_address, payload::jsonb
    FROM input
    ORDER BY ord
    ON CONFLICT (channel, provider_message_id) DO NOTHING
    RETURNING id, channel, provider_message_id
)
SELECT input.ord,
       -- The lookup of an already stored event runs only for the rows this
       -- statement did not insert (coalesce stops at the first non-NULL), and as
       -- a probe of the unique index: a join here would be planned as a scan of
       -- the whole table while the table is young and not yet analyzed, and
       -- asyncpg keeps that plan for the life of the connection.
       coalesce(inserted.id,
                (SELECT existing.id
                 FROM inbound_events AS existing
                 WHERE existing.channel = input.channel
                   AND existing.provider_message_id = input.provider_message_id)) AS id,
       -- Every in-batch copy of an inserted key matches the inserted row; the
       -- row was created for the first copy only (ON CONFLICT inserts the
       -- first in ord order and skips the rest).
       inserted.id IS NOT NULL
           AND input.ord = min(input.ord) OVER (PARTITION BY input.channel,
                                                             input.provider_message_id)
           AS created
FROM input
LEFT JOIN inserted USING (channel, provider_message_id)
ORDER BY input.ord;

-- name: find_event_ids
-- Ids of stored events by key, for the rare rows insert_events could not see.
-- $1 text[] channel   $2 text[] provider_message_id
-- A probe of the unique index per key, like insert_events.
SELECT k.ord,
       (SELECT e.id
        FROM inbound_events AS e
        WHERE e.channel = k.channel AND e.provider_message_id = k.provider_message_id) AS id
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(channel, provider_message_id, ord)
ORDER BY k.ord;

-- name: claim_events
-- Claims up to $2 due events (received, or error whose retry time has come),
-- oldest due first, for processor $1, counting the attempt. SKIP LOCKED lets any
-- number of workers claim at once without waiting on each other; a row another
-- worker claimed since this statement's snapshot fails the status recheck, so no
-- row is ever claimed twice. The claim commits on its own: a worker that dies
-- leaves a visible claim (processing, claimed_at) that the sweep returns once it
-- times out, and the attempt stays counted (a crash may be the event's fault).
-- The WHERE clause repeats inbound_events_due_idx's predicate so the index is used.
-- The locked ids go to the UPDATE as one array (an InitPlan), which it finds in
-- one pass over the primary key, in id order; a join with a CTE of them costs a
-- probe and a whole-row copy per row (4.8 -> 4.0 ms for 500 rows).
-- Answers the columns of store/events.py:ClaimedEvent, in its order.
-- $1 text processor_id   $2 int batch size
UPDATE inbound_events AS e
SET status = 'processing',
    processor_id = $1,
    claimed_at = now(),
    attempt_count = e.attempt_count + 1
WHERE e.id = ANY(ARRAY(
    SELECT id
    FROM inbound_events
    WHERE status IN ('received', 'error') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
))
RETURNING e.id, e.channel, e.provider_message_id, e.message_type, e.from_address,
          e.to_address, e.payload::text AS payload, e.attempt_count, e.received_at;

-- name: lock_claims
-- First statement of a batch's transaction: locks, in id order, the batch's
-- events that this processor still holds. An event whose claim the sweep has
-- taken back (it timed out) is left out and not processed under this claim; the
-- locks keep the sweep (SKIP LOCKED) off the rest until the commit.
-- $1 bigint[] event ids   $2 text processor_id
SELECT id
FROM inbound_events
WHERE id = ANY($1::bigint[]) AND status = 'processing' AND processor_id = $2
ORDER BY id
FOR UPDATE;

-- name: mark_processed
-- A batch's transaction, after its messages are inserted: marks the events
-- processed. processed_at is the clock at this statement, not the transaction's
-- start, so that processed_at - received_at is (within the commit) the time from
-- a webhook's arrival to its message's commit.
-- $1 bigint[] event ids (locked by lock_claims in this transaction)
UPDATE inbound_events
SET status = 'processed', processed_at = clock_timestamp()
WHERE id = ANY($1::bigint[]) AND status = 'processing';

-- name: record_failures
-- Failed attempts: back to error with the reason and the time of the next
-- attempt, or dead_letter once the event has used its $5 attempts. Only rows
-- still claimed by the given processor change, so a claim the sweep took back is
-- never failed twice. Rows are locked in id order, like every multi-row update
-- of this table, so that concurrent updates cannot deadlock.
-- Answers the columns of store/claims.py:Outcome for each row changed.
-- $1 bigint[] event ids   $2 text[] processor_id that holds each claim
-- $3 text[] last_error    $4 float8[] seconds until the next attempt
-- $5 int attempts allowed (MESSAGING_MAX_RETRIES)
WITH failed AS (
    SELECT *
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[])
         AS f(id, processor_id, error, delay_s)
),
owned AS (
    SELECT e.id
    FROM inbound_events AS e
    JOIN failed AS f USING (id)
    WHERE e.status = 'processing' AND e.processor_id = f.processor_id
    ORDER BY e.id
    FOR UPDATE OF e
)
UPDATE inbound_events AS e
SET status = CASE WHEN e.attempt_count >= $5 THEN 'dead_letter' ELSE 'error' END,
    last_error = f.error,
    next_attempt_at = now() + make_interval(secs => f.delay_s)
FROM failed AS f
JOIN owned USING (id)
WHERE e.id = f.id
RETURNING e.id, e.channel, e.status, e.attempt_count, e.status = 'dead_letter' AS gave_up;

-- name: select_stale_claims
-- Claims older than the claim timeout: their worker died or hung mid-batch. The
-- sweep fails them with record_failures in the same transaction. SKIP LOCKED
-- passes over rows that a live worker holds in its batch transaction (see
-- lock_claims), so the sweep never waits on a worker nor steals from one that
-- is committing. Uses inbound_events_claimed_idx. Answers the columns of
-- store/claims.py:StaleClaim.
-- $1 float8 claim timeout in seconds   $2 int at most this many rows
SELECT id, channel, processor_id, attempt_count, claimed_at
FROM inbound_events
WHERE status = 'processing' AND claimed_at < now() - make_interval(secs => $1)
ORDER BY claimed_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: release_claims
-- Gives claims back without counting their attempt: a stopping worker could not
-- process them for a reason that is not the events' fault (the database went
-- away). They are due again at once, as they were when claimed.
-- $1 bigint[] event ids   $2 text processor_id
UPDATE inbound_events
SET status = CASE WHEN attempt_count > 1 THEN 'error' ELSE 'received' END,
    attempt_count = attempt_count - 1,
    processor_id = NULL,
    claimed_at = NULL
WHERE id = ANY($1::bigint[]) AND status = 'processing' AND processor_id = $2;

-- name: queue_stats
-- For the gauges and the operator's view: how many events are due now, how long
-- the oldest of them has been due (0 when none is: the backlog's age, which the
-- alerts watch), both answered from the claim's partial index (the age is its
-- first entry), and the fraction of the server's NOTIFY queue in use (a listener
-- that stops reading fills it; at 100% every NOTIFY, so every webhook, fails).
SELECT (SELECT count(*)
        FROM inbound_events
        WHERE status IN ('received', 'error') AND next_attempt_at <= now()) AS due,
       coalesce(extract(epoch FROM now() - (
           SELECT min(next_attempt_at)
           FROM inbound_events
           WHERE status IN ('received', 'error') AND next_attempt_at <= now())), 0)::float8
           AS oldest_due_age_s,
       pg_notification_queue_usage() AS notification_queue_usage;

-- name: status_counts
-- The operator's view: events in each status. Exact for the statuses that stay
-- few, each counted from its partial index (inbound_events_due_idx for received
-- and error, _claimed_idx for processing, _dead_letter_idx); the processed ones
-- are most of a table that may hold tens of millions of rows, so they are
-- estimated instead of counted: the live rows the statistics know of
-- (pg_stat_user_tables, kept as rows come and go; the planner's reltuples when
-- there is none), less the exact counts. NULL when neither is known yet.
-- MATERIALIZED: each count runs once (inlined, every use of a column ran its
-- subquery again: twice the backlog's rows read, when an operator looks).
WITH counts AS MATERIALIZED (
    SELECT (SELECT count(*) FROM inbound_events WHERE status = 'received') AS received,
           (SELECT count(*) FROM inbound_events WHERE status = 'error') AS error,
           (SELECT count(*) FROM inbound_events WHERE status = 'processing') AS processing,
           (SELECT count(*) FROM inbound_events WHERE status = 'dead_letter') AS dead_letter
)
SELECT counts.*,
       greatest(0, live.n - counts.received - counts.error - counts.processing
                   - counts.dead_letter)::bigint AS processed_estimate
FROM counts,
     (SELECT coalesce((SELECT s.n_live_tup::float8
                       FROM pg_stat_user_tables AS s
                       WHERE s.relid = 'inbound_events'::regclass),
                      (SELECT nullif(c.reltuples, -1)::float8
                       FROM pg_class AS c
                       WHERE c.oid = 'inbound_events'::regclass)) AS n) AS live;

-- name: list_events
-- A page of the events in one status, oldest first: `messaging events` and
-- GET /api/admin/events. With the status a parameter, a plan cached for the
-- statement (asyncpg prepares it; PostgreSQL may settle on a generic plan after
-- five runs) could not know which partial index applies, and would walk the
-- primary key past millions of processed rows to find a page of dead letters.
-- So the statuses an operator lists often have a branch each with the status
-- written out, on its own partial index; the branch whose status was not asked
-- for is cut off by its one-time filter ($1 = ...) before it reads a row. The
-- other statuses (the CLI's) share the last branch.
-- $1 text status   $2 bigint at most this many rows   $3 bigint rows to skip
(SELECT id, channel, provider_message_id, message_type, status, attempt_count,
        next_attempt_at, last_error, received_at
 FROM inbound_events
 WHERE $1::text = 'dead_letter' AND status = 'dead_letter'
 ORDER BY id
 LIMIT $2 OFFSET $3)
UNION ALL
(SELECT id, channel, provider_message_id, message_type, status, attempt_count,
        next_attempt_at, last_error, received_at
 FROM inbound_events
 WHERE $1::text = 'error' AND status = 'error'
 ORDER BY id
 LIMIT $2 OFFSET $3)
UNION ALL
(SELECT id, channel, provider_message_id, message_type, status, attempt_count,
        next_attempt_at, last_error, received_at
 FROM inbound_events
 WHERE $1::text NOT IN ('dead_letter', 'error') AND status = $1::text
 ORDER BY id
 LIMIT $2 OFFSET $3)
ORDER BY id;

-- name: count_events
-- How many events are in one status (dead_letter or error; NULL for another),
-- for the total of GET /api/admin/events: each from its partial index, the
-- one-time CASE choosing which count runs, for the reason list_events says.
-- $1 text status
SELECT CASE $1::text
           WHEN 'dead_letter'
               THEN (SELECT count(*) FROM inbound_events WHERE status = 'dead_letter')
           WHEN 'error'
               THEN (SELECT count(*) FROM inbound_events WHERE status = 'error')
       END AS total;

-- name: replay_events
-- `messaging replay ID...`: requeues the given events that are dead letters or
-- waiting for a retry, due now with their attempts reset. Any other status is
-- left alone (a processed event is not replayed; even if it were, messages are
-- unique on their provider's key, so a replay can never make a second message).
-- Answers one row per distinct requested id: its status before (NULL when there
-- is no such event) and whether it was requeued.
-- $1 bigint[] event ids
WITH wanted AS (
    SELECT DISTINCT unnest($1::bigint[]) AS id
),
requeued AS (
    UPDATE inbound_events AS e
    SET status = 'received',
        attempt_count = 0,
        next_attempt_at = now(),
        processor_id = NULL,
        claimed_at = NULL
    FROM wanted AS w
    WHERE e.id = w.id AND e.status IN ('dead_letter', 'error')
    RETURNING e.id
)
SELECT w.id, e.status AS status_before, r.id IS NOT NULL AS requeued
FROM wanted AS w
LEFT JOIN inbound_events AS e USING (id)
LEFT JOIN requeued AS r USING (id)
ORDER BY w.id;

-- name: replay_dead_letters
-- `messaging replay --all-dead` and POST /api/admin/events/replay {"all_dead":
-- true}: requeues every dead letter (found by inbound_events_dead_letter_idx),
-- due now with its attempts reset. Answers their ids.
UPDATE inbound_events
SET status = 'received',
    attempt_count = 0,
    next_attempt_at = now(),
    processor_id = NULL,
    claimed_at = NULL
WHERE status = 'dead_letter'
RETURNING id;

-- name: purge_dead_letter
-- DELETE /api/admin/events/{id}: deletes one dead letter, for good; its key
-- (channel, provider message id) goes with it, so a provider that sends it again
-- is stored as a new event. The status is checked by the DELETE itself (and
-- rechecked on a row changed meanwhile, say replayed), so that only a dead letter
-- is ever deleted. Answers the status the event had (NULL: no such event) and
-- whether it was deleted.
-- $1 bigint event id
WITH purged AS (
    DELETE FROM inbound_events
    WHERE id = $1 AND status = 'dead_letter'
    RETURNING id
)
SELECT (SELECT status FROM inbound_events WHERE id = $1) AS status_before,
       EXISTS (SELECT 1 FROM purged) AS purged;

-- name: prune_events
-- Retention: deletes up to $2 processed events received more than $1 seconds
-- ago, oldest first, walking inbound_events_processed_idx. Their messages stay:
-- a message keeps its provider's key (messages_inbound_provider_key), so a
-- provider's retry of a pruned event is stored as a new event and still makes
-- no second message. Dead letters and events waiting for a retry are never
-- pruned: an operator replays or purges them. The rows are not locked first
-- (FOR UPDATE would write a WAL record per row, as many as the delete's own):
-- one batch runs at a time (retention_state.sql), nothing else changes a
-- processed event, and the DELETE rechecks the condition on any row changed
-- meanwhile. Answers how many were deleted.
-- $1 float8 retention in seconds   $2 int at most this many rows
WITH deleted AS (
    DELETE FROM inbound_events
    WHERE id = ANY(ARRAY(
        SELECT id
        FROM inbound_events
        WHERE status = 'processed' AND received_at < now() - make_interval(secs => $1)
        ORDER BY received_at
        LIMIT $2
    ))
      AND status = 'processed'
    RETURNING 1
)
SELECT count(*)::int FROM deleted;
