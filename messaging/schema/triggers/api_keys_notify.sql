-- Tells every serving process that an API key changed: created, revoked,
-- re-scoped or deleted. The payload is the key's name; a process drops that key
-- from its cache at once and reloads the table (messaging/apikeys.py). Sent by
-- the changing transaction and delivered at its commit, so a revocation reaches
-- the processes whoever makes it: `messaging keys revoke` or an UPDATE in psql.
--
-- Row-level: key changes are rare and one at a time. The processes' own
-- last_used_at writes stay silent (the WHEN clause), or every process would
-- reload its keys once a minute for each key in use.
--
-- Versioned name (_v1) so that a new definition can be installed beside the old
-- one while old processes still run.

CREATE OR REPLACE FUNCTION api_keys_notify_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('api_keys', CASE WHEN TG_OP = 'DELETE' THEN OLD.name ELSE NEW.name END);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER api_keys_notify_insert_delete
    AFTER INSERT OR DELETE ON api_keys
    FOR EACH ROW
    EXECUTE FUNCTION api_keys_notify_v1();

CREATE OR REPLACE TRIGGER api_keys_notify_update
    AFTER UPDATE ON api_keys
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name
          OR OLD.scopes IS DISTINCT FROM NEW.scopes
          OR OLD.secret_sha256 IS DISTINCT FROM NEW.secret_sha256
          OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
    EXECUTE FUNCTION api_keys_notify_v1();
