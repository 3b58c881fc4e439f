-- migrate:up

-- How many conversations there are, for the `total` of every page of
-- GET /api/conversations. count(*) walks all of them: at 100,000 conversations
-- it was most of a first page's time (p99 4.3 -> 13.7 ms, bench section 10).
-- Instead each INSERT into conversations adds one row here with the number it
-- inserted, and a page sums the rows: exact, in the reader's snapshot, like
-- count(*). The sweep folds the rows into one now and then (conversations.sql
-- compact_conversation_counts), so there are never many. Appending rather than
-- updating one counter row keeps the worker's concurrent batches from waiting
-- on each other for it.
CREATE TABLE conversation_counts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    n  bigint NOT NULL
);

-- The trigger is made here, not in triggers/, so that the count it starts from
-- and the first row it counts are one transaction: the SHARE lock holds inserts
-- off between the two (a moment: conversations are few).
CREATE FUNCTION conversations_counted_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_counts (n)
    SELECT count(*) FROM inserted_rows HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

LOCK TABLE conversations IN SHARE MODE;
INSERT INTO conversation_counts (n) SELECT count(*) FROM conversations;
-- Statement-level: a worker's batch that creates 500 conversations adds one row.
CREATE TRIGGER conversations_counted
    AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_counted_v1();

-- migrate:down
DROP TRIGGER conversations_counted ON conversations;
DROP FUNCTION conversations_counted_v1();
DROP TABLE conversation_counts;
