"""Validation alone (issue 10's lever): microseconds per webhook to turn a body
into an InboundEvent, in this process, with no HTTP and no database. The
service's path (msgspec's first pass, then the rules) beside the second pass
alone (the json module and the walk for hostile values, as every body went
before) and the compiled decoders by themselves."""

from __future__ import annotations

import json
import timeit
from typing import Any

import msgspec

from bench.context import Context
from bench.scenarios.common import section, table
from bench.stats import median
from messaging.http.requests import parse_sms_webhook
from messaging.jsontext import _hostile, parse_json_text

TITLE = "Validation alone"
BODY = json.dumps(
    {
        "from": "+18045551234",
        "to": "+12016661234",
        "type": "sms",
        "messaging_provider_id": "bench-1-1",
        "body": "benchmark message",
        "attachments": None,
        "timestamp": "2024-11-01T14:00:00Z",
    }
).encode()
CALLS = 20_000
_FLAT = msgspec.json.Decoder(dict[str, str | list[str] | None])


def _second_pass_only() -> Any:
    text = BODY.decode()
    value = json.loads(text)
    assert _hostile(value, "", 0, 1000) is None
    return parse_sms_webhook(value, text)


WAYS = {
    "service": (
        "the service: first pass (msgspec) + rules",
        lambda: parse_sms_webhook(*parse_json_text(BODY)),
    ),
    "second_pass": ("second pass only: json module + hostile walk + rules", _second_pass_only),
    "first_pass_decode": ("msgspec decode alone (flat shape)", lambda: _FLAT.decode(BODY)),
    "json_loads": ("json.loads alone", lambda: json.loads(BODY)),
}


async def run(ctx: Context) -> dict[str, Any]:
    raw: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(max(ctx.profile.repeats, 3) * 2):
        for name, (_, call) in WAYS.items():
            raw[name].append(timeit.timeit(call, number=CALLS) / CALLS * 1e6)
    summary = {name: {"us_per_webhook": median(values)} for name, values in raw.items()}
    summary["speedup"] = (
        summary["second_pass"]["us_per_webhook"] / summary["service"]["us_per_webhook"]
    )
    rows = [[label, summary[name]["us_per_webhook"]] for name, (label, _) in WAYS.items()]
    return section(
        TITLE,
        what=(
            f"One SMS webhook body, {CALLS:,} calls per try, the ways in turn, "
            f"{len(raw['service'])} tries; medians. In the bench's own process (CPU-bound, "
            "nothing else of the bench running)."
        ),
        tables=[table("Validation, us per webhook", ["path", "us per webhook (abs)"], rows)],
        raw=raw,
        summary=summary,
        notes=[
            f"The first pass makes validation {summary['speedup']:.1f}x cheaper than the "
            "second pass alone; a body the first pass does not take still goes through the "
            "second, which names every problem."
        ],
    )
