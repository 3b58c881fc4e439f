-- name: ping
-- Readiness: the database answers.
SELECT 1;

-- name: try_xact_lock
-- Takes the advisory lock named $1 for the rest of this transaction, if no
-- other transaction holds it; answers whether it did. Transaction-scoped, never
-- session-scoped, so that it works on a pooled connection behind a transaction
-- pooler and cannot outlive a crashed holder's transaction. Used by retention
-- so that one prune batch runs at a time across every worker process.
-- $1 text the lock's name
SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0));
