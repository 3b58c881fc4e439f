"""What the tests share: the api.md payloads (payloads), type aliases
(aliases), waiting for a condition (waiting), reading metrics (metrics), a
database outage (outage), rows put in place with SQL (arrange) and checks on
them (checks), the service on its own port (service), real worker processes
(processes) and a TCP proxy that can go silent (proxy).

Fixtures that need pytest's registry live in tests/conftest.py, which takes
them from here."""
