"""The worker: turns inbound events into messages and conversations, and sends
queued messages through the providers.

loop.py      the woken-loop skeleton both loops use
inbound.py   the claim loop: events -> messages; batch.py, one batch's transaction
delivery.py  the delivery loop: sends -> providers -> outcomes
sweep.py     one sweep over both queues: stale claims, gauges, the fallback wake-up
listener.py  the LISTEN connection, shared by every loop that waits for a
             notification; reconnects, self-checks
backoff.py   the retry schedule and policy
runner.py    Worker: owns and starts/stops all of the above
"""
