-- Months of history for a migrated database (bench/scenarios/growth.py, and
-- tests/integration/test_plans.py at a small scale): processed inbound events,
-- the messages they became, some sends the providers took, and the
-- conversations that hold them, as a service that has run for half a year
-- before retention existed would have them. Pure SQL (generate_series), run
-- block by block: history_start once; then on each of the sessions that share
-- the work, setup, plan, record_secondary_indexes of its tables and
-- drop_secondary_indexes (committed before any fill); fill_events and
-- fill_messages over ranges split between the sessions (each range in a
-- transaction that starts with replica_role); fill_conversations (in a
-- transaction of its own) and advance_sequences on one; then
-- restore_secondary_indexes on each, side by side, and vacuum_events beside
-- vacuum_messages.
--
-- The shape, for N events and C conversations (N a multiple of 20, and of C,
-- keeps the counts exact): M = N + N/20 messages numbered k = 1..M in time
-- order. Every 21st message (k % 21 = 0) is a send the provider took
-- (outbound, sent); the others are inbound, each the message of one event
-- (event e is message k = e + (e - 1)/20, and message k's event is
-- k - k/21). Message k belongs to conversation 1 + (k * 7919) % C, a walk
-- that visits every conversation once per C messages, so each one holds M/C
-- messages spread over the whole history. One conversation in five is email,
-- the rest SMS (one message in ten of those an MMS). Times: the first 98% of
-- the messages spread over 180 to 8 days ago (past the default 7-day
-- retention), the last 2% over the last 2 days.
--
-- Ids are given explicitly above what the tables hold already (the bench's
-- template has processed events of its own), so that a message can name its
-- event whichever is written first, and ranges can be written at once.

-- name: history_start
-- Where the generated ids start (above every existing one) and the moment the
-- history ends at: computed once, handed to every session's plan.
SELECT (SELECT coalesce(max(id), 0) FROM inbound_events) AS event_base,
       (SELECT coalesce(max(id), 0) FROM messages) AS message_base,
       (SELECT coalesce(max(id), 0) FROM conversations) AS conversation_base,
       now() AS at;

-- name: setup
-- The session's plan and the per-row arithmetic, as temporary objects, so
-- that the database's schema is left as the migrations made it. The functions
-- are single expressions: the planner inlines them into each row's work.
CREATE TEMP TABLE growth_plan (
    events bigint NOT NULL,
    conversations int NOT NULL,
    messages bigint NOT NULL,
    old_messages bigint NOT NULL,
    event_base bigint NOT NULL,
    message_base bigint NOT NULL,
    conversation_base bigint NOT NULL,
    at timestamptz NOT NULL
);

-- When message k was written (seconds: what a payload's timestamp carries).
CREATE FUNCTION pg_temp.growth_sent_at(k bigint, old bigint, total bigint, at timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT date_trunc('second', CASE
        WHEN k <= old
            THEN at - interval '180 days' + interval '172 days' * (k::float8 / old)
        ELSE at - interval '2 days'
             + interval '47 hours 59 minutes' * ((k - old)::float8 / greatest(total - old, 1))
    END)
$$;

-- The conversation (1..C) that message k belongs to.
CREATE FUNCTION pg_temp.growth_conversation(k bigint, conversations int)
RETURNS int LANGUAGE sql STABLE AS $$
    SELECT (1 + (k * 7919) % conversations)::int
$$;

-- Conversation c's customer address, then the business's: SMS between a
-- customer's number and one of ten business numbers; email between a customer
-- and the business's address. Normalised as the service stores them.
CREATE FUNCTION pg_temp.growth_customer(c int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c % 5 = 0 THEN 'contact' || c || '@gmail.com'
                ELSE '+1804' || lpad(c::text, 7, '0') END
$$;

CREATE FUNCTION pg_temp.growth_business(c int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c % 5 = 0 THEN 'user@usehatchapp.com'
                ELSE '+1201666' || lpad((c % 10)::text, 4, '0') END
$$;

-- The type of message k in conversation c.
CREATE FUNCTION pg_temp.growth_type(k bigint, c int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c % 5 = 0 THEN 'email' WHEN k % 10 = 3 THEN 'mms' ELSE 'sms' END
$$;

-- Bodies of the lengths real traffic has: SMS from a few words to two
-- segments, emails as HTML of a few hundred characters.
CREATE FUNCTION pg_temp.growth_body(k bigint, message_type text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE message_type
        WHEN 'email' THEN
            '<html><body><p>Hello,</p><p>Following up on request ' || k
            || ': could you send the signed contract and the updated invoice before '
            || 'Friday? Our accounts team needs both to close the month.</p>'
            || '<p>Thanks for your help,<br><b>Jordan</b></p>'
            || '<p style="color:#888">Sent from my phone</p></body></html>'
        WHEN 'mms' THEN 'Here is the photo of the receipt for order ' || k
        ELSE (ARRAY['Hi! Is my order ' || k || ' ready for pickup?',
                    'Thanks, see you tomorrow at 10.',
                    'Can you call me back? My number changed.',
                    'Yes',
                    'Please confirm the appointment for Tuesday afternoon. I will bring the '
                    || 'paperwork you asked for and the old card, reference ' || k || '.'])
             [1 + (k % 5)::int]
    END
$$;

-- Attachments of message k, as the JSON array a message stores.
CREATE FUNCTION pg_temp.growth_attachments(k bigint, message_type text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN message_type = 'mms'
            THEN jsonb_build_array('https://example.com/received-image-' || k || '.jpg')
        WHEN message_type = 'email' AND k % 3 = 0
            THEN jsonb_build_array('https://example.com/received-document-' || k || '.pdf')
        ELSE '[]'::jsonb
    END
$$;

-- The provider's id of inbound message k: random-looking, as providers' ids
-- are (a Twilio-like SM... for SMS, a UUID for email), so that the unique
-- indexes on them hold keys spread over their whole range.
CREATE FUNCTION pg_temp.growth_provider_id(k bigint, message_type text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN message_type = 'email'
                THEN md5('in' || k)::uuid::text
                ELSE 'SM' || md5('in' || k) END
$$;

-- name: plan
-- This session's plan.
-- $1 bigint events (N)   $2 int conversations (C)   $3 bigint event_base
-- $4 bigint message_base   $5 bigint conversation_base   $6 timestamptz at
-- (the last four as history_start answered them)
INSERT INTO growth_plan
SELECT $1::bigint, $2::int, $1::bigint + $1::bigint / 20,
       floor(($1::bigint + $1::bigint / 20) * 0.98)::bigint, $3, $4, $5, $6;

-- name: replica_role
-- For this transaction (fill_events' and fill_messages' each start with it), no
-- user trigger and no foreign key check fires: the stream's log would get a row
-- per historical message (the log keeps a day; these are months old) and every
-- insert would NOTIFY nobody; the foreign keys hold by construction
-- (conversation ids are the ones fill_conversations inserts), and checking them
-- would cost a probe per row. Needs a superuser. fill_conversations runs
-- without it, so that the triggers on conversations count its rows.
SET LOCAL session_replication_role = replica;

-- name: record_secondary_indexes
-- Loads of millions of rows are cheaper without the secondary indexes, built
-- afterwards in one sorted pass each, than with them maintained row by row
-- (random provider ids touch a random leaf per row). Every index of the given
-- tables except their primary keys (which the foreign keys need, and which
-- grow at their right edge anyway) is recorded with the statement that makes
-- it again, exactly (unique constraints as constraints, by name), for
-- drop_secondary_indexes and restore_secondary_indexes in this session (the
-- record is a temporary table). Each session records its own tables, so that
-- the sessions rebuild them side by side. A run that dies in between leaves a
-- scratch database without them, which the bench drops anyway.
-- $1 text[] tables
CREATE TEMP TABLE growth_indexes AS
SELECT i.indexrelid::regclass::text AS index_name,
       t.relname AS table_name,
       con.conname AS constraint_name,
       CASE WHEN con.conname IS NOT NULL
            THEN format('ALTER TABLE %I ADD CONSTRAINT %I %s',
                        t.relname, con.conname, pg_get_constraintdef(con.oid))
            ELSE pg_get_indexdef(i.indexrelid) END AS create_statement
FROM pg_index AS i
JOIN pg_class AS t ON t.oid = i.indrelid
LEFT JOIN pg_constraint AS con ON con.conindid = i.indexrelid AND con.contype IN ('u', 'x')
WHERE t.relname = ANY($1::text[])
  AND t.relnamespace = 'public'::regnamespace
  AND NOT i.indisprimary;

-- name: drop_secondary_indexes
-- The indexes record_secondary_indexes recorded, dropped.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM growth_indexes LOOP
        IF r.constraint_name IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', r.table_name, r.constraint_name);
        ELSE
            EXECUTE format('DROP INDEX %s', r.index_name);
        END IF;
    END LOOP;
END;
$$;

-- name: fill_events
-- The events, processed a few tens of milliseconds after they arrived (a
-- second after their timestamp), with the payload the provider posted.
-- $1 bigint first event (1..N)   $2 bigint last event
INSERT INTO inbound_events
    (id, channel, provider_message_id, message_type, from_address, to_address, payload,
     status, attempt_count, next_attempt_at, processor_id, claimed_at, received_at,
     processed_at)
OVERRIDING SYSTEM VALUE
SELECT p.event_base + e, ch.channel, pid.provider_id, m.message_type, a.customer, a.business,
       CASE WHEN ch.channel = 'email'
            THEN jsonb_build_object(
                     'from', a.customer, 'to', a.business, 'xillio_id', pid.provider_id,
                     'body', pg_temp.growth_body(k.k, m.message_type),
                     'attachments', pg_temp.growth_attachments(k.k, m.message_type),
                     'timestamp', t.stamp)
            ELSE jsonb_build_object(
                     'from', a.customer, 'to', a.business, 'type', m.message_type,
                     'messaging_provider_id', pid.provider_id,
                     'body', pg_temp.growth_body(k.k, m.message_type),
                     'attachments', CASE WHEN m.message_type = 'mms'
                                         THEN pg_temp.growth_attachments(k.k, m.message_type)
                                         ELSE 'null'::jsonb END,
                     'timestamp', t.stamp)
       END,
       'processed', 1, t.received_at, 'worker-history', t.received_at + interval '10 ms',
       t.received_at, t.received_at + interval '40 ms'
FROM growth_plan AS p
CROSS JOIN generate_series($1::bigint, $2::bigint) AS e
CROSS JOIN LATERAL (SELECT e + (e - 1) / 20 AS k) AS k
CROSS JOIN LATERAL (SELECT pg_temp.growth_conversation(k.k, p.conversations) AS c) AS c
CROSS JOIN LATERAL (SELECT pg_temp.growth_type(k.k, c.c) AS message_type) AS m
CROSS JOIN LATERAL (SELECT CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END
                               AS channel) AS ch
CROSS JOIN LATERAL (SELECT pg_temp.growth_provider_id(k.k, m.message_type) AS provider_id)
    AS pid
CROSS JOIN LATERAL (SELECT pg_temp.growth_customer(c.c) AS customer,
                           pg_temp.growth_business(c.c) AS business) AS a
CROSS JOIN LATERAL (
    SELECT to_char(s.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS stamp,
           s.sent_at + interval '1 second' AS received_at
    FROM (SELECT pg_temp.growth_sent_at(k.k, p.old_messages, p.messages, p.at) AS sent_at) AS s
) AS t;

-- name: fill_messages
-- The messages: inbound ones as the worker made them from their events (the
-- provider's id kept, sent_at the payload's timestamp), sends as the delivery
-- loop left them once the provider took them. In time order, so that ids grow
-- with time as they do in service.
-- $1 bigint first message (1..M)   $2 bigint last message
INSERT INTO messages
    (id, conversation_id, inbound_event_id, direction, message_type, from_address,
     to_address, body, attachments, sent_at, status, provider_message_id, created_at,
     delivery_attempts, next_attempt_at, processor_id, claimed_at, delivered_at)
OVERRIDING SYSTEM VALUE
SELECT p.message_base + k, p.conversation_base + c.c,
       CASE WHEN d.inbound THEN p.event_base + k - k / 21 END,
       CASE WHEN d.inbound THEN 'inbound' ELSE 'outbound' END,
       m.message_type,
       CASE WHEN d.inbound THEN a.customer ELSE a.business END,
       CASE WHEN d.inbound THEN a.business ELSE a.customer END,
       pg_temp.growth_body(k, m.message_type),
       pg_temp.growth_attachments(k, m.message_type),
       s.sent_at,
       CASE WHEN d.inbound THEN 'received' ELSE 'sent' END,
       CASE WHEN d.inbound THEN pg_temp.growth_provider_id(k, m.message_type)
            ELSE (CASE WHEN m.message_type = 'email' THEN 'email-' ELSE 'sms-' END)
                 || md5('out' || k) END,
       s.sent_at + CASE WHEN d.inbound THEN interval '1040 ms' ELSE interval '0' END,
       CASE WHEN d.inbound THEN 0 ELSE 1 END,
       s.sent_at,
       CASE WHEN d.inbound THEN NULL ELSE 'worker-history' END,
       CASE WHEN d.inbound THEN NULL ELSE s.sent_at + interval '20 ms' END,
       CASE WHEN d.inbound THEN NULL ELSE s.sent_at + interval '150 ms' END
FROM growth_plan AS p
CROSS JOIN generate_series($1::bigint, $2::bigint) AS k
CROSS JOIN LATERAL (SELECT k % 21 <> 0 AS inbound) AS d
CROSS JOIN LATERAL (SELECT pg_temp.growth_conversation(k, p.conversations) AS c) AS c
CROSS JOIN LATERAL (SELECT pg_temp.growth_type(k, c.c) AS message_type) AS m
CROSS JOIN LATERAL (SELECT pg_temp.growth_customer(c.c) AS customer,
                           pg_temp.growth_business(c.c) AS business) AS a
CROSS JOIN LATERAL (SELECT pg_temp.growth_sent_at(k, p.old_messages, p.messages, p.at)
                               AS sent_at) AS s;

-- name: fill_conversations
-- The conversations, counted from the messages just written: each one's count,
-- its last activity (its latest message) and its start, consistent by
-- construction with what list reads and the worker's updates expect.
INSERT INTO conversations
    (id, kind, participant_a, participant_b, message_count, last_activity_at, created_at)
OVERRIDING SYSTEM VALUE
SELECT p.conversation_base + c.c,
       CASE WHEN c.c % 5 = 0 THEN 'email' ELSE 'sms' END,
       least(a.customer COLLATE "C", a.business COLLATE "C"),
       greatest(a.customer COLLATE "C", a.business COLLATE "C"),
       g.messages, g.last_sent_at, g.first_sent_at
FROM growth_plan AS p
CROSS JOIN LATERAL (
    SELECT conversation_id - p.conversation_base AS c, count(*)::int AS messages,
           max(sent_at) AS last_sent_at, min(sent_at) AS first_sent_at
    FROM messages
    WHERE id > p.message_base
    GROUP BY conversation_id
) AS g
CROSS JOIN LATERAL (SELECT g.c::int AS c) AS c
CROSS JOIN LATERAL (SELECT pg_temp.growth_customer(c.c) AS customer,
                           pg_temp.growth_business(c.c) AS business) AS a
ORDER BY c.c;

-- name: advance_sequences
-- The identity sequences past the explicit ids, so that the service's next
-- rows follow the history.
SELECT setval(pg_get_serial_sequence('inbound_events', 'id'),
              greatest((SELECT max(id) FROM inbound_events), 1)),
       setval(pg_get_serial_sequence('messages', 'id'),
              greatest((SELECT max(id) FROM messages), 1)),
       setval(pg_get_serial_sequence('conversations', 'id'),
              greatest((SELECT max(id) FROM conversations), 1));

-- name: restore_secondary_indexes
-- The indexes this session recorded, made again by the same statements: the
-- schema ends as it began. Memory enough to sort ten million keys without
-- spilling to disk; no parallel worker, as the other session builds its own
-- tables' indexes beside this one.
SET LOCAL maintenance_work_mem = '1GB';
SET LOCAL max_parallel_maintenance_workers = 0;

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM growth_indexes LOOP
        EXECUTE r.create_statement;
    END LOOP;
END;
$$;

-- name: vacuum_events
-- The tables as an operator's database has them after months: visibility map
-- set, hint bits written, statistics current. One statement per session, the
-- two at once.
VACUUM (ANALYZE) inbound_events;

-- name: vacuum_messages
-- As vacuum_events, for the other two tables.
VACUUM (ANALYZE) messages, conversations;

-- name: history_check
-- What the generator promises, checked: every inbound message has its event
-- with the same provider key and type (and no event lacks its message), every
-- message's conversation exists and has its kind, and every conversation's
-- count and last activity are its messages'. Each figure is 0 when it holds.
SELECT
    (SELECT count(*)
     FROM messages AS m
     LEFT JOIN inbound_events AS e ON e.id = m.inbound_event_id
     WHERE m.direction = 'inbound'
       AND (e.id IS NULL OR e.provider_message_id <> m.provider_message_id
            OR e.message_type <> m.message_type OR e.status <> 'processed'))
        AS inbound_without_event,
    (SELECT count(*)
     FROM inbound_events AS e
     WHERE e.status = 'processed'
       AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.inbound_event_id = e.id))
        AS processed_without_message,
    (SELECT count(*)
     FROM messages AS m
     LEFT JOIN conversations AS c ON c.id = m.conversation_id
     WHERE c.id IS NULL
        OR c.kind <> CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END)
        AS messages_without_conversation,
    (SELECT count(*)
     FROM conversations AS c
     LEFT JOIN (SELECT conversation_id, count(*) AS n, max(sent_at) AS last
                FROM messages GROUP BY conversation_id) AS g ON g.conversation_id = c.id
     WHERE c.message_count <> coalesce(g.n, 0) OR c.last_activity_at <> g.last)
        AS conversations_miscounted;

-- name: table_sizes
-- Rows (the statistics' estimate), heap and index sizes of the tables the
-- history fills, for the report.
SELECT c.relname AS table_name,
       c.reltuples::bigint AS rows_estimate,
       pg_table_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes
FROM pg_class AS c
WHERE c.relname IN ('inbound_events', 'messages', 'conversations')
  AND c.relnamespace = 'public'::regnamespace
ORDER BY c.relname;

-- name: copy_database
-- The CREATE DATABASE statement for a copy of a filled database, by copying
-- its files (a checkpoint, then a file copy): several times faster for
-- gigabytes than the default strategy, which writes every page to the WAL, and
-- than generating the history again. The server quotes the names.
-- $1 text new database   $2 text database copied
SELECT format('CREATE DATABASE %I TEMPLATE %I STRATEGY FILE_COPY', $1::text, $2::text);

-- name: read_targets
-- What the list reads ask for: how many conversations there are (the middle
-- page of the list is read), and the conversation in the middle of the ids,
-- whose messages are read, with its count.
SELECT (SELECT count(*) FROM conversations) AS conversations, c.id, c.message_count
FROM conversations AS c
ORDER BY c.id
OFFSET (SELECT count(*) / 2 FROM conversations)
LIMIT 1;

-- name: last_message_id
-- The newest message's id, before a drain: the messages it makes come after.
SELECT coalesce(max(id), 0) FROM messages;

-- name: messages_after
-- Messages made since last_message_id answered $1 (a range of the primary key).
-- $1 bigint message id
SELECT count(*) FROM messages WHERE id > $1;

-- name: table_activity
-- What autovacuum has done to the hot tables, and left: dead rows now, and
-- how many times it vacuumed each (the statistics of this database).
SELECT relname AS table_name, n_live_tup, n_dead_tup, autovacuum_count, vacuum_count,
       last_autovacuum
FROM pg_stat_user_tables
WHERE relname IN ('inbound_events', 'messages')
ORDER BY relname;

-- name: reset_autovacuum
-- The variant on PostgreSQL's defaults: the settings of the migration
-- 20261206120200_autovacuum_hot_tables taken off again.
ALTER TABLE inbound_events RESET (autovacuum_vacuum_scale_factor);
ALTER TABLE messages RESET (autovacuum_vacuum_scale_factor);
ALTER TABLE stream_events RESET (autovacuum_vacuum_scale_factor);
ALTER TABLE idempotency_keys RESET (autovacuum_vacuum_scale_factor);
