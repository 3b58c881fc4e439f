"""The worker: turns inbound events into messages and conversations.

listener.py  the LISTEN connection, shared by every loop that waits for a
             notification; reconnects, self-checks
inbound.py   the claim loop and the set-based processing of a batch
sweep.py     stale claims, gauges, the fallback wake-up
backoff.py   the retry schedule
runner.py    Worker: owns and starts/stops all of the above
"""
