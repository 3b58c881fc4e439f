-- name: pgqueuer_remaining
-- Jobs not yet done: pgqueuer deletes a job from its queue table when it
-- completes (and logs it elsewhere).
SELECT count(*) FROM pgqueuer;

-- name: procrastinate_remaining
-- Jobs not yet done: procrastinate keeps finished jobs with their status.
SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing');

-- name: pgqueuer_vacuum
-- As for inbound_events before the service's drain.
VACUUM (ANALYZE) pgqueuer;

-- name: procrastinate_vacuum
-- As for inbound_events before the service's drain.
VACUUM (ANALYZE) procrastinate_jobs;
