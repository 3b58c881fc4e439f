-- inbound_events partitioned by day, against the table as it is: the figures of
-- docs/scaling.md ("Partitioning inbound_events by time"). Not part of
-- `make bench`: a psql script, run by hand, that leaves nothing behind.
--
-- Two tables of inbound_events' shape (messaging/schema/schema.sql): events_plain,
-- the table as it is, and events_part, partitioned by the UTC day it was received
-- (received_day, a column, because a unique key of a partitioned table must hold
-- the partition key's columns and cannot hold an expression). Each gets the same
-- 1,000,000 processed events spread over the 10 days before today, written by
-- generate_series as bench/sql/growth.sql writes its history. Then:
--   (c) the claim (store/inbound_events.sql claim_events) on each, and on the
--       partitioned table a claim bounded by the claimed rows' days: empty, and
--       500 of 10,000 due events; custom and generic plans; rolled back;
--   (a) one day's events removed, three times (the three oldest days): the
--       service's prune_events, 1,000 rows a transaction, then the VACUUM that
--       autovacuum would owe, against DETACH PARTITION CONCURRENTLY + DROP TABLE
--       of the day's partition: seconds, and WAL bytes;
--   (b) the service's insert_events statement, 25 webhooks a statement (the
--       group commit's mean, bench section 2), under pgbench at 8 clients for
--       10 s, 3 repeats in rotating order: into events_plain; into events_part
--       with the key (channel, provider_message_id, received_day); and into
--       events_part with that key plus a probe of the 7 days before.
-- Both tables carry the statement-level NOTIFY trigger, as the service's does.
--
-- Run from the repository root (pgbench's scripts are cut out of this file),
-- as a superuser (CHECKPOINT, pg_walinspect), against PostgreSQL 15 or later:
--
--   psql -X -v ON_ERROR_STOP=1 -d postgresql://postgres@127.0.0.1:5432/postgres \
--        -f bench/sql/partitioning.sql
--
-- It drops and creates the database scratch_partitioning, works there, prints
-- each run and the medians, and drops the database. About 3 minutes on 2 cores.
-- Files: /tmp/partitioning_*.
--
-- WAL: the server may be shared, and pg_current_wal_lsn() counts every
-- database's WAL. So each figure is given twice: the LSN difference, and the
-- bytes of the WAL records that belong to this database (pg_walinspect: records
-- whose blocks are in it, and the commit records of their transactions). Each
-- removal starts after a CHECKPOINT, so the first change to each page writes
-- its full image, as it does in service after every checkpoint.
-- Autovacuum is off on both tables (the VACUUM after the DELETE is measured
-- instead), so that it cannot run inside another measurement.

\set ON_ERROR_STOP 1
\pset pager off
SET client_min_messages = warning;

DROP DATABASE IF EXISTS scratch_partitioning;
CREATE DATABASE scratch_partitioning;
\c scratch_partitioning
SET client_min_messages = warning;
-- pgbench, started by \! below, connects where psql is connected.
\setenv PGHOST :HOST
\setenv PGPORT :PORT
\setenv PGUSER :USER
\setenv PGDATABASE scratch_partitioning

CREATE EXTENSION pg_walinspect;

-- The history's first day (UTC): 10 full days before today. Days 0..9 hold
-- 100,000 events each; day 10 is today, days 11..13 are made ahead.
CREATE TABLE history AS
SELECT ((now() AT TIME ZONE 'UTC')::date - 10) AS first_day, 10 AS days, 1000000 AS events;

CREATE FUNCTION day_start(k int) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT ((SELECT first_day FROM history) + k)::timestamp AT TIME ZONE 'UTC'
$$;

CREATE FUNCTION day_of(k int) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (SELECT first_day FROM history) + k
$$;

CREATE FUNCTION part_name(k int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'events_part_' || to_char((SELECT first_day FROM history) + k, 'YYYYMMDD')
$$;

-- name: events_plain
-- inbound_events as schema.sql has it; its indexes come after the fill.
CREATE TABLE events_plain (
    id bigint GENERATED ALWAYS AS IDENTITY,
    channel text NOT NULL CHECK (channel IN ('sms', 'email')),
    provider_message_id text NOT NULL CHECK (length(provider_message_id) BETWEEN 1 AND 256),
    message_type text NOT NULL CHECK (message_type IN ('sms', 'mms', 'email')),
    from_address text NOT NULL,
    to_address text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'processing', 'processed', 'error', 'dead_letter')),
    attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    processor_id text,
    claimed_at timestamptz,
    last_error text,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    CHECK ((channel = 'sms' AND message_type IN ('sms', 'mms'))
           OR (channel = 'email' AND message_type = 'email')),
    CHECK (status <> 'processing' OR (processor_id IS NOT NULL AND claimed_at IS NOT NULL))
) WITH (autovacuum_enabled = false);

-- name: events_part
-- The same, partitioned by the UTC day of received_at. received_day is a
-- column of its own (set by its default, checked against received_at) because
-- a partitioned table's unique keys must contain the partition key's columns,
-- and a partition key that is an expression cannot be in a unique key at all.
-- Storage parameters go on each partition: a partitioned table takes none.
CREATE TABLE events_part (
    LIKE events_plain INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY,
    received_day date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date),
    CHECK (received_day = (received_at AT TIME ZONE 'UTC')::date)
) PARTITION BY RANGE (received_day);

SELECT format('CREATE TABLE %I PARTITION OF events_part FOR VALUES FROM (%L) TO (%L) '
              'WITH (autovacuum_enabled = false)',
              part_name(k), h.first_day + k, h.first_day + k + 1)
FROM history AS h, generate_series(0, 13) AS k
ORDER BY k
\gexec

-- name: fill_plain
-- 1,000,000 processed events, evenly over days 0..9, shaped as growth.sql's
-- fill_events makes them: one in five email, one SMS in ten an MMS, provider
-- ids spread over their whole range, the payload as posted.
INSERT INTO events_plain
    (id, channel, provider_message_id, message_type, from_address, to_address, payload,
     status, attempt_count, next_attempt_at, processor_id, claimed_at, received_at,
     processed_at)
OVERRIDING SYSTEM VALUE
SELECT e, m.channel,
       CASE WHEN m.channel = 'email' THEN md5('in' || e)::uuid::text ELSE 'SM' || md5('in' || e) END,
       m.message_type, '+1804' || lpad((e % 100000)::text, 7, '0'), '+12016660001',
       jsonb_build_object('from', '+1804' || lpad((e % 100000)::text, 7, '0'),
                          'to', '+12016660001', 'type', m.message_type,
                          'messaging_provider_id', 'SM' || md5('in' || e),
                          'body', 'Hi! Is my order ' || e || ' ready for pickup?',
                          'attachments', NULL,
                          'timestamp', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
       'processed', 1, t.at, 'worker-history', t.at + interval '10 ms', t.at,
       t.at + interval '40 ms'
FROM history AS h
CROSS JOIN generate_series(1, h.events) AS e
CROSS JOIN LATERAL (
    SELECT CASE WHEN e % 5 = 0 THEN 'email' ELSE 'sms' END AS channel,
           CASE WHEN e % 5 = 0 THEN 'email' WHEN e % 10 = 3 THEN 'mms' ELSE 'sms' END
               AS message_type) AS m
CROSS JOIN LATERAL (
    SELECT day_start(0) + (interval '1 day' * h.days) * ((e - 1)::float8 / h.events) AS at) AS t;

-- name: fill_part
-- The same rows.
INSERT INTO events_part
OVERRIDING SYSTEM VALUE
SELECT p.*, (p.received_at AT TIME ZONE 'UTC')::date FROM events_plain AS p;

SELECT setval(pg_get_serial_sequence('events_plain', 'id'), 1000000),
       setval(pg_get_serial_sequence('events_part', 'id'), 1000000);

-- name: indexes
-- inbound_events' indexes. On the partitioned table the primary key and the
-- provider key take received_day; inbound_events_processed_idx, retention's
-- walk, has no use there and is left out.
ALTER TABLE events_plain ADD PRIMARY KEY (id);
ALTER TABLE events_plain ADD UNIQUE (channel, provider_message_id);
CREATE INDEX ON events_plain (next_attempt_at) WHERE status IN ('received', 'error');
CREATE INDEX ON events_plain (claimed_at) WHERE status = 'processing';
CREATE INDEX ON events_plain (id) WHERE status = 'dead_letter';
CREATE INDEX events_plain_processed_idx ON events_plain (received_at) WHERE status = 'processed';

ALTER TABLE events_part ADD PRIMARY KEY (id, received_day);
ALTER TABLE events_part ADD UNIQUE (channel, provider_message_id, received_day);
CREATE INDEX ON events_part (next_attempt_at) WHERE status IN ('received', 'error');
CREATE INDEX ON events_part (claimed_at) WHERE status = 'processing';
CREATE INDEX ON events_part (id) WHERE status = 'dead_letter';

-- name: notify_trigger
-- triggers/inbound_events_notify.sql, on both. On the partitioned table a
-- statement-level trigger with a transition table is allowed on the parent
-- (not on a partition), fires once per statement and sees the rows of every
-- partition the statement wrote.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_rows) THEN
        PERFORM pg_notify('inbound_events', '');
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_plain_notify AFTER INSERT ON events_plain
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
CREATE TRIGGER events_part_notify AFTER INSERT ON events_part
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

VACUUM (ANALYZE) events_plain;
VACUUM (ANALYZE) events_part;

SELECT 'events_plain' AS table_name, count(*) AS events,
       pg_size_pretty(pg_total_relation_size('events_plain')) AS size
FROM events_plain
UNION ALL
SELECT 'events_part', count(*),
       (SELECT pg_size_pretty(sum(pg_total_relation_size(relid)))
        FROM pg_partition_tree('events_part'))
FROM events_part;

-- Records of each measurement.
CREATE TABLE claim_runs (
    label text, target text, plan_mode text, repeat int, ms float8, buffers bigint, claimed bigint
);
CREATE TABLE removal_runs (
    method text, repeat int, rows bigint, seconds float8, wal_lsn_bytes numeric,
    wal_here_bytes numeric, wal_here_fpi_bytes numeric
);
CREATE TABLE insert_runs (variant text, repeat int, tps float8, latency_ms float8);

-- name: wal_here
-- The WAL between two LSNs that belongs to this database: the records whose
-- blocks (or, for file operations, paths) are in it, and the other records of
-- their transactions (the commits). Needs the WAL still on disk, so it is read
-- at once after each measurement.
CREATE FUNCTION wal_here(from_lsn pg_lsn, to_lsn pg_lsn,
                         OUT bytes numeric, OUT fpi_bytes numeric)
LANGUAGE sql AS $$
    WITH r AS MATERIALIZED (
        SELECT start_lsn, xid, record_length, fpi_length, description, block_ref
        FROM pg_get_wal_records_info(from_lsn, to_lsn)
    ),
    db AS (SELECT oid::text AS oid FROM pg_database WHERE datname = current_database()),
    touched AS MATERIALIZED (
        SELECT r.start_lsn, r.xid
        FROM r, db
        WHERE r.block_ref LIKE '%rel 1663/' || db.oid || '/%'
           OR r.description LIKE '%base/' || db.oid || '/%'
    )
    SELECT coalesce(sum(r.record_length), 0), coalesce(sum(r.fpi_length), 0)
    FROM r
    WHERE r.start_lsn IN (SELECT start_lsn FROM touched)
       OR (r.xid <> '0'::xid AND r.xid IN (SELECT xid FROM touched WHERE xid <> '0'::xid))
$$;

-- (c) The claim ------------------------------------------------------------

-- claim_events as the service prepares it, on each table.
PREPARE claim_plain(text, int) AS
UPDATE events_plain AS e
SET status = 'processing', processor_id = $1, claimed_at = now(),
    attempt_count = e.attempt_count + 1
WHERE e.id = ANY(ARRAY(
    SELECT id FROM events_plain
    WHERE status IN ('received', 'error') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
))
RETURNING e.id, e.channel, e.provider_message_id, e.message_type, e.from_address,
          e.to_address, e.payload::text AS payload, e.attempt_count, e.received_at;

PREPARE claim_part(text, int) AS
UPDATE events_part AS e
SET status = 'processing', processor_id = $1, claimed_at = now(),
    attempt_count = e.attempt_count + 1
WHERE e.id = ANY(ARRAY(
    SELECT id FROM events_part
    WHERE status IN ('received', 'error') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
))
RETURNING e.id, e.channel, e.provider_message_id, e.message_type, e.from_address,
          e.to_address, e.payload::text AS payload, e.attempt_count, e.received_at;

-- The same claim, told which days its events are on: the locked rows' days
-- bound the UPDATE's received_day, so that at run time it opens only those
-- days' partitions (the others show as "never executed") instead of probing
-- every partition's primary key for every id.
PREPARE claim_part_pruned(text, int) AS
WITH locked AS MATERIALIZED (
    SELECT id, received_day
    FROM events_part
    WHERE status IN ('received', 'error') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE events_part AS e
SET status = 'processing', processor_id = $1, claimed_at = now(),
    attempt_count = e.attempt_count + 1
WHERE e.id = ANY(ARRAY(SELECT id FROM locked))
  AND e.received_day BETWEEN (SELECT min(received_day) FROM locked)
                         AND (SELECT max(received_day) FROM locked)
RETURNING e.id, e.channel, e.provider_message_id, e.message_type, e.from_address,
          e.to_address, e.payload::text AS payload, e.attempt_count, e.received_at;

-- name: measure_claims
-- EXPLAIN ANALYZE of each prepared claim (batch of 500), forced to a custom and
-- to a generic plan, the statements in rotating order; the claim is undone (the
-- subtransaction rolled back) so that every run sees the same rows. Run 0
-- warms the caches and is not kept.
CREATE FUNCTION measure_claims(label text, repeats int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    stmt text;
    mode text;
BEGIN
    FOR i IN 0..repeats LOOP
        FOREACH mode IN ARRAY ARRAY['force_custom_plan', 'force_generic_plan'] LOOP
            FOREACH stmt IN ARRAY (ARRAY[['claim_plain', 'claim_part', 'claim_part_pruned'],
                                         ['claim_part', 'claim_part_pruned', 'claim_plain'],
                                         ['claim_part_pruned', 'claim_plain', 'claim_part']])[i % 3 + 1:i % 3 + 1] LOOP
                PERFORM set_config('plan_cache_mode', mode, true);
                BEGIN
                    EXECUTE format('EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE %I(%L, 500)',
                                   stmt, 'bench-claim')
                        INTO plan;
                    RAISE EXCEPTION 'undo the claim';
                EXCEPTION WHEN raise_exception THEN
                    NULL;
                END;
                IF i > 0 THEN
                    INSERT INTO claim_runs
                    VALUES (label, stmt, mode, i, (plan -> 0 ->> 'Execution Time')::float8,
                            (plan -> 0 -> 'Plan' ->> 'Shared Hit Blocks')::bigint
                                + (plan -> 0 -> 'Plan' ->> 'Shared Read Blocks')::bigint,
                            (plan -> 0 -> 'Plan' ->> 'Actual Rows')::bigint);
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
END;
$$;

SELECT measure_claims('empty', 5);

-- 10,000 events received today, due over the last minute, in both tables.
INSERT INTO events_plain (channel, provider_message_id, message_type, from_address,
                          to_address, payload, next_attempt_at)
SELECT 'sms', 'due-' || g, 'sms', '+18045550000', '+12016660001', '{"body": "due"}',
       now() - interval '60 s' * random()
FROM generate_series(1, 10000) AS g;
INSERT INTO events_part (channel, provider_message_id, message_type, from_address,
                         to_address, payload, next_attempt_at)
SELECT channel, provider_message_id, message_type, from_address, to_address, payload,
       next_attempt_at
FROM events_plain WHERE status = 'received';
ANALYZE events_plain;
ANALYZE events_part;

SELECT measure_claims('500 of 10,000 due', 5);

-- The plans, once each (custom plan), for the doc.
SET plan_cache_mode = force_custom_plan;
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim_plain('bench-claim', 500);
ROLLBACK;
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim_part('bench-claim', 500);
ROLLBACK;
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim_part_pruned('bench-claim', 500);
ROLLBACK;
RESET plan_cache_mode;

-- (a) Removing one day --------------------------------------------------------

-- name: prune_plain_day
-- store/inbound_events.sql prune_events in the loop worker/retention.py runs it
-- in: 1,000 rows a transaction, oldest first, until a batch comes back short;
-- here with no pause between batches (the service waits 200 ms), and a cutoff
-- at the end of day k instead of now() minus the retention.
CREATE PROCEDURE prune_plain_day(k int, batch int)
LANGUAGE plpgsql AS $$
DECLARE
    upto timestamptz := day_start(k + 1);
    deleted int;
BEGIN
    LOOP
        WITH d AS (
            DELETE FROM events_plain
            WHERE id = ANY(ARRAY(
                SELECT id
                FROM events_plain
                WHERE status = 'processed' AND received_at < upto
                ORDER BY received_at
                LIMIT batch
            ))
              AND status = 'processed'
            RETURNING 1
        )
        SELECT count(*) INTO deleted FROM d;
        COMMIT;
        EXIT WHEN deleted < batch;
    END LOOP;
END;
$$;

-- name: record_removal
-- Records a removal timed from t0 and lsn0 (taken just before it) to now.
CREATE FUNCTION record_removal(method text, rep int, n bigint, t0 timestamptz, lsn0 pg_lsn)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t1 timestamptz := clock_timestamp();
    lsn1 pg_lsn := pg_current_wal_lsn();
BEGIN
    -- pg_walinspect reads only flushed WAL; the WAL writer flushes within
    -- wal_writer_delay (200 ms). Waited for, 5 s at most.
    FOR i IN 1..500 LOOP
        EXIT WHEN pg_current_wal_flush_lsn() >= lsn1;
        PERFORM pg_sleep(0.01);
    END LOOP;
    INSERT INTO removal_runs
    SELECT method, rep, n, extract(epoch FROM t1 - t0), pg_wal_lsn_diff(lsn1, lsn0),
           w.bytes, w.fpi_bytes
    FROM wal_here(lsn0, lsn1) AS w;
END;
$$;

-- name: day_holds_only_processed
-- Whether day k's partition may go: it holds no event that still has to be
-- processed, retried or looked at (dead letters). Each status from its partial
-- index, as status_counts counts them.
CREATE FUNCTION day_holds_only_processed(k int) RETURNS bool LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM events_part
                       WHERE received_day = day_of(k)
                         AND status IN ('received', 'error'))
       AND NOT EXISTS (SELECT 1 FROM events_part
                       WHERE received_day = day_of(k)
                         AND status = 'processing')
       AND NOT EXISTS (SELECT 1 FROM events_part
                       WHERE received_day = day_of(k)
                         AND status = 'dead_letter')
$$;

-- The claims' rolled-back updates left dead rows in both tables: gone first,
-- so that the VACUUM measured below is the DELETE's alone.
VACUUM events_plain;
VACUUM events_part;

-- Three repeats, each removing the oldest day left in each table (days 0, 1
-- and 2), the tables in rotating order. Rows are counted before the timed part;
-- each timed part starts after a CHECKPOINT and its WAL is read at once.

-- Repeat 1: plain, then partitioned.
SELECT count(*) AS n FROM events_plain WHERE received_at < day_start(1) \gset
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
CALL prune_plain_day(0, 1000);
SELECT record_removal('batched DELETE, 1,000 rows a transaction', 1, :n, :'t0', :'lsn0');
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
VACUUM events_plain;
SELECT record_removal('VACUUM after the DELETE', 1, :n, :'t0', :'lsn0');

SELECT part_name(0) AS part, count(*) AS n FROM events_part WHERE received_day = day_of(0) \gset
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
SELECT day_holds_only_processed(0) AS only_processed \gset
\if :only_processed
ALTER TABLE events_part DETACH PARTITION :"part" CONCURRENTLY;
DROP TABLE :"part";
\endif
SELECT record_removal('DETACH PARTITION CONCURRENTLY + DROP TABLE', 1, :n, :'t0', :'lsn0');

-- Repeat 2: partitioned, then plain.
SELECT part_name(1) AS part, count(*) AS n FROM events_part WHERE received_day = day_of(1) \gset
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
SELECT day_holds_only_processed(1) AS only_processed \gset
\if :only_processed
ALTER TABLE events_part DETACH PARTITION :"part" CONCURRENTLY;
DROP TABLE :"part";
\endif
SELECT record_removal('DETACH PARTITION CONCURRENTLY + DROP TABLE', 2, :n, :'t0', :'lsn0');

SELECT count(*) AS n FROM events_plain WHERE received_at < day_start(2) \gset
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
CALL prune_plain_day(1, 1000);
SELECT record_removal('batched DELETE, 1,000 rows a transaction', 2, :n, :'t0', :'lsn0');
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
VACUUM events_plain;
SELECT record_removal('VACUUM after the DELETE', 2, :n, :'t0', :'lsn0');

-- Repeat 3: plain, then partitioned.
SELECT count(*) AS n FROM events_plain WHERE received_at < day_start(3) \gset
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
CALL prune_plain_day(2, 1000);
SELECT record_removal('batched DELETE, 1,000 rows a transaction', 3, :n, :'t0', :'lsn0');
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
VACUUM events_plain;
SELECT record_removal('VACUUM after the DELETE', 3, :n, :'t0', :'lsn0');

SELECT part_name(2) AS part, count(*) AS n FROM events_part WHERE received_day = day_of(2) \gset
CHECKPOINT;
SELECT clock_timestamp() AS t0, pg_current_wal_lsn() AS lsn0 \gset
SELECT day_holds_only_processed(2) AS only_processed \gset
\if :only_processed
ALTER TABLE events_part DETACH PARTITION :"part" CONCURRENTLY;
DROP TABLE :"part";
\endif
SELECT record_removal('DETACH PARTITION CONCURRENTLY + DROP TABLE', 3, :n, :'t0', :'lsn0');

-- (b) Inserts under pgbench -----------------------------------------------------

-- pgbench's scripts: psql skips them (\if false); the \! lines below cut each
-- one out of this file into /tmp. Each is insert_events (store/inbound_events.sql)
-- with 25 webhooks: fresh provider ids from one random number per statement,
-- the other columns as bench/sql/pgbench_insert_inbound_events.sql has them.
\if false
-- pgbench script: plain
\set r random(1, 9000000000000000000)
WITH input AS (
    SELECT *
    FROM unnest(array_fill('sms'::text, ARRAY[25]),
                ARRAY(SELECT 'pgb-' || :r || '-' || g FROM generate_series(1, 25) AS g),
                array_fill('sms'::text, ARRAY[25]),
                array_fill('+18045551234'::text, ARRAY[25]),
                array_fill('+12016661234'::text, ARRAY[25]),
                array_fill('{"from":"+18045551234","to":"+12016661234","type":"sms","messaging_provider_id":"pgb","body":"benchmark message","attachments": null,"timestamp":"2024-11-01T14:00:00Z"}'::text, ARRAY[25]))
         WITH ORDINALITY AS t(channel, provider_message_id, message_type,
                              from_address, to_address, payload, ord)
),
inserted AS (
    INSERT INTO events_plain
        (channel, provider_message_id, message_type, from_address, to_address, payload)
    SELECT channel, provider_message_id, message_type, from_address, to_address, payload::jsonb
    FROM input
    ORDER BY ord
    ON CONFLICT (channel, provider_message_id) DO NOTHING
    RETURNING id, channel, provider_message_id
)
SELECT input.ord,
       coalesce(inserted.id,
                (SELECT existing.id
                 FROM events_plain AS existing
                 WHERE existing.channel = input.channel
                   AND existing.provider_message_id = input.provider_message_id)) AS id,
       inserted.id IS NOT NULL
           AND input.ord = min(input.ord) OVER (PARTITION BY input.channel,
                                                             input.provider_message_id)
           AS created
FROM input
LEFT JOIN inserted USING (channel, provider_message_id)
ORDER BY input.ord;
-- end of pgbench script
-- pgbench script: part_day
-- The key is (channel, provider_message_id, received_day): a provider's retry
-- is a duplicate on the day its first copy came, a new event the day after.
\set r random(1, 9000000000000000000)
WITH input AS (
    SELECT *
    FROM unnest(array_fill('sms'::text, ARRAY[25]),
                ARRAY(SELECT 'pgb-' || :r || '-' || g FROM generate_series(1, 25) AS g),
                array_fill('sms'::text, ARRAY[25]),
                array_fill('+18045551234'::text, ARRAY[25]),
                array_fill('+12016661234'::text, ARRAY[25]),
                array_fill('{"from":"+18045551234","to":"+12016661234","type":"sms","messaging_provider_id":"pgb","body":"benchmark message","attachments": null,"timestamp":"2024-11-01T14:00:00Z"}'::text, ARRAY[25]))
         WITH ORDINALITY AS t(channel, provider_message_id, message_type,
                              from_address, to_address, payload, ord)
),
inserted AS (
    INSERT INTO events_part
        (channel, provider_message_id, message_type, from_address, to_address, payload)
    SELECT channel, provider_message_id, message_type, from_address, to_address, payload::jsonb
    FROM input
    ORDER BY ord
    ON CONFLICT (channel, provider_message_id, received_day) DO NOTHING
    RETURNING id, channel, provider_message_id
)
SELECT input.ord,
       coalesce(inserted.id,
                (SELECT existing.id
                 FROM events_part AS existing
                 WHERE existing.channel = input.channel
                   AND existing.provider_message_id = input.provider_message_id
                   AND existing.received_day = (now() AT TIME ZONE 'UTC')::date)) AS id,
       inserted.id IS NOT NULL
           AND input.ord = min(input.ord) OVER (PARTITION BY input.channel,
                                                             input.provider_message_id)
           AS created
FROM input
LEFT JOIN inserted USING (channel, provider_message_id)
ORDER BY input.ord;
-- end of pgbench script
-- pgbench script: part_window
-- As part_day, and a key stored on one of the 7 days before today is a
-- duplicate too: the same 7-day window as today's retention gives, for retries
-- that come one after the other (two copies in flight across midnight both
-- go in; messages_inbound_provider_key still makes one message of them).
\set r random(1, 9000000000000000000)
WITH input AS (
    SELECT *
    FROM unnest(array_fill('sms'::text, ARRAY[25]),
                ARRAY(SELECT 'pgb-' || :r || '-' || g FROM generate_series(1, 25) AS g),
                array_fill('sms'::text, ARRAY[25]),
                array_fill('+18045551234'::text, ARRAY[25]),
                array_fill('+12016661234'::text, ARRAY[25]),
                array_fill('{"from":"+18045551234","to":"+12016661234","type":"sms","messaging_provider_id":"pgb","body":"benchmark message","attachments": null,"timestamp":"2024-11-01T14:00:00Z"}'::text, ARRAY[25]))
         WITH ORDINALITY AS t(channel, provider_message_id, message_type,
                              from_address, to_address, payload, ord)
),
inserted AS (
    INSERT INTO events_part
        (channel, provider_message_id, message_type, from_address, to_address, payload)
    SELECT channel, provider_message_id, message_type, from_address, to_address, payload::jsonb
    FROM input AS i
    WHERE NOT EXISTS (
        SELECT 1
        FROM events_part AS e
        WHERE e.channel = i.channel
          AND e.provider_message_id = i.provider_message_id
          AND e.received_day >= (now() AT TIME ZONE 'UTC')::date - 7
          AND e.received_day < (now() AT TIME ZONE 'UTC')::date)
    ORDER BY ord
    ON CONFLICT (channel, provider_message_id, received_day) DO NOTHING
    RETURNING id, channel, provider_message_id
)
SELECT input.ord,
       coalesce(inserted.id,
                (SELECT existing.id
                 FROM events_part AS existing
                 WHERE existing.channel = input.channel
                   AND existing.provider_message_id = input.provider_message_id
                   AND existing.received_day >= (now() AT TIME ZONE 'UTC')::date - 7
                 ORDER BY existing.received_day DESC
                 LIMIT 1)) AS id,
       inserted.id IS NOT NULL
           AND input.ord = min(input.ord) OVER (PARTITION BY input.channel,
                                                             input.provider_message_id)
           AS created
FROM input
LEFT JOIN inserted USING (channel, provider_message_id)
ORDER BY input.ord;
-- end of pgbench script
\endif

\! for v in plain part_day part_window; do awk -v v="$v" '$0 == "-- pgbench script: " v {on = 1; next} $0 == "-- end of pgbench script" {on = 0} on' bench/sql/partitioning.sql > /tmp/partitioning_$v.pgbench; done
\! rm -f /tmp/partitioning_tps.csv

-- 8 clients on 2 threads (bench section 8's middle row), 10 s each, the
-- variants in rotating order; tps excludes connection time.
\! for run in "1 plain part_day part_window" "2 part_day part_window plain" "3 part_window plain part_day"; do set -- $run; r=$1; shift; for v in "$@"; do pgbench -n -M prepared -T 10 -c 8 -j 2 -f /tmp/partitioning_$v.pgbench | awk -v v="$v" -v r="$r" '/^latency average/ {lat = $4} /^tps = / {tps = $3} END {print v "," r "," tps "," lat}' >> /tmp/partitioning_tps.csv; done; done
\copy insert_runs FROM '/tmp/partitioning_tps.csv' WITH (FORMAT csv)

-- Results -----------------------------------------------------------------------

\pset footer off
SELECT * FROM claim_runs ORDER BY label, plan_mode, target, repeat;
SELECT label, plan_mode, target, count(*) AS repeats,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3) AS median_ms,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY buffers) AS median_buffers,
       max(claimed) AS claimed
FROM claim_runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

SELECT * FROM removal_runs ORDER BY method, repeat;
SELECT method, count(*) AS repeats, max(rows) AS rows,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 3) AS median_s,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_here_bytes) / 1048576)::numeric, 3)
           AS median_wal_here_mib,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_here_fpi_bytes) / 1048576)::numeric, 3)
           AS median_fpi_mib,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_lsn_bytes) / 1048576)::numeric, 3)
           AS median_wal_lsn_mib
FROM removal_runs GROUP BY 1 ORDER BY 1;

SELECT * FROM insert_runs ORDER BY variant, repeat;
SELECT i.variant, count(*) AS repeats,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.tps)::numeric, 1) AS median_tps,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.tps)::numeric * 25, 0)
           AS median_rows_per_s,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.latency_ms)::numeric, 2)
           AS median_latency_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.tps / p.tps)::numeric, 2)
           AS median_ratio_to_plain
FROM insert_runs AS i
JOIN insert_runs AS p ON p.variant = 'plain' AND p.repeat = i.repeat
GROUP BY 1 ORDER BY 1;

\c postgres
DROP DATABASE scratch_partitioning;
