-- name: wal_position
-- Where the server's WAL stands now, in bytes from its start, so that the
-- bytes written between two readings are their difference. The server's
-- whole WAL: on the bench's own server, the load, the prune and autovacuum.
SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint;

-- name: prunable_events
-- The processed events older than a retention: what a prune with it deletes
-- (counted from the prune's own index, inbound_events_processed_idx).
-- $1 float8 retention in seconds
SELECT count(*)
FROM inbound_events
WHERE status = 'processed' AND received_at < now() - make_interval(secs => $1);
