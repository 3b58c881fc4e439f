-- name: create_commit_probe
-- A small table of its own for the one-row commit probe: the cost of a commit
-- on this machine at this moment (WAL flush included), without the service's
-- triggers or indexes.
CREATE TABLE commit_probe (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- name: insert_commit_probe
-- One row, in a transaction of its own (autocommit): one round trip, one commit.
-- $1 text payload
INSERT INTO commit_probe (payload) VALUES ($1);
