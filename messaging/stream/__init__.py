"""The event stream: the log's changes pushed to consumers (GET /api/events).

hub.py reads the log once per process and fans it out; http/events.py serves
it as Server-Sent Events; store/stream_events.py reads and prunes the log that
the triggers on messages write."""
