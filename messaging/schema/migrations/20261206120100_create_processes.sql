-- migrate:up

-- The running messaging processes (`messaging serve`, `serve --no-worker`,
-- `messaging worker`), one row each, written by the process itself every
-- MESSAGING_HEARTBEAT_SECS (messaging/heartbeat.py), so that an operator's view
-- (GET /api/admin/queues) can list them with their LISTEN connection's state.
-- A plain row on pooled connections, not an advisory lock or any other session
-- state: behind PgBouncer in transaction mode a session is nobody's for long.
-- A clean stop deletes its row; a process that died leaves it to go stale
-- (heartbeat_at), and the other processes' heartbeats delete it after an hour.
CREATE TABLE processes (
    -- hostname:pid:random (worker/runner.py:new_processor_id); a process that
    -- runs a worker uses its worker's processor id, so that the claims of
    -- inbound_events and messages (processor_id) name a row here.
    id             text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 300),
    -- serve: the API and a worker; api: serve --no-worker; worker: a worker alone.
    kind           text        NOT NULL CHECK (kind IN ('serve', 'api', 'worker')),
    host           text        NOT NULL,
    pid            integer     NOT NULL,
    version        text        NOT NULL,
    -- The writer's period: a reader calls a row stale after three of them
    -- missed, whatever its own setting.
    heartbeat_secs float8      NOT NULL CHECK (heartbeat_secs > 0),
    started_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now(),
    -- The process's LISTEN connection (worker/listener.py): listening,
    -- connecting (never yet connected), reconnecting (lost), or off
    -- (MESSAGING_LISTEN=false, or closing); since when, by the process's clock.
    listener_state text        NOT NULL
                   CHECK (listener_state IN ('listening', 'connecting', 'reconnecting', 'off')),
    listener_since timestamptz NOT NULL
);

-- migrate:down
DROP TABLE processes;
