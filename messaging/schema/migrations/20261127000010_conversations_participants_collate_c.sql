-- migrate:up

-- Participants compare by code point (COLLATE "C"), the order in which
-- messaging/normalize.py:conversation_key puts them. Under the database's
-- default collation (en_US.UTF-8 on many servers) 'a.b@x.com' and 'ab@x.com'
-- sort the other way round, so a pair ordered in Python could fail
-- conversations_participants_ordered, or meet its reverse as a second key.
-- The unique key and the check are rebuilt with the new collation.
ALTER TABLE conversations
    ALTER COLUMN participant_a TYPE text COLLATE "C",
    ALTER COLUMN participant_b TYPE text COLLATE "C";

-- migrate:down
ALTER TABLE conversations
    ALTER COLUMN participant_a TYPE text COLLATE "default",
    ALTER COLUMN participant_b TYPE text COLLATE "default";
