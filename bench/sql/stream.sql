-- name: message_commit_times
-- For each given event that has its message: the message's id (what a stream
-- event carries), when the message's transaction started (messages.created_at,
-- DEFAULT now(): the worker's batch's transaction start) and when it committed
-- (the commit timestamp of the row's xmin; needs track_commit_timestamp = on).
-- Unix epoch seconds, the clock the load generator and the consumers record.
-- $1 bigint[] event ids
SELECT e.id AS event_id,
       m.id AS message_id,
       extract(epoch FROM m.created_at)::float8 AS created,
       extract(epoch FROM pg_xact_commit_timestamp(m.xmin))::float8 AS committed
FROM inbound_events AS e
JOIN messages AS m
  ON m.direction = 'inbound'
 AND (CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END) = e.channel
 AND m.provider_message_id = e.provider_message_id
WHERE e.id = ANY($1::bigint[]);

-- name: message_start_times
-- The same without commit timestamps (a server with track_commit_timestamp
-- off): the message's transaction start stands in for its commit.
-- $1 bigint[] event ids
SELECT e.id AS event_id,
       m.id AS message_id,
       extract(epoch FROM m.created_at)::float8 AS created,
       NULL::float8 AS committed
FROM inbound_events AS e
JOIN messages AS m
  ON m.direction = 'inbound'
 AND (CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END) = e.channel
 AND m.provider_message_id = e.provider_message_id
WHERE e.id = ANY($1::bigint[]);

-- name: messages_made
-- Messages stored so far: on a fresh database, the events every stream that
-- connected before the load owes its consumer.
SELECT count(*) FROM messages;
