-- migrate:up

-- The CHECK added NOT VALID by 20261206120000, now checked on every stored row:
-- VALIDATE CONSTRAINT reads the table under a SHARE UPDATE EXCLUSIVE lock, which
-- lets inserts and updates go on.
ALTER TABLE messages VALIDATE CONSTRAINT messages_inbound_has_provider_id;

-- migrate:down
