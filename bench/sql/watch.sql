-- name: backend_pid
-- This connection's backend: its parent process is the postmaster, whose
-- process tree is PostgreSQL's CPU in section 12 (every backend, the ones
-- that came and went included, and the background processes).
SELECT pg_backend_pid();

-- name: pool_backends
-- Backends of this database held by the service's pools (store/db.py names
-- them 'messaging'; the LISTEN connections name themselves otherwise): direct,
-- the processes' own connections; through PgBouncer, its server connections.
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'messaging';

-- name: backend_waits
-- What this database's active backends are doing right now, by wait event
-- (both null: running on a CPU), this connection left out: sampled, the
-- average number of backends in each state.
SELECT coalesce(wait_event_type, 'CPU') AS kind, coalesce(wait_event, '') AS event,
       count(*)::int AS n
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
GROUP BY 1, 2;
