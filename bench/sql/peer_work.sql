-- name: events_as_jobs
-- The payload of each "same work" peer job: one per event that the drain's
-- seed inserted (bench/sql/drain.sql seed_events; the template's history
-- events are processed already), with what the service's worker reads of an
-- event (messaging/worker/inbound.py to_message): its id, type, addresses,
-- provider id, and the payload's body, attachments and timestamp. In id order,
-- as the service's worker claims them.
SELECT jsonb_build_object(
           'event_id', id, 'type', message_type, 'from', from_address, 'to', to_address,
           'messaging_provider_id', provider_message_id, 'body', payload -> 'body',
           'attachments', payload -> 'attachments', 'timestamp', payload -> 'timestamp'
       )::text AS job
FROM inbound_events
WHERE status = 'received'
ORDER BY id;

-- name: same_work
-- One event's work as one peer job does it, in one statement (so one
-- transaction of its own, and one round trip: the cheapest way a job can do
-- it): upsert the conversation (created with a count of 1, or its count + 1),
-- its last activity the later of the stored one and this message's sent_at
-- (as messaging/store/conversations.sql add_messages sets it); insert the
-- message as messaging/store/messages.sql insert_inbound_messages does; mark
-- the event processed as messaging/store/inbound_events.sql mark_processed does.
-- $1 bigint inbound_event_id   $2 text kind   $3 text participant_a
-- $4 text participant_b        $5 text message_type   $6 text from_address
-- $7 text to_address           $8 text body   $9 text attachments (a JSON array)
-- $10 timestamptz sent_at      $11 text provider_message_id
WITH conversation AS (
    INSERT INTO conversations AS c
        (kind, participant_a, participant_b, message_count, last_activity_at)
    VALUES ($2, $3, $4, 1, $10)
    ON CONFLICT (kind, participant_a, participant_b) DO UPDATE
    SET message_count = c.message_count + 1,
        last_activity_at = greatest(c.last_activity_at, excluded.last_activity_at)
    RETURNING c.id
),
message AS (
    INSERT INTO messages (conversation_id, inbound_event_id, direction, message_type,
                          from_address, to_address, body, attachments, sent_at, status,
                          provider_message_id)
    SELECT conversation.id, $1, 'inbound', $5, $6, $7, $8, $9::jsonb, $10, 'received', $11
    FROM conversation
    RETURNING inbound_event_id
)
UPDATE inbound_events
SET status = 'processed', processed_at = clock_timestamp()
WHERE id = (SELECT inbound_event_id FROM message);
