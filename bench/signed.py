"""Signed webhooks for the ingest scenario's `service_signed` variant: the
service started with a secret per channel, and requests that carry Standard
Webhooks signatures made with it.

wrk's Lua has no HMAC, and computing one in Lua would load the machine's
other core with the client's work, not the server's. So the requests are signed
here, just before each wrk run, into a file of one line per request (webhook-id,
timestamp, signature, body, tab-separated) that bench/wrk/webhook.lua loads in
init() (before wrk's clock starts) and cycles through. Each line's provider id
is distinct, and its body is the one the unsigned variants send, byte for byte,
so that the two differ only by the headers and the server's check of them. The
file holds more requests than the run can send (MAX_RATE per second); a run
that needs more sends repeats, which the script counts (`reused`).
"""

from __future__ import annotations

import time
from pathlib import Path

from messaging.signatures import encode_secret, sign

KEY = bytes(range(32))
SECRET = encode_secret(KEY)
ENV = {"MESSAGING_SMS_WEBHOOK_SECRETS": SECRET, "MESSAGING_EMAIL_WEBHOOK_SECRETS": SECRET}
# Requests per second the file is sized for: well above what the bare handler
# answers on the benchmark machine.
MAX_RATE = 30_000
# bench/wrk/webhook.lua's body, with the provider id "<prefix>-<thread>-<n>".
BODY = (
    '{{"from":"+18045551234","to":"+12016661234","type":"sms",'
    '"messaging_provider_id":"{prefix}-{thread}-{n}","body":"benchmark message",'
    '"attachments":null,"timestamp":"2024-11-01T14:00:00Z"}}'
)


def write_requests(path: Path, prefix: str, seconds: float, thread: int = 1) -> int:
    """Write the signed requests of a run of `seconds` to path; how many."""
    count = int(seconds * MAX_RATE) + 1
    timestamp = int(time.time())
    lines = []
    for n in range(1, count + 1):
        body = BODY.format(prefix=prefix, thread=thread, n=n).encode()
        msg_id = f"msg_{prefix}_{n:012d}"
        lines.append(f"{msg_id}\t{timestamp}\t{sign(KEY, msg_id, timestamp, body)}\t")
        lines.append(body.decode())
        lines.append("\n")
    path.write_text("".join(lines), encoding="utf-8")
    return count
