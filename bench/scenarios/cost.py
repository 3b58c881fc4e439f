"""Section 4, the cost per webhook (issue 10, target 4): CPU microseconds by
process, for the baselines and the service, gathered from what sections 1 and 2
measured in this run (it runs nothing itself). These figures show where the
time goes: the service's process against the bare and the minimal durable
handlers', and PostgreSQL's share."""

from __future__ import annotations

from typing import Any

from bench.context import Context
from bench.scenarios.common import section, skipped, table

TITLE = "4. Cost per webhook"

_INGEST = (
    ("bare", "bare handler (ingest, baseline a)"),
    ("durable", "minimal durable handler (ingest, baseline b)"),
    ("ceiling", "validating ceiling (ingest, issue 5)"),
    ("service_defaults", "serve --no-worker, defaults (ingest)"),
    ("service_signed", "serve --no-worker, defaults, signed webhooks (ingest)"),
    ("service", "serve --no-worker, LOG_LEVEL=WARNING (ingest)"),
)
_PIPELINE = (
    ("serve", "serve, defaults: ingest and processing (pipeline)"),
    ("serve_split", "serve --no-worker + worker, defaults (pipeline)"),
)


async def run(ctx: Context) -> dict[str, Any]:
    ingest = ctx.done.get("ingest", {}).get("summary")
    pipeline = ctx.done.get("pipeline", {}).get("summary")
    if not ingest and not pipeline:
        return skipped(TITLE, "sections 1 and 2 did not run in this run")
    rows: list[list[Any]] = []
    for key, label in _INGEST if ingest else ():
        s = ingest.get(key, {})
        rows.append(_row(label, s.get("server_cpu_us"), None, s.get("postgres_cpu_us")))
        rows[-1].append("-")
    for key, label in _PIPELINE if pipeline else ():
        s = pipeline.get(key, {})
        worker = s.get("worker_cpu_us") if key == "serve_split" else None
        rows.append(_row(label, s.get("server_cpu_us"), worker, s.get("postgres_cpu_us")))
        rows[-1].append(s.get("transactions_per_webhook"))
    summary = {row[0]: dict(zip(_COLUMNS[1:], row[1:], strict=False)) for row in rows}
    return section(
        TITLE,
        what=(
            "CPU time (user + system, from /proc) over each measurement, divided by the "
            "webhooks it served: the medians of sections 1 and 2. The pipeline rows cover the "
            "load and the drain after it, so they hold each webhook's processing too; "
            "PostgreSQL's is every server process's. Transactions per webhook come from "
            "pg_stat_database: the group commit shares one among many webhooks, and the "
            "worker spends two per batch (the claim, then the batch's writes: one statement "
            "each for the claims' lock, missing conversations, messages, events processed "
            "and conversation counts)."
        ),
        tables=[table("CPU us per webhook, by process", _COLUMNS, rows)],
        summary=summary,
    )


_COLUMNS = [
    "what ran",
    "server / API process us (abs)",
    "worker process us (abs)",
    "PostgreSQL us (abs)",
    "total us (abs)",
    "transactions per webhook",
]


def _row(label: str, server: float | None, worker: float | None, pg: float | None) -> list[Any]:
    total = sum(v for v in (server, worker, pg) if v is not None) or None
    return [label, server, worker if worker is not None else "-", pg or "-", total]
