-- name: messages_done
-- How many of the given events have their message (found by the provider's key,
-- messages_inbound_provider_key, as the worker finds it).
-- $1 bigint[] event ids
SELECT count(*)
FROM inbound_events AS e
JOIN messages AS m
  ON m.direction = 'inbound'
 AND (CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END) = e.channel
 AND m.provider_message_id = e.provider_message_id
WHERE e.id = ANY($1::bigint[]);

-- name: message_commit_times
-- For each given event: when its row was stored (received_at = the group
-- commit's transaction start), when its message's transaction started
-- (messages.created_at, DEFAULT now()) and when that transaction committed
-- (the commit timestamp of the row's xmin; needs track_commit_timestamp = on).
-- Unix epoch seconds, the clock the load generator records.
-- $1 bigint[] event ids
SELECT e.id,
       extract(epoch FROM e.received_at)::float8 AS received,
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
SELECT e.id,
       extract(epoch FROM e.received_at)::float8 AS received,
       extract(epoch FROM m.created_at)::float8 AS created,
       NULL::float8 AS committed
FROM inbound_events AS e
JOIN messages AS m
  ON m.direction = 'inbound'
 AND (CASE WHEN m.message_type = 'email' THEN 'email' ELSE 'sms' END) = e.channel
 AND m.provider_message_id = e.provider_message_id
WHERE e.id = ANY($1::bigint[]);
