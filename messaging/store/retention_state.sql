-- name: take_turn
-- First statement of a retention batch's transaction: whether this transaction
-- may delete a batch now. It may if it takes retention's advisory lock (so one
-- batch runs at a time across every process) and the last batch that deleted
-- rows, whichever process ran it, ended at least $1 seconds ago (so the pause
-- between batches holds across processes too: two workers cannot run their
-- batches back to back in each other's pauses). The lock is transaction-scoped,
-- so it works on a pooled connection behind a transaction pooler and ends with
-- a crashed holder's transaction; it is the two-key form, whose key space no
-- one-key lock (an Idempotency-Key's, say) can share.
-- $1 float8 the pause, in seconds
SELECT pg_try_advisory_xact_lock(hashtext('messaging'), hashtext('retention'))
       AND last_batch_at <= clock_timestamp() - make_interval(secs => $1) AS turn
FROM retention_state;

-- name: end_turn
-- Last statement of a batch that deleted rows: the pause starts now.
UPDATE retention_state SET last_batch_at = clock_timestamp();
