-- name: create_database
-- The CREATE DATABASE statement for a database copied from a template. The
-- server quotes the names (format %I): Python builds no SQL from strings.
-- $1 text new database   $2 text template database
SELECT format('CREATE DATABASE %I TEMPLATE %I', $1::text, $2::text);

-- name: drop_database
-- The DROP DATABASE statement for a benchmark database; FORCE ends the sessions
-- a stopped process may have left behind.
-- $1 text database
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text);

-- name: leftover_databases
-- Databases of an earlier, interrupted run on the embedded server.
SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%';

-- name: commit_timestamps_on
-- Whether the server records commit times (pg_xact_commit_timestamp), which the
-- end-to-end scenario uses to time each message's commit.
SELECT current_setting('track_commit_timestamp')::bool;

-- name: enable_commit_timestamps
-- Takes effect at the next server start.
ALTER SYSTEM SET track_commit_timestamp = on;

-- name: server_facts
-- What the report says about the database server.
SELECT current_setting('server_version') AS version,
       current_setting('shared_buffers') AS shared_buffers,
       current_setting('synchronous_commit') AS synchronous_commit,
       current_setting('fsync') AS fsync,
       current_setting('max_connections') AS max_connections,
       current_setting('track_commit_timestamp') AS track_commit_timestamp;
