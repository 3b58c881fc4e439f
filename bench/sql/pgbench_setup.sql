-- name: create_plain_events
-- A table shaped exactly like inbound_events (columns, defaults, identity,
-- constraints, indexes) but without its NOTIFY trigger: LIKE copies no
-- triggers. pgbench inserts into both to price the trigger.
CREATE TABLE plain_events (LIKE inbound_events INCLUDING ALL);
