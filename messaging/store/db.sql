-- name: ping
-- Readiness: the database answers.
SELECT 1;

-- name: backend_pid
-- The pid of the backend answering this statement (behind a pooler, not always
-- the one the connection was told at its start).
SELECT pg_backend_pid();

-- name: wal_position
-- The primary's WAL position, in bytes: what a replica must have replayed to
-- show every transaction committed before this statement. The insert position,
-- not the write position: with synchronous_commit off a commit is visible
-- before its WAL is written.
SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8;

-- name: replay_position
-- A replica's side of the lag check: the WAL position it has replayed, in
-- bytes (its own current position when it is not in recovery: the URL names
-- the primary itself, which is as fresh as the primary).
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
             ELSE pg_current_wal_insert_lsn() END - '0/0'::pg_lsn)::int8;
