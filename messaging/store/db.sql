-- name: ping
-- Readiness: the database answers.
SELECT 1;
