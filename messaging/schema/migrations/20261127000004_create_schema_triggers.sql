-- migrate:up

-- Which files of triggers/ are installed, by content hash. `make migrate` applies
-- a trigger file only when its hash differs, so an up-to-date database is left
-- untouched (and the command can say so).
CREATE TABLE schema_triggers (
    file       text PRIMARY KEY,
    sha256     text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE schema_triggers;
