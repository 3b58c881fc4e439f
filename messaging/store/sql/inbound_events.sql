-- name: insert_events
-- Stores a batch of validated webhooks in one statement (one commit): the group
-- commit of store/ingest.py. A webhook whose (channel, provider_message_id) is
-- already stored inserts nothing and answers with the existing row's id, so a
-- provider's retry is idempotent without an exception path.
-- Duplicates inside the batch are inserted once and all answer with that id.
-- Rows answer in input order (ord). An id can come back NULL only when a
-- concurrent transaction inserted the same key after this statement's snapshot:
-- the caller looks those up again with find_event_ids.
-- $1 text[]  channel            $2 text[] provider_message_id
-- $3 text[]  message_type       $4 text[] from_address (normalised)
-- $5 text[]  to_address         $6 text[] payload (JSON text)
WITH input AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS t(channel, provider_message_id, message_type,
                              from_address, to_address, payload, ord)
),
inserted AS (
    INSERT INTO inbound_events
        (channel, provider_message_id, message_type, from_address, to_address, payload)
    SELECT channel, provider_message_id, message_type, from_address, to_address, payload::jsonb
    FROM input
    ORDER BY ord
    ON CONFLICT (channel, provider_message_id) DO NOTHING
    RETURNING id, channel, provider_message_id
)
SELECT input.ord,
       coalesce(inserted.id, existing.id) AS id,
       inserted.id IS NOT NULL AS created
FROM input
LEFT JOIN inserted USING (channel, provider_message_id)
LEFT JOIN inbound_events AS existing
       ON existing.channel = input.channel
      AND existing.provider_message_id = input.provider_message_id
ORDER BY input.ord;

-- name: find_event_ids
-- Ids of stored events by key, for the rare rows insert_events could not see.
-- $1 text[] channel   $2 text[] provider_message_id
SELECT k.ord, e.id
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(channel, provider_message_id, ord)
JOIN inbound_events AS e USING (channel, provider_message_id)
ORDER BY k.ord;
