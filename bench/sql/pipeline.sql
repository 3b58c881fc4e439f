-- name: clock
-- The server's clock (the clock of received_at and of commit timestamps), in
-- Unix epoch seconds: the edges of a measurement window.
SELECT extract(epoch FROM clock_timestamp())::float8;

-- name: backlog
-- Events stored and not yet processed (received, being processed, or waiting
-- for a retry).
SELECT count(*) FROM inbound_events WHERE status <> 'processed';

-- name: window_figures
-- Over a window [$1, $2) of the server's clock (epoch seconds): how many
-- messages committed in it (webhooks processed), and for the events received in
-- it, received -> message commit (received_at is the group commit's
-- transaction start; the message's commit timestamp needs
-- track_commit_timestamp = on, else the message transaction's start stands in).
-- $1 float8 window start   $2 float8 window end   $3 bool commit timestamps on
WITH done AS (
    SELECT e.received_at,
           CASE WHEN $3 THEN pg_xact_commit_timestamp(m.xmin) ELSE m.created_at END AS done_at
    FROM messages AS m
    JOIN inbound_events AS e
      ON e.channel = (CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END)
     AND e.provider_message_id = m.provider_message_id
    WHERE m.direction = 'inbound'
)
SELECT
    count(*) FILTER (WHERE done_at >= to_timestamp($1) AND done_at < to_timestamp($2))
        AS processed,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - received_at))
        FILTER (WHERE received_at >= to_timestamp($1) AND received_at < to_timestamp($2))
        * 1000 AS p50_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - received_at))
        FILTER (WHERE received_at >= to_timestamp($1) AND received_at < to_timestamp($2))
        * 1000 AS p99_ms
FROM done;

-- name: transactions
-- Transactions committed in this database so far (pg_stat_database; the
-- statistics are flushed by each backend at the end of a transaction, at most
-- once a second, so read them after a pause).
SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database();
