-- name: read_events
-- The log after a position, in position order (the writing transaction's xid,
-- then the row's id), each row with its message as the lists show it (the
-- body cut to $5 characters) but the status the change left it in.
--
-- Why the bound: positions are drawn before commit, so a transaction in
-- flight can still commit a row behind a position a reader has passed. Every
-- transaction whose xid is below the xmin of this statement's snapshot has
-- ended, so rows with such an xid are final: nothing will ever appear among
-- them. `final` says which rows are; they come first in position order, and
-- the caller takes that prefix only. A visible row that is not final (it
-- committed, but an older transaction is still in flight) tells the caller to
-- read again soon: the older transaction may notify nothing when it ends.
-- The bound and the rows come from one snapshot (the statement's), and so does
-- `gone`: the position is older than the log's horizon (pruned; 410).
-- One row with `gone` and NULL event columns when no event follows the
-- position. Walks the primary key (xid, id) from the position.
-- $1 xid8 position's xid   $2 bigint position's id
-- $3 bigint only this conversation, or NULL for all   $4 int at most this many rows
-- $5 int characters of a body at most
SELECT ($1::xid8, $2::bigint) < (h.xid, h.id) AS gone, r.*
FROM stream_horizon AS h
LEFT JOIN LATERAL (
    SELECT e.xid, e.id AS position_id, e.type,
           e.xid < pg_snapshot_xmin(pg_current_snapshot()) AS final,
           m.id, e.conversation_id, m.direction, m.message_type, m.from_address,
           m.to_address, left(m.body, $5) AS body, length(m.body) > $5 AS body_truncated,
           m.attachments::text AS attachments, m.sent_at, e.status
    FROM stream_events AS e
    JOIN messages AS m ON m.id = e.message_id
    WHERE (e.xid, e.id) > ($1::xid8, $2::bigint)
      AND ($3::bigint IS NULL OR e.conversation_id = $3)
    ORDER BY e.xid, e.id
    LIMIT $4
) AS r ON true
ORDER BY r.xid, r.position_id;

-- name: head
-- The newest final position (see read_events), or the horizon when the log
-- holds none: where a consumer that names no position starts. Rows committed
-- but not yet final lie after it, and reach that consumer once final.
(SELECT xid, id
 FROM stream_events
 WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY xid DESC, id DESC
 LIMIT 1)
UNION ALL
(SELECT xid, id FROM stream_horizon)
ORDER BY xid DESC, id DESC
LIMIT 1;

-- name: prune_events
-- Deletes, oldest position first, up to $2 final rows older than $1 seconds,
-- stopping at the first row that is not (so the log stays a suffix of the
-- stream), and moves the horizon to the newest position deleted, in the same
-- transaction: a reader sees both or neither (read_events' `gone`). The rows go
-- by a range of the primary key, (xid, id) up to the last one to delete: every
-- row below it is among the oldest rows read (they are the log's first rows in
-- that order), and a range is an index scan whatever plan the statement keeps
-- (a join back to the batch was planned, generically, as a scan of the log).
-- Retention runs one batch at a time (retention_state.sql); the horizon only
-- moves forward.
-- Answers how many rows were deleted.
-- $1 float8 retention in seconds   $2 int at most this many rows
WITH oldest AS (
    SELECT xid, id, created_at
    FROM stream_events
    WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid, id
    LIMIT $2
),
kept AS (
    SELECT xid, id
    FROM oldest
    WHERE created_at >= now() - make_interval(secs => $1)
    ORDER BY xid, id
    LIMIT 1
),
last AS (
    SELECT o.xid, o.id
    FROM oldest AS o
    WHERE NOT EXISTS (SELECT 1 FROM kept AS k WHERE (o.xid, o.id) >= (k.xid, k.id))
    ORDER BY o.xid DESC, o.id DESC
    LIMIT 1
),
deleted AS (
    DELETE FROM stream_events AS e
    WHERE (e.xid, e.id) <= ((SELECT xid FROM last), (SELECT id FROM last))
    RETURNING e.xid, e.id
),
moved AS (
    UPDATE stream_horizon AS h
    SET xid = l.xid, id = l.id
    FROM last AS l
    WHERE (l.xid, l.id) > (h.xid, h.id)
)
SELECT count(*)::int AS deleted FROM deleted;
