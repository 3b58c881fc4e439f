"""The stores: the only code that talks to the database, a module per table with
its .sql beside it (inbound_events, messages, conversations, idempotency_keys,
schema_migrations), and what they share (db, queries, claims, listen)."""
