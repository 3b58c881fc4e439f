-- name: notify
-- Sends a notification: at commit inside a transaction, at once outside one. The
-- listener's self-check sends one to itself on its own connection.
-- $1 text channel   $2 text payload
SELECT pg_notify($1, $2);
