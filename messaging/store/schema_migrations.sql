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
