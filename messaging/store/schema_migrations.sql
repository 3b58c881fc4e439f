-- name: applied_migrations
-- Versions recorded by dbmate.
SELECT version FROM schema_migrations;

-- name: installed_trigger_hash
-- The sha256 of the trigger file installed under this name, if any.
-- $1 text file name
SELECT sha256 FROM schema_triggers WHERE file = $1;

-- name: record_trigger_hash
-- Records that a trigger file's content is installed.
-- $1 text file name   $2 text sha256 of its content
INSERT INTO schema_triggers (file, sha256) VALUES ($1, $2)
ON CONFLICT (file) DO UPDATE SET sha256 = excluded.sha256, applied_at = now();

-- name: take_migration_turn
-- One migration at a time: processes that start together (`serve --migrate` on
-- every host) take turns, and the later ones find nothing left to do. True when
-- this session has the turn, which it holds until end_migration_turn (or until
-- it disconnects). A session's lock, taken on a connection of its own, outside
-- any transaction: a transaction left open while the migrations run would hold a
-- snapshot, and CREATE INDEX CONCURRENTLY waits for every older snapshot to go.
-- Tried, never waited for, for the same reason. Two-key form, apart from every
-- other advisory lock of ours.
SELECT pg_try_advisory_lock(hashtext('messaging'), hashtext('migrate'));

-- name: end_migration_turn
SELECT pg_advisory_unlock(hashtext('messaging'), hashtext('migrate'));
