-- name: beat
-- A process's heartbeat: its row, created on the first beat (started_at) and
-- refreshed on every other (heartbeat_at, the listener's state). The same
-- statement deletes the rows of processes not heard from for $9 seconds: they
-- died without the clean stop that deletes a row, and every live process may
-- forget them. SKIP LOCKED and id order, so that the beats of several processes
-- neither wait on each other nor deadlock over the same dead rows.
-- The database's clock (now()) stamps the beat, so that hosts whose clocks
-- disagree still compare; listener_since is the process's own clock.
-- $1 text id   $2 text kind   $3 text host   $4 int pid   $5 text version
-- $6 float8 heartbeat period in seconds   $7 text listener state
-- $8 timestamptz listener state since   $9 float8 forget rows silent this long
WITH forgotten AS (
    DELETE FROM processes
    WHERE id = ANY(ARRAY(
        SELECT id
        FROM processes
        WHERE heartbeat_at < now() - make_interval(secs => $9) AND id <> $1
        ORDER BY id
        FOR UPDATE SKIP LOCKED
    ))
)
INSERT INTO processes (id, kind, host, pid, version, heartbeat_secs, listener_state,
                       listener_since)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE
SET heartbeat_at = now(),
    heartbeat_secs = EXCLUDED.heartbeat_secs,
    listener_state = EXCLUDED.listener_state,
    listener_since = EXCLUDED.listener_since;

-- name: delete_process
-- A clean stop: the process leaves the view at once instead of going stale.
-- $1 text id
DELETE FROM processes WHERE id = $1;

-- name: list_processes
-- Every process with a row, for the operator's view: fresh while its last beat
-- is at most three of its own periods old (one late beat is not a dead process).
-- A small table (one row per running process, the dead forgotten after an hour):
-- read whole.
SELECT id, kind, host, pid, version, started_at, heartbeat_at,
       extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s,
       heartbeat_at >= now() - make_interval(secs => 3 * heartbeat_secs) AS fresh,
       listener_state, listener_since
FROM processes
ORDER BY kind, host, pid, id;
