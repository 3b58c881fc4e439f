"""messaging-service: provider webhooks stored durably in PostgreSQL, turned into
messages and conversations by a worker woken with LISTEN/NOTIFY."""
